package contract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/fault"
	"github.com/jobsim/jobsim/fakepbs/cli"
	"github.com/jobsim/jobsim/fakepbs/remote"
	"github.com/jobsim/jobsim/internal/testbin"
)

// cylcDriver calls Cylc's own job runner code (what `cylc jobs-submit`,
// `jobs-poll` and `jobs-kill` run on a job host) and prints its result.
const cylcDriver = `
import json, os, sys
from cylc.flow.job_runner_mgr import JobRunnerManager, JobPollContext
mgr = JobRunnerManager(clean_env=False, env=[], path=None)
act = sys.argv[1]
if act == "submit":
    ret, out, err, job_id = mgr._job_submit_impl(sys.argv[2], "pbs", {})
    print(json.dumps({"ret": ret, "out": out, "err": err, "job_id": job_id}))
elif act == "poll":
    root, job_dir, job_id = sys.argv[2:5]
    ctx = JobPollContext(job_dir, job_id=job_id, job_runner_name="pbs")
    mgr._jobs_poll_runner(root, "pbs", [ctx])
    print(json.dumps({"exit_polled": ctx.job_runner_exit_polled}))
elif act == "kill":
    ret, err = mgr.job_kill(sys.argv[2])
    print(json.dumps({"ret": ret, "err": err}))
`

// cylcPython finds a python3 that can import Cylc.
func cylcPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			if exec.Command(path, "-c", "import cylc.flow.job_runner_mgr").Run() == nil {
				return path
			}
		}
	}
	t.Skip("no python3 with cylc-flow importable (apt-get install cylc-flow, or make setup-cylc)")
	return ""
}

// buildPBSClients builds jobsim and links the PBS command names to it.
func buildPBSClients(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go toolchain to build the jobsim PBS client")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := testbin.Build(ctx, dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range cli.Commands {
		if err := os.Symlink("jobsim", filepath.Join(dir, c)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRealCylcAgainstPBSExecutables runs Cylc's job runner manager (submit,
// poll, kill) against the jobsim PBS executables through a job's life and
// the server faults that change Cylc's view.
func TestRealCylcAgainstPBSExecutables(t *testing.T) {
	python := cylcPython(t)
	bin := buildPBSClients(t)
	h := newHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	sock := filepath.Join(t.TempDir(), "pbs.sock")
	ln, err := remote.Listen("unix:"+sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- remote.Serve(ctx, ln, h.srv, remote.WithCLIOptions(cli.WithFaults(h.faults))) }()
	t.Cleanup(func() { cancel(); <-done })

	driver := filepath.Join(t.TempDir(), "driver.py")
	if err := os.WriteFile(driver, []byte(cylcDriver), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) map[string]any {
		t.Helper()
		cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, python, append([]string{driver}, args...)...)
		cmd.Dir = h.home
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + h.home, "USER=alice", "LANG=C.UTF-8",
			"JOBSIM_PBS_SERVER=unix:" + sock}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("cylc driver %v: %v\n%s%s", args, err, out.String(), errb.String())
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("cylc driver %v: %v\n%s", args, err, out.String())
		}
		return m
	}

	// The workflow's job log layout: <run>/log/job/<cycle>/<task>/<NN>/job.
	runDir := filepath.Join(t.TempDir(), "cylc-run", "two-task")
	jobRoot := filepath.Join(runDir, "log", "job")
	jobDir := filepath.Join("1", "t1", "01")
	if err := os.MkdirAll(filepath.Join(jobRoot, jobDir), 0o755); err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(runDir, "release")
	jobFile := filepath.Join(jobRoot, jobDir, "job")
	script := fmt.Sprintf("#!/bin/bash -l\n#PBS -N t1.1.two-task\n#PBS -o %[1]s.out\n#PBS -e %[1]s.err\n#PBS -l walltime=60\n"+
		"while [ ! -e %[2]s ]; do sleep 0.02; done\n", jobFile, sentinel)
	if err := os.WriteFile(jobFile, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	blocker := h.cmd("bob", h.home, nil, "sleep 60\n", "qsub")
	bid := strings.TrimSpace(string(blocker.Stdout))
	h.waitState(bid, "R")

	sub := run("submit", jobFile)
	id, _ := sub["job_id"].(string)
	if sub["ret"] != float64(0) || id != "2.fakepbs" {
		t.Fatalf("Cylc's submit: %v", sub)
	}
	st, err := os.ReadFile(jobFile + ".status")
	if err != nil || !strings.Contains(string(st), "CYLC_JOB_ID=2.fakepbs\n") {
		t.Errorf("job.status %q %v: Cylc must record the id qsub printed", st, err)
	}
	gone := func() bool {
		t.Helper()
		m := run("poll", jobRoot, jobDir, id)
		return m["exit_polled"] == float64(1)
	}
	withFault := func(r fault.Rule, f func()) {
		t.Helper()
		rr, err := h.faults.Add(r)
		if err != nil {
			t.Fatal(err)
		}
		defer h.faults.Remove(rr.ID)
		f()
	}

	h.waitState(id, "Q")
	if gone() {
		t.Error("Cylc takes a queued job for gone")
	}
	withFault(fault.Rule{Layer: fault.PBS, Ops: []string{"qstat"}, Effect: fault.Effect{Kind: fault.Unreachable, Style: "refused"}}, func() {
		if gone() {
			t.Error(`with "Connection refused" Cylc must assume the job alive`)
		}
	})
	withFault(fault.Rule{Layer: fault.PBS, Ops: []string{"qstat"}, Effect: fault.Effect{Kind: fault.Unreachable, Style: "cannot-connect"}}, func() {
		if !gone() {
			t.Error(`with PBS 2022's "Connection timed out" Cylc 8.0.2 takes the job for gone (cylc-flow#6531); it did not`)
		}
	})

	h.cmd("bob", h.home, nil, "", "qdel", "-W", "force", bid)
	h.waitState(id, "R")
	if gone() {
		t.Error("Cylc takes a running job for gone")
	}
	withFault(fault.Rule{Layer: fault.PBS, Ops: []string{"qstat"}, Effect: fault.Effect{Kind: fault.TruncateIDs}}, func() {
		if !gone() {
			t.Error("with job ids cut short in qstat's table Cylc must take the job for gone")
		}
	})

	touch(t, sentinel)
	h.waitState(id, "F")
	if !gone() {
		t.Error("Cylc takes a finished job for alive")
	}
	kill := run("kill", jobFile+".status")
	if kill["ret"] != float64(35) || kill["err"] != "qdel: Job has finished 2.fakepbs\n" {
		t.Errorf("Cylc's kill of a finished job: %v", kill)
	}
}
