package remote

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// TestLoadConf: where a client's commands go, from the environment and the
// pbs.conf it names (or /etc/pbs.conf), in OpenPBS's order.
func TestLoadConf(t *testing.T) {
	files := map[string]string{
		"/etc/pbs.conf": "PBS_EXEC=/opt/pbs\nPBS_HOME=/var/spool/pbs\nPBS_SERVER=headnode\n",
		"/site/pbs.conf": "# a comment\n  PBS_DEFAULT=old  \n\nPBS_SERVER=login1\nPBS_BATCH_SERVICE_PORT=15101\nnot a setting\n" +
			"JOBSIM_PBS_SERVER=unix:/run/pbs.sock\nJOBSIM_PBS_TOKEN_FILE=/site/token\n",
		"/site/token":        "s3cret\nsecond line\n",
		"/site/default.conf": "PBS_SERVER=login1\nPBS_DEFAULT=login2\n",
		"/site/empty.conf":   "PBS_EXEC=/opt/pbs\n",
	}
	read := func(p string) ([]byte, error) {
		if p == "/site/unreadable.conf" {
			return nil, fs.ErrPermission
		}
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want ServerConf
		err  string
	}{
		{name: "etc pbs.conf, default port", want: ServerConf{Addr: "tcp:headnode:15001", Name: "headnode", File: "/etc/pbs.conf", Exec: "/opt/pbs"}},
		{name: "PBS_CONF_FILE with jobsim's keys", env: map[string]string{"PBS_CONF_FILE": "/site/pbs.conf"},
			want: ServerConf{Addr: "unix:/run/pbs.sock", Name: "login1", Token: "s3cret", File: "/site/pbs.conf"}},
		{name: "the later of PBS_SERVER and PBS_DEFAULT wins in the file", env: map[string]string{"PBS_CONF_FILE": "/site/default.conf"},
			want: ServerConf{Addr: "tcp:login2:15001", Name: "login2", File: "/site/default.conf"}},
		{name: "PBS_SERVER in the environment wins over the file", env: map[string]string{"PBS_CONF_FILE": "/site/pbs.conf", "PBS_SERVER": "other"},
			want: ServerConf{Addr: "tcp:other:15101", Name: "other", Token: "s3cret", File: "/site/pbs.conf"}},
		{name: "PBS_SERVER over PBS_DEFAULT in the environment", env: map[string]string{"PBS_DEFAULT": "a", "PBS_SERVER": "b:7000"},
			want: ServerConf{Addr: "tcp:b:7000", Name: "b:7000", File: "/etc/pbs.conf", Exec: "/opt/pbs"}},
		{name: "environment naming the file's own server keeps its address", env: map[string]string{"PBS_CONF_FILE": "/site/pbs.conf", "PBS_SERVER": "login1"},
			want: ServerConf{Addr: "unix:/run/pbs.sock", Name: "login1", Token: "s3cret", File: "/site/pbs.conf"}},
		{name: "JOBSIM_PBS_SERVER and its token win over everything",
			env:  map[string]string{"PBS_CONF_FILE": "/site/pbs.conf", "JOBSIM_PBS_SERVER": "tcp:10.0.0.2:15001", "JOBSIM_PBS_TOKEN": "t"},
			want: ServerConf{Addr: "tcp:10.0.0.2:15001", Name: "login1", Token: "t", File: "/site/pbs.conf"}},
		{name: "JOBSIM_PBS_SERVER with no file at all", env: map[string]string{"PBS_CONF_FILE": "/nowhere", "JOBSIM_PBS_SERVER": "unix:/s"},
			want: ServerConf{Addr: "unix:/s"}},
		{name: "no file, no server", env: map[string]string{"PBS_CONF_FILE": "/nowhere"}, err: "/nowhere (no such file)"},
		{name: "file without a server", env: map[string]string{"PBS_CONF_FILE": "/site/empty.conf"}, err: "/site/empty.conf (it names no PBS_SERVER)"},
		{name: "unreadable file", env: map[string]string{"PBS_CONF_FILE": "/site/unreadable.conf"}, err: "permission denied"},
		{name: "bad port", env: map[string]string{"PBS_BATCH_SERVICE_PORT": "http"}, err: `PBS_BATCH_SERVICE_PORT="http"`},
		{name: "missing token file", env: map[string]string{"JOBSIM_PBS_TOKEN_FILE": "/site/none"}, err: "token file /site/none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			got, err := LoadConf(getenv, read)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("LoadConf: %+v, %v; want an error with %q", got, err, tc.err)
				}
				if strings.Contains(tc.name, "no server") && !errors.Is(err, ErrNoServer) {
					t.Errorf("%v does not wrap ErrNoServer", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("LoadConf = %+v, want %+v", got, tc.want)
			}
		})
	}
}
