package hubsys

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// findNSSWrapper is the nss_wrapper library, or "" and the paths tried.
func findNSSWrapper() (lib string, tried []string) {
	candidates := nssWrapperPaths
	if env := os.Getenv(EnvNSSWrapper); env != "" {
		candidates = []string{env}
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", candidates
}

// nssWrapper extends the hub machine's user and host databases with cwrap's
// nss_wrapper, as a site's directory service (LDAP, sssd) and DNS make a
// hub machine know the cluster's users and compute nodes. It returns the
// hub's environment (LD_PRELOAD and the NSS_WRAPPER_* files, written into
// the hub directory); without the library the scenario is skipped with the
// command that installs it.
//
// With homes set, the users: batchspawner's SlurmSpawner looks each user
// up with getpwnam on the hub (its UserEnvMixin sets the job's USER, HOME
// and SHELL from the entry) and fails with "getpwnam(): name not found"
// otherwise. The files are the test machine's /etc/passwd and /etc/group,
// then an entry for each hub user that is not in them (home homes/USER,
// where the host's processes see it).
//
// With hosts (node name to IP), the compute nodes: batchspawner hands the
// node name its batch system reports (exec_host, %B) to the hub, which
// connects to the job's server by that name, as does its proxy; names not
// in the file are resolved as before (nss_wrapper falls back to the
// machine's resolver).
func (p *plan) nssWrapper(homes string, hosts map[string]string) ([]string, error) {
	lib, tried := findNSSWrapper()
	if lib == "" {
		return nil, &runner.SkipError{Reason: fmt.Sprintf("spawner %s looks the hub users and compute nodes up on the hub machine (getpwnam, getaddrinfo), whose databases jobsim extends with nss_wrapper: apt-get install libnss-wrapper, or scripts/setup-hub.sh (or set $%s to the library; tried %s)", p.s.spec.Spawner, EnvNSSWrapper, strings.Join(tried, ", "))}
	}
	dir := filepath.Join(p.dir, "nss")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hubsys: the hub's user database: %w", err)
	}
	env := []string{"LD_PRELOAD=" + lib}
	files := map[string]string{}
	if homes != "" {
		pw, gr, err := p.userDatabase(homes)
		if err != nil {
			return nil, err
		}
		files["passwd"], files["group"] = pw, gr
		env = append(env, "NSS_WRAPPER_PASSWD="+filepath.Join(dir, "passwd"), "NSS_WRAPPER_GROUP="+filepath.Join(dir, "group"))
	}
	if len(hosts) > 0 {
		var b strings.Builder
		for _, name := range slices.Sorted(maps.Keys(hosts)) {
			fmt.Fprintf(&b, "%s %s\n", hosts[name], name)
		}
		files["hosts"] = b.String()
		env = append(env, "NSS_WRAPPER_HOSTS="+filepath.Join(dir, "hosts"))
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("hubsys: the hub's %s database: %w", name, err)
		}
	}
	return env, nil
}

// userDatabase is the hub's passwd and group: the test machine's, then an
// entry per hub user it lacks, at home homes/USER.
func (p *plan) userDatabase(homes string) (passwdText, groupText string, err error) {
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", "", fmt.Errorf("hubsys: the hub's user database: %w", err)
	}
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		return "", "", fmt.Errorf("hubsys: the hub's user database: %w", err)
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
	return pw.String(), gr.String(), nil
}
