package datapath

import (
	"context"
	"testing"

	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/encap"
	"github.com/ul2tp/ul2tp/reorder"
)

// drain returns the events waiting for sub.
func drain(sub *event.Subscriber) []event.Event {
	var got []event.Event
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		e, ok := sub.Next(ctx)
		if !ok {
			return got
		}
		got = append(got, e)
	}
}

// TestDropEvents checks that drops make events with their reason, one per
// session and reason while they come faster than event.Every, the next
// one carrying the count of the suppressed ones.
func TestDropEvents(t *testing.T) {
	sock, s, _ := testSession(t, encap.EncapUDP, "", "55667788", encap.L2SpecDefault)
	hub := event.NewHub(nil)
	sock.events = hub
	sub := hub.Subscribe(16)
	defer sub.Close()
	r := newReceiver(sock)
	d := sock.demux.Load()
	peer := s.tunnel.remote
	bad := packet(encap.EncapUDP, "55667789", encap.L2SpecDefault, 101, frame60)
	for range 5 {
		receiveOne(r, d, bad, peer, false)
	}
	receiveOne(r, d, packet(encap.EncapUDP, "55667788", encap.L2SpecDefault, 999, frame60), peer, false)
	got := drain(sub)
	if len(got) != 2 {
		t.Fatalf("events %+v, want a cookie-mismatch and an unknown-session drop", got)
	}
	if e := got[0]; e.Kind != event.Drop || e.Reason != event.CookieMismatch || e.Count != 1 || e.TunnelID != 1 || e.SessionID != 101 {
		t.Errorf("first event %+v", e)
	}
	if e := got[1]; e.Kind != event.Drop || e.Reason != event.UnknownSession || e.TunnelID != 1 || e.SessionID != 999 {
		t.Errorf("second event %+v", e)
	}
	// A second later, the next drop reports itself and the four
	// suppressed.
	s.limits[event.CookieMismatch].Reset()
	receiveOne(r, d, bad, peer, false)
	got = drain(sub)
	if len(got) != 1 || got[0].Reason != event.CookieMismatch || got[0].Count != 5 {
		t.Fatalf("events after a second %+v, want one cookie-mismatch with count 5", got)
	}
}

// TestSeqEvents checks the sequencing events: a discard, a resync, and
// send_seq following the peer.
func TestSeqEvents(t *testing.T) {
	sock, s, _ := testSession(t, encap.EncapUDP, "", "", encap.L2SpecDefault)
	hub := event.NewHub(nil)
	sock.events = hub
	sub := hub.Subscribe(64)
	defer sub.Close()
	s.seq = reorder.New[rxItem](reorder.Config{})
	r := newReceiver(sock)
	d := sock.demux.Load()
	for _, ns := range []uint32{0, 10, 11, 12, 13, 14, 15} {
		receiveOne(r, d, seqPacket(encap.EncapUDP, "", encap.L2SpecDefault, 101, frame60, ns, true), s.tunnel.remote, false)
	}
	var sendSeq, discard, resync int
	for _, e := range drain(sub) {
		switch e.Reason {
		case event.SendSeq:
			sendSeq++
			if e.Kind != event.Seq || e.Detail != "send_seq on, following the peer" {
				t.Errorf("send-seq event %+v", e)
			}
		case event.SeqDiscard:
			discard++
			if e.Kind != event.Drop || e.Detail != "out of sequence" {
				t.Errorf("seq-discard event %+v", e)
			}
		case event.Resync:
			resync++
		default:
			t.Errorf("unexpected event %+v", e)
		}
	}
	if sendSeq != 1 || discard != 1 || resync != 1 {
		t.Errorf("send-seq %d, seq-discard %d, resync %d events; want one each", sendSeq, discard, resync)
	}
}

// cookieDrop is a session with a subscriber listening to its events and a
// packet it drops for its cookie, with frame bytes of payload.
type cookieDrop struct {
	s   *Session
	hub *event.Hub
	r   *receiver
	d   *demux
	pkt []byte
}

func newCookieDrop(tb testing.TB, frame int) *cookieDrop {
	sock, s, _ := testSession(tb, encap.EncapUDP, "", "0011223344556677", encap.L2SpecDefault)
	hub := event.NewHub(nil)
	sock.events = hub
	sub := hub.Subscribe(1)
	tb.Cleanup(sub.Close)
	pkt := packet(encap.EncapUDP, "0011223344556678", encap.L2SpecDefault, 101, make([]byte, frame))
	return &cookieDrop{s: s, hub: hub, r: newReceiver(sock), d: sock.demux.Load(), pkt: pkt}
}

func (c *cookieDrop) deliver() { c.r.deliver(c.d, c.pkt, c.s.tunnel.remote, false, encap.EncapUDP) }

// BenchmarkDeliverDrop is the receive path of a packet dropped for its
// cookie with a subscriber listening: it allocates nothing.
func BenchmarkDeliverDrop(b *testing.B) {
	c := newCookieDrop(b, 1400)
	b.ReportAllocs()
	for b.Loop() {
		c.deliver()
	}
	if c.s.Stats().RxCookieDiscards == 0 {
		b.Fatal("no drops")
	}
}

// TestDeliverDropAllocs checks the drop path with a subscriber allocates
// nothing, events let through included.
func TestDeliverDropAllocs(t *testing.T) {
	c := newCookieDrop(t, 100)
	if n := testing.AllocsPerRun(100, func() {
		c.s.limits[event.CookieMismatch].Reset() // every drop makes an event
		c.deliver()
	}); n != 0 {
		t.Fatalf("%v allocations per drop", n)
	}
	if c.hub.Dropped() == 0 {
		t.Fatal("the events did not reach the hub")
	}
}
