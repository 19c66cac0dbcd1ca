package control

import (
	"math/rand/v2"
	"testing"
	"time"
)

// link wires two Tunnels back to back with a fake clock. Packets cross
// instantly, through optional impairments drawn from a seeded RNG.
type link struct {
	t    *testing.T
	now  time.Time
	a, b *Tunnel
	q    map[*Tunnel][][]byte // packets in flight to the Tunnel
	ev   map[*Tunnel][]Event
	sent map[*Tunnel][]Message // every packet the Tunnel transmitted, parsed

	rng                *rand.Rand
	drop, dup, reorder float64
	cut                bool                                // drop everything
	mutate             func(from *Tunnel, p []byte) []byte // rewrites a packet in flight
}

func newLink(t *testing.T, a, b *Tunnel) *link {
	return &link{
		t: t, now: t0, a: a, b: b,
		q:    map[*Tunnel][][]byte{},
		ev:   map[*Tunnel][]Event{},
		sent: map[*Tunnel][]Message{},
		rng:  rand.New(rand.NewPCG(1, 2)),
	}
}

func (l *link) other(x *Tunnel) *Tunnel {
	if x == l.a {
		return l.b
	}
	return l.a
}

// take records a Tunnel's output: copies of its packets go in flight to
// the other side, and its events are kept.
func (l *link) take(from *Tunnel, out TunnelOutput) {
	l.t.Helper()
	for _, p := range out.Transmit {
		c := append([]byte(nil), p...)
		m, err := Parse(c)
		if err != nil {
			l.t.Fatalf("%s sent a malformed packet %x: %v", l.name(from), p, err)
		}
		l.sent[from] = append(l.sent[from], m)
		if l.mutate != nil {
			c = l.mutate(from, c)
		}
		if l.cut || l.rng.Float64() < l.drop {
			continue
		}
		to := l.other(from)
		l.q[to] = append(l.q[to], c)
		if l.rng.Float64() < l.dup {
			l.q[to] = append(l.q[to], c)
		}
	}
	l.ev[from] = append(l.ev[from], out.Events...)
}

func (l *link) name(x *Tunnel) string {
	if x == l.a {
		return "a"
	}
	return "b"
}

// flush delivers the packets in flight until none are left.
func (l *link) flush() {
	for n := 0; ; n++ {
		if n > 100000 {
			l.t.Fatal("link: packets never stop")
		}
		var to *Tunnel
		switch {
		case len(l.q[l.a]) > 0:
			to = l.a
		case len(l.q[l.b]) > 0:
			to = l.b
		default:
			return
		}
		q := l.q[to]
		if len(q) > 1 && l.rng.Float64() < l.reorder {
			q[0], q[1] = q[1], q[0]
		}
		p := q[0]
		l.q[to] = q[1:]
		l.take(to, to.Receive(p, l.now))
	}
}

// run delivers packets and advances the clock from deadline to deadline
// until nothing is due before now+d; it ends at now+d.
func (l *link) run(d time.Duration) {
	end := l.now.Add(d)
	for i := 0; ; i++ {
		if i > 100000 {
			l.t.Fatal("link: timers never stop")
		}
		l.flush()
		next, ok := time.Time{}, false
		for _, x := range []*Tunnel{l.a, l.b} {
			if dl, on := x.Deadline(); on && (!ok || dl.Before(next)) {
				next, ok = dl, true
			}
		}
		if !ok || next.After(end) {
			l.now = end
			return
		}
		if next.After(l.now) {
			l.now = next
		}
		for _, x := range []*Tunnel{l.a, l.b} {
			if dl, on := x.Deadline(); on && !dl.After(l.now) {
				l.take(x, x.Tick(l.now))
			}
		}
	}
}

// events returns the kinds of x's events, and forgets them.
func (l *link) events(x *Tunnel) []Event {
	e := l.ev[x]
	l.ev[x] = nil
	return e
}

func kinds(ev []Event) []string {
	var s []string
	for _, e := range ev {
		s = append(s, e.Kind.String())
	}
	return s
}

// sentTypes lists the message types x transmitted (ZLBs as "ZLB").
func (l *link) sentTypes(x *Tunnel) []string {
	var s []string
	for _, m := range l.sent[x] {
		if m.IsZLB() {
			s = append(s, "ZLB")
		} else {
			s = append(s, m.Type().String())
		}
	}
	return s
}

func testConfig(id uint32, host string, seed uint64) TunnelConfig {
	var key [32]byte
	key[0] = byte(seed)
	return TunnelConfig{
		LocalID: id, HostName: host, VendorName: "ul2tp", FirmwareRevision: 0x0100,
		Transport: TransportConfig{RecvWindow: 8},
		Rand:      rand.NewChaCha8(key),
	}
}

func newPair(t *testing.T, ca, cb TunnelConfig) *link {
	t.Helper()
	a, err := NewTunnel(ca, Initiator)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewTunnel(cb, Responder)
	if err != nil {
		t.Fatal(err)
	}
	return newLink(t, a, b)
}

// up opens a and runs the link until both are established.
func (l *link) up() {
	l.t.Helper()
	out, err := l.a.Open(l.now)
	if err != nil {
		l.t.Fatal(err)
	}
	l.take(l.a, out)
	l.run(time.Second)
	if l.a.State() != StateEstablished || l.b.State() != StateEstablished {
		l.t.Fatalf("states %s %s, events a %v b %v", l.a.State(), l.b.State(), kinds(l.ev[l.a]), kinds(l.ev[l.b]))
	}
}

func oneEvent(t *testing.T, ev []Event, k EventKind) Event {
	t.Helper()
	if len(ev) != 1 || ev[0].Kind != k {
		t.Fatalf("events %v, want [%v]", kinds(ev), k)
	}
	return ev[0]
}

func TestTunnelUp(t *testing.T) {
	ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
	cb.BearerCaps = BearerDigital
	l := newPair(t, ca, cb)
	l.up()
	ea := oneEvent(t, l.events(l.a), EventTunnelUp)
	eb := oneEvent(t, l.events(l.b), EventTunnelUp)
	if ea.Tunnel.PeerID != 200 || ea.Tunnel.HostName != "lns" || ea.Tunnel.VendorName != "ul2tp" ||
		ea.Tunnel.Window != 8 || ea.Tunnel.BearerCaps != BearerDigital || ea.Tunnel.FramingCaps != FramingSync|FramingAsync {
		t.Errorf("a sees %+v", ea.Tunnel)
	}
	if eb.Tunnel.PeerID != 100 || eb.Tunnel.HostName != "lac" || eb.Tunnel.LocalID != 200 || eb.Tunnel.FirmwareRevision != 0x0100 {
		t.Errorf("b sees %+v", eb.Tunnel)
	}
	if got := l.sentTypes(l.a); !eq(got, []string{"SCCRQ", "SCCCN"}) {
		t.Errorf("a sent %v", got)
	}
	l.run(time.Second) // the delayed ack of the SCCCN
	if got := l.sentTypes(l.b); !eq(got, []string{"SCCRP", "ZLB"}) {
		t.Errorf("b sent %v", got)
	}
	// Every message after the SCCRQ is addressed to the peer's id.
	for x, id := range map[*Tunnel]uint32{l.a: 200, l.b: 100} {
		for i, m := range l.sent[x] {
			if !(x == l.a && i == 0) && m.TunnelID != id {
				t.Errorf("%s message %d to tunnel %d, want %d", l.name(x), i, m.TunnelID, id)
			}
		}
	}
	if st := l.a.Status(); st.State != StateEstablished || st.Role != Initiator || st.Transport.Unacked != 0 {
		t.Errorf("a status %+v", st)
	}
}

func TestTunnelSecret(t *testing.T) {
	ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
	ca.Secret, cb.Secret = []byte("s3cret"), []byte("s3cret")
	l := newPair(t, ca, cb)
	l.up()
	for _, i := range []struct {
		x    *Tunnel
		n    int
		want AttrType
	}{{l.a, 0, AttrChallenge}, {l.b, 0, AttrChallengeResponse}, {l.b, 0, AttrChallenge}, {l.a, 1, AttrChallengeResponse}} {
		if _, ok := l.sent[i.x][i.n].Find(i.want); !ok {
			t.Errorf("%s's %s has no %s", l.name(i.x), l.sent[i.x][i.n].Type(), i.want)
		}
	}
}

func TestTunnelWrongSecret(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sa, sb string
		stopBy *Tunnel // filled below: who refuses
	}{
		{name: "wrong", sa: "alpha", sb: "beta"},
		{name: "initiator has none", sa: "", sb: "beta"},
		{name: "responder has none", sa: "alpha", sb: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
			ca.Secret, cb.Secret = []byte(tc.sa), []byte(tc.sb)
			l := newPair(t, ca, cb)
			out, _ := l.a.Open(l.now)
			l.take(l.a, out)
			l.run(time.Minute)
			// The side that finds the other unauthorised stops it: a
			// responder without a secret is challenged; an initiator
			// gets a wrong or no response or is challenged without one.
			refuser, other := l.a, l.b
			if tc.sb == "" {
				refuser, other = l.b, l.a
			}
			er := oneEvent(t, l.events(refuser), EventTunnelDown)
			eo := oneEvent(t, l.events(other), EventTunnelDown)
			if er.By != ByLocal || er.Result.Code != StopResultNotAuthorized {
				t.Errorf("refuser: %v %v", er.By, er.Result)
			}
			if eo.By != ByPeer || eo.Result.Code != StopResultNotAuthorized {
				t.Errorf("other: %v %v", eo.By, eo.Result)
			}
			if !l.a.Done() || !l.b.Done() {
				t.Errorf("done %t %t", l.a.Done(), l.b.Done())
			}
		})
	}
}

func TestHiddenAVPs(t *testing.T) {
	ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
	ca.Secret, cb.Secret = []byte("hide"), []byte("hide")
	ca.HideAVPs, cb.HideAVPs = true, true
	l := newPair(t, ca, cb)
	l.up()
	id, out, err := l.a.OpenCall(CallParams{Kind: IncomingCall, Called: "123", Calling: "456"}, l.now)
	if err != nil {
		t.Fatal(err)
	}
	l.take(l.a, out)
	l.run(time.Second)
	l.events(l.a)
	cb2 := oneEvent(t, l.events(l.b)[1:], EventCallUp)
	if cb2.Call.PeerID != id || cb2.Call.Called != "123" || cb2.Call.Calling != "456" || cb2.Call.Serial != 1 {
		t.Errorf("b's call %+v", cb2.Call)
	}
	// The ids went hidden, after a Random Vector.
	for _, m := range []Message{l.sent[l.a][0], l.sent[l.b][0], l.sent[l.a][2]} {
		it := m.AVPs()
		rv, hidden := false, 0
		for a, ok := it.Next(); ok; a, ok = it.Next() {
			rv = rv || a.Type == AttrRandomVector
			if a.Hidden() {
				hidden++
				if !rv {
					t.Errorf("%s: hidden %s before a Random Vector", m.Type(), a.Type)
				}
				if !hideableV2(a.Type) {
					t.Errorf("%s: %s hidden", m.Type(), a.Type)
				}
			}
		}
		if hidden == 0 {
			t.Errorf("%s: nothing hidden", m.Type())
		}
	}
}

func TestHiddenWithoutSecret(t *testing.T) {
	// A hidden AVP to a tunnel without a secret stops it.
	ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
	ca.Secret, ca.HideAVPs = []byte("x"), true
	l := newPair(t, ca, cb)
	out, _ := l.a.Open(l.now)
	l.take(l.a, out)
	l.run(time.Second)
	e := oneEvent(t, l.events(l.b), EventTunnelDown)
	if e.By != ByLocal || e.Result.Code != StopResultGeneralError || e.Result.Error != ErrCodeBadValue {
		t.Errorf("b: %v %v", e.By, e.Result)
	}
}

func count(ms []Message, typ MessageType) int {
	n := 0
	for _, m := range ms {
		if !m.IsZLB() && m.Type() == typ {
			n++
		}
	}
	return n
}

func TestHello(t *testing.T) {
	ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
	ca.HelloInterval, cb.HelloInterval = 60*time.Second, -1
	l := newPair(t, ca, cb)
	l.up()
	l.run(59 * time.Second)
	if n := count(l.sent[l.a], MsgHELLO); n != 0 {
		t.Fatalf("%d HELLOs before the interval", n)
	}
	l.run(2 * time.Second)
	if n := count(l.sent[l.a], MsgHELLO); n != 1 {
		t.Fatalf("%d HELLOs after the interval, want 1", n)
	}
	if s := l.b.Status().Stats; s.HellosReceived != 1 {
		t.Errorf("b received %d HELLOs", s.HellosReceived)
	}
	// Each HELLO's ack, 1/4 s later, is the last thing received: the
	// next HELLO is 60 s after it.
	l.run(10 * time.Minute)
	if n := count(l.sent[l.a], MsgHELLO); n != 10 {
		t.Errorf("%d HELLOs in 10 more idle minutes, want 10", n)
	}
	if l.a.Status().Stats.HellosSent != 10 || l.b.Status().Stats.HellosReceived != 10 {
		t.Errorf("stats %+v %+v", l.a.Status().Stats, l.b.Status().Stats)
	}

	// Traffic every 30 s keeps both quiet: b's SLIs to a, a's WENs to b.
	id, out, _ := l.a.OpenCall(CallParams{Kind: IncomingCall}, l.now)
	l.take(l.a, out)
	l.run(time.Second)
	bid := l.b.Calls()[0].LocalID
	before := count(l.sent[l.a], MsgHELLO)
	for range 20 {
		out, err := l.b.SendSLI(bid, 0, 0, l.now)
		if err != nil {
			t.Fatal(err)
		}
		l.take(l.b, out)
		out, _ = l.a.SendWEN(id, CallErrors{}, l.now)
		l.take(l.a, out)
		l.run(30 * time.Second)
	}
	if n := count(l.sent[l.a], MsgHELLO) - before; n != 0 {
		t.Errorf("%d HELLOs while traffic flowed", n)
	}
}

func TestStopCCN(t *testing.T) {
	for _, closer := range []string{"a", "b"} {
		t.Run(closer, func(t *testing.T) {
			l := newPair(t, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
			l.up()
			_, out, _ := l.a.OpenCall(CallParams{Kind: IncomingCall}, l.now)
			l.take(l.a, out)
			l.run(time.Second)
			l.events(l.a)
			l.events(l.b)
			x := l.a
			if closer == "b" {
				x = l.b
			}
			y := l.other(x)
			// Lose the first ack of the StopCCN: the closer
			// retransmits, the other side re-acks while it lingers.
			dropped := false
			l.mutate = func(from *Tunnel, p []byte) []byte {
				if from == y && len(p) == HeaderLen && !dropped {
					dropped = true
					l.cut = true
				} else {
					l.cut = false
				}
				return p
			}
			out, err := x.Close(Result{Code: StopResultShuttingDown, Message: "bye"}, l.now)
			if err != nil {
				t.Fatal(err)
			}
			l.take(x, out)
			ex := l.events(x)
			if got := kinds(ex); !eq(got, []string{"call-down", "tunnel-down"}) {
				t.Fatalf("closer events %v", got)
			}
			if ex[1].By != ByLocal || ex[1].Result.Code != StopResultShuttingDown {
				t.Errorf("closer: %v %v", ex[1].By, ex[1].Result)
			}
			l.run(2 * time.Second)
			ey := l.events(y)
			if got := kinds(ey); !eq(got, []string{"call-down", "tunnel-down"}) {
				t.Fatalf("other events %v", got)
			}
			if ey[1].By != ByPeer || ey[1].Result.Code != StopResultShuttingDown || ey[1].Result.Message != "bye" {
				t.Errorf("other: %v %v", ey[1].By, ey[1].Result)
			}
			if !dropped || count(l.sent[x], MsgStopCCN) != 2 {
				t.Errorf("StopCCN sent %d times (ack dropped %t), want 2", count(l.sent[x], MsgStopCCN), dropped)
			}
			if !x.Done() {
				t.Errorf("closer not done after its StopCCN was acked: %s", x.State())
			}
			if y.Done() || y.State() != StateClosing {
				t.Errorf("other %s before its linger ended", y.State())
			}
			l.run(time.Minute)
			if !y.Done() {
				t.Errorf("other %s after the linger", y.State())
			}
			if st := y.Status(); st.LastBy != ByPeer || st.LastResult.Code != StopResultShuttingDown {
				t.Errorf("other's last result %v %v", st.LastBy, st.LastResult)
			}
		})
	}
}

func TestPeerLost(t *testing.T) {
	ca := testConfig(100, "lac", 1)
	ca.HelloInterval = 10 * time.Second
	l := newPair(t, ca, testConfig(200, "lns", 2))
	l.up()
	for range 3 {
		_, out, _ := l.a.OpenCall(CallParams{Kind: IncomingCall}, l.now)
		l.take(l.a, out)
	}
	l.run(time.Second)
	l.events(l.a)
	l.cut = true
	l.run(10 * time.Minute)
	ev := l.events(l.a)
	if got := kinds(ev); !eq(got, []string{"call-down", "call-down", "call-down", "tunnel-down"}) {
		t.Fatalf("events %v", got)
	}
	for _, e := range ev {
		if e.By != ByPeerLost {
			t.Errorf("%v by %v", e.Kind, e.By)
		}
	}
	if !l.a.Done() {
		t.Errorf("a %s", l.a.State())
	}
	if d, ok := l.a.Deadline(); ok {
		t.Errorf("a still has a deadline %v", d)
	}
	if n := l.a.Status().Stats.HellosSent; n != 1 {
		t.Errorf("%d HELLOs: one, retransmitted, is enough", n)
	}
}

func TestSetupTimeout(t *testing.T) {
	// b acks the SCCRP... never: a sends its SCCRQ, b answers, a's
	// SCCCN is lost every time. b gives up after SetupTimeout or when
	// retransmission does.
	ca, cb := testConfig(100, "lac", 1), testConfig(200, "lns", 2)
	cb.SetupTimeout = 3 * time.Second
	l := newPair(t, ca, cb)
	l.mutate = func(from *Tunnel, p []byte) []byte {
		l.cut = from == l.a && len(l.sent[l.a]) > 1
		return p
	}
	out, _ := l.a.Open(l.now)
	l.take(l.a, out)
	l.run(time.Minute)
	e := oneEvent(t, l.events(l.b), EventTunnelDown)
	if e.By != ByLocal || e.Result.Code != StopResultGeneralError {
		t.Errorf("b: %v %v", e.By, e.Result)
	}
}
