package uiserver

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// reservation is a TCP address bound but not listened on: connections to it
// are refused, as to a server that has not started, yet no other process
// can be handed its port. A slow or never-ready server holds one while its
// fault delays binding, because the hub chose the port by binding port 0 and
// letting go of it: without the reservation, another hub on the same
// machine (parallel test runs, several hubs on one login node) may be given
// the same port during the delay and its server would answer this one's
// readiness check.
type reservation struct {
	fd int
}

// reserve binds addr (host:port, host may be empty) without listening.
func reserve(addr string) (*reservation, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	unspecified := ta.IP == nil || ta.IP.IsUnspecified()
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	switch ip4 := ta.IP.To4(); {
	case unspecified:
		// As net.Listen does for ":port": both stacks when IPv6 is there.
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: ta.Port}
	case ip4 != nil:
		s := &unix.SockaddrInet4{Port: ta.Port}
		copy(s.Addr[:], ip4)
		sa = s
	default:
		s := &unix.SockaddrInet6{Port: ta.Port}
		copy(s.Addr[:], ta.IP.To16())
		family, sa = unix.AF_INET6, s
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if unspecified && errors.Is(err, unix.EAFNOSUPPORT) {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: ta.Port}
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if family == unix.AF_INET6 && unspecified {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	// No SO_REUSEADDR: with it, a socket that is not listening does not
	// keep another socket that also sets it off the port.
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", addr, err)
	}
	return &reservation{fd: fd}, nil
}

// listen starts listening on the reserved address and hands the socket to
// a net.Listener; the reservation is used up.
func (r *reservation) listen() (net.Listener, error) {
	if err := unix.Listen(r.fd, unix.SOMAXCONN); err != nil {
		r.release()
		return nil, fmt.Errorf("listen: %w", err)
	}
	f := os.NewFile(uintptr(r.fd), "uiserver-listener")
	r.fd = -1
	defer f.Close()
	return net.FileListener(f)
}

// release gives the address up without listening.
func (r *reservation) release() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}
