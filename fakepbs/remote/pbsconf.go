package remote

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
)

// How a PBS client finds its server, as OpenPBS's pbs_loadconf does: the
// configuration file named by $PBS_CONF_FILE, else /etc/pbs.conf, read line
// by line as KEY=VALUE ('#' starts a comment line, surrounding blanks are
// dropped, unknown keys are ignored), then the environment, which wins over
// the file (PBS_DEFAULT, then PBS_SERVER, for the server's name;
// PBS_BATCH_SERVICE_PORT for its port).
//
// A real PBS server is a host name and a port. jobsim's server may be a unix
// socket, and may want a token, so the file can also hold jobsim's own keys,
// which real PBS clients ignore like any key they do not know:
// JOBSIM_PBS_SERVER (the address, in Call's syntax), JOBSIM_PBS_TOKEN and
// JOBSIM_PBS_TOKEN_FILE. The environment variables of the same names still
// win over everything, as they always did.
const (
	// DefaultConfFile is OpenPBS's default PBS_CONF_FILE.
	DefaultConfFile = "/etc/pbs.conf"
	// DefaultBatchPort is OpenPBS's pbs batch service port (15001).
	DefaultBatchPort = 15001

	EnvConfFile  = "PBS_CONF_FILE"
	EnvServer    = "PBS_SERVER"
	EnvDefault   = "PBS_DEFAULT"
	EnvBatchPort = "PBS_BATCH_SERVICE_PORT"
	EnvExec      = "PBS_EXEC"
	// EnvJobsimServer, EnvJobsimToken and EnvJobsimTokenFile are jobsim's
	// own: the server's address, a TCP server's token, or the file whose
	// first line is the token.
	EnvJobsimServer    = "JOBSIM_PBS_SERVER"
	EnvJobsimToken     = "JOBSIM_PBS_TOKEN"
	EnvJobsimTokenFile = "JOBSIM_PBS_TOKEN_FILE"
)

// ServerConf is where a client's commands go.
type ServerConf struct {
	// Addr is the server's address in Call's syntax ("unix:/path",
	// "tcp:host:port").
	Addr string
	// Name is the server's name as PBS messages show it ("" when only an
	// address is known).
	Name string
	// Token is sent with each request (Serve's WithToken).
	Token string
	// File is the configuration file that was read ("" when none was).
	File string
	// Exec is PBS_EXEC, where the PBS commands are installed (bin/ below
	// it), as OpenPBS's profile script puts it on PATH.
	Exec string
}

// ErrNoServer says that neither the environment nor the configuration file
// names a server.
var ErrNoServer = errors.New("no PBS server configured")

// LoadConf finds the server as described above, with getenv and readFile
// standing for os.LookupEnv and os.ReadFile. A missing configuration file
// is not an error (OpenPBS skips it too); an unreadable one is. With no
// server named anywhere the error wraps ErrNoServer and says where the
// client looked.
func LoadConf(getenv func(string) (string, bool), readFile func(string) ([]byte, error)) (ServerConf, error) {
	var c ServerConf
	path, ok := getenv(EnvConfFile)
	if !ok {
		path = DefaultConfFile
	}
	file := map[string]string{}
	fileName := "" // the server name the file gives
	b, err := readFile(path)
	switch {
	case err == nil:
		c.File = path
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			file[k] = v
			if k == EnvServer || k == EnvDefault {
				// Both set the server's name; the later line wins.
				fileName = v
			}
		}
		if err := sc.Err(); err != nil {
			return c, fmt.Errorf("pbs.conf %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return c, fmt.Errorf("pbs.conf %s: %w", path, err)
	}

	c.Name = fileName
	c.Exec = file[EnvExec]
	if v, ok := getenv(EnvExec); ok {
		c.Exec = v
	}
	for _, k := range []string{EnvDefault, EnvServer} {
		if v, ok := getenv(k); ok {
			c.Name = v
		}
	}
	port := file[EnvBatchPort]
	if v, ok := getenv(EnvBatchPort); ok {
		port = v
	}
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return c, fmt.Errorf("%s=%q: want a port number", EnvBatchPort, port)
		}
	} else {
		port = strconv.Itoa(DefaultBatchPort)
	}

	switch v, ok := getenv(EnvJobsimServer); {
	case ok && v != "":
		c.Addr = v
	case file[EnvJobsimServer] != "" && c.Name == fileName:
		// The file's address belongs to the file's server; an environment
		// naming another server is obeyed below.
		c.Addr = file[EnvJobsimServer]
	case c.Name != "":
		host := c.Name
		if _, _, err := net.SplitHostPort(host); err != nil {
			host += ":" + port
		}
		c.Addr = "tcp:" + host
	default:
		where := path + " (no such file)"
		if c.File != "" {
			where = path + " (it names no PBS_SERVER)"
		}
		return c, fmt.Errorf("%w: read %s, the file $%s names, else %s; set PBS_SERVER there or in the environment, or %s", ErrNoServer, where, EnvConfFile, DefaultConfFile, EnvJobsimServer)
	}

	c.Token = file[EnvJobsimToken]
	tokenFile := file[EnvJobsimTokenFile]
	if v, ok := getenv(EnvJobsimTokenFile); ok && v != "" {
		c.Token, tokenFile = "", v
	}
	if v, ok := getenv(EnvJobsimToken); ok && v != "" {
		c.Token, tokenFile = v, ""
	}
	if c.Token == "" && tokenFile != "" {
		b, err := readFile(tokenFile)
		if err != nil {
			return c, fmt.Errorf("PBS token file %s: %w", tokenFile, err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		c.Token = strings.TrimSpace(line)
	}
	return c, nil
}

// ConfHeader starts every pbs.conf jobsim writes (FormatConf), so that a
// host can tell its own file from a site's.
const ConfHeader = "# pbs.conf written by jobsim"

// FormatConf is the pbs.conf of a host whose PBS clients talk to the server
// named name at jobsim address addr: OpenPBS's three required settings
// (PBS_EXEC, PBS_HOME, PBS_SERVER) and jobsim's address, which real clients
// ignore.
func FormatConf(name, addr, execDir, home string) []byte {
	return fmt.Appendf(nil, "%s: %s's clients find their server here (LoadConf).\nPBS_EXEC=%s\nPBS_HOME=%s\nPBS_SERVER=%s\n%s=%s\n",
		ConfHeader, name, execDir, home, name, EnvJobsimServer, addr)
}
