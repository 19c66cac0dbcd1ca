package main

// Fault tests of the L2TPv2 control plane: our LAC against our LNS
// through the impairment relay (loss, duplication, reordering of control
// messages; teardown from either side), and bad input sent to a running
// LNS from raw UDP sockets while an established tunnel carries on.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/cmd/ul2tpd/internal/impair"
)

// writeConf writes a config file into e's directory and returns its path.
func writeConf(e *env, name, text string) string {
	e.t.Helper()
	f := filepath.Join(e.dir, name)
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return f
}

// lacSessions is the session tables of n calls of LAC tunnel name.
func lacSessions(name string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "\n[tunnel.%s.session.call%d]\npseudowire = \"ppp\"\n", name, i+1)
	}
	return b.String()
}

// v2Gone reports whether d has no L2TPv2 tunnel with id.
func v2Gone(d *daemon, id uint32) bool {
	for _, t := range d.v2Tunnels() {
		if t.TunnelID == id {
			return false
		}
	}
	return true
}

// logLine reports whether a line of d's log holds every one of words.
func logLine(d *daemon, words ...string) bool {
	for _, line := range strings.Split(d.log(), "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			return true
		}
	}
	return false
}

// waitFor polls cond every 100 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for range int(d / (100 * time.Millisecond)) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", d, what)
}

// TestE2EL2TPv2Relay runs our LAC against our LNS, without a secret,
// through the relay dropping 20% of the datagrams each way, duplicating
// 10% and swapping every fifth with the next: the tunnel and its five
// calls come up, retransmitting; a StopCCN from the LNS ("del tunnel"
// there) takes the tunnel down on the LAC, which redials and brings the
// calls back; a CDN from the LNS ends one call on both sides; and "del
// tunnel" on the LAC ends the tunnel on both sides for good.
func TestE2EL2TPv2Relay(t *testing.T) {
	re := newRelayNet(t, 50*time.Millisecond)
	e := re.env
	// Six retransmissions: a message is lost for good with 0.36^7 (it or
	// its ack dropped each time); the closing linger is 12.7 s.
	timers := "hello_timeout = 500\nretry_timeout = 100\nmax_retries = 6\n"
	lnsConf := fmt.Sprintf("[lns]\nlisten = \"%s:1701\"\nhost_name = \"ul2tp-lns\"\npeers = [\"%s/24\"]\n%s",
		re.bm(2), re.bm(254), timers)
	lacConf := fmt.Sprintf("[tunnel.lac1]\nversion = \"l2tpv2\"\npeer = \"%s:1701\"\nlocal = \"%s:1701\"\nhost_name = \"ul2tp-lac\"\n%s%s",
		re.am(254), re.am(1), timers, lacSessions("lac1", 5))
	impaired := func(seed uint64) impair.Schedule {
		return impair.Combine(
			impair.Random(seed, 0.2, impair.Action{Op: impair.Drop}),
			impair.Random(seed+1, 0.1, impair.Action{Op: impair.Dup}),
			impair.Every(5, 2, impair.Swap))
	}
	re.schedule(impair.AtoB, impaired(1))
	re.schedule(impair.BtoA, impaired(3))
	re.b = e.startDaemon(e.nsB, "--config", writeConf(e, "lns.toml", lnsConf))
	re.a = e.startDaemon(e.nsA, "--config", writeConf(e, "lac.toml", lacConf))
	lns, lac := re.b, re.a

	var lt, nt api.TunnelInfo
	until(t, "LAC tunnel up with 5 calls", func() (ok bool) { lt, ok = upTunnel(lac, "lac1", 5); return })
	until(t, "LNS tunnel up with 5 calls", func() (ok bool) { nt, ok = upTunnel(lns, "", 5); return })
	if lt.PeerTunnelID != nt.TunnelID || nt.PeerTunnelID != lt.TunnelID || nt.Peer != re.bm(254).String() {
		t.Fatalf("LAC tunnel %+v %+v\nLNS tunnel %+v %+v", lt, lt.Control, nt, nt.Control)
	}
	if lt.Control.Retransmits+nt.Control.Retransmits == 0 {
		t.Errorf("no retransmissions through the lossy relay: LAC %+v, LNS %+v", lt.Control, nt.Control)
	}
	ab, ba := re.relay.Stats(impair.AtoB), re.relay.Stats(impair.BtoA)
	t.Logf("relay A->B %+v\nrelay B->A %+v\nretransmits LAC %d LNS %d", ab, ba, lt.Control.Retransmits, nt.Control.Retransmits)
	if ab.Dropped+ba.Dropped == 0 || ab.Duplicated+ba.Duplicated == 0 || ab.Held+ba.Held == 0 {
		t.Errorf("the relay did not impair: A->B %+v, B->A %+v", ab, ba)
	}

	// del tunnel on the LNS: a StopCCN; the LAC's tunnel goes down (by
	// peer) and, not deleted there, is redialled with its calls.
	lns.mustCLI("del", "tunnel", "tunnel_id", fmt.Sprint(nt.TunnelID))
	if !v2Gone(lns, nt.TunnelID) {
		t.Errorf("LNS tunnel %d still listed after del tunnel", nt.TunnelID)
	}
	until(t, "the LAC log says the peer ended the tunnel", func() bool {
		return logLine(lac, "l2tpv2 tunnel down", fmt.Sprintf("tunnel_id=%d ", lt.TunnelID), "by=peer ")
	})
	var lt2, nt2 api.TunnelInfo
	until(t, "LAC tunnel redialled with 5 calls", func() (ok bool) {
		lt2, ok = upTunnel(lac, "lac1", 5)
		return ok && lt2.TunnelID != lt.TunnelID
	})
	until(t, "LNS tunnel back with 5 calls", func() (ok bool) { nt2, ok = upTunnel(lns, "", 5); return })
	// The old tunnel lingers on the LAC, closing, to ack the StopCCN
	// again should the LNS retransmit it (RFC 2661 section 5.7).
	for _, tn := range lac.v2Tunnels() {
		if tn.TunnelID != lt2.TunnelID && (tn.TunnelID != lt.TunnelID || tn.Sessions != 0 ||
			tn.Control.State != "closing" && tn.Control.State != "closed") {
			t.Errorf("LAC tunnel after the redial: %+v %+v", tn, tn.Control)
		}
	}
	if ts := lns.v2Tunnels(); len(ts) != 1 || nt2.PeerTunnelID != lt2.TunnelID {
		t.Errorf("LNS tunnels after the redial: %+v", ts)
	}

	// del session on the LNS: a CDN from the LNS ends the call on both sides.
	var sid uint32
	for _, c := range lns.v2Calls() {
		sid = c.SessionID
	}
	lns.mustCLI("del", "session", "tunnel_id", fmt.Sprint(nt2.TunnelID), "session_id", fmt.Sprint(sid))
	until(t, "4 calls left on the LAC", func() bool { _, ok := upTunnel(lac, "lac1", 4); return ok })
	until(t, "4 calls left on the LNS", func() bool { _, ok := upTunnel(lns, "", 4); return ok })

	// del tunnel on the LAC: gone on both sides, not redialled.
	lac.mustCLI("del", "tunnel", "tunnel_id", fmt.Sprint(lt2.TunnelID))
	waitFor(t, 25*time.Second, "the LNS's tunnel gone", func() bool { return len(lns.v2Tunnels()) == 0 })
	waitFor(t, 25*time.Second, "the LAC's tunnels gone", func() bool { return len(lac.v2Tunnels()) == 0 })
	time.Sleep(1500 * time.Millisecond) // past the first redial backoff
	if ts := lac.v2Tunnels(); len(ts) != 0 {
		t.Errorf("LAC tunnels after del tunnel: %+v", ts)
	}
	if cs := append(lac.v2Calls(), lns.v2Calls()...); len(cs) != 0 {
		t.Errorf("calls after del tunnel: %+v", cs)
	}
}
