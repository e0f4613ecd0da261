package netfault

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jobsim/jobsim/base/fault"
)

// echoServer answers every line with the line, through the fault listener.
func echoServer(t *testing.T, set *fault.Set) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Wrap(ln, set, "ssh")
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, addr, msg string) (string, time.Duration, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	start := time.Now()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), time.Since(start), err
}

func TestNetFaultsShapeConnections(t *testing.T) {
	set := fault.NewSet()
	addr := echoServer(t, set)
	if got, _, err := roundTrip(t, addr, "hello"); err != nil || got != "hello" {
		t.Fatalf("no rules: %q %v", got, err)
	}

	r, _ := set.Add(fault.Rule{Layer: fault.Net, Effect: fault.Effect{Kind: fault.Latency, Latency: fault.Duration(150 * time.Millisecond)}})
	if got, d, err := roundTrip(t, addr, "slow"); err != nil || got != "slow" || d < 150*time.Millisecond {
		t.Fatalf("latency: %q after %v, %v", got, d, err)
	}
	set.Remove(r.ID)

	r, _ = set.Add(fault.Rule{Layer: fault.Net, Effect: fault.Effect{Kind: fault.Drop, AfterBytes: 3}})
	if got, _, err := roundTrip(t, addr, "truncated"); got != "tru" || err == nil {
		t.Fatalf("drop after 3 bytes: got %q, %v", got, err)
	}
	set.Remove(r.ID)

	r, _ = set.Add(fault.Rule{Layer: fault.Net, Command: "^control$", Effect: fault.Effect{Kind: fault.Hang}})
	if got, _, err := roundTrip(t, addr, "other service"); err != nil || got != "other service" {
		t.Fatalf("a rule for another service applied: %q %v", got, err)
	}
	set.Remove(r.ID)

	r, _ = set.Add(fault.Rule{Layer: fault.Net, Effect: fault.Effect{Kind: fault.Hang}})
	if _, _, err := roundTrip(t, addr, "hangs"); err == nil {
		t.Fatal("a hanging connection answered")
	}
	set.Remove(r.ID)
	if got, _, err := roundTrip(t, addr, "back"); err != nil || got != "back" {
		t.Fatalf("after clearing: %q %v", got, err)
	}
}
