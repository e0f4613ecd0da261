package cylcsys

import (
	"fmt"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/jobsim/jobsim/scenarios/cylc"
	"github.com/jobsim/jobsim/scenarios/runner"
	"github.com/jobsim/jobsim/scenarios/scenario"
)

// Defaults of the generated global.cylc, chosen so that scenarios run in
// seconds (see scenarios/cylc/NOTES.md, "Settings that make things fast").
const (
	// DefaultPollingInterval is the submission and execution polling
	// interval when the scenario gives none (Cylc's defaults are minutes).
	DefaultPollingInterval = 2 * time.Second
	// DefaultProcessPoolTimeout is [scheduler]process pool timeout when the
	// scenario gives none (Cylc's default is PT10M).
	DefaultProcessPoolTimeout = 2 * time.Minute
	// DefaultCylcPath is where the Cylc under test lives on a job host whose
	// scenario entry names no `cylc:` path.
	DefaultCylcPath = "/opt/cylc"
	// minWorkflowTimeout is the least stall and inactivity timeout written,
	// however short the scenario's timeout.
	minWorkflowTimeout = 30 * time.Second
)

// plan is what the system derives from a scenario and its started topology:
// the generated configuration and where things are on the job host.
type plan struct {
	global   cylc.GlobalConfig
	ssh      cylc.SSHConfig
	platform string // platform name tasks use
	host     runner.Host
	user     string // job host user the scheduler logs in as
	// remoteHome is where processes on the job host see the user's home
	// (job logs lie below it in cylc-run/<id>/log/job).
	remoteHome string
}

// makePlan builds the global.cylc and ssh config of a scenario: one
// platform on the scenario's host, reached through an ssh alias named after
// the host, with the Cylc under test at the host's `cylc:` path, fast
// polling, and stall/inactivity timeouts that abort a stuck workflow once
// the scenario's own time is up.
func makePlan(f *scenario.File, topo runner.Topology, env runner.Env) (*plan, error) {
	c := ConfigOf(f)
	if c == nil {
		return nil, fmt.Errorf("scenario %s: system is not cylc", f.Name)
	}
	pl := c.Platform
	hostName := pl.Host
	if hostName == "" && len(f.Topology.Hosts) == 1 {
		hostName = f.Topology.Hosts[0].Name
	}
	var spec *scenario.Host
	for i := range f.Topology.Hosts {
		if f.Topology.Hosts[i].Name == hostName {
			spec = &f.Topology.Hosts[i]
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("scenario %s: system.cylc.platform.host %q is not a topology host", f.Name, hostName)
	}
	h, ok := topo.Host(hostName)
	if !ok {
		return nil, fmt.Errorf("scenario %s: host %q was not started by the backend", f.Name, hostName)
	}
	user := env.User
	if len(spec.Users) > 0 {
		user = spec.Users[0]
	}
	ep, err := h.SSH(user)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: ssh to %s as %q: %w", f.Name, hostName, user, err)
	}
	addr, portText, err := net.SplitHostPort(ep.Addr)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: ssh address of %s %q: %w", f.Name, hostName, ep.Addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: ssh port of %s %q: %w", f.Name, hostName, ep.Addr, err)
	}
	if ep.User != "" {
		user = ep.User
	}

	name := pl.Name
	if name == "" {
		name = hostName
	}
	runnerName := pl.Runner
	if runnerName == "" {
		runnerName = "pbs"
	}
	comms := cylc.CommsMethod(pl.Comms)
	if comms == "" {
		comms = cylc.CommsPoll
	}
	submitPoll, execPoll := pl.SubmissionPolling.D(), pl.ExecutionPolling.D()
	if submitPoll <= 0 {
		submitPoll = DefaultPollingInterval
	}
	if execPoll <= 0 {
		execPoll = DefaultPollingInterval
	}
	cylcPath := spec.Cylc
	if cylcPath == "" {
		cylcPath = DefaultCylcPath
	}
	pool := c.ProcessPoolTimeout.D()
	if pool <= 0 {
		pool = DefaultProcessPoolTimeout
	}
	// A scheduler that outlives the harness (killed test binary) must end
	// by itself; the scenario's timeout is the longest it may legitimately
	// sit stalled or idle.
	wfTimeout := max(f.Timeout.D(), minWorkflowTimeout)

	g := cylc.GlobalConfig{
		ProcessPoolTimeout: pool,
		StallTimeout:       wfTimeout,
		InactivityTimeout:  wfTimeout,
		Platforms: []cylc.Platform{{
			Name:                       name,
			Hosts:                      []string{hostName},
			JobRunner:                  runnerName,
			InstallTarget:              name,
			CylcPath:                   filepath.Join(h.ProcessPath(cylcPath), "bin"),
			CommunicationMethod:        comms,
			SubmissionPollingIntervals: []time.Duration{submitPoll},
			ExecutionPollingIntervals:  []time.Duration{execPoll},
		}},
		Extra: c.Global,
	}
	if ha, ok := h.(runner.HarnessAddresser); ok {
		// Jobs in containers reach the scheduler (zmq messages) by this name,
		// not by the localhost it would advertise.
		g.HostSelfIdentification = ha.HarnessHost()
		if i := startAfterKill(f); i >= 0 {
			return nil, &runner.SkipError{Reason: fmt.Sprintf("step %d starts the workflow again after a kill-scheduler step, which leaves its contact file behind; "+
				"Cylc then checks the old scheduler on the contact file's host, here the name the scheduler gives job hosts in containers (%s, hardwired), "+
				"which Cylc 8.0.2 takes for a remote host and asks over ssh, and the test machine runs no ssh server: run it with --backend inprocess "+
				"(a stop or stop-now step restarts on both backends)", i+1, g.HostSelfIdentification)}
		}
	}
	s := cylc.SSHConfig{Hosts: []cylc.SSHHost{{
		Alias:        hostName,
		HostName:     addr,
		Port:         port,
		User:         user,
		IdentityFile: ep.KeyFile,
		// A dead fake host must fail fast, not after TCP's minutes.
		Options: map[string]string{"ConnectTimeout": "10", "ServerAliveInterval": "5", "ServerAliveCountMax": "3"},
	}}}
	// Check both render before anything is written.
	if _, err := g.Render("/ssh_config"); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", f.Name, err)
	}
	if _, err := s.Render(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", f.Name, err)
	}
	return &plan{
		global:     g,
		ssh:        s,
		platform:   name,
		host:       h,
		user:       user,
		remoteHome: h.ProcessPath(path.Join("/home", user)),
	}, nil
}

// startAfterKill is the index of the first `do: start` that follows a
// kill-scheduler step with no clean stop (stop, stop-now) between them,
// or -1: the restarts that find the killed scheduler's contact file.
func startAfterKill(f *scenario.File) int {
	killed := false
	for i, s := range f.Timeline {
		if s.Do == "start" && killed {
			return i
		}
		if c, ok := s.Action.(WorkflowCommand); ok && slices.Contains(stops, string(c)) {
			killed = c == "kill-scheduler"
		}
	}
	return -1
}
