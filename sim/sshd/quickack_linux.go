package sshd

import (
	"net"
	"syscall"
)

// quickAck asks Linux to acknowledge received data at once rather than
// delay the ACK. The OpenSSH client does not set TCP_NODELAY on
// non-interactive sessions, so during the handshake it holds each small
// packet (Nagle) until the previous one is acknowledged; with the
// server's delayed ACKs that cost one or two 40 ms stalls per login (as
// with a real sshd: `ssh -n host true` took 55-95 ms instead of 12 ms).
// Linux leaves quick-ack mode by itself, so it is asked again after each
// read; one setsockopt per read is negligible beside the read.
func quickAck(c net.Conn) {
	tc := tcpOf(c)
	if tc == nil {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
