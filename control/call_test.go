package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func (l *link) openCall(x *Tunnel, p CallParams) uint32 {
	l.t.Helper()
	id, out, err := x.OpenCall(p, l.now)
	if err != nil {
		l.t.Fatal(err)
	}
	l.take(x, out)
	return id
}

func TestIncomingCall(t *testing.T) {
	// Either side may open an incoming call: the initiator of the
	// tunnel as a LAC, or the responder (a LAC that was dialled).
	for _, opener := range []string{"a", "b"} {
		t.Run(opener, func(t *testing.T) {
			l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
			l.up()
			l.events(l.a)
			l.events(l.b)
			x := l.a
			if opener == "b" {
				x = l.b
			}
			y := l.other(x)
			id := l.openCall(x, CallParams{Kind: IncomingCall, BearerType: BearerAnalog, Called: "100",
				Calling: "200", TxSpeed: 1e6, RxSpeed: 2e6, SequencingRequired: true, PhysicalChannel: 7})
			if c := x.Calls(); len(c) != 1 || c[0].State != CallWaitReply || c[0].LocalID != id {
				t.Fatalf("calls %+v", c)
			}
			l.run(time.Second)
			ex := oneEvent(t, l.events(x), EventCallUp)
			ey := oneEvent(t, l.events(y), EventCallUp)
			if ex.Call.LocalID != id || ex.Call.PeerID != ey.Call.LocalID || ey.Call.PeerID != id {
				t.Errorf("ids %+v %+v", ex.Call, ey.Call)
			}
			want := CallInfo{LocalID: ey.Call.LocalID, PeerID: id, Kind: IncomingCall, Serial: 1,
				BearerType: BearerAnalog, FramingType: FramingSync, TxSpeed: 1e6, RxSpeed: 2e6,
				PhysicalChannel: 7, Called: "100", Calling: "200", SequencingRequired: true}
			if ey.Call != want {
				t.Errorf("answerer's call\n got %+v\nwant %+v", ey.Call, want)
			}
			if !ex.Call.Initiator || ey.Call.Initiator {
				t.Errorf("initiator flags %t %t", ex.Call.Initiator, ey.Call.Initiator)
			}
			if got := l.sentTypes(x); !eq(got[len(got)-2:], []string{"ICRQ", "ICCN"}) {
				t.Errorf("opener sent %v", got)
			}
			if c := y.Calls(); len(c) != 1 || c[0].State != CallEstablished {
				t.Errorf("answerer's calls %+v", c)
			}
		})
	}
}

func TestOutgoingCall(t *testing.T) {
	cb := testConfig(200, "lns", 2)
	ca := testConfig(100, "lac", 1)
	ca.Answer = CallParams{TxSpeed: 64000, SequencingRequired: true}
	l := newPair(t, ca, cb)
	l.up()
	l.events(l.a)
	l.events(l.b)
	id := l.openCall(l.b, CallParams{Kind: OutgoingCall, BearerType: BearerDigital, FramingType: FramingSync,
		MinBPS: 1000, MaxBPS: 64000, Called: "5551234"})
	l.run(time.Second)
	ea := oneEvent(t, l.events(l.a), EventCallUp)
	eb := oneEvent(t, l.events(l.b), EventCallUp)
	if eb.Call.LocalID != id || eb.Call.PeerID != ea.Call.LocalID || ea.Call.PeerID != id {
		t.Errorf("ids %+v %+v", ea.Call, eb.Call)
	}
	if ea.Call.Kind != OutgoingCall || ea.Call.Called != "5551234" || ea.Call.MaxBPS != 64000 || ea.Call.TxSpeed != 64000 {
		t.Errorf("LAC's call %+v", ea.Call)
	}
	if !eb.Call.SequencingRequired || eb.Call.TxSpeed != 64000 || eb.Call.FramingType != FramingSync {
		t.Errorf("LNS's call %+v", eb.Call)
	}
	if got := l.sentTypes(l.b); !eq(got[len(got)-2:], []string{"OCRQ", "ZLB"}) {
		t.Errorf("LNS sent %v", got)
	}
	if got := l.sentTypes(l.a); !eq(got[len(got)-2:], []string{"OCRP", "OCCN"}) {
		t.Errorf("LAC sent %v", got)
	}
}

func TestCDN(t *testing.T) {
	for _, closer := range []string{"opener", "answerer"} {
		t.Run(closer, func(t *testing.T) {
			l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
			l.up()
			id := l.openCall(l.a, CallParams{Kind: IncomingCall})
			l.run(time.Second)
			l.events(l.a)
			l.events(l.b)
			x, xid := l.a, id
			if closer == "answerer" {
				x, xid = l.b, l.b.Calls()[0].LocalID
			}
			y := l.other(x)
			out, err := x.CloseCall(xid, Result{Code: CDNResultLostCarrier, Message: "pppd died"}, l.now)
			if err != nil {
				t.Fatal(err)
			}
			l.take(x, out)
			ex := oneEvent(t, l.events(x), EventCallDown)
			l.run(time.Second)
			ey := oneEvent(t, l.events(y), EventCallDown)
			if ex.By != ByLocal || ey.By != ByPeer || ey.Result.Code != CDNResultLostCarrier || ey.Result.Message != "pppd died" {
				t.Errorf("closer %v %v, other %v %v", ex.By, ex.Result, ey.By, ey.Result)
			}
			if len(l.a.Calls())+len(l.b.Calls()) != 0 {
				t.Error("calls left")
			}
			if _, err := x.CloseCall(xid, Result{}, l.now); err == nil {
				t.Error("closed a call twice")
			}
			if l.a.State() != StateEstablished || l.b.State() != StateEstablished {
				t.Error("the tunnel went with the call")
			}
		})
	}
}

func TestCDNBeforeReply(t *testing.T) {
	// The LAC gives up on its ICRQ before the ICRP: its CDN carries no
	// session id in the header; the LNS finds the call by the peer's id.
	l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
	l.up()
	l.events(l.b)
	id, out, _ := l.a.OpenCall(CallParams{Kind: IncomingCall}, l.now)
	l.take(l.a, out)
	// b answers the ICRQ; its ICRP is held back.
	var icrp [][]byte
	for _, p := range l.q[l.b] {
		outB := l.b.Receive(p, l.now)
		for _, q := range outB.Transmit {
			icrp = append(icrp, append([]byte(nil), q...))
		}
	}
	l.q[l.b] = nil
	out, _ = l.a.CloseCall(id, Result{}, l.now)
	l.take(l.a, out)
	l.flush()
	e := oneEvent(t, l.events(l.b), EventCallDown)
	if e.By != ByPeer || e.Result.Code != CDNResultAdmin {
		t.Errorf("%v %v", e.By, e.Result)
	}
	// The late ICRP is for no call: ignored.
	for _, p := range icrp {
		l.take(l.a, l.a.Receive(p, l.now))
	}
	if l.a.Status().Stats.Unexpected != 1 || l.a.State() != StateEstablished {
		t.Errorf("a %s %+v", l.a.State(), l.a.Status().Stats)
	}
}

func TestManyCalls(t *testing.T) {
	ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
	cb.MaxCalls = 300
	l := newPair(t, ca, cb)
	l.up()
	l.events(l.a)
	l.events(l.b)
	const n = 300
	for range n / 30 {
		// The transport queues 64 messages: open in batches.
		for range 30 {
			l.openCall(l.a, CallParams{Kind: IncomingCall})
		}
		l.run(time.Minute)
	}
	if got := len(l.events(l.b)); got != n {
		t.Fatalf("%d calls up at b", got)
	}
	if len(l.a.Calls()) != n || len(l.b.Calls()) != n {
		t.Fatalf("%d %d calls", len(l.a.Calls()), len(l.b.Calls()))
	}
	seen := map[uint32]bool{}
	for _, c := range l.b.Calls() {
		if c.State != CallEstablished || seen[c.LocalID] || c.LocalID == 0 {
			t.Fatalf("call %+v", c)
		}
		seen[c.LocalID] = true
	}
	// One more is refused: the call limit, temporarily.
	l.openCall(l.a, CallParams{Kind: IncomingCall})
	l.run(time.Second)
	ev := l.events(l.a)
	e := ev[len(ev)-1]
	if e.Kind != EventCallDown || e.By != ByPeer || e.Result.Code != CDNResultNoFacilitiesTmp {
		t.Errorf("call over the limit: %v %v %v", e.Kind, e.By, e.Result)
	}
	out, _ := l.a.Close(Result{}, l.now)
	l.take(l.a, out)
	if k := kinds(l.events(l.a)); len(k) != n+1 {
		t.Errorf("%d events on close", len(k))
	}
}

func TestAcceptCallRefuses(t *testing.T) {
	cb := testConfig(200, "lns", 2)
	cb.AcceptCall = func(c CallInfo) (bool, Result) {
		return c.Called != "blocked", Result{Code: CDNResultInvalidDest}
	}
	l := newPair(t, testConfig(100, "lac", 1), cb)
	l.up()
	l.events(l.a)
	l.openCall(l.a, CallParams{Kind: IncomingCall, Called: "blocked"})
	l.openCall(l.a, CallParams{Kind: IncomingCall, Called: "ok"})
	l.run(time.Second)
	if got := kinds(l.events(l.a)); !eq(got, []string{"call-down", "call-up"}) {
		t.Errorf("events %v", got)
	}
}

// appendAVP appends an AVP to a built message and fixes its length.
func appendAVP(p []byte, flags uint16, vendor uint16, typ AttrType, v []byte) []byte {
	var h [6]byte
	binary.BigEndian.PutUint16(h[:], flags|uint16(6+len(v)))
	binary.BigEndian.PutUint16(h[2:], vendor)
	binary.BigEndian.PutUint16(h[4:], uint16(typ))
	p = append(append(p, h[:]...), v...)
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	return p
}

// injectInto rewrites the first message of type typ that from sends.
func injectInto(l *link, from *Tunnel, typ MessageType, f func([]byte) []byte) *bool {
	done := new(bool)
	l.mutate = func(x *Tunnel, p []byte) []byte {
		if *done || x != from {
			return p
		}
		if m, err := Parse(p); err == nil && !m.IsZLB() && m.Type() == typ {
			*done = true
			return f(p)
		}
		return p
	}
	return done
}

func TestUnknownMandatory(t *testing.T) {
	unknown := func(p []byte) []byte { return appendAVP(p, avpFlagM, 0, 200, []byte{1}) }
	t.Run("SCCRQ", func(t *testing.T) {
		l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
		injectInto(l, l.a, MsgSCCRQ, unknown)
		out, _ := l.a.Open(l.now)
		l.take(l.a, out)
		l.run(time.Minute)
		eb := oneEvent(t, l.events(l.b), EventTunnelDown)
		ea := oneEvent(t, l.events(l.a), EventTunnelDown)
		for _, e := range []Event{ea, eb} {
			if e.Result.Code != StopResultGeneralError || e.Result.Error != ErrCodeUnknownMandatory {
				t.Errorf("%v", e.Result)
			}
		}
		if eb.By != ByLocal || ea.By != ByPeer {
			t.Errorf("by %v %v", ea.By, eb.By)
		}
		if m := l.sent[l.b][0]; m.Type() != MsgStopCCN || m.TunnelID != 100 {
			t.Errorf("b sent %s to %d", m.Type(), m.TunnelID)
		}
	})
	t.Run("ICRQ", func(t *testing.T) {
		l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
		l.up()
		l.events(l.a)
		l.events(l.b)
		injectInto(l, l.a, MsgICRQ, unknown)
		l.openCall(l.a, CallParams{Kind: IncomingCall})
		l.run(time.Second)
		e := oneEvent(t, l.events(l.a), EventCallDown)
		if e.By != ByPeer || e.Result.Code != CDNResultGeneralError || e.Result.Error != ErrCodeUnknownMandatory {
			t.Errorf("%v %v", e.By, e.Result)
		}
		if ev := l.events(l.b); len(ev) != 0 {
			t.Errorf("b events %v", kinds(ev))
		}
		if l.a.State() != StateEstablished || l.b.State() != StateEstablished {
			t.Error("the tunnel went with the call")
		}
	})
	t.Run("ICCN", func(t *testing.T) {
		l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
		l.up()
		l.events(l.a)
		l.events(l.b)
		injectInto(l, l.a, MsgICCN, unknown)
		l.openCall(l.a, CallParams{Kind: IncomingCall})
		l.run(time.Second)
		if got := kinds(l.events(l.a)); !eq(got, []string{"call-up", "call-down"}) {
			t.Fatalf("a events %v", got)
		}
		e := oneEvent(t, l.events(l.b), EventCallDown)
		if e.By != ByLocal || e.Result.Error != ErrCodeUnknownMandatory {
			t.Errorf("%v %v", e.By, e.Result)
		}
	})
	t.Run("optional and vendor ignored", func(t *testing.T) {
		l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
		injectInto(l, l.a, MsgSCCRQ, func(p []byte) []byte {
			p = appendAVP(p, 0, 0, 200, []byte{1})
			return appendAVP(p, 0, 9, 1, []byte{1, 2})
		})
		l.up()
	})
	t.Run("bad length in HELLO", func(t *testing.T) {
		l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
		l.up()
		l.events(l.b)
		l.events(l.a)
		// A Receive Window Size of 3 bytes: a known AVP with a wrong
		// length stops the tunnel (general error, length is wrong).
		injectInto(l, l.a, MsgHELLO, func(p []byte) []byte {
			return appendAVP(p, avpFlagM, 0, AttrReceiveWindowSize, []byte{1, 2, 3})
		})
		l.run(2 * time.Minute)
		e := oneEvent(t, l.events(l.b), EventTunnelDown)
		if e.By != ByLocal || e.Result.Code != StopResultGeneralError || e.Result.Error != ErrCodeBadLength {
			t.Errorf("%v %v", e.By, e.Result)
		}
	})
}

func TestMalformedDropped(t *testing.T) {
	l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
	l.up()
	hello := l.sent[l.a][1] // a's SCCCN as a template
	p := append([]byte(nil), hello.Bytes()...)
	binary.BigEndian.PutUint16(p[HeaderLen:], avpFlagM|1000) // AVP overruns
	before := l.b.Status()
	out := l.b.Receive(p, l.now)
	if len(out.Transmit)+len(out.Events) != 0 {
		t.Errorf("answered a malformed packet: %d packets %v", len(out.Transmit), kinds(out.Events))
	}
	after := l.b.Status()
	if after.Stats.Malformed != before.Stats.Malformed+1 || after.Transport.Nr != before.Transport.Nr {
		t.Errorf("before %+v after %+v", before, after)
	}
	// Another tunnel's id: dropped.
	q := append([]byte(nil), hello.Bytes()...)
	binary.BigEndian.PutUint16(q[4:], 999)
	l.b.Receive(q, l.now)
	if l.b.Status().Stats.WrongTunnel != 1 {
		t.Error("wrong tunnel id accepted")
	}
}

func TestImpairedLink(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
			ca.Secret, cb.Secret = []byte("k"), []byte("k")
			ca.HideAVPs = seed%2 == 0
			ca.Transport.MaxRetries, cb.Transport.MaxRetries = 10, 10
			l := newPair(t, ca, cb)
			l.rng = rand.New(rand.NewPCG(seed, 7))
			l.drop, l.dup, l.reorder = 0.2, 0.1, 0.3
			out, _ := l.a.Open(l.now)
			l.take(l.a, out)
			l.run(time.Minute)
			if l.a.State() != StateEstablished || l.b.State() != StateEstablished {
				t.Fatalf("states %s %s", l.a.State(), l.b.State())
			}
			for range 10 {
				l.openCall(l.a, CallParams{Kind: IncomingCall})
			}
			for range 5 {
				l.openCall(l.b, CallParams{Kind: OutgoingCall})
			}
			l.run(5 * time.Minute)
			for _, x := range []*Tunnel{l.a, l.b} {
				up := 0
				for _, c := range x.Calls() {
					if c.State == CallEstablished {
						up++
					}
				}
				if up != 15 {
					t.Errorf("%s: %d calls up, events %v", l.name(x), up, kinds(l.ev[x]))
				}
			}
			out, _ = l.b.Close(Result{}, l.now)
			l.take(l.b, out)
			l.run(5 * time.Minute)
			if !l.a.Done() || !l.b.Done() {
				t.Errorf("done %t %t", l.a.Done(), l.b.Done())
			}
			if ea := l.events(l.a); ea[len(ea)-1].Kind != EventTunnelDown || ea[len(ea)-1].By != ByPeer {
				t.Errorf("a's last event %v", ea[len(ea)-1])
			}
		})
	}
}

func TestTieBreak(t *testing.T) {
	for _, c := range []struct {
		ours, theirs       uint64
		oursSet, theirsSet bool
		want               TieOutcome
	}{
		{0, 0, false, false, KeepBoth},
		{5, 0, true, false, KeepOurs},
		{0, 5, false, true, KeepTheirs},
		{1, 2, true, true, KeepOurs},
		{^uint64(0), 2, true, true, KeepTheirs},
		{7, 7, true, true, KeepNone},
	} {
		if got := TieBreak(c.ours, c.oursSet, c.theirs, c.theirsSet); got != c.want {
			t.Errorf("TieBreak(%+v) = %d", c, got)
		}
	}

	// Two SCCRQs cross; each owner peeks at the other's and applies
	// TieBreak: the side with the higher value forgets its tunnel and
	// answers the other's; one tunnel comes up.
	ca, cb := testConfig(100, "x", 1), testConfig(200, "y", 2)
	ca.TieBreaker, cb.TieBreaker = 10, 20
	ca.Secret, cb.Secret, ca.HideAVPs, cb.HideAVPs = []byte("s"), []byte("s"), true, true
	a, _ := NewTunnel(ca, Initiator)
	b, _ := NewTunnel(cb, Initiator)
	outA, _ := a.Open(t0)
	sccrqA := append([]byte(nil), outA.Transmit[0]...)
	outB, _ := b.Open(t0)
	sccrqB := append([]byte(nil), outB.Transmit[0]...)
	infoA, err := PeekSCCRQ(sccrqA, []byte("s"))
	if err != nil || infoA.PeerID != 100 || infoA.HostName != "x" || !infoA.HasTieBreaker || infoA.TieBreaker != 10 {
		t.Fatalf("peek %+v %v", infoA, err)
	}
	infoB, _ := PeekSCCRQ(sccrqB, []byte("s"))
	if got := TieBreak(cb.TieBreaker, true, infoA.TieBreaker, infoA.HasTieBreaker); got != KeepTheirs {
		t.Fatalf("b: %d", got)
	}
	if got := TieBreak(ca.TieBreaker, true, infoB.TieBreaker, infoB.HasTieBreaker); got != KeepOurs {
		t.Fatalf("a: %d", got)
	}
	// b forgets its initiator and answers a's SCCRQ as a responder; a
	// drops b's SCCRQ.
	cb.LocalID = 201
	b2, _ := NewTunnel(cb, Responder)
	l := newLink(t, a, b2)
	l.take(b2, b2.Receive(sccrqA, t0))
	l.run(time.Minute)
	if a.State() != StateEstablished || b2.State() != StateEstablished || a.PeerID() != 201 {
		t.Errorf("states %s %s peer %d", a.State(), b2.State(), a.PeerID())
	}
}

func TestQueueLimit(t *testing.T) {
	ca := testConfig(100, "lac", 1)
	ca.Transport.MaxQueue = 8
	l := newPair(t, ca, testConfig(200, "lns", 2))
	l.up()
	l.cut = true // nothing is acked
	n := 0
	for ; n < 20; n++ {
		_, out, err := l.a.OpenCall(CallParams{Kind: IncomingCall}, l.now)
		if err != nil {
			if !errors.Is(err, ErrQueueFull) {
				t.Fatal(err)
			}
			break
		}
		l.take(l.a, out)
	}
	if n != 8 {
		t.Errorf("%d calls opened before the queue was full, want 8", n)
	}
	if l.a.State() != StateEstablished {
		t.Errorf("a %s", l.a.State())
	}
}

func TestWENAndSLI(t *testing.T) {
	l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
	l.up()
	id := l.openCall(l.a, CallParams{Kind: IncomingCall})
	l.run(time.Second)
	l.events(l.a)
	l.events(l.b)
	bid := l.b.Calls()[0].LocalID
	out, _ := l.a.SendWEN(id, CallErrors{CRC: 1, Framing: 2, HardwareOverruns: 3, BufferOverruns: 4, Timeout: 5, Alignment: 6}, l.now)
	l.take(l.a, out)
	out, _ = l.b.SendSLI(bid, 0xffffffff, 0x0000000a, l.now)
	l.take(l.b, out)
	l.run(time.Second)
	eb := oneEvent(t, l.events(l.b), EventWEN)
	ea := oneEvent(t, l.events(l.a), EventSLI)
	if eb.CallErrors != (CallErrors{1, 2, 3, 4, 5, 6}) || eb.Call.LocalID != bid {
		t.Errorf("WEN %+v", eb)
	}
	if ea.ACCMSend != 0xffffffff || ea.ACCMRecv != 10 || ea.Call.LocalID != id {
		t.Errorf("SLI %+v", ea)
	}
}

func TestStopDuringSetup(t *testing.T) {
	// The initiator gives up before the SCCCN: the responder, in
	// wait-ctl-conn, takes the StopCCN.
	l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
	out, _ := l.a.Open(l.now)
	l.take(l.a, out)
	out, _ = l.a.Close(Result{Code: StopResultShuttingDown}, l.now)
	l.take(l.a, out)
	l.run(time.Minute)
	if got := kinds(l.events(l.b)); !eq(got, []string{"tunnel-down"}) {
		t.Errorf("b events %v", got)
	}
	if !l.a.Done() || !l.b.Done() {
		t.Errorf("%s %s", l.a.State(), l.b.State())
	}
}

func TestStopCCNWithUnknownMandatory(t *testing.T) {
	// A StopCCN ends the tunnel even with an AVP we do not know: no
	// StopCCN goes back.
	l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
	l.up()
	l.events(l.b)
	injectInto(l, l.a, MsgStopCCN, func(p []byte) []byte { return appendAVP(p, avpFlagM, 0, 222, nil) })
	out, _ := l.a.Close(Result{}, l.now)
	l.take(l.a, out)
	l.run(time.Minute)
	e := oneEvent(t, l.events(l.b), EventTunnelDown)
	if e.By != ByPeer || e.Result.Code != StopResultClear {
		t.Errorf("%v %v", e.By, e.Result)
	}
	if n := count(l.sent[l.b], MsgStopCCN); n != 0 {
		t.Errorf("b answered with %d StopCCNs", n)
	}
}
