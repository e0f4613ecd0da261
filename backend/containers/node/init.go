package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// envChild marks the node process started by Init.
const envChild = "JOBSIM_NODE_CHILD"

// Init makes a node that runs as PID 1 of its container behave as an init:
// it starts the node again as its child, forwards SIGTERM and SIGINT to it,
// reaps every orphan the host's processes leave (a job's background
// processes, daemons that double-fork), and exits with the child's status.
// It returns handled=false when the caller is not PID 1 or is that child,
// and should go on to run the node itself. (Docker's --init cannot be used:
// it is bind-mounted at /sbin/docker-init, which the image's bind-mounted
// /usr hides.)
func Init() (handled bool, code int) {
	if os.Getpid() != 1 || os.Getenv(envChild) != "" {
		return false, 0
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobsim node: init:", err)
		return true, 1
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGCHLD)
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Env = append(os.Environ(), envChild+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "jobsim node: init:", err)
		return true, 1
	}
	child := cmd.Process.Pid
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			_ = cmd.Process.Signal(sig)
			continue
		}
		// Reap everything that has exited: orphans and, at the end, the node.
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || errors.Is(err, syscall.ECHILD) {
				break
			}
			if pid == child {
				if ws.Signaled() {
					return true, 128 + int(ws.Signal())
				}
				return true, ws.ExitStatus()
			}
		}
	}
	return true, 0
}
