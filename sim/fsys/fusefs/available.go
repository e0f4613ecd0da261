package fusefs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// capSysAdmin is the bit of CAP_SYS_ADMIN in the capability sets.
const capSysAdmin = 21

// Available reports why FUSE mounts cannot be made here, or nil when they
// can: /dev/fuse must exist and open, fusermount3 (or fusermount) must be
// installed (to unmount and to clean up after a crashed run), and the
// process must be root or hold CAP_SYS_ADMIN (mounting with allow_other,
// so that other users' processes see the faults). Hosts report the error
// and run without filesystem faults for real processes; tests skip with it.
func Available() error {
	fi, err := os.Stat("/dev/fuse")
	if err != nil {
		return fmt.Errorf("fuse unavailable: %w (load the fuse kernel module; a container needs --device /dev/fuse and CAP_SYS_ADMIN)", err)
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return fmt.Errorf("fuse unavailable: /dev/fuse is not a character device (%v)", fi.Mode())
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("fuse unavailable: %w (run as root, or give the container --device /dev/fuse)", err)
	}
	f.Close()
	if _, err := fusermount(); err != nil {
		return fmt.Errorf("fuse unavailable: %w (install Debian's fuse3: apt-get install fuse3)", err)
	}
	if os.Geteuid() != 0 {
		ok, err := hasCap(capSysAdmin)
		if err != nil {
			return fmt.Errorf("fuse unavailable: not root, and reading capabilities: %w", err)
		}
		if !ok {
			return fmt.Errorf("fuse unavailable: not root and no CAP_SYS_ADMIN (uid %d): mounts for other users' processes need allow_other, which needs root", os.Geteuid())
		}
	}
	return nil
}

// fusermount finds fusermount3, or fusermount.
func fusermount() (string, error) {
	var errs []error
	for _, name := range []string{"fusermount3", "fusermount"} {
		p, err := exec.LookPath(name)
		if err == nil {
			return p, nil
		}
		if p, err2 := exec.LookPath("/bin/" + name); err2 == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("no fusermount3 or fusermount on PATH: %w", errors.Join(errs...))
}

// hasCap reports whether the effective capability set has bit.
func hasCap(bit uint) (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, fmt.Errorf("CapEff %q: %w", v, err)
			}
			return caps&(1<<bit) != 0, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, errors.New("no CapEff line in /proc/self/status")
}
