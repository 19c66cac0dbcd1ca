package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// heldConns is the number of control connections TestE2EHeldControlConnections
// holds, as issue 15 counts them.
const heldConns = 25000

// TestE2EHeldControlConnections has one client open and hold 25,000
// connections to a daemon's control socket, one in eight with half a
// request written, more than the daemon has descriptors for. The daemon
// and its pseudowire must keep running, and "ul2tp show tunnel" must work
// again once the held connections time out.
//
// "cap" runs the daemon with its default --max-conns: connections over the
// cap are refused, so descriptors never run out. "emfile" sets the cap
// above the descriptor limit, so that accept fails with EMFILE and the
// daemon must wait for descriptors to free.
func TestE2EHeldControlConnections(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"cap", nil},
		{"emfile", []string{"--max-conns", "1048576"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPseudowire(t, "pwconn", tc.flags, nil)
			hold := raiseTestFileLimit(t, heldConns)
			// The daemon gets fewer descriptors than the client holds
			// connections, as on a host whose hard limit is lower than
			// this one's (the daemon raises its soft limit to the hard
			// limit at start; this lowers both).
			// A quarter, so that the daemon's descriptors and its
			// socket's backlog (net.core.somaxconn, 4096 by default)
			// together are fewer than the connections: in "emfile",
			// accept runs out of descriptors.
			limit := uint64(hold / 4)
			if err := unix.Prlimit(p.a.cmd.Process.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
				t.Fatalf("prlimit ul2tpd: %v", err)
			}
			conns, failed := holdConns(p.a.socket, hold)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			t.Logf("holding %d control connections (%d dials failed); daemon descriptor limit %d", len(conns), failed, limit)
			if !p.a.alive() {
				t.Fatalf("ul2tpd died under %d held connections:\n%s", len(conns), p.a.log())
			}
			p.e.ping(p.e.nsA, p.innerB)
			// The daemon closes the connections that sent no whole
			// request within 10 s; after that it answers again, while
			// the client still holds its ends.
			var out, errOut string
			deadline := time.Now().Add(40 * time.Second)
			for code := -1; code != 0; {
				if !p.a.alive() {
					t.Fatalf("ul2tpd died:\n%s", p.a.log())
				}
				if time.Now().After(deadline) {
					t.Fatalf("ul2tp show tunnel failing 40s into holding %d connections: %s", len(conns), errOut)
				}
				out, errOut, code = p.a.cli("show", "tunnel")
				if code != 0 {
					time.Sleep(500 * time.Millisecond)
				}
			}
			if !strings.Contains(out, "Tunnel 1,") {
				t.Errorf("show tunnel: %q", out)
			}
			p.e.ping(p.e.nsA, p.innerB)
			for _, c := range conns {
				c.Close()
			}
			conns = nil
			p.a.mustCLI("show", "tunnel")
			p.e.ping(p.e.nsA, p.innerB)
			if retried := strings.Contains(p.a.log(), "accept failed; retrying"); tc.name == "emfile" && !retried {
				t.Errorf("ul2tpd never ran out of descriptors in accept (held %d, limit %d): the test tested nothing", len(conns), limit)
			}
		})
	}
}

// raiseTestFileLimit raises the test process's descriptor limit so that it
// can hold want connections besides its own files, restoring the old limit
// when the test ends, and returns how many it can hold: fewer than want
// if the limit cannot be raised so far.
func raiseTestFileLimit(t *testing.T, want int) int {
	t.Helper()
	const spare = 1024
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	need := uint64(want + spare)
	if old.Cur >= need {
		return want
	}
	lim := unix.Rlimit{Cur: need, Max: max(need, old.Max)}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Logf("descriptor limit not raised to %d (%v); holding %d connections", need, err, old.Cur-spare)
		return int(old.Cur - spare)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	return want
}

// holdConns dials socket n times within 60 s and returns the connections
// it made; every eighth has half a request written to it. Failed dials
// (the daemon gone, or its backlog full) are counted, not retried.
func holdConns(socket string, n int) (conns []net.Conn, failed int) {
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; i < n && time.Now().Before(deadline); i++ {
		c, err := net.DialTimeout("unix", socket, time.Second)
		if err != nil {
			failed++
			continue
		}
		if i%8 == 0 {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(`{"op":"show_tunnel"`))
		}
		conns = append(conns, c)
	}
	return conns, failed
}
