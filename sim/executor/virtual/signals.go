package virtual

import (
	"strconv"
	"strings"
	"syscall"
)

// signalNames are the Linux signal names without the SIG prefix, by number.
var signalNames = [...]string{
	1: "HUP", 2: "INT", 3: "QUIT", 4: "ILL", 5: "TRAP", 6: "ABRT", 7: "BUS", 8: "FPE",
	9: "KILL", 10: "USR1", 11: "SEGV", 12: "USR2", 13: "PIPE", 14: "ALRM", 15: "TERM",
	16: "STKFLT", 17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 21: "TTIN", 22: "TTOU",
	23: "URG", 24: "XCPU", 25: "XFSZ", 26: "VTALRM", 27: "PROF", 28: "WINCH", 29: "IO",
	30: "PWR", 31: "SYS",
}

// sigName returns the name of sig without the SIG prefix ("TERM"), or its
// number for signals without a name.
func sigName(sig syscall.Signal) string {
	if int(sig) > 0 && int(sig) < len(signalNames) {
		return signalNames[sig]
	}
	return strconv.Itoa(int(sig))
}

// parseSignal reads a signal as kill and trap accept it: a number, or a name
// with or without the SIG prefix, in any case.
func parseSignal(s string) (syscall.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 0 && n < 65 {
			return syscall.Signal(n), true
		}
		return 0, false
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for i, n := range signalNames {
		if n != "" && n == name {
			return syscall.Signal(i), true
		}
	}
	switch name {
	case "IOT":
		return syscall.SIGABRT, true
	case "POLL":
		return syscall.SIGIO, true
	case "CLD":
		return syscall.SIGCHLD, true
	}
	return 0, false
}

// terminates reports whether sig's default action ends the process.
func terminates(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGCHLD, syscall.SIGCONT, syscall.SIGURG, syscall.SIGWINCH,
		syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
		return false
	}
	return sig > 0
}

// signalled is the cancellation cause of a shell ended by a signal.
type signalled struct{ sig syscall.Signal }

func (s signalled) Error() string { return "killed by signal " + sigName(s.sig) }
