package container

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Environment variables that say how the harness reaches containers.
const (
	// EnvPublished forces the published-port mode ("1", "true") or the
	// local mode ("0", "false"); unset, the mode follows DOCKER_HOST.
	EnvPublished = "JOBSIM_DOCKER_PUBLISHED"
	// EnvHostIP is the address at which the test machine reaches the
	// engine host's published ports (default: DOCKER_HOST's host).
	EnvHostIP = "JOBSIM_DOCKER_HOST_IP"
	// EnvHarnessIP is the address at which containers reach the test
	// machine (default: the engine's host-gateway, which is the test
	// machine only when the engine runs there).
	EnvHarnessIP = "JOBSIM_HARNESS_IP"
)

// Reach is how the test machine reaches job-host containers: where their
// ssh and control ports are published and dialled, and whether the
// containers' own network addresses are reachable.
//
// In the local mode (an engine on this machine: DOCKER_HOST unset, a unix
// socket, or TCP to a loopback address) ports are published on 127.0.0.1
// at ports the harness picks (a restarted container comes back where it
// was) and the bridge network's addresses are reachable (Container.IP).
//
// In the published-port mode (an engine on another machine: DOCKER_HOST
// tcp://, http(s):// or ssh:// to a non-loopback host, or forced with
// JOBSIM_DOCKER_PUBLISHED=1) the engine picks the host ports, on the
// engine host's every interface (on its loopback when the engine is
// reached on loopback), the harness dials them at the engine host's
// address, and Container.IP is an error: the bridge network lives on the
// engine host, out of the test machine's reach.
type Reach struct {
	// Published is the published-port mode.
	Published bool
	// Host is the address the harness dials published ports at.
	Host string
	// Bind is the engine-side address ports are published on.
	Bind netip.Addr
	// Why says how the mode was chosen (for logs and errors).
	Why string
}

// LocalReach is the local mode: ports on 127.0.0.1, bridge addresses
// reachable.
func LocalReach(why string) Reach {
	return Reach{Host: netipLoopback, Bind: loopbackAddr, Why: why}
}

// ReachFromEnv is the Reach the environment asks for (DOCKER_HOST,
// JOBSIM_DOCKER_PUBLISHED, JOBSIM_DOCKER_HOST_IP).
func ReachFromEnv() (Reach, error) {
	return ParseReach(os.Getenv("DOCKER_HOST"), os.Getenv(EnvHostIP), os.Getenv(EnvPublished))
}

// ParseReach chooses the mode from a DOCKER_HOST value, an explicit
// engine host address (may be empty) and a forcing value of
// JOBSIM_DOCKER_PUBLISHED (may be empty).
func ParseReach(dockerHost, hostIP, force string) (Reach, error) {
	var forced *bool
	if force != "" {
		v, err := strconv.ParseBool(force)
		if err != nil {
			return Reach{}, fmt.Errorf("%s=%q: want 1 or 0 (true or false)", EnvPublished, force)
		}
		forced = &v
	}
	engineHost := ""
	remote := false
	if dockerHost != "" {
		u, err := url.Parse(dockerHost)
		if err != nil {
			return Reach{}, fmt.Errorf("DOCKER_HOST=%q: %w", dockerHost, err)
		}
		switch u.Scheme {
		case "unix", "npipe":
		case "tcp", "http", "https", "ssh":
			engineHost = u.Hostname()
			if engineHost == "" {
				return Reach{}, fmt.Errorf("DOCKER_HOST=%q names no host", dockerHost)
			}
			remote = !isLoopback(engineHost)
		default:
			return Reach{}, fmt.Errorf("DOCKER_HOST=%q: unknown scheme %q (want unix, tcp, http, https or ssh)", dockerHost, u.Scheme)
		}
	}
	published := remote
	why := "the engine is on this machine"
	switch {
	case forced != nil && *forced:
		published, why = true, EnvPublished+" forces the published-port mode"
	case forced != nil:
		published, why = false, EnvPublished+" forces the local mode"
	case remote:
		why = "DOCKER_HOST " + dockerHost + " is another machine"
	}
	if !published {
		return LocalReach(why), nil
	}
	host := hostIP
	if host == "" {
		host = engineHost
	}
	if host == "" {
		// Forced with a local engine on a unix socket: its ports are here.
		host = netipLoopback
	}
	if strings.ContainsAny(host, "/: ") && net.ParseIP(host) == nil {
		return Reach{}, errors.New(EnvHostIP + "=" + strconv.Quote(host) + ": want an address or host name, without port")
	}
	bind := netip.IPv4Unspecified()
	if isLoopback(host) {
		bind = loopbackAddr
	}
	return Reach{Published: true, Host: host, Bind: bind, Why: why}, nil
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// ErrUnreachable is what Container.IP returns in the published-port mode.
var ErrUnreachable = errors.New("the engine is on another machine (published-port mode): its containers' network addresses are not reachable from the test machine")
