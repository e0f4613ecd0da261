//go:build !linux

package sshd

import "net"

// quickAck is a Linux remedy for delayed ACKs (see quickack_linux.go).
func quickAck(net.Conn) {}
