package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeSSHConfig writes the ssh config a serving command (host, up) prints
// to abs (an absolute path), for `ssh -F path` or an `Include path` line in ~/.ssh/config.
// A file is the way to hand it to OpenSSH: ssh closes every inherited
// descriptor above stderr before it reads -F, so `ssh -F <(...)` cannot
// work. The file appears complete or not at all (written aside, then
// renamed), so its existence says the host is up and the printed text is
// out; remove deletes it again, as the keys it names go when the command
// stops (an Include of a missing file is no error to ssh).
func writeSSHConfig(abs, config string) (remove func(), err error) {
	tmp, err := os.CreateTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".*")
	if err != nil {
		return nil, fmt.Errorf("--ssh-config: %w", err)
	}
	_, err = tmp.WriteString(config)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), abs)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("--ssh-config: %w", err)
	}
	return func() { os.Remove(abs) }, nil
}
