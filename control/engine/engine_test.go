package engine

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/control"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/event"
)

var loopback = netip.MustParseAddrPort("127.0.0.1:0")

// fast are timers short enough for a test to see HELLOs and peer loss.
var fast = Params{HelloInterval: 100 * time.Millisecond, RetryTimeout: 50 * time.Millisecond, MaxRetries: 3}

type side struct {
	plane *datapath.Plane
	hub   *event.Hub
	e     *Engine
}

func newSide(t testing.TB) *side {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := event.NewHub(nil)
	p := datapath.New(log, datapath.Options{SocketBuffer: -1, Events: hub})
	e := New(Options{Plane: p, Log: log})
	t.Cleanup(func() {
		e.Close()
		p.Close()
	})
	return &side{plane: p, hub: hub, e: e}
}

func startLNS(t *testing.T, c LNSConfig) (*side, netip.AddrPort) {
	t.Helper()
	s := newSide(t)
	if !c.Listen.IsValid() {
		c.Listen = loopback
	}
	if err := s.e.StartLNS(c); err != nil {
		t.Fatal(err)
	}
	return s, s.e.LNSAddr()
}

func startLAC(t *testing.T, lns netip.AddrPort, c LACConfig) *side {
	t.Helper()
	s := newSide(t)
	c.Peer, c.Local = lns, loopback
	if c.Name == "" {
		c.Name = "lac1"
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 50 * time.Millisecond
	}
	if err := s.e.AddLAC(c); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// established returns the established tunnels of e with n established
// calls each.
func established(e *Engine, calls int) []TunnelStatus {
	var up []TunnelStatus
	for _, s := range e.Status() {
		if s.Control.State != control.StateEstablished || len(s.Calls) != calls {
			continue
		}
		ok := true
		for _, c := range s.Calls {
			ok = ok && c.State == control.CallEstablished
		}
		if ok {
			up = append(up, s)
		}
	}
	return up
}

func upWith(e *Engine, calls int) func() bool {
	return func() bool { return len(established(e, calls)) == 1 }
}

// TestTunnelAndCalls: a LAC opens a tunnel and three calls to an LNS,
// with and without a secret and hidden AVPs; both datapaths get the
// tunnel and sessions, and frames flow between the recorders.
func TestTunnelAndCalls(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret string
		hide   bool
	}{{"plain", "", false}, {"secret", "s3cret", false}, {"hidden", "s3cret", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := fast
			p.Secret, p.HideAVPs = tc.secret, tc.hide
			lns, addr := startLNS(t, LNSConfig{Params: p, Peers: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
			p.HostName = "lac-host"
			lac := startLAC(t, addr, LACConfig{Params: p, Calls: []string{"a", "b", "c"}})
			waitFor(t, "LAC up with 3 calls", upWith(lac.e, 3))
			waitFor(t, "LNS up with 3 calls", upWith(lns.e, 3))
			ls, ns := established(lac.e, 3)[0], established(lns.e, 3)[0]
			if ls.PeerID != ns.ID || ns.PeerID != ls.ID || ls.Role != "lac" || ns.Role != "lns" ||
				ns.Control.Info.HostName != "lac-host" || ls.Calls[0].Name != "a" {
				t.Fatalf("lac %+v\nlns %+v", ls, ns)
			}
			for _, sd := range []*side{lac, lns} {
				waitFor(t, "datapath sessions", func() bool { return len(sd.plane.Sessions(0)) == 3 })
			}
			// A frame from the LAC's first call reaches the LNS's recorder.
			sess := lac.plane.Sessions(ls.ID)
			if len(sess) != 3 {
				t.Fatalf("lac datapath sessions %d", len(sess))
			}
			if err := sess[0].Send([]byte{0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "frame at the LNS", func() bool {
				var n uint64
				for _, s := range lns.e.Status() {
					for _, c := range s.Calls {
						n += c.Frames
					}
				}
				return n == 1
			})
			// HELLOs keep the idle tunnel up.
			waitFor(t, "hellos", func() bool {
				s := lns.e.Status()
				return len(s) == 1 && s[0].Control.Stats.HellosReceived >= 2 && s[0].Control.State == control.StateEstablished
			})
		})
	}
}

// downEvent waits on sub for a tunnel-down event and returns its detail.
func downEvent(t *testing.T, sub *event.Subscriber) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		ev, ok := sub.Next(ctx)
		if !ok {
			t.Fatal("no tunnel-down event")
		}
		if ev.Kind == event.ControlTunnelDown {
			return ev.Detail
		}
	}
}

// TestWrongSecret: the LNS refuses a LAC with another secret (StopCCN
// result 4, not authorized), and both sides report it.
func TestWrongSecret(t *testing.T) {
	p := fast
	p.Secret = "right"
	lns, addr := startLNS(t, LNSConfig{Params: p})
	sub := lns.hub.Subscribe(0)
	p.Secret = "wrong"
	lac := startLAC(t, addr, LACConfig{Params: p, MinBackoff: time.Hour})
	waitFor(t, "LAC refused", func() bool {
		s := lac.e.Status()
		return len(s) == 1 && s[0].Control.State == control.StateClosed && s[0].Control.LastResult.Code != 0
	})
	if r := lac.e.Status()[0].Control.LastResult; r.Code != control.StopResultNotAuthorized {
		t.Errorf("LAC last result %v, want code 4", r)
	}
	if d := downEvent(t, sub); !strings.Contains(d, "result 4") {
		t.Errorf("LNS tunnel-down %q, want result 4", d)
	}
	if len(lns.plane.Tunnels()) != 0 || len(lac.plane.Tunnels()) != 0 {
		t.Error("a datapath tunnel was made for a refused control connection")
	}
}

// TestPeerLost: the LNS vanishes; the LAC's retransmissions give up,
// the tunnel goes down (peer lost) and the LAC redials until an LNS on
// the same address answers again.
func TestPeerLost(t *testing.T) {
	lns, addr := startLNS(t, LNSConfig{Params: fast})
	lac := startLAC(t, addr, LACConfig{Params: fast, Calls: []string{"a"}})
	sub := lac.hub.Subscribe(0)
	waitFor(t, "LAC up", upWith(lac.e, 1))
	first := established(lac.e, 1)[0].ID
	if st := lac.e.Stats(); st.Tunnels != 1 || st.Calls != 1 || st.TunnelsUp != 1 || st.CallsUp != 1 {
		t.Errorf("stats when up: %+v", st)
	}
	lns.e.Close()
	lns.plane.Close()
	// The retransmissions are events (paced) before the tunnel-down.
	retx := uint64(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		ev, ok := sub.Next(ctx)
		if !ok {
			t.Fatal("no tunnel-down event")
		}
		if ev.Kind == event.ControlRetransmit && ev.TunnelID == first {
			retx += ev.Count
		}
		if ev.Kind == event.ControlTunnelDown {
			if !strings.Contains(ev.Detail, "peer-lost") {
				t.Errorf("tunnel-down %q, want by peer-lost", ev.Detail)
			}
			break
		}
	}
	st := lac.e.Stats()
	if retx == 0 || retx > st.Retransmits || st.Retransmits < uint64(fast.MaxRetries) {
		t.Errorf("retransmit events count %d, stats %d, want 1..stats and stats >= %d", retx, st.Retransmits, fast.MaxRetries)
	}
	if st.PeerLost != 1 || st.Tunnels != 0 || st.Calls != 0 || st.TunnelsDown != 1 || st.CallsDown != 1 {
		t.Errorf("stats after peer loss: %+v", st)
	}
	if n := len(lac.plane.Tunnels()); n != 0 {
		t.Errorf("%d datapath tunnels after peer loss", n)
	}
	// A new LNS on the same address: the LAC's redial reaches it.
	lns2, _ := startLNS(t, LNSConfig{Params: fast, Listen: addr})
	waitFor(t, "LAC redialled", upWith(lac.e, 1))
	waitFor(t, "LNS up again", upWith(lns2.e, 1))
	if id := established(lac.e, 1)[0].ID; id == first {
		t.Logf("redial reused tunnel id %d", id)
	}
}

// TestTeardown: CDN from either side ends one call on both; StopCCN
// from the LNS makes the LAC redial; StopCCN from the LAC (CloseTunnel)
// is acked, ends the tunnel on both sides and is not redialled.
func TestTeardown(t *testing.T) {
	lns, addr := startLNS(t, LNSConfig{Params: fast})
	lac := startLAC(t, addr, LACConfig{Params: fast, Calls: []string{"a", "b", "c"}})
	waitFor(t, "up", upWith(lac.e, 3))
	waitFor(t, "LNS up", upWith(lns.e, 3))
	ls, ns := established(lac.e, 3)[0], established(lns.e, 3)[0]

	// CDN from the LAC.
	if err := lac.e.CloseCall(ls.ID, ls.Calls[0].LocalID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "LNS down to 2 calls", upWith(lns.e, 2))
	// The call the administrator ended waits, not to be placed again.
	if w := established(lac.e, 2)[0].Waiting; len(w) != 1 || w[0].Name != "a" || !w[0].Wait.RedialAt.IsZero() {
		t.Errorf("LAC waiting calls %+v, want a, with no redial", w)
	}
	// Opening it by name places it at once.
	if _, err := lac.e.OpenCall(ls.ID, "a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a placed again", func() bool {
		up := established(lac.e, 3)
		return len(up) == 1 && len(up[0].Waiting) == 0
	})
	waitFor(t, "LNS with 3 calls", upWith(lns.e, 3))
	// CDN from the LNS: the LAC places the call again after its backoff,
	// and keeps why it ended.
	if err := lns.e.CloseCall(ns.ID, established(lns.e, 3)[0].Calls[0].LocalID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the LAC's call placed again", func() bool {
		up := established(lac.e, 3)
		if len(up) != 1 {
			return false
		}
		for _, c := range up[0].Calls {
			if c.History.Failures == 1 && strings.Contains(c.History.LastFailure, "CDN by peer") {
				return true
			}
		}
		return false
	})
	waitFor(t, "datapath sessions", func() bool {
		return len(lac.plane.Sessions(0)) == 3 && len(lns.plane.Sessions(0)) == 3
	})
	if err := lac.e.CloseCall(ls.ID, 999); err == nil {
		t.Error("CloseCall of no call succeeded")
	}
	// A call opened on demand.
	if _, err := lac.e.OpenCall(ls.ID, "d"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "LNS with 4 calls", upWith(lns.e, 4))

	// StopCCN from the LNS: the LAC redials and gets its calls back.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lns.e.CloseTunnel(ctx, ns.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "LAC redialled", func() bool {
		up := established(lac.e, 3)
		return len(up) == 1 && up[0].ID != ls.ID
	})
	waitFor(t, "LNS up again", upWith(lns.e, 3))

	// StopCCN from the LAC: acked, gone on both sides, no redial.
	id := established(lac.e, 3)[0].ID
	if err := lac.e.CloseTunnel(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "LNS tunnel gone", func() bool { return len(lns.e.Status()) == 0 })
	time.Sleep(200 * time.Millisecond) // past the LAC's redial backoff
	if s := lac.e.Status(); len(s) != 0 {
		t.Errorf("LAC after delete: %+v", s)
	}
	if len(lac.plane.Tunnels()) != 0 || len(lns.plane.Tunnels()) != 0 {
		t.Error("datapath tunnels left")
	}
	if err := lac.e.CloseTunnel(ctx, id); err == nil {
		t.Error("second CloseTunnel succeeded")
	}
}

// sccrq builds an SCCRQ as a fresh initiator would send it.
func sccrq(t *testing.T, id uint32) []byte {
	t.Helper()
	tn, err := control.NewTunnel(control.TunnelConfig{LocalID: id, HostName: "flood"}, control.Initiator)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tn.Open(time.Now())
	if err != nil || len(out.Transmit) != 1 {
		t.Fatalf("open: %v", err)
	}
	return append([]byte(nil), out.Transmit[0]...)
}

// TestSCCRQFlood: SCCRQs from 200 source ports that never complete the
// setup: at most max_pending tunnels are in setup, the rest are dropped
// and counted, and an established tunnel keeps its HELLOs and calls.
// Packets for unknown tunnels are counted and dropped.
func TestSCCRQFlood(t *testing.T) {
	const maxPending = 8
	lns, addr := startLNS(t, LNSConfig{Params: fast, MaxPending: maxPending})
	lac := startLAC(t, addr, LACConfig{Params: fast, Calls: []string{"a"}})
	waitFor(t, "up", upWith(lac.e, 1))
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 200 {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(sccrq(t, uint32(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	// Junk: a message for no tunnel, and a non-L2TP datagram.
	conns[0].Write([]byte{0xc8, 0x02, 0, 12, 0x12, 0x34, 0, 0, 0, 0, 0, 0})
	conns[0].Write([]byte{1, 2, 3})
	waitFor(t, "the flood handled", func() bool {
		st := lns.e.Stats()
		return st.DroppedSetups+st.TunnelsDown+uint64(len(lns.e.Status())) >= 200 && st.UnknownTunnel >= 1
	})
	pending := 0
	for _, s := range lns.e.Status() {
		if s.Control.State != control.StateEstablished {
			pending++
		}
	}
	if pending > maxPending {
		t.Errorf("%d tunnels in setup, max_pending %d", pending, maxPending)
	}
	if st := lns.e.Stats(); st.DroppedSetups == 0 {
		t.Errorf("no SCCRQ dropped: %+v", st)
	}
	// The established tunnel goes on: HELLOs, and a new call.
	ls := established(lac.e, 1)[0]
	h := ls.Control.Stats.HellosReceived
	waitFor(t, "hellos go on", func() bool {
		up := established(lac.e, 1)
		return len(up) == 1 && up[0].Control.Stats.HellosReceived > h
	})
	if _, err := lac.e.OpenCall(ls.ID, "b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second call", upWith(lac.e, 2))
	// The flood's setups time out.
	waitFor(t, "setups gone", func() bool { return len(lns.e.Status()) == 1 })
}

// TestPeerNotAllowed: an SCCRQ from outside the allowed ranges or
// with another host name gets no tunnel.
func TestPeerNotAllowed(t *testing.T) {
	lns, addr := startLNS(t, LNSConfig{Params: fast, Peers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(sccrq(t, 1))
	waitFor(t, "refused", func() bool { return lns.e.Stats().Refused == 1 })
	if n := len(lns.e.Status()); n != 0 {
		t.Errorf("%d tunnels", n)
	}
	cfg := LNSConfig{PeerHostNames: []string{"good"}}
	if cfg.allowed(netip.MustParseAddr("192.0.2.1"), "flood") || !cfg.allowed(netip.MustParseAddr("192.0.2.1"), "good") {
		t.Error("host name check")
	}
}

// TestStopCCNToTunnelZero: a peer that refuses our SCCRP before it read
// our tunnel id (xl2tpd does so when it cannot unhide the Assigned Tunnel
// ID) sends its StopCCN to tunnel 0. The LNS takes it as the end of that
// setup, by the peer, instead of retransmitting until the peer is lost.
func TestStopCCNToTunnelZero(t *testing.T) {
	p := fast
	p.MaxRetries = 10 // peer loss would take seconds: the StopCCN must win
	lns, addr := startLNS(t, LNSConfig{Params: p})
	sub := lns.hub.Subscribe(0)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const peerID = 77
	if _, err := c.Write(sccrq(t, peerID)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the setup", func() bool { return len(lns.e.Status()) == 1 })
	b := control.NewBuilder(make([]byte, 128), control.Header{Version: control.V2, Ns: 1, Nr: 1}, control.MsgStopCCN)
	b.AddUint16(control.AttrAssignedTunnelID, true, peerID)
	b.AddResultCode(control.ResultCode{Result: control.StopResultGeneralError, Error: 6, HasError: true})
	stop, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(stop); err != nil {
		t.Fatal(err)
	}
	if d := downEvent(t, sub); !strings.HasPrefix(d, "by peer ") {
		t.Errorf("tunnel-down %q, want it by the peer", d)
	}
}

// TestLACStopCCNToTunnelZero: an LNS that refuses our SCCRQ at once
// answers with a StopCCN to tunnel 0; the dialling LAC takes it.
func TestLACStopCCNToTunnelZero(t *testing.T) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback.Addr(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	p := fast
	p.MaxRetries = 10
	lac := startLAC(t, pc.LocalAddr().(*net.UDPAddr).AddrPort(), LACConfig{Params: p, MinBackoff: time.Hour})
	buf := make([]byte, 2048)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, from, err := pc.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	b := control.NewBuilder(make([]byte, 128), control.Header{Version: control.V2, Ns: 0, Nr: 1}, control.MsgStopCCN)
	b.AddUint16(control.AttrAssignedTunnelID, true, 5)
	b.AddResultCode(control.ResultCode{Result: control.StopResultNotAuthorized})
	stop, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteToUDPAddrPort(stop, from); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the LAC refused", func() bool {
		s := lac.e.Status()
		return len(s) == 1 && s[0].Control.State == control.StateClosed && s[0].Control.LastResult.Code == control.StopResultNotAuthorized
	})
}

// TestLACRestartSamePort: a LAC that ended its tunnel and comes back on
// the same address, port and tunnel id (a restarted daemon) is answered
// at once, not ignored while the LNS's old tunnel lingers after the
// StopCCN.
func TestLACRestartSamePort(t *testing.T) {
	p := fast
	p.MaxRetries = 8 // a linger of seconds
	lns, addr := startLNS(t, LNSConfig{Params: p})
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(loopback))
	if err != nil {
		t.Fatal(err)
	}
	local := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	dial := func() *side {
		s := newSide(t)
		if err := s.e.AddLAC(LACConfig{Name: "lac1", Params: p, Peer: addr, Local: local, MinBackoff: time.Hour}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := dial()
	waitFor(t, "first tunnel up", upWith(first.e, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := first.e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	first.e.Close()
	first.plane.Close()
	second := dial()
	deadline := time.Now().Add(2 * time.Second)
	for len(established(second.e, 0)) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted LAC is not up after 2 s; LNS: %+v", lns.e.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLACCallRedial: a configured call the LNS refuses (its call limit)
// is placed again and again, each wait longer than the one before up to
// MaxBackoff; the last failure stays visible between placements; the
// LAC's other call and the LNS's tunnel are not disturbed.
func TestLACCallRedial(t *testing.T) {
	p := fast
	p.MaxCalls = 1
	lns, addr := startLNS(t, LNSConfig{Params: p})
	lac := startLAC(t, addr, LACConfig{Params: fast, Calls: []string{"a", "b"},
		MinBackoff: 40 * time.Millisecond, MaxBackoff: 1280 * time.Millisecond})
	waitFor(t, "LNS up with 1 call", upWith(lns.e, 1))
	first := established(lns.e, 1)[0]
	delays := map[int]time.Duration{} // by failure count
	var last string
	waitFor(t, "5 refusals of the second call", func() bool {
		st := lac.e.Status()
		if len(st) != 1 || len(st[0].Waiting) != 1 {
			return false
		}
		w := st[0].Waiting[0]
		if !w.Wait.RedialAt.IsZero() && w.History.Failures > 0 {
			delays[w.History.Failures] = w.Wait.RedialAt.Sub(w.History.LastFailureAt)
			last = w.History.LastFailure
		}
		return w.History.Failures >= 5
	})
	if !strings.Contains(last, "CDN by peer result 4") || !strings.Contains(last, "call limit 1") {
		t.Errorf("last failure %q, want the LNS's CDN (result 4, call limit)", last)
	}
	// Waits grow: with ±25% jitter a doubled wait is still longer.
	prev, prevN := time.Duration(0), 0
	for n := 1; n < 5; n++ {
		d, ok := delays[n]
		if !ok {
			continue
		}
		if d <= prev {
			t.Errorf("wait after failure %d: %v, not longer than %v after failure %d", n, d, prev, prevN)
		}
		prev, prevN = d, n
	}
	if len(delays) < 2 {
		t.Errorf("saw the waits after %d failures only: %v", len(delays), delays)
	}
	if st := lac.e.Stats(); st.CallsDown < 5 {
		t.Errorf("LAC calls down %d, want the refused call ended 5 times", st.CallsDown)
	}
	// The LNS keeps its tunnel and its one call throughout.
	now := established(lns.e, 1)
	if len(now) != 1 || now[0].ID != first.ID || now[0].Calls[0].LocalID != first.Calls[0].LocalID {
		t.Errorf("LNS now %+v, was %+v", now, first)
	}
	if st := lns.e.Stats(); st.CallsDown != 0 || st.TunnelsDown != 0 {
		t.Errorf("LNS stats %+v: its call or tunnel went down", st)
	}
}

// TestLACCallNoRedial: with NoRedial a refused call is not placed again:
// it waits with its failure and no redial due.
func TestLACCallNoRedial(t *testing.T) {
	p := fast
	p.MaxCalls = 1
	lns, addr := startLNS(t, LNSConfig{Params: p})
	lac := startLAC(t, addr, LACConfig{Params: fast, Calls: []string{"a", "b"}, NoRedial: true})
	waitFor(t, "LNS up with 1 call", upWith(lns.e, 1))
	waitFor(t, "the refused call waiting", func() bool {
		st := lac.e.Status()
		return len(st) == 1 && len(st[0].Waiting) == 1 && st[0].Waiting[0].History.Failures == 1
	})
	if w := lac.e.Status()[0].Waiting[0]; !w.Wait.RedialAt.IsZero() || !strings.Contains(w.History.LastFailure, "call limit") {
		t.Errorf("waiting call %+v %+v: want its failure and no redial", w, w.Wait)
	}
}

// TestCallSessionBeforeICCN: a LAC's call has its datapath session
// before its ICCN goes out, so data the LNS sends as soon as it has the
// ICCN (PPP's first Configure-Request) is not dropped.
func TestCallSessionBeforeICCN(t *testing.T) {
	_, addr := startLNS(t, LNSConfig{Params: fast, Peers: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	lac := newSide(t)
	var iccn, withSession atomic.Int32
	lac.e.sent = func(tn *tun, p []byte) {
		if m, err := control.Parse(p); err == nil && !m.IsZLB() && m.Type() == control.MsgICCN {
			iccn.Add(1)
			if len(lac.plane.Sessions(tn.id)) > 0 {
				withSession.Add(1)
			}
		}
	}
	if err := lac.e.AddLAC(LACConfig{Name: "lac1", Peer: addr, Local: loopback, Params: fast,
		MinBackoff: 50 * time.Millisecond, Calls: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "LAC up with its call", upWith(lac.e, 1))
	if iccn.Load() != 1 || withSession.Load() != 1 {
		t.Fatalf("%d ICCNs sent, %d with the call's datapath session in place; want 1 and 1", iccn.Load(), withSession.Load())
	}
}
