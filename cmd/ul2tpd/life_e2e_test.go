package main

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// pseudowire is two daemons, one UDP tunnel and one session between them
// called name, with inner addresses 10.213.N.1 (A) and .2 (B) on the TAPs.
type pseudowire struct {
	e              *env
	a, b           *daemon
	name           string
	innerA, innerB string
}

// newPseudowire sets up a pseudowire; flags go to both daemons and
// sessionWords to both sessions.
func newPseudowire(t *testing.T, name string, flags, sessionWords []string) *pseudowire {
	e := newEnv(t)
	p := &pseudowire{e: e, name: name,
		a: e.startDaemon(e.nsA, flags...), b: e.startDaemon(e.nsB, flags...),
		innerA: fmt.Sprintf("10.213.%d.1", e.n), innerB: fmt.Sprintf("10.213.%d.2", e.n)}
	la, lb := e.outer4(1).String(), e.outer4(2).String()
	p.a.mustCLI("add", "tunnel", "tunnel_id", "1", "peer_tunnel_id", "2", "local", la, "remote", lb)
	p.b.mustCLI("add", "tunnel", "tunnel_id", "2", "peer_tunnel_id", "1", "local", lb, "remote", la)
	p.a.mustCLI(append([]string{"add", "session", "name", name, "tunnel_id", "1", "session_id", "11",
		"peer_session_id", "22"}, sessionWords...)...)
	p.b.mustCLI(append([]string{"add", "session", "name", name, "tunnel_id", "2", "session_id", "22",
		"peer_session_id", "11"}, sessionWords...)...)
	p.a.upTAP(name, p.innerA+"/24")
	p.b.upTAP(name, p.innerB+"/24")
	e.ping(e.nsA, p.innerB)
	return p
}

// waitSession polls a session's show output until ok accepts it, for up
// to limit, and fails the test with the last state if it never does.
func (d *daemon) waitSession(tid, sid uint32, limit time.Duration, what string, ok func(sessionJSON) bool) sessionJSON {
	d.e.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s := d.session(tid, sid)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			d.e.t.Fatalf("%s: session %d/%d not %s after %v: %+v\n%s", d.ns, tid, sid, what, limit, s, d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2ETAPRecreated deletes a session's TAP under the daemon: the pump
// that fails marks the session down, the daemon recreates the TAP (up,
// same name and MTU) with backoff while the name is taken, and traffic
// flows again.
func TestE2ETAPRecreated(t *testing.T) {
	p := newPseudowire(t, "rec0", nil, nil)
	e, a := p.e, p.a
	mtu := a.session(1, 11).MTU
	// Delete the TAP and take its name in one ip batch, so the first
	// attempt to recreate it fails.
	cmd := exec.Command("ip", "-n", e.nsA, "-batch", "-")
	cmd.Stdin = strings.NewReader("link del rec0\nlink add rec0 type veth peer name rec0p\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v\n%s", err, out)
	}
	s := a.waitSession(1, 11, 5*time.Second, "down", func(s sessionJSON) bool { return s.State == "down" && s.LastError != "" })
	t.Logf("down: %q", s.LastError)
	if out, _, _ := a.cli("show", "session"); !strings.Contains(out, "state down") {
		t.Errorf("show session does not say the session is down:\n%s", out)
	}
	e.ip("-n", e.nsA, "link", "del", "rec0")
	s = a.waitSession(1, 11, 10*time.Second, "up again", func(s sessionJSON) bool { return s.State == "up" && s.PumpRestarts == 1 })
	if s.MTU != mtu {
		t.Errorf("MTU %d after recreation, want %d", s.MTU, mtu)
	}
	if got := e.ip("-n", e.nsA, "link", "show", "dev", "rec0"); !strings.Contains(got, ",UP") || !strings.Contains(got, fmt.Sprintf("mtu %d", mtu)) {
		t.Errorf("recreated TAP not up with mtu %d: %s", mtu, got)
	}
	e.ip("-n", e.nsA, "addr", "add", p.innerA+"/24", "dev", "rec0")
	e.ping(e.nsA, p.innerB)
	if log := a.log(); !strings.Contains(log, "session down") || !strings.Contains(log, "TAP recreated") {
		t.Errorf("the daemon's log says nothing of the failure and the recovery:\n%s", log)
	}
}

// TestE2ESendSeqQueues sends with send_seq from a session with two TAP
// queues (four TCP streams, spread over both) to a peer with a reorder
// timeout, which counts every datagram that overtakes an earlier one in
// rx_oos_packets (a datagram lost counts in rx_seq_discards instead): every
// datagram must leave in the order of its Ns.
func TestE2ESendSeqQueues(t *testing.T) {
	p := newPseudowire(t, "sq0", []string{"--queues", "2"}, []string{"seq", "both", "reorder_timeout", "100"})
	before := p.b.session(2, 22).Stats
	p.e.iperf(netip.MustParseAddr(p.innerB), 3, false, "-u", "-b", "400M", "-l", "1000", "-P", "4")
	after := p.b.session(2, 22).Stats
	d, o := after.RxSeqDiscards-before.RxSeqDiscards, after.RxOOSPackets-before.RxOOSPackets
	t.Logf("B: %d datagrams, %d rx_oos_packets, %d rx_seq_discards", after.RxPackets-before.RxPackets, o, d)
	if o != 0 {
		t.Errorf("B put %d datagrams back in order: A numbered them out of the order they left in", o)
	}
}
