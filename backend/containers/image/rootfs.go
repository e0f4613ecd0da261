package image

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// skipPrefixes are package paths a job host does not need.
var skipPrefixes = []string{"/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/share/locale/", "/usr/share/lintian/", "/usr/share/bash-completion/"}

// pkgInfo is one installed package as dpkg knows it.
type pkgInfo struct {
	name, arch, version string
	depends             []string // "a | b" alternatives kept as one string
}

// installed reads every installed package and what provides what.
func installed() (map[string]pkgInfo, map[string]string, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Package}\t${Architecture}\t${db:Status-Abbrev}\t${Version}\t${Provides}\t${Depends}\t${Pre-Depends}\n").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("image: rootfs userland needs dpkg (a Debian test machine): dpkg-query: %w", err)
	}
	pkgs := map[string]pkgInfo{}
	provides := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 7 || !strings.HasPrefix(f[2], "ii") {
			continue
		}
		p := pkgInfo{name: f[0], arch: f[1], version: f[3]}
		for _, list := range []string{f[5], f[6]} {
			for _, d := range strings.Split(list, ",") {
				if d = strings.TrimSpace(d); d != "" {
					p.depends = append(p.depends, d)
				}
			}
		}
		pkgs[p.name] = p
		for _, pv := range strings.Split(f[4], ",") {
			if name := depName(pv); name != "" {
				if _, ok := provides[name]; !ok {
					provides[name] = p.name
				}
			}
		}
	}
	return pkgs, provides, sc.Err()
}

// depName strips version constraints and architecture qualifiers.
func depName(d string) string {
	d = strings.TrimSpace(d)
	if i := strings.IndexAny(d, " ("); i >= 0 {
		d = d[:i]
	}
	d, _, _ = strings.Cut(d, ":")
	return d
}

// closure resolves the packages and their Depends and Pre-Depends,
// choosing the first installed alternative.
func closure(want []string) ([]pkgInfo, error) {
	pkgs, provides, err := installed()
	if err != nil {
		return nil, err
	}
	resolve := func(name string) (string, bool) {
		if _, ok := pkgs[name]; ok {
			return name, true
		}
		if p, ok := provides[name]; ok {
			return p, true
		}
		return "", false
	}
	seen := map[string]bool{}
	var queue []string
	for _, w := range want {
		name, ok := resolve(w)
		if !ok {
			return nil, fmt.Errorf("image: package %s is not installed (the rootfs userland copies installed packages; run make setup)", w)
		}
		queue = append(queue, name)
	}
	var out []pkgInfo
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		p := pkgs[name]
		out = append(out, p)
		for _, dep := range p.depends {
			for _, alt := range strings.Split(dep, "|") {
				if n, ok := resolve(depName(alt)); ok {
					queue = append(queue, n)
					break
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// packageFiles lists the files of the packages' closure under rootfs/ in
// the context, at their canonical paths (usr-merge symlinks resolved).
func packageFiles(want, leaveOut []string) (contextFiles, error) {
	pkgs, err := closure(want)
	if err != nil {
		return nil, err
	}
	paths := map[string]bool{}
	for _, p := range pkgs {
		list := filepath.Join("/var/lib/dpkg/info", p.name+".list")
		if _, err := os.Stat(list); err != nil {
			list = filepath.Join("/var/lib/dpkg/info", p.name+":"+p.arch+".list")
		}
		data, err := os.ReadFile(list)
		if err != nil {
			return nil, fmt.Errorf("image: file list of %s: %w", p.name, err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line == "" || line == "/." {
				continue
			}
			paths[line] = true
		}
	}
	// Alternatives (awk, python links) live outside the package lists.
	if ents, err := os.ReadDir("/etc/alternatives"); err == nil {
		for _, e := range ents {
			paths["/etc/alternatives/"+e.Name()] = true
		}
	}
	paths["/etc/ld.so.cache"] = true

	canon := map[string]bool{}
	var cf contextFiles
	dirCache := map[string]string{}
	for _, p := range sortedKeys(paths) {
		if skipped(p) {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			continue // listed by dpkg but removed (e.g. a diverted file)
		}
		dir := filepath.Dir(p)
		real, ok := dirCache[dir]
		if !ok {
			if real, err = filepath.EvalSymlinks(dir); err != nil {
				continue
			}
			dirCache[dir] = real
		}
		cp := filepath.Join(real, filepath.Base(p))
		if fi.IsDir() {
			// A directory listed by a package may itself be a usr-merge link.
			if r, err := filepath.EvalSymlinks(p); err == nil {
				cp = r
			}
		}
		if canon[cp] || cp == "/" || under(cp, leaveOut) {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 && isMergeLink(p) {
			continue // /bin, /lib, ...: the base image has these links
		}
		canon[cp] = true
		e := entry{name: "rootfs" + cp, mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return nil, err
			}
		case fi.Mode().IsRegular():
			e.src = cp
			e.hash = fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().UnixNano())
		case fi.IsDir():
		default:
			continue
		}
		cf = append(cf, e)
	}
	sort.Slice(cf, func(i, j int) bool { return cf[i].name < cf[j].name })
	// Parent directories first, so the tar extracts cleanly.
	return append(contextFiles{{name: "rootfs", mode: fs.ModeDir | 0o755}}, cf...), nil
}

func isMergeLink(p string) bool {
	switch p {
	case "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32":
		return true
	}
	return false
}

func skipped(p string) bool {
	for _, pre := range skipPrefixes {
		if strings.HasPrefix(p+"/", pre) {
			return true
		}
	}
	return false
}

// under reports whether p is one of dirs or lies below one.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
