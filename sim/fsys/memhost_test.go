package fsys

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/afero"

	"github.com/jobsim/jobsim/base/fault"
)

func TestNewMemHostLayout(t *testing.T) {
	m, err := NewMemHost(
		MemHostname("login1"),
		MemUser(HostUser{Name: "alice", UID: 1001}),
		MemUser(HostUser{Name: "bob", UID: 1002, GID: 100, Home: "/data/bob", Shell: "/bin/sh"}),
		MemDir("/opt/cylc/lib", 0o755),
		MemFile("/opt/cylc/lib/mod.py", []byte("X = 1\n"), 0o644),
	)
	if err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]fs.FileMode{
		"/root": fs.ModeDir | 0o700, "/tmp": fs.ModeDir | fs.ModeSticky | 0o777, "/var/tmp": fs.ModeDir | fs.ModeSticky | 0o777,
		"/home/alice": fs.ModeDir | 0o755, "/data/bob": fs.ModeDir | 0o755, "/etc/passwd": 0o644, "/opt/cylc/lib/mod.py": 0o644,
	} {
		fi, err := m.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), mode)
		}
	}
	passwd, _ := afero.ReadFile(m, "/etc/passwd")
	want := "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001:alice:/home/alice:/bin/bash\nbob:x:1002:100:bob:/data/bob:/bin/sh\n"
	if string(passwd) != want {
		t.Errorf("/etc/passwd:\n%s\nwant\n%s", passwd, want)
	}
	group, _ := afero.ReadFile(m, "/etc/group")
	if string(group) != "root:x:0:\nalice:x:1001:\nbob:x:100:\n" {
		t.Errorf("/etc/group:\n%s", group)
	}
	if h, _ := afero.ReadFile(m, "/etc/hostname"); string(h) != "login1\n" {
		t.Errorf("/etc/hostname %q", h)
	}
	users, err := Users(m)
	if err != nil || len(users) != 3 || users[2].Home != "/data/bob" || users[1].UID != 1001 {
		t.Errorf("Users: %+v %v", users, err)
	}

	// The host tree under the fault layer: a user-scoped EACCES is how a path
	// is made unreadable for one user (MemMapFs does not check modes).
	set := fault.NewSet()
	r := errnoRule("EACCES", "/opt/cylc/lib", "readdir", "opendir")
	r.User = "bob"
	mustAdd(t, set, r)
	fsys := WithFaults(m, set)
	if _, err := afero.ReadDir(ForUser(fsys, "bob"), "/opt/cylc/lib"); !errors.Is(err, syscall.EACCES) {
		t.Errorf("bob lists: %v", err)
	}
	if _, err := afero.ReadDir(ForUser(fsys, "alice"), "/opt/cylc/lib"); err != nil {
		t.Errorf("alice lists: %v", err)
	}
}

func TestNewMemHostBadInput(t *testing.T) {
	for want, opt := range map[string]MemHostOption{
		"not a valid user name": MemUser(HostUser{Name: "Bad Name", UID: 5}),
		"positive uid":          MemUser(HostUser{Name: "x", UID: 0}),
		"must be absolute":      MemUser(HostUser{Name: "x", UID: 5, Home: "home/x"}),
		"duplicates user root":  MemUser(HostUser{Name: "root", UID: 7}),
		`directory "opt"`:       MemDir("opt", 0o755),
		`file "f"`:              MemFile("f", nil, 0o644),
	} {
		_, err := NewMemHost(opt)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one saying %q", err, want)
		}
	}
}
