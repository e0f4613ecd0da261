package spawners

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/internal/testbin"
	"github.com/jobsim/jobsim/internal/testutil"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs"
	"github.com/jobsim/jobsim/scenarios/hub"
	"github.com/jobsim/jobsim/sim"
)

const contractsDir = "../../fixtures/spawners"

// jobsimBin is built once for these tests: the PBS client on the fake
// host and the stand-in server the spawners start.
var jobsimBin string

func TestMain(m *testing.M) { os.Exit(testbin.Main(m, &jobsimBin)) }

func TestContractsLoad(t *testing.T) {
	cs, err := LoadAll(contractsDir)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range cs {
		names[c.Name] = true
	}
	for _, want := range []string{"batchspawner-pbs-over-ssh", "llnl-sshspawner", "nersc-sshspawner"} {
		if !names[want] {
			t.Errorf("no contract %s in %s", want, contractsDir)
		}
	}
}

// TestContracts plays every case of every contract against a fresh
// in-process fake host with real processes (and PBS where the spawner
// submits jobs), through the real OpenSSH client.
func TestContracts(t *testing.T) {
	for _, tool := range []string{"ssh", "scp", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: the contracts run the real OpenSSH client (apt-get install openssh-client)", tool)
		}
	}
	cs, err := LoadAll(contractsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		t.Run(c.Name, func(t *testing.T) {
			for _, cs := range c.Cases {
				t.Run(cs.Name, func(t *testing.T) { playCase(t, c, cs) })
			}
		})
	}
}

func playCase(t *testing.T, c *Contract, cs Case) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := []sim.Option{sim.WithName("fakehpc"), sim.WithExecutor(sim.Real), sim.WithUsers(c.User), sim.WithJobsimBinary(jobsimBin)}
	if c.Host.PBS {
		opts = append(opts, sim.WithPBS(fakepbs.WithHistory(true, time.Hour)))
	}
	h, err := sim.NewHost(ctx, opts...)
	if err != nil {
		t.Fatalf("NewHost: %v", err)
	}
	marker := randomHex(8)
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("host Close: %v", err)
		}
		// Whatever the case started, here or on the host, is gone now.
		if left, _ := hub.FindMarked(marker); len(left) > 0 {
			t.Errorf("processes left after the host closed: %v", left)
		}
	})
	// ControlPath sockets must fit in 108 bytes: a short directory.
	local, err := os.MkdirTemp("", "jsc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(local) })
	cfg, err := h.SSHConfig("fakehpc", c.User)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(local, "ssh_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := testutil.FreePorts(t, 2)
	var log strings.Builder
	r, err := NewRunner(c, Target{
		Vars: map[string]string{
			"host": "fakehpc", "user": c.User, "ssh_config": cfgPath, "local_dir": local,
			"jobsim": jobsimBin, "marker": marker,
			"port": fmt.Sprint(ports[0]), "port2": fmt.Sprint(ports[1]),
		},
		Env: []string{hub.MarkerEnv + "=" + marker},
		// Through the control API, as scenarios add them (a PBS job rule
		// takes hold of jobs already running as it is added).
		AddFault: func(ctx context.Context, rule fault.Rule) error {
			_, err := h.Client().AddFault(ctx, rule)
			return err
		},
		ClearFaults: func(ctx context.Context) error {
			_, err := h.Client().ClearFaults(ctx)
			return err
		},
		Processes: func() ([]string, error) {
			ps, err := hub.FindMarked(marker)
			var out []string
			for _, p := range ps {
				out = append(out, p.String())
			}
			return out, err
		},
	}, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, s := range cs.Steps {
		res, err := r.Step(ctx, s)
		if err != nil && s.Gap != "" {
			t.Skipf("step %d (%s) runs into a known gap of the fake host: %s\n(%v)", i+1, s.Name, s.Gap, err)
		}
		if err == nil && s.Gap != "" {
			t.Logf("step %d (%s) passed: the gap %q is closed, remove it from %s", i+1, s.Name, s.Gap, c.Path)
		}
		if err != nil {
			t.Logf("log of the case:\n%s", log.String())
			t.Fatalf("step %d (%s): %v", i+1, s.Name, err)
		}
		if res.Command != "" {
			t.Logf("step %d (%s): exit %d after %d tries, %s", i+1, s.Name, res.Exit, res.Tries, res.Duration.Round(time.Millisecond))
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
