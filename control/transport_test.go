package control

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

// hello builds a HELLO to tunnel 1 carrying tag as its Host Name, so
// tests can tell messages apart.
func hello(tag string) []byte {
	b := NewBuilder(make([]byte, 64), Header{Version: V2, TunnelID: 1}, MsgHELLO)
	b.AddString(AttrHostName, false, tag)
	msg, err := b.Finish()
	if err != nil {
		panic(err)
	}
	return msg
}

// peerMsg is a message from the peer with the given Ns and Nr.
func peerMsg(tag string, ns, nr uint16) []byte {
	m := hello(tag)
	SetNsNr(m, ns, nr)
	return m
}

func zlb(ns, nr uint16) []byte {
	return AppendZLB(make([]byte, HeaderLen), V2, 1, ns, nr)
}

func tagOf(t *testing.T, pkt []byte) string {
	t.Helper()
	m, err := Parse(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if m.IsZLB() {
		return "ZLB"
	}
	a, _ := m.Find(AttrHostName)
	return string(a.Value)
}

func hdr(t *testing.T, pkt []byte) Header {
	t.Helper()
	h, err := ParseHeader(pkt)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func tags(t *testing.T, pkts [][]byte) []string {
	var s []string
	for _, p := range pkts {
		s = append(s, tagOf(t, p))
	}
	return s
}

func eq(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustSend(t *testing.T, tr *Transport, tag string, now time.Time) Output {
	t.Helper()
	out, err := tr.Send(hello(tag), now)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRetransmitBackoffAndPeerLost(t *testing.T) {
	tr := NewTransport(TransportConfig{MaxRetries: 5})
	out := mustSend(t, tr, "a", t0)
	if len(out.Transmit) != 1 {
		t.Fatalf("first send: %d packets", len(out.Transmit))
	}
	now := t0
	// Timeouts 1 s, then doubling to the 8 s cap: 2, 4, 8, 8.
	for i, wait := range []time.Duration{1, 2, 4, 8, 8} {
		d, ok := tr.Deadline()
		if !ok || d.Sub(now) != wait*time.Second {
			t.Fatalf("retry %d: deadline in %v, want %v", i, d.Sub(now), wait*time.Second)
		}
		if out, _ := tr.Tick(d.Add(-time.Nanosecond)); len(out.Transmit) != 0 {
			t.Fatalf("retry %d: sent before the deadline", i)
		}
		now = d
		out, err := tr.Tick(now)
		if err != nil || len(out.Transmit) != 1 || tagOf(t, out.Transmit[0]) != "a" || hdr(t, out.Transmit[0]).Ns != 0 {
			t.Fatalf("retry %d: %v %v", i, tags(t, out.Transmit), err)
		}
	}
	d, _ := tr.Deadline()
	if _, err := tr.Tick(d); !errors.Is(err, ErrPeerLost) {
		t.Fatalf("after 5 retries: %v", err)
	}
	if _, err := tr.Send(hello("b"), d); !errors.Is(err, ErrPeerLost) || !tr.Lost() {
		t.Fatalf("send after loss: %v", err)
	}
	if s := tr.Stats(); s.Retransmits != 5 || s.Sent != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAckStopsRetransmission(t *testing.T) {
	tr := NewTransport(TransportConfig{})
	mustSend(t, tr, "a", t0)
	if out, err := tr.Receive(zlb(0, 1), t0.Add(time.Millisecond)); err != nil || len(out.Transmit)+len(out.Deliver) != 0 {
		t.Fatalf("zlb: %+v %v", out, err)
	}
	if _, ok := tr.Deadline(); ok {
		t.Fatal("timer still running after the ack")
	}
	if out, _ := tr.Tick(t0.Add(time.Hour)); len(out.Transmit) != 0 {
		t.Fatal("retransmitted an acked message")
	}
}

func TestSlowStartAndWindow(t *testing.T) {
	tr := NewTransport(TransportConfig{PeerWindow: 6})
	for i := range 20 {
		mustSend(t, tr, string(rune('a'+i)), t0)
	}
	// CWND starts at 1: one message in flight. Each ack of the whole
	// flight below SSTHRESH (6) doubles it; above, it grows by one per
	// window of acks, but never past the peer's window of 6.
	var flights []int
	acked := uint16(0)
	for range 6 {
		s := tr.State()
		flights = append(flights, s.Unacked)
		if s.Unacked > 6 {
			t.Fatalf("%d in flight, peer window 6", s.Unacked)
		}
		acked += uint16(s.Unacked)
		if _, err := tr.Receive(zlb(0, acked), t0); err != nil {
			t.Fatal(err)
		}
	}
	if want := []int{1, 2, 4, 6, 6, 1}; !eq(itoa(flights), itoa(want)) {
		t.Fatalf("flights %v, want %v", flights, want)
	}
}

func TestCongestionAvoidance(t *testing.T) {
	tr := NewTransport(TransportConfig{PeerWindow: 100})
	tr.ssthresh = 2
	for i := range 40 {
		mustSend(t, tr, string(rune('A'+i)), t0)
	}
	var cw []int
	acked := uint16(0)
	for range 6 {
		cw = append(cw, tr.State().CWND)
		acked++ // ack one message at a time
		tr.Receive(zlb(0, acked), t0)
	}
	// 1 -> 2 (slow start), then +1 after every CWND acks: 2,2 -> 3,3,3 -> 4.
	if want := []int{1, 2, 2, 3, 3, 3}; !eq(itoa(cw), itoa(want)) {
		t.Fatalf("cwnd %v, want %v", cw, want)
	}
}

func TestRetransmitHalvesSSTHRESH(t *testing.T) {
	tr := NewTransport(TransportConfig{PeerWindow: 8})
	for i := range 10 {
		mustSend(t, tr, string(rune('a'+i)), t0)
	}
	tr.Receive(zlb(0, 1), t0) // cwnd 2
	tr.Receive(zlb(0, 3), t0) // cwnd 4
	if s := tr.State(); s.CWND != 4 || s.Unacked != 4 {
		t.Fatalf("state %+v", s)
	}
	out, _ := tr.Tick(t0.Add(time.Second))
	if len(out.Transmit) != 4 {
		t.Fatalf("retransmitted %d, want the 4 in flight", len(out.Transmit))
	}
	if s := tr.State(); s.CWND != 1 || s.SSTHRESH != 2 {
		t.Fatalf("after timeout %+v, want cwnd 1 ssthresh 2", s)
	}
}

func itoa(v []int) []string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = string(rune('0' + x))
	}
	return s
}

func TestDelayedZLB(t *testing.T) {
	tr := NewTransport(TransportConfig{RetryTimeout: time.Second})
	tr.SetPeerID(77)
	out, err := tr.Receive(peerMsg("x", 0, 0), t0)
	if err != nil || !eq(tags(t, out.Deliver), []string{"x"}) || len(out.Transmit) != 0 {
		t.Fatalf("receive: %+v %v", out, err)
	}
	d, ok := tr.Deadline()
	if !ok || d.Sub(t0) != 250*time.Millisecond {
		t.Fatalf("ack deadline %v", d.Sub(t0))
	}
	if out, _ := tr.Tick(d.Add(-1)); len(out.Transmit) != 0 {
		t.Fatal("ZLB before the delay")
	}
	out, _ = tr.Tick(d)
	if len(out.Transmit) != 1 {
		t.Fatalf("no ZLB after the delay")
	}
	h := hdr(t, out.Transmit[0])
	if h.Length != HeaderLen || h.Nr != 1 || h.Ns != 0 || h.TunnelID != 77 {
		t.Fatalf("ZLB %+v", h)
	}
	if out, _ := tr.Tick(d.Add(time.Hour)); len(out.Transmit) != 0 {
		t.Fatal("second ZLB")
	}
}

func TestPiggyBackAck(t *testing.T) {
	tr := NewTransport(TransportConfig{})
	tr.Receive(peerMsg("sccrq", 0, 0), t0)
	out := mustSend(t, tr, "sccrp", t0.Add(time.Millisecond))
	if len(out.Transmit) != 1 || hdr(t, out.Transmit[0]).Nr != 1 {
		t.Fatalf("reply does not carry the ack: %+v", out)
	}
	// The ack rode on the reply: no ZLB later.
	if d, _ := tr.Deadline(); d.Sub(t0) != time.Second+time.Millisecond {
		t.Fatalf("next deadline %v, want the retransmission only", d.Sub(t0))
	}
	if out, _ := tr.Tick(t0.Add(500 * time.Millisecond)); len(out.Transmit) != 0 {
		t.Fatalf("ZLB after piggy-back: %v", tags(t, out.Transmit))
	}
	if tr.Stats().ZLBs != 0 {
		t.Fatal("ZLB counted")
	}
}

func TestDuplicateReacked(t *testing.T) {
	tr := NewTransport(TransportConfig{})
	tr.Receive(peerMsg("a", 0, 0), t0)
	out, err := tr.Receive(peerMsg("a", 0, 0), t0.Add(time.Second))
	if err != nil || len(out.Deliver) != 0 || len(out.Transmit) != 1 || tagOf(t, out.Transmit[0]) != "ZLB" || hdr(t, out.Transmit[0]).Nr != 1 {
		t.Fatalf("duplicate: %+v %v", out, err)
	}
	if tr.Stats().Duplicates != 1 || tr.Stats().Delivered != 1 {
		t.Fatalf("stats %+v", tr.Stats())
	}
}

func TestReorderDeliveredInOrder(t *testing.T) {
	tr := NewTransport(TransportConfig{RecvWindow: 4})
	var got []string
	for _, ns := range []uint16{2, 1, 2, 0, 3} {
		out, err := tr.Receive(peerMsg(string(rune('a'+ns)), ns, 0), t0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tags(t, out.Deliver)...)
		if ns == 2 && len(out.Deliver) != 0 && len(got) < 3 {
			t.Fatal("delivered ahead of the gap")
		}
	}
	if !eq(got, []string{"a", "b", "c", "d"}) {
		t.Fatalf("delivered %v", got)
	}
	if s := tr.Stats(); s.OutOfOrder != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOutOfWindow(t *testing.T) {
	tr := NewTransport(TransportConfig{RecvWindow: 4})
	out, err := tr.Receive(peerMsg("far", 4, 0), t0)
	if !errors.Is(err, ErrOutOfWindow) || len(out.Deliver) != 0 {
		t.Fatalf("%+v %v", out, err)
	}
	if _, err := tr.Receive(peerMsg("near", 3, 0), t0); err != nil {
		t.Fatal(err)
	}
	if s := tr.Stats(); s.OutOfWindow != 1 || s.OutOfOrder != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBadAckIgnored(t *testing.T) {
	tr := NewTransport(TransportConfig{})
	mustSend(t, tr, "a", t0)
	tr.Receive(zlb(0, 5), t0) // acks 5 messages, 1 sent
	if s := tr.State(); s.Unacked != 1 || tr.Stats().BadAcks != 1 {
		t.Fatalf("state %+v stats %+v", s, tr.Stats())
	}
}

func TestMalformedAndQueueFull(t *testing.T) {
	tr := NewTransport(TransportConfig{MaxQueue: 2})
	if _, err := tr.Receive([]byte{0xc8}, t0); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
	mustSend(t, tr, "a", t0)
	mustSend(t, tr, "b", t0)
	if _, err := tr.Send(hello("c"), t0); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("queue full: %v", err)
	}
	if _, err := tr.Send(make([]byte, HeaderLen), t0); err == nil {
		t.Fatal("ZLB accepted by Send")
	}
}

func TestNsWrap(t *testing.T) {
	tr := NewTransport(TransportConfig{PeerWindow: 4})
	tr.nextNs, tr.una, tr.nr = 65534, 65534, 65535
	tr.cwnd = 4
	out := Output{}
	for _, tag := range []string{"a", "b", "c"} {
		out = mustSend(t, tr, tag, t0)
	}
	if h := hdr(t, out.Transmit[0]); h.Ns != 0 {
		t.Fatalf("third message Ns %d, want 0", h.Ns)
	}
	tr.Receive(zlb(65535, 1), t0) // acks 65534, 65535, 0
	if s := tr.State(); s.Unacked != 0 || s.Ns != 1 {
		t.Fatalf("after wrap ack %+v", s)
	}
	var got []string
	for _, m := range []struct {
		tag string
		ns  uint16
	}{{"z", 0}, {"x", 65535}} { // reordered across the wrap
		out, err := tr.Receive(peerMsg(m.tag, m.ns, 1), t0)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, tags(t, out.Deliver)...)
	}
	if !eq(got, []string{"x", "z"}) || tr.State().Nr != 1 {
		t.Fatalf("delivered %v nr %d", got, tr.State().Nr)
	}
}

// link joins two Transports through a channel that loses, duplicates
// and reorders packets with a fixed seed, and checks that every message
// arrives once and in order on both sides.
func TestLossyLink(t *testing.T) {
	type pkt struct {
		to   int
		data []byte
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ends := [2]*Transport{NewTransport(TransportConfig{PeerWindow: 8, RecvWindow: 8}), NewTransport(TransportConfig{PeerWindow: 8, RecvWindow: 8})}
	var wire []pkt
	got := [2][]string{}
	const n = 100
	now := t0
	put := func(from int, out Output) {
		for _, p := range out.Transmit {
			c := append([]byte(nil), p...)
			switch r := rng.IntN(10); {
			case r < 2: // lost
			case r < 3: // duplicated
				wire = append(wire, pkt{1 - from, c}, pkt{1 - from, c})
			default:
				wire = append(wire, pkt{1 - from, c})
			}
		}
		for _, d := range out.Deliver {
			got[1-from] = append(got[1-from], tagOf(t, d))
		}
	}
	sent := [2]int{}
	for step := 0; step < 100000 && (len(got[0]) < n || len(got[1]) < n); step++ {
		for i, e := range ends {
			if sent[i] < n && e.State().Queued == 0 {
				out, err := e.Send(hello(string(rune(0x100+sent[i]))), now)
				if err != nil {
					t.Fatal(err)
				}
				sent[i]++
				put(i, out)
			}
		}
		if len(wire) > 0 {
			k := 0
			if len(wire) > 1 && rng.IntN(4) == 0 {
				k = 1 // reorder
			}
			p := wire[k]
			wire = append(wire[:k], wire[k+1:]...)
			out, err := ends[p.to].Receive(p.data, now)
			if err != nil && !errors.Is(err, ErrOutOfWindow) {
				t.Fatal(err)
			}
			// Deliveries on end p.to came from the other end.
			for _, d := range out.Deliver {
				got[1-p.to] = append(got[1-p.to], tagOf(t, d))
			}
			out.Deliver = nil
			put(p.to, out)
			continue
		}
		now = now.Add(100 * time.Millisecond)
		for i, e := range ends {
			out, err := e.Tick(now)
			if err != nil {
				t.Fatalf("end %d: %v", i, err)
			}
			put(i, out)
		}
	}
	for i := range 2 {
		if len(got[i]) != n {
			t.Fatalf("end %d delivered %d of %d", i, len(got[i]), n)
		}
		for k, tag := range got[i] {
			if tag != string(rune(0x100+k)) {
				t.Fatalf("end %d message %d is %q", i, k, tag)
			}
		}
	}
	if ends[0].Stats().Retransmits == 0 || ends[1].Stats().Duplicates == 0 {
		t.Fatalf("the link did not impair: %+v %+v", ends[0].Stats(), ends[1].Stats())
	}
}

// FuzzTransport feeds random packets and ticks: no panic, deliveries
// strictly in Ns order, never more in flight than the peer's window.
func FuzzTransport(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{5, 5, 5, 0, 0, 1, 200, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		tr := NewTransport(TransportConfig{PeerWindow: 3, RecvWindow: 4, MaxQueue: 8})
		now := t0
		next := uint16(0)
		for i := 0; i+1 < len(ops) && i < 400; i += 2 {
			var out Output
			switch op, arg := ops[i]%4, ops[i+1]; op {
			case 0:
				out, _ = tr.Send(hello("s"), now)
			case 1:
				out, _ = tr.Receive(peerMsg("r", uint16(arg%8)-2+tr.nr, uint16(arg>>3)), now)
			case 2:
				out, _ = tr.Receive(zlb(0, tr.una+uint16(arg%6)), now)
			case 3:
				now = now.Add(time.Duration(arg) * 20 * time.Millisecond)
				out, _ = tr.Tick(now)
			}
			for _, d := range out.Deliver {
				if h := hdr(t, d); h.Ns != next {
					t.Fatalf("delivered Ns %d, want %d", h.Ns, next)
				}
				next++
			}
			if s := tr.State(); s.Unacked > 3 {
				t.Fatalf("%d in flight", s.Unacked)
			}
		}
	})
}

func BenchmarkTransportExchange(b *testing.B) {
	a := NewTransport(TransportConfig{})
	msg := hello("bench")
	ack := make([]byte, HeaderLen)
	b.ReportAllocs()
	now := t0
	for b.Loop() {
		out, err := a.Send(msg, now)
		if err != nil || len(out.Transmit) != 1 {
			b.Fatal(err)
		}
		h, _ := ParseHeader(out.Transmit[0])
		a.Receive(AppendZLB(ack, V2, 1, 0, h.Ns+1), now)
	}
}
