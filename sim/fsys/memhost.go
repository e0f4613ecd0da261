package fsys

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/spf13/afero"
)

// HostUser is an account of a virtual host: a line of /etc/passwd, a group
// of /etc/group and a home directory.
type HostUser struct {
	Name  string
	UID   int
	GID   int    // 0: same as UID
	Home  string // "": /home/<name>
	Shell string // "": /bin/bash
}

// MemHostOption configures NewMemHost.
type MemHostOption func(*memHost)

type memHost struct {
	hostname string
	users    []HostUser
	dirs     []memEntry
	files    []memEntry
}

type memEntry struct {
	path string
	mode fs.FileMode
	data []byte
}

// MemUser adds an account with its home directory (mode 0755).
func MemUser(u HostUser) MemHostOption { return func(h *memHost) { h.users = append(h.users, u) } }

// MemHostname sets /etc/hostname (default "localhost").
func MemHostname(name string) MemHostOption { return func(h *memHost) { h.hostname = name } }

// MemDir adds a directory (and its parents, 0755) with the given mode.
func MemDir(p string, mode fs.FileMode) MemHostOption {
	return func(h *memHost) { h.dirs = append(h.dirs, memEntry{path: p, mode: mode}) }
}

// MemFile adds a file with its content and mode (parents 0755).
func MemFile(p string, data []byte, mode fs.FileMode) MemHostOption {
	return func(h *memHost) { h.files = append(h.files, memEntry{path: p, mode: mode, data: data}) }
}

var userName = regexp.MustCompile(`^[a-z_][a-z0-9_.-]{0,31}$`)

// NewMemHost lays out the tree of a virtual host in a new afero.MemMapFs:
// /etc/passwd, /etc/group and /etc/hostname for root and the given users,
// /root (0700), each user's home (0755, chowned), /tmp and /var/tmp (1777),
// /usr/bin, /usr/local/bin, /opt, then the extra directories and files.
//
// MemMapFs keeps modes but does not enforce them; see the package doc for
// how to make a path unreadable with a fault rule instead.
func NewMemHost(opts ...MemHostOption) (afero.Fs, error) {
	h := &memHost{hostname: "localhost"}
	for _, o := range opts {
		o(h)
	}
	users := []HostUser{{Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/bash"}}
	for i, u := range h.users {
		if !userName.MatchString(u.Name) {
			return nil, fmt.Errorf("mem host: user %d: name %q is not a valid user name (lower-case letters, digits, _ . -)", i, u.Name)
		}
		if u.UID <= 0 || u.GID < 0 {
			return nil, fmt.Errorf("mem host: user %s: uid %d / gid %d: want a positive uid (0 is root) and a gid >= 0", u.Name, u.UID, u.GID)
		}
		if u.GID == 0 {
			u.GID = u.UID
		}
		if u.Home == "" {
			u.Home = "/home/" + u.Name
		}
		if !path.IsAbs(u.Home) {
			return nil, fmt.Errorf("mem host: user %s: home %q must be absolute", u.Name, u.Home)
		}
		if u.Shell == "" {
			u.Shell = "/bin/bash"
		}
		for _, v := range users {
			if v.Name == u.Name || v.UID == u.UID {
				return nil, fmt.Errorf("mem host: user %s (uid %d) duplicates user %s (uid %d)", u.Name, u.UID, v.Name, v.UID)
			}
		}
		users = append(users, u)
	}

	m := afero.NewMemMapFs()
	mkdir := func(p string, mode fs.FileMode) error {
		if !path.IsAbs(p) {
			return fmt.Errorf("mem host: directory %q must be absolute", p)
		}
		if err := m.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("mem host: mkdir %s: %w", p, err)
		}
		if err := m.Chmod(p, mode|fs.ModeDir); err != nil {
			return fmt.Errorf("mem host: chmod %s: %w", p, err)
		}
		return nil
	}
	write := func(p string, data []byte, mode fs.FileMode) error {
		if !path.IsAbs(p) {
			return fmt.Errorf("mem host: file %q must be absolute", p)
		}
		if err := m.MkdirAll(path.Dir(p), 0o755); err != nil {
			return fmt.Errorf("mem host: mkdir %s: %w", path.Dir(p), err)
		}
		if err := afero.WriteFile(m, p, data, mode); err != nil {
			return fmt.Errorf("mem host: write %s: %w", p, err)
		}
		if err := m.Chmod(p, mode); err != nil {
			return fmt.Errorf("mem host: chmod %s: %w", p, err)
		}
		return nil
	}

	for _, d := range []memEntry{
		{path: "/etc", mode: 0o755}, {path: "/root", mode: 0o700}, {path: "/home", mode: 0o755},
		{path: "/tmp", mode: 0o777 | fs.ModeSticky}, {path: "/var/tmp", mode: 0o777 | fs.ModeSticky},
		{path: "/usr/bin", mode: 0o755}, {path: "/usr/local/bin", mode: 0o755}, {path: "/opt", mode: 0o755},
	} {
		if err := mkdir(d.path, d.mode); err != nil {
			return nil, err
		}
	}
	var passwd, group strings.Builder
	seenGroups := map[int]bool{}
	for _, u := range users {
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:%s\n", u.Name, u.UID, u.GID, u.Name, u.Home, u.Shell)
		if !seenGroups[u.GID] {
			seenGroups[u.GID] = true
			fmt.Fprintf(&group, "%s:x:%d:\n", u.Name, u.GID)
		}
		if u.UID != 0 {
			if err := mkdir(u.Home, 0o755); err != nil {
				return nil, err
			}
			if err := m.Chown(u.Home, u.UID, u.GID); err != nil {
				return nil, fmt.Errorf("mem host: chown %s: %w", u.Home, err)
			}
		}
	}
	for _, f := range []memEntry{
		{path: "/etc/passwd", mode: 0o644, data: []byte(passwd.String())},
		{path: "/etc/group", mode: 0o644, data: []byte(group.String())},
		{path: "/etc/hostname", mode: 0o644, data: []byte(h.hostname + "\n")},
	} {
		if err := write(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	for _, d := range h.dirs {
		if err := mkdir(d.path, d.mode); err != nil {
			return nil, err
		}
	}
	for _, f := range h.files {
		if err := write(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Users reads the accounts of /etc/passwd on fsys, in file order.
func Users(fsys afero.Fs) ([]HostUser, error) {
	b, err := afero.ReadFile(fsys, "/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	var out []HostUser
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 7 {
			return nil, fmt.Errorf("/etc/passwd line %d: want 7 colon-separated fields, got %d", i+1, len(f))
		}
		var u HostUser
		if _, err := fmt.Sscan(f[2], &u.UID); err != nil {
			return nil, fmt.Errorf("/etc/passwd line %d: uid %q: %w", i+1, f[2], err)
		}
		if _, err := fmt.Sscan(f[3], &u.GID); err != nil {
			return nil, fmt.Errorf("/etc/passwd line %d: gid %q: %w", i+1, f[3], err)
		}
		u.Name, u.Home, u.Shell = f[0], f[5], f[6]
		out = append(out, u)
	}
	return out, nil
}
