// Package realslurm starts Debian's real Slurm 22.05 (munged, slurmctld and
// slurmd) on a loopback configuration in a temporary directory, for the
// differential tests and benchmarks that hold fakeslurm against it. The
// recipe is /work/shared/reference/slurm.md's "Running Debian's real Slurm
// here"; scripts/setup-slurm.sh installs the packages.
//
// A cluster has its own ports, so several can run at once. Close cancels
// its jobs, stops the daemons (SIGTERM, then SIGKILL), kills any
// slurmstepd left with files in its directory, and removes the directory.
package realslurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options shape the cluster's slurm.conf.
type Options struct {
	CPUs           int           // of the one node "localhost" (default 2)
	MemMB          int           // RealMemory (default 1000)
	MessageTimeout time.Duration // default 10s
	MinJobAge      time.Duration // default 300s
	KillWait       time.Duration // default 30s
	Extra          []string      // more slurm.conf lines
	// Accounting runs MariaDB and slurmdbd so that sacct works (the
	// cluster is registered with sacctmgr before slurmctld starts).
	Accounting bool
}

// Cluster is a running real Slurm.
type Cluster struct {
	Dir  string // the temp dir: slurm.conf, state, spool, logs, work
	Conf string // $SLURM_CONF
	Work string // a directory for job submissions
	Host string // the short host name slurmctld answers as
	env  []string
	db   *exec.Cmd // mariadbd, when Accounting
}

// Available says why real Slurm cannot run here, or nil.
func Available() error {
	return available("slurmctld", "slurmd", "munged", "mungekey", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
}

// AccountingAvailable says why real Slurm with accounting (slurmdbd,
// MariaDB, sacct) cannot run here, or nil.
func AccountingAvailable() error {
	if err := Available(); err != nil {
		return err
	}
	return available("slurmdbd", "sacctmgr", "sacct", "mariadbd", "mariadb-install-db", "mariadb")
}

func available(bins ...string) error {
	if os.Geteuid() != 0 {
		return errors.New("real Slurm needs root (SlurmUser=root, munged)")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s is not installed (run scripts/setup-slurm.sh): %w", b, err)
		}
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Start starts munged, slurmctld and slurmd and waits until the node is
// idle. ctx bounds the start only.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	avail := Available
	if o.Accounting {
		avail = AccountingAvailable
	}
	if err := avail(); err != nil {
		return nil, err
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.MemMB == 0 {
		o.MemMB = 1000
	}
	if o.MessageTimeout == 0 {
		o.MessageTimeout = 10 * time.Second
	}
	if o.MinJobAge == 0 {
		o.MinJobAge = 300 * time.Second
	}
	if o.KillWait == 0 {
		o.KillWait = 30 * time.Second
	}
	dir, err := os.MkdirTemp("", "realslurm-")
	if err != nil {
		return nil, fmt.Errorf("realslurm: %w", err)
	}
	c = &Cluster{Dir: dir, Conf: filepath.Join(dir, "slurm.conf"), Work: filepath.Join(dir, "work")}
	defer func() {
		if err != nil {
			_ = c.Close()
		}
	}()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("realslurm: %w", err)
	}
	for _, d := range []string{"munge", "run", "state", "spool", "log", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("realslurm: %w", err)
		}
	}
	// munged wants its key dir private and its socket dir o+x.
	if err := os.Chmod(filepath.Join(dir, "munge"), 0o700); err != nil {
		return nil, fmt.Errorf("realslurm: %w", err)
	}
	host, _ := os.Hostname()
	c.Host, _, _ = strings.Cut(host, ".")
	ctlPort, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("realslurm: %w", err)
	}
	dPort, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("realslurm: %w", err)
	}
	key := filepath.Join(dir, "munge", "munge.key")
	sock := filepath.Join(dir, "run", "munge.sock")
	if err := c.run(ctx, "mungekey", "--create", "--keyfile="+key); err != nil {
		return nil, err
	}
	if err := c.run(ctx, "munged", "--key-file="+key, "--socket="+sock, "--pid-file="+filepath.Join(dir, "run", "munged.pid"),
		"--log-file="+filepath.Join(dir, "log", "munged.log"), "--seed-file="+filepath.Join(dir, "munge", "seed")); err != nil {
		return nil, err
	}
	c.env = append(os.Environ(), "SLURM_CONF="+c.Conf)
	secs := func(d time.Duration) int { return int(d / time.Second) }
	conf := []string{
		"ClusterName=fakecluster",
		"SlurmctldHost=localhost",
		"SlurmUser=root",
		"AuthType=auth/munge",
		"AuthInfo=socket=" + sock,
		"MpiDefault=none",
		"ProctrackType=proctrack/linuxproc",
		"TaskPlugin=task/none",
		"SelectType=select/cons_tres",
		"SelectTypeParameters=CR_Core",
		"JobAcctGatherType=jobacct_gather/none",
		"AccountingStorageType=accounting_storage/none",
		"ReturnToService=2",
		"MaxArraySize=0",
		"SlurmctldPort=" + strconv.Itoa(ctlPort),
		"SlurmdPort=" + strconv.Itoa(dPort),
		"MessageTimeout=" + strconv.Itoa(secs(o.MessageTimeout)),
		"MinJobAge=" + strconv.Itoa(secs(o.MinJobAge)),
		"KillWait=" + strconv.Itoa(secs(o.KillWait)),
		"StateSaveLocation=" + filepath.Join(dir, "state"),
		"SlurmdSpoolDir=" + filepath.Join(dir, "spool"),
		"SlurmctldPidFile=" + filepath.Join(dir, "run", "slurmctld.pid"),
		"SlurmdPidFile=" + filepath.Join(dir, "run", "slurmd.pid"),
		"SlurmctldLogFile=" + filepath.Join(dir, "log", "slurmctld.log"),
		"SlurmdLogFile=" + filepath.Join(dir, "log", "slurmd.log"),
	}
	if o.Accounting {
		dbdPort, err := c.startAccounting(ctx, sock)
		if err != nil {
			return nil, err
		}
		for i, l := range conf {
			switch {
			case strings.HasPrefix(l, "AccountingStorageType="):
				conf[i] = "AccountingStorageType=accounting_storage/slurmdbd"
			case strings.HasPrefix(l, "JobAcctGatherType="):
				conf[i] = "JobAcctGatherType=jobacct_gather/linux"
			}
		}
		conf = append(conf, "AccountingStorageHost=localhost", "AccountingStoragePort="+strconv.Itoa(dbdPort),
			"AccountingStoragePass="+sock)
	}
	conf = append(conf, o.Extra...)
	conf = append(conf,
		fmt.Sprintf("NodeName=localhost CPUs=%d RealMemory=%d Sockets=1 CoresPerSocket=%d State=UNKNOWN", o.CPUs, o.MemMB, o.CPUs),
		"PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
	)
	if err := os.WriteFile(c.Conf, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("realslurm: %w", err)
	}
	if o.Accounting {
		// The cluster must be known to slurmdbd before slurmctld starts.
		if err := c.run(ctx, "sacctmgr", "-i", "add", "cluster", "fakecluster"); err != nil {
			return nil, err
		}
	}
	if err := c.StartController(ctx); err != nil {
		return nil, err
	}
	if err := c.run(ctx, "slurmd", "-f", c.Conf, "-N", "localhost"); err != nil {
		return nil, err
	}
	for {
		out, _, _, _ := c.Exec(ctx, nil, "sinfo", "-h", "-o", "%T")
		if strings.TrimSpace(out) == "idle" {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("realslurm: the node did not become idle: %w (%s)", ctx.Err(), c.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startAccounting starts MariaDB (a private instance in the cluster's
// directory) and slurmdbd, and returns slurmdbd's port.
func (c *Cluster) startAccounting(ctx context.Context, mungeSock string) (int, error) {
	dbDir := filepath.Join(c.Dir, "db")
	dbSock := filepath.Join(c.Dir, "run", "mysqld.sock")
	if err := c.run(ctx, "mariadb-install-db", "--user=root", "--datadir="+dbDir,
		"--auth-root-authentication-method=normal", "--skip-test-db"); err != nil {
		return 0, err
	}
	dbPort, err := freePort()
	if err != nil {
		return 0, fmt.Errorf("realslurm: %w", err)
	}
	db := exec.Command("mariadbd", "--no-defaults", "--user=root", "--datadir="+dbDir, "--socket="+dbSock,
		"--bind-address=127.0.0.1", "--port="+strconv.Itoa(dbPort), "--skip-log-bin",
		"--pid-file="+filepath.Join(c.Dir, "run", "mariadbd.pid"), "--log-error="+filepath.Join(c.Dir, "log", "mariadbd.log"))
	db.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := db.Start(); err != nil {
		return 0, fmt.Errorf("realslurm: mariadbd: %w", err)
	}
	c.db = db
	const pass = "realslurm"
	sql := "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '" + pass + "'; CREATE USER 'slurm'@'localhost' IDENTIFIED BY '" + pass + "'; " +
		"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
	for {
		cmd := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-S", dbSock, "-u", "root", "-e", sql)
		if err := cmd.Run(); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("realslurm: MariaDB does not answer: %w (%s)", ctx.Err(), c.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
	dbdPort, err := freePort()
	if err != nil {
		return 0, fmt.Errorf("realslurm: %w", err)
	}
	conf := strings.Join([]string{
		"AuthType=auth/munge",
		"AuthInfo=socket=" + mungeSock,
		"DbdHost=localhost",
		"DbdPort=" + strconv.Itoa(dbdPort),
		"SlurmUser=root",
		"StorageType=accounting_storage/mysql",
		"StorageHost=127.0.0.1",
		"StoragePort=" + strconv.Itoa(dbPort),
		"StorageUser=slurm",
		"StoragePass=" + pass,
		"StorageLoc=slurm_acct_db",
		"PidFile=" + filepath.Join(c.Dir, "run", "slurmdbd.pid"),
		"LogFile=" + filepath.Join(c.Dir, "log", "slurmdbd.log"),
	}, "\n") + "\n"
	// slurmdbd has no -f: it reads slurmdbd.conf beside $SLURM_CONF.
	if err := os.WriteFile(filepath.Join(c.Dir, "slurmdbd.conf"), []byte(conf), 0o600); err != nil {
		return 0, fmt.Errorf("realslurm: %w", err)
	}
	if err := c.run(ctx, "slurmdbd"); err != nil {
		return 0, err
	}
	for {
		if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(dbdPort), time.Second); err == nil {
			_ = conn.Close()
			return dbdPort, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("realslurm: slurmdbd does not listen: %w (%s)", ctx.Err(), c.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) logTail() string {
	var b strings.Builder
	for _, f := range []string{"slurmctld.log", "slurmd.log", "munged.log", "slurmdbd.log", "mariadbd.log"} {
		data, _ := os.ReadFile(filepath.Join(c.Dir, "log", f))
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 5 {
			lines = lines[len(lines)-5:]
		}
		fmt.Fprintf(&b, "%s: %s; ", f, strings.Join(lines, " | "))
	}
	return b.String()
}

// run runs a daemon or tool that returns (daemonizes) at once.
func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = c.env
	if c.env == nil {
		cmd.Env = os.Environ()
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("realslurm: %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Env is the environment of a client of this cluster (SLURM_CONF set).
func (c *Cluster) Env() []string { return append([]string(nil), c.env...) }

// Exec runs a Slurm command of this cluster in its work directory and
// returns its stdout, stderr and exit status. stdin may be nil.
func (c *Cluster) Exec(ctx context.Context, stdin []byte, name string, args ...string) (string, string, int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = c.env
	cmd.Dir = c.Work
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code, err = ee.ExitCode(), nil
	}
	return out.String(), errb.String(), code, err
}

func (c *Cluster) pid(name string) int {
	b, err := os.ReadFile(filepath.Join(c.Dir, "run", name+".pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// StopController stops slurmctld (SIGTERM, waited for), as an outage.
func (c *Cluster) StopController() { stop(c.pid("slurmctld")) }

// PauseController stops slurmctld with SIGSTOP (a hung controller);
// ResumeController continues it.
func (c *Cluster) PauseController() { signal(c.pid("slurmctld"), syscall.SIGSTOP) }

// ResumeController continues a paused slurmctld.
func (c *Cluster) ResumeController() { signal(c.pid("slurmctld"), syscall.SIGCONT) }

// StartController starts slurmctld (again) and waits until it answers.
func (c *Cluster) StartController(ctx context.Context) error {
	if err := c.run(ctx, "slurmctld", "-f", c.Conf); err != nil {
		return err
	}
	for {
		out, _, _, _ := c.Exec(ctx, nil, "scontrol", "ping")
		if strings.Contains(out, "is UP") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("realslurm: slurmctld does not answer: %w (%s)", ctx.Err(), c.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func signal(pid int, sig syscall.Signal) {
	if pid > 0 {
		_ = syscall.Kill(pid, sig)
	}
}

// stop sends SIGTERM, waits up to 5s, then SIGKILL.
func stop(pid int) {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// Close stops everything the cluster started and removes its directory.
func (c *Cluster) Close() error {
	if c.env != nil && c.pid("slurmctld") > 0 {
		c.ResumeController()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, _, _ = c.Exec(ctx, nil, "scancel", "-u", "root")
		// Let slurmd end the jobs' processes before it goes.
		for ctx.Err() == nil {
			out, _, code, _ := c.Exec(ctx, nil, "squeue", "-h", "-o", "%i")
			if code != 0 || strings.TrimSpace(out) == "" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
	}
	stop(c.pid("slurmd"))
	stop(c.pid("slurmctld"))
	stop(c.pid("slurmdbd"))
	if c.db != nil && c.db.Process != nil {
		_ = c.db.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = c.db.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.db.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	stop(c.pid("munged"))
	for round := 0; round < 3 && len(c.Leftovers()) > 0; round++ {
		for _, pid := range c.Leftovers() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return os.RemoveAll(c.Dir)
}

// Leftovers lists the processes still tied to this cluster's directory —
// slurmstepd (which outlives slurmd) and job processes it left behind —
// found by working directory, command line or open files. Close kills
// them; after Close it must be empty.
func (c *Cluster) Leftovers() []int {
	prefix := c.Dir + "/"
	tied := func(pid int) bool {
		if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); strings.HasPrefix(cwd+"/", prefix) {
			return true
		}
		if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmd), prefix) {
			return true
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); strings.HasPrefix(target, prefix) {
				return true
			}
		}
		return false
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) || !tied(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}
