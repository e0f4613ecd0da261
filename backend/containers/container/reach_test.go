package container

import (
	"strings"
	"testing"
)

// The mode follows where the engine is: an engine on this machine is
// reached at 127.0.0.1 and its bridge addresses; an engine elsewhere only
// through the ports it publishes, dialled at its host.
func TestParseReach(t *testing.T) {
	for _, tc := range []struct {
		dockerHost, hostIP, force string
		published                 bool
		host, bind                string
	}{
		{"", "", "", false, "127.0.0.1", "127.0.0.1"},
		{"unix:///var/run/docker.sock", "", "", false, "127.0.0.1", "127.0.0.1"},
		{"tcp://127.0.0.1:2375", "", "", false, "127.0.0.1", "127.0.0.1"},
		{"tcp://localhost:2375", "", "", false, "127.0.0.1", "127.0.0.1"},
		{"tcp://[::1]:2375", "", "", false, "127.0.0.1", "127.0.0.1"},
		{"tcp://10.1.2.3:2376", "", "", true, "10.1.2.3", "0.0.0.0"},
		{"ssh://ci@builder.example", "", "", true, "builder.example", "0.0.0.0"},
		{"tcp://docker.internal:2376", "192.0.2.7", "", true, "192.0.2.7", "0.0.0.0"},
		{"tcp://10.1.2.3:2376", "", "0", false, "127.0.0.1", "127.0.0.1"},
		{"tcp://127.0.0.1:23750", "", "1", true, "127.0.0.1", "127.0.0.1"},
		{"", "", "true", true, "127.0.0.1", "127.0.0.1"},
	} {
		r, err := ParseReach(tc.dockerHost, tc.hostIP, tc.force)
		if err != nil {
			t.Errorf("ParseReach(%q, %q, %q): %v", tc.dockerHost, tc.hostIP, tc.force, err)
			continue
		}
		if r.Published != tc.published || r.Host != tc.host || r.Bind.String() != tc.bind || r.Why == "" {
			t.Errorf("ParseReach(%q, %q, %q) = %+v, want published=%v host=%s bind=%s", tc.dockerHost, tc.hostIP, tc.force, r, tc.published, tc.host, tc.bind)
		}
	}
	for _, tc := range []struct{ dockerHost, hostIP, force, want string }{
		{"tcp://10.1.2.3:2376", "", "maybe", "JOBSIM_DOCKER_PUBLISHED=\"maybe\""},
		{"tcp://:2376", "", "", "names no host"},
		{"fd://", "", "", "unknown scheme"},
		{"tcp://10.1.2.3:2376", "10.0.0.1:22", "", "without port"},
	} {
		_, err := ParseReach(tc.dockerHost, tc.hostIP, tc.force)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseReach(%q, %q, %q): error %v, want one saying %q", tc.dockerHost, tc.hostIP, tc.force, err, tc.want)
		}
	}
}
