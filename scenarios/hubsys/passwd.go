package hubsys

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jobsim/jobsim/scenarios/runner"
)

// EnvNSSWrapper names the nss_wrapper library (libnss_wrapper.so) when it
// is not where Debian's libnss-wrapper puts it.
const EnvNSSWrapper = "JOBSIM_NSS_WRAPPER"

// nssWrapperPaths are where Debian's libnss-wrapper installs the library.
var nssWrapperPaths = []string{
	"/usr/lib/x86_64-linux-gnu/libnss_wrapper.so",
	"/usr/lib/aarch64-linux-gnu/libnss_wrapper.so",
	"/usr/lib/libnss_wrapper.so",
}

// nssWrapper gives the hub a user database that knows the job host's users
// besides the test machine's own, as a site's directory service (LDAP,
// sssd) makes a hub machine know the cluster's users: batchspawner's
// SlurmSpawner looks each user up with getpwnam on the hub (its
// UserEnvMixin sets the job's USER, HOME and SHELL from the entry) and
// fails with "getpwnam(): name not found" otherwise. It returns the hub's
// environment for cwrap's nss_wrapper (LD_PRELOAD, NSS_WRAPPER_PASSWD,
// NSS_WRAPPER_GROUP) and writes the files into the hub directory: the
// test machine's /etc/passwd and /etc/group, then an entry for each hub
// user that is not in them (home homes/USER, where the host's processes
// see it). Without the
// library the scenario is skipped with the command that installs it.
func (p *plan) nssWrapper(homes string) ([]string, error) {
	candidates := nssWrapperPaths
	if env := os.Getenv(EnvNSSWrapper); env != "" {
		candidates = []string{env}
	}
	lib := ""
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			lib = c
			break
		}
	}
	if lib == "" {
		return nil, &runner.SkipError{Reason: fmt.Sprintf("spawner %s looks the hub users up on the hub machine (getpwnam), whose user database jobsim extends with nss_wrapper: apt-get install libnss-wrapper, or scripts/setup-hub.sh (or set $%s to the library; tried %s)", p.s.spec.Spawner, EnvNSSWrapper, strings.Join(candidates, ", "))}
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return nil, fmt.Errorf("hubsys: the hub's user database: %w", err)
	}
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		return nil, fmt.Errorf("hubsys: the hub's user database: %w", err)
	}
	known := map[string]bool{}
	for _, line := range strings.Split(string(passwd), "\n") {
		if name, _, ok := strings.Cut(line, ":"); ok {
			known[name] = true
		}
	}
	var pw, gr strings.Builder
	for _, part := range []struct {
		b   *strings.Builder
		txt []byte
	}{{&pw, passwd}, {&gr, group}} {
		part.b.Write(part.txt)
		if len(part.txt) > 0 && part.txt[len(part.txt)-1] != '\n' {
			part.b.WriteByte('\n')
		}
	}
	for i, u := range p.s.spec.Users {
		if known[u] {
			continue
		}
		id := 20000 + i
		fmt.Fprintf(&pw, "%s:x:%d:%d:jobsim host user:%s/%s:/bin/bash\n", u, id, id, homes, u)
		fmt.Fprintf(&gr, "%s:x:%d:\n", u, id)
	}
	dir := filepath.Join(p.dir, "nss")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hubsys: the hub's user database: %w", err)
	}
	files := map[string]string{"passwd": pw.String(), "group": gr.String()}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("hubsys: the hub's user database: %w", err)
		}
	}
	return []string{
		"LD_PRELOAD=" + lib,
		"NSS_WRAPPER_PASSWD=" + filepath.Join(dir, "passwd"),
		"NSS_WRAPPER_GROUP=" + filepath.Join(dir, "group"),
	}, nil
}
