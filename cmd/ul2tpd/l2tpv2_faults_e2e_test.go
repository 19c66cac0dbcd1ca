package main

// Fault tests of the L2TPv2 control plane: our LAC against our LNS
// through the impairment relay (loss, duplication, reordering of control
// messages; teardown from either side), and bad input sent to a running
// LNS from raw UDP sockets while an established tunnel carries on.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/ul2tp/ul2tp/control"
	"net"
	"net/netip"
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
// calls back; a CDN from the LNS ends one call on both sides, which the
// LAC places again; and "del tunnel" on the LAC ends the tunnel on both
// sides for good.
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

	// del session on the LNS: a CDN from the LNS ends the call on both
	// sides, and the LAC places its configured call again.
	var sid uint32
	for _, c := range lns.v2Calls() {
		sid = c.SessionID
	}
	lns.mustCLI("del", "session", "tunnel_id", fmt.Sprint(nt2.TunnelID), "session_id", fmt.Sprint(sid))
	until(t, "the LAC's call placed again", func() bool {
		if _, ok := upTunnel(lac, "lac1", 5); !ok {
			return false
		}
		for _, c := range lac.v2Calls() {
			if c.Call.Failures == 1 && strings.Contains(c.Call.LastFailure, "CDN by peer") {
				return true
			}
		}
		return false
	})
	until(t, "5 calls on the LNS again", func() bool { _, ok := upTunnel(lns, "", 5); return ok })

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

// rawPeer is a UDP socket in a namespace that speaks L2TPv2 control
// messages built by hand to one address.
type rawPeer struct {
	t  *testing.T
	c  *net.UDPConn
	to netip.AddrPort
}

// newRawPeer opens a rawPeer on an ephemeral port in ns; t's cleanup
// closes it.
func newRawPeer(t *testing.T, ns string, to netip.AddrPort) *rawPeer {
	t.Helper()
	c := listenIn(t, ns, func() (*net.UDPConn, error) { return net.ListenUDP("udp4", nil) })
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, c: c, to: to}
}

func (p *rawPeer) send(b []byte) {
	p.t.Helper()
	if _, err := p.c.WriteToUDPAddrPort(b, p.to); err != nil {
		p.t.Fatalf("send to %s: %v", p.to, err)
	}
}

// recv returns the next control message of type typ (0: any, ZLBs
// included) that arrives within d.
func (p *rawPeer) recv(d time.Duration, typ control.MessageType) (control.Message, bool) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		_ = p.c.SetReadDeadline(deadline)
		buf := make([]byte, 4096)
		n, err := p.c.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return control.Message{}, false
			}
			p.t.Fatalf("receive: %v", err)
		}
		m, err := control.Parse(buf[:n])
		if err != nil {
			p.t.Fatalf("the LNS sent an unparsable message %x: %v", buf[:n], err)
		}
		if typ == 0 || m.Type() == typ {
			return m, true
		}
	}
}

// v2Msg builds a control message to tunnel tid with Ns and Nr; add adds
// its AVPs after the Message Type.
func v2Msg(t *testing.T, tid, ns, nr uint16, typ control.MessageType, add func(b *control.Builder)) []byte {
	t.Helper()
	b := control.NewBuilder(make([]byte, 1024), control.Header{Version: control.V2, TunnelID: uint32(tid), Ns: ns, Nr: nr}, typ)
	if add != nil {
		add(&b)
	}
	m, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sccrq builds an SCCRQ assigning tunnel id peerID; extra adds AVPs.
func sccrq(t *testing.T, peerID uint16, extra func(b *control.Builder)) []byte {
	return v2Msg(t, 0, 0, 0, control.MsgSCCRQ, func(b *control.Builder) {
		b.AddUint16(control.AttrProtocolVersion, true, control.ProtocolVersionV2)
		b.AddString(control.AttrHostName, true, "raw")
		b.AddUint32(control.AttrFramingCaps, true, 3)
		if extra != nil {
			extra(b)
		}
		b.AddUint16(control.AttrAssignedTunnelID, true, peerID)
	})
}

// avpValue is the plain value of m's AVP of type a (unhidden with
// secret), or nil.
func avpValue(t *testing.T, m control.Message, a control.AttrType, secret string) []byte {
	t.Helper()
	it := m.AVPs()
	for {
		v, ok := it.Next()
		if !ok {
			return nil
		}
		if v.VendorID != 0 || v.Type != a {
			continue
		}
		plain, err := control.Unhide(make([]byte, len(v.Value)), v, []byte(secret), it.RandomVector())
		if err != nil {
			t.Fatalf("%s AVP %d: %v", m.Type(), a, err)
		}
		return plain.Value
	}
}

// stopResult is the Result Code of a StopCCN.
func stopResult(t *testing.T, m control.Message) control.ResultCode {
	t.Helper()
	a, ok := m.Find(control.AttrResultCode)
	if !ok {
		t.Fatalf("StopCCN without a Result Code")
	}
	r, err := a.ResultCode()
	if err != nil {
		t.Fatalf("StopCCN Result Code: %v", err)
	}
	return r
}

// TestE2EL2TPv2BadInput sends bad control messages from raw UDP sockets
// to an LNS (secret, hidden AVPs) that has an established tunnel with our
// LAC (hidden AVPs too): truncated messages and AVP lengths that overrun
// are dropped; an SCCRQ with an unknown mandatory AVP gets a StopCCN
// (result 2, error 8) and an SCCCN with a wrong Challenge Response one
// with result 4; messages for unknown tunnels, or for the established
// tunnel from another port, are dropped; a flood of SCCRQs from 300
// ports sets up at most max_pending tunnels at once, and the slots come
// back. The established tunnel and its calls carry on throughout. Then
// the LAC vanishes and the LNS removes the tunnel (peer lost).
func TestE2EL2TPv2BadInput(t *testing.T) {
	e := newEnv(t)
	const secret, maxPending = "s3cret", 16
	lnsAddr := netip.AddrPortFrom(e.outer4(2), 1701)
	timers := "hello_timeout = 500\nretry_timeout = 100\nmax_retries = 3\n"
	lnsConf := fmt.Sprintf("[lns]\nlisten = \"%s\"\nsecret = %q\nhide_avps = true\nhost_name = \"ul2tp-lns\"\nmax_pending = %d\n%s",
		lnsAddr, secret, maxPending, timers)
	lacConf := fmt.Sprintf("[tunnel.lac1]\nversion = \"l2tpv2\"\npeer = \"%s\"\nlocal = \"%s:1701\"\nsecret = %q\nhide_avps = true\nhost_name = \"ul2tp-lac\"\n%s%s",
		lnsAddr, e.outer4(1), secret, timers, lacSessions("lac1", 3))
	lns := e.startDaemon(e.nsB, "--config", writeConf(e, "lns.toml", lnsConf))
	lac := e.startDaemon(e.nsA, "--config", writeConf(e, "lac.toml", lacConf))
	var lt, nt api.TunnelInfo
	until(t, "LAC tunnel up with 3 calls", func() (ok bool) { lt, ok = upTunnel(lac, "lac1", 3); return })
	until(t, "LNS tunnel up with 3 calls", func() (ok bool) { nt, ok = upTunnel(lns, "", 3); return })
	// intact checks the established tunnel: the same on both sides, its
	// calls up, and HELLOs still arriving on the LAC.
	intact := func(when string) {
		t.Helper()
		before := lt.Control.HelloReceived
		until(t, "HELLOs on the LAC "+when, func() bool {
			l, ok := upTunnel(lac, "lac1", 3)
			return ok && l.TunnelID == lt.TunnelID && l.Control.HelloReceived > before
		})
		n, ok := upTunnel(lns, "", 3)
		if !ok || n.TunnelID != nt.TunnelID || !lns.alive() || !lac.alive() {
			t.Fatalf("established tunnel disturbed %s: LNS %+v", when, lns.v2Tunnels())
		}
		lt, _ = upTunnel(lac, "lac1", 3)
	}

	// Truncated messages and AVP lengths that overrun: dropped, no
	// answer, no tunnel.
	p := newRawPeer(t, e.nsA, lnsAddr)
	good := sccrq(t, 79, nil)
	for _, n := range []int{1, 2, 6, 11, 12, 13, 19, 20, len(good) - 3, len(good) - 1} {
		p.send(good[:n]) // Length still says len(good)
		if n >= control.HeaderLen {
			cut := append([]byte(nil), good[:n]...)
			binary.BigEndian.PutUint16(cut[2:], uint16(n)) // an AVP cut short
			p.send(cut)
		}
	}
	over := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(over[control.HeaderLen+8:], 0x0000|1023) // the second AVP's length overruns
	p.send(over)
	zeroLen := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(zeroLen[control.HeaderLen+8:], 0x8000) // mandatory, length 0
	p.send(zeroLen)
	if m, ok := p.recv(500*time.Millisecond, 0); ok {
		t.Errorf("the LNS answered a malformed SCCRQ with %s", m.Type())
	}
	if ts := lns.v2Tunnels(); len(ts) != 1 {
		t.Errorf("LNS tunnels after malformed SCCRQs: %+v", ts)
	}

	// An unknown mandatory AVP: StopCCN, result 2 error 8, to our tunnel.
	p = newRawPeer(t, e.nsA, lnsAddr)
	p.send(sccrq(t, 78, func(b *control.Builder) { b.AddUint16(200, true, 1) }))
	if m, ok := p.recv(3*time.Second, control.MsgStopCCN); !ok {
		t.Errorf("no StopCCN for an SCCRQ with an unknown mandatory AVP")
	} else if r := stopResult(t, m); m.TunnelID != 78 || r.Result != control.StopResultGeneralError || r.Error != control.ErrCodeUnknownMandatory {
		t.Errorf("StopCCN to tunnel %d result %d error %d %q, want to 78 result 2 error 8", m.TunnelID, r.Result, r.Error, r.Message)
	}

	// A wrong Challenge Response in the SCCCN: StopCCN, result 4.
	p = newRawPeer(t, e.nsA, lnsAddr)
	p.send(sccrq(t, 77, nil))
	rp, ok := p.recv(3*time.Second, control.MsgSCCRP)
	if !ok {
		t.Fatalf("no SCCRP")
	}
	idv := avpValue(t, rp, control.AttrAssignedTunnelID, secret)
	if len(idv) != 2 || rp.TunnelID != 77 || avpValue(t, rp, control.AttrChallenge, secret) == nil {
		t.Fatalf("SCCRP to tunnel %d: assigned tunnel id %x, challenge %x", rp.TunnelID, idv,
			avpValue(t, rp, control.AttrChallenge, secret))
	}
	if a, _ := rp.Find(control.AttrAssignedTunnelID); !a.Hidden() {
		t.Errorf("SCCRP of an LNS with hide_avps: Assigned Tunnel ID not hidden")
	}
	lnsID := binary.BigEndian.Uint16(idv)
	p.send(v2Msg(t, lnsID, 1, rp.Ns+1, control.MsgSCCCN, func(b *control.Builder) {
		b.AddBytes(control.AttrChallengeResponse, true, make([]byte, 16))
	}))
	if m, ok := p.recv(3*time.Second, control.MsgStopCCN); !ok {
		t.Errorf("no StopCCN for a wrong Challenge Response")
	} else if r := stopResult(t, m); m.TunnelID != 77 || r.Result != control.StopResultNotAuthorized {
		t.Errorf("StopCCN to tunnel %d result %d error %d %q, want to 77 result 4", m.TunnelID, r.Result, r.Error, r.Message)
	}

	// Unknown tunnels, and the established tunnel's id from another
	// port: dropped, no answer.
	p = newRawPeer(t, e.nsA, lnsAddr)
	p.send(v2Msg(t, 4321, 0, 0, control.MsgHELLO, nil))
	p.send(control.AppendZLB(make([]byte, control.HeaderLen), control.V2, 4322, 0, 0))
	p.send(v2Msg(t, uint16(nt.TunnelID), 0, 0, control.MsgStopCCN, func(b *control.Builder) {
		b.AddUint16(control.AttrAssignedTunnelID, true, uint16(lt.TunnelID))
		b.AddResultCode(control.ResultCode{Result: control.StopResultClear})
	}))
	p.send(v2Msg(t, uint16(nt.TunnelID), lt.Control.Ns, lt.Control.Nr, control.MsgHELLO, nil))
	if m, ok := p.recv(500*time.Millisecond, 0); ok {
		t.Errorf("the LNS answered a message for no tunnel of ours with %s", m.Type())
	}
	intact("after the bad messages")

	// A flood of SCCRQs from 300 ports: at most max_pending answered.
	waitFor(t, 10*time.Second, "the refused setups gone", func() bool { return len(lns.v2Tunnels()) == 1 })
	flood := make([]*rawPeer, 300)
	for i := range flood {
		flood[i] = newRawPeer(t, e.nsA, lnsAddr)
	}
	for i, fp := range flood {
		fp.send(sccrq(t, uint16(1000+i), nil))
	}
	pending := 0
	for _, tn := range lns.v2Tunnels() {
		if tn.TunnelID != nt.TunnelID {
			pending++
		}
	}
	setups := 0
	deadline := time.Now().Add(time.Second)
	for _, fp := range flood {
		if _, ok := fp.recv(max(time.Until(deadline), 5*time.Millisecond), control.MsgSCCRP); ok {
			setups++
		}
	}
	t.Logf("flood of %d SCCRQs: %d answered, %d tunnels in setup", len(flood), setups, pending)
	if setups == 0 || setups > maxPending || pending > maxPending {
		t.Errorf("flood of %d SCCRQs: %d answered, %d tunnels in setup; want 1..%d", len(flood), setups, pending, maxPending)
	}
	intact("during the flood")
	// The setups time out (nobody answers their SCCRPs) and free their
	// slots: a new SCCRQ is answered.
	waitFor(t, 15*time.Second, "the flood's setups gone", func() bool { return len(lns.v2Tunnels()) == 1 })
	p = newRawPeer(t, e.nsA, lnsAddr)
	p.send(sccrq(t, 76, nil))
	if _, ok := p.recv(3*time.Second, control.MsgSCCRP); !ok {
		t.Errorf("no SCCRP after the flood")
	}

	// The established tunnel still works: a CDN ends a call on both sides.
	var sid uint32
	for _, c := range lac.v2Calls() {
		sid = c.SessionID
	}
	lac.mustCLI("del", "session", "tunnel_id", fmt.Sprint(lt.TunnelID), "session_id", fmt.Sprint(sid))
	until(t, "2 calls left on the LNS", func() bool { _, ok := upTunnel(lns, "", 2); return ok })
	until(t, "2 calls left on the LAC", func() bool { _, ok := upTunnel(lac, "lac1", 2); return ok })

	// The LAC vanishes: the LNS's HELLO goes unacked, and the tunnel and
	// its calls are removed, by peer-lost, with a tunnel-down event.
	mon := lns.startMonitor()
	if err := lac.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-lac.done
	lac.stop(false)
	ev := mon.must("tunnel-down", func(ev monitorEvent) bool { return ev.Event == "tunnel-down" && ev.TunnelID == nt.TunnelID })
	if !strings.Contains(ev.Detail, "peer-lost") {
		t.Errorf("tunnel-down event %+v: not by peer-lost", ev)
	}
	waitFor(t, 10*time.Second, "the LNS's tunnel and calls gone", func() bool {
		return len(lns.v2Tunnels()) == 0 && len(lns.v2Calls()) == 0
	})
	if !logLine(lns, "l2tpv2 tunnel down", fmt.Sprintf("tunnel_id=%d ", nt.TunnelID), "by=peer-lost") {
		t.Errorf("LNS log: no tunnel down by peer-lost")
	}
}
