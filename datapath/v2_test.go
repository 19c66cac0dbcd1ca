package datapath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/datapath/conn"
	"github.com/ul2tp/ul2tp/datapath/offload"
	"github.com/ul2tp/ul2tp/encap"
	"github.com/ul2tp/ul2tp/reorder"
)

var v2Peer = netip.MustParseAddrPort("10.9.0.2:1701")

// testV2Session builds an L2TPv2 tunnel (ours 1, the peer's 2) with one
// session (ours 101, the peer's 201) and a demux table for it, without
// sockets.
func testV2Session(t testing.TB, pl Payload) (*socket, *Session) {
	t.Helper()
	tc := TunnelConfig{Version: 2, ID: 1, PeerID: 2, Encap: encap.EncapUDP, Remote: v2Peer.Addr()}
	if err := tc.Check(); err != nil {
		t.Fatal(err)
	}
	tun := &Tunnel{cfg: tc, remote: tc.remoteAddrPort(), sessions: map[uint32]*Session{}}
	cfg := SessionConfig{TunnelID: 1, ID: 101, PeerID: 201, Payload: pl}
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	s := &Session{cfg: cfg, tunnel: tun, payload: pl,
		seq: reorder.New[rxItem](reorder.Config{Max: reorder.MaxV2})}
	s.packets, _ = pl.(PacketPayload)
	s.maxFrame.Store(1500)
	tun.sessions[101] = s
	sock := &socket{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tun.sock = sock
	sock.rebuild(&Plane{tunnels: map[uint32]*Tunnel{1: tun}})
	return sock, s
}

// v2Packet builds an L2TPv2 data packet with h's fields and frame.
func v2Packet(t testing.TB, h encap.V2Header, frame []byte) []byte {
	t.Helper()
	b := make([]byte, encap.V2HeaderLen(h.Flags, h.OffsetSize)+len(frame))
	n, err := encap.EncodeV2(b, &h, len(frame))
	if err != nil {
		t.Fatal(err)
	}
	copy(b[n:], frame)
	return b
}

// TestV2DeliverFlags sends a data packet with each combination of the L,
// S, O and P bits: each frame reaches the session's Payload whole.
func TestV2DeliverFlags(t *testing.T) {
	rec := &PayloadRecorder{}
	sock, s := testV2Session(t, rec)
	d := sock.demux.Load()
	var want [][]byte
	ns := uint16(0)
	for i := 0; i < 16; i++ {
		h := encap.V2Header{TunnelID: 1, SessionID: 101, OffsetSize: uint16(i % 3)}
		for bit, f := range []uint16{encap.V2FlagL, encap.V2FlagS, encap.V2FlagO, encap.V2FlagP} {
			if i&(1<<bit) != 0 {
				h.Flags |= f
			}
		}
		if h.Flags&encap.V2FlagS != 0 {
			h.Ns, h.Nr = ns, 0x7777 // Nr is reserved in data messages: ignored
			ns++
		}
		frame := append([]byte{0xff, 0x03, 0xc0, 0x21, byte(i)}, bytes.Repeat([]byte{byte(i)}, i)...)
		want = append(want, frame)
		pkt := v2Packet(t, h, frame)
		if h.Flags&encap.V2FlagL != 0 {
			pkt = append(pkt, 0xee, 0xee) // padding after Length is not the frame's
		}
		receiveOne(newReceiver(sock), d, pkt, v2Peer, false)
	}
	got, n := rec.Frames()
	if n != 16 || len(got) != 16 {
		t.Fatalf("delivered %d frames, want 16", n)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d: got %x, want %x", i, got[i], want[i])
		}
	}
	var bytesWant uint64
	for _, f := range want {
		bytesWant += uint64(len(f))
	}
	if st := s.Stats(); st.RxPackets != 16 || st.RxBytes != bytesWant || st.RxErrors != 0 || st.RxInvalid != 0 {
		t.Errorf("session stats %+v", st)
	}
	if st := s.tunnel.Stats(); st.RxPackets != 16 || st.RxBytes != bytesWant {
		t.Errorf("tunnel stats %+v", st)
	}
}

// TestV2DeliverDrops: packets for no session of the peer are counted on
// its tunnel, from no peer on the socket, bad headers as invalid.
func TestV2DeliverDrops(t *testing.T) {
	rec := &PayloadRecorder{}
	sock, s := testV2Session(t, rec)
	d := sock.demux.Load()
	frame := []byte{0xff, 0x03, 0x00, 0x21, 0x45}
	send := func(pkt []byte, from netip.AddrPort, trunc bool) {
		receiveOne(newReceiver(sock), d, pkt, from, trunc)
	}
	send(v2Packet(t, encap.V2Header{TunnelID: 1, SessionID: 999}, frame), v2Peer, false) // unknown session
	send(v2Packet(t, encap.V2Header{TunnelID: 7, SessionID: 101}, frame), v2Peer, false) // unknown tunnel
	send(v2Packet(t, encap.V2Header{TunnelID: 1, SessionID: 101}, nil), v2Peer, false)   // no frame
	send([]byte{0x00, 0x02, 0x00, 0x01}, v2Peer, false)                                  // truncated
	send(v2Packet(t, encap.V2Header{TunnelID: 1, SessionID: 101}, frame), v2Peer, true)  // oversized
	other := netip.MustParseAddrPort("10.9.0.2:1702")
	send(v2Packet(t, encap.V2Header{TunnelID: 1, SessionID: 101}, frame), other, false) // another port
	if _, n := rec.Frames(); n != 0 {
		t.Fatalf("%d frames delivered", n)
	}
	if st := s.tunnel.Stats(); st.RxInvalid != 4 {
		t.Errorf("tunnel rx_invalid %d, want 4 (unknown session, unknown tunnel, truncated, oversized)", st.RxInvalid)
	}
	if st := s.Stats(); st.RxInvalid != 1 || st.RxErrors != 1 {
		t.Errorf("session rx_invalid %d rx_errors %d, want 1 and 1", st.RxInvalid, st.RxErrors)
	}
	if got := sock.unmatched.Load(); got != 1 {
		t.Errorf("unmatched %d, want 1", got)
	}
}

// TestV2Sequencing: with recv_seq on, packets without Ns are dropped, and
// ones out of order wait for the gap within the reorder timeout; Ns wraps
// at 16 bits.
func TestV2Sequencing(t *testing.T) {
	rec := &PayloadRecorder{}
	sock, s := testV2Session(t, rec)
	s.seq.Configure(reorder.Config{RecvSeq: true, Timeout: time.Hour})
	d := sock.demux.Load()
	r := newReceiver(sock)
	send := func(ns uint16, seq bool, b byte) {
		h := encap.V2Header{TunnelID: 1, SessionID: 101, Ns: ns}
		if seq {
			h.Flags = encap.V2FlagS
		}
		receiveOne(r, d, v2Packet(t, h, []byte{b}), v2Peer, false)
	}
	send(0xfffe, true, 1)
	send(0, true, 3) // after the wrap: waits for 0xffff
	send(7, false, 9)
	send(0xffff, true, 2)
	got, _ := rec.Frames()
	if !bytes.Equal(bytes.Join(got, nil), []byte{1, 2, 3}) {
		t.Fatalf("delivered %x, want 01 02 03", got)
	}
	if st := s.Stats(); st.RxSeqDiscards != 1 {
		t.Errorf("rx_seq_discards %d, want 1 (no Ns)", st.RxSeqDiscards)
	}
}

// TestControlHandoff: T-bit packets from known and unknown peers go to
// the control queue, L2TPv2 and v3 alike; data from unknown peers stays
// unmatched; a full queue drops and counts without blocking.
func TestControlHandoff(t *testing.T) {
	sock, _ := testV2Session(t, &PayloadRecorder{})
	local := netip.MustParseAddrPort("10.9.0.1:1701")
	q := newControlQueue(local, 2)
	sock.ctrl.Store(q)
	d := sock.demux.Load()
	sccrq := []byte{0xc8, 0x02, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
	v3ctl := []byte{0xc8, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
	stranger := netip.MustParseAddrPort("192.0.2.7:40000")
	r := newReceiver(sock)
	receiveOne(r, d, sccrq, stranger, false)
	receiveOne(r, d, v3ctl, v2Peer, false)
	receiveOne(r, d, v2Packet(t, encap.V2Header{TunnelID: 1, SessionID: 101}, []byte{1}), stranger, false)
	done := make(chan struct{})
	go func() { // the queue is full: must not block
		receiveOne(r, d, sccrq, v2Peer, false)
		close(done)
	}()
	<-done
	for i, want := range []struct {
		from netip.AddrPort
		data []byte
	}{{stranger, sccrq}, {v2Peer, v3ctl}} {
		p := <-q.ch
		if p.From != want.from || p.Local != local || !bytes.Equal(p.Data, want.data) {
			t.Errorf("packet %d: from %v local %v data %x", i, p.From, p.Local, p.Data)
		}
		p.Release()
		p.Release() // harmless
		if p.Data != nil {
			t.Error("Data kept after Release")
		}
	}
	st := fakeSockStats(sock)
	if st.ControlPackets != 2 || st.ControlQueueDrops != 1 || st.Unmatched != 1 {
		t.Errorf("socket stats %+v, want 2 control packets, 1 drop, 1 unmatched", st)
	}
	q.close()
	receiveOne(r, d, sccrq, v2Peer, false) // after close: dropped, no panic
	if got := fakeSockStats(sock).ControlQueueDrops; got != 2 {
		t.Errorf("drops after close %d, want 2", got)
	}
}

// fakeSockStats is socket.stats for a socket without a conn.
func fakeSockStats(s *socket) SocketStats {
	return SocketStats{Unmatched: s.unmatched.Load(), ControlPackets: s.ctrlPackets.Load(), ControlQueueDrops: s.ctrlDrops.Load()}
}

// TestControlWithoutListener: with no Listener, control packets are
// dropped as before (counted only from unknown peers).
func TestControlWithoutListener(t *testing.T) {
	sock, _ := testV2Session(t, &PayloadRecorder{})
	d := sock.demux.Load()
	ctl := []byte{0xc8, 0x02, 0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
	receiveOne(newReceiver(sock), d, ctl, v2Peer, false)
	receiveOne(newReceiver(sock), d, ctl, netip.MustParseAddrPort("192.0.2.7:1"), false)
	if st := fakeSockStats(sock); st.Unmatched != 1 || st.ControlPackets != 0 {
		t.Errorf("socket stats %+v", st)
	}
}

func TestV2Config(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  TunnelConfig
		ok   bool
	}{
		{"ok", TunnelConfig{Version: 2, ID: 65535, PeerID: 1, Encap: encap.EncapUDP, Remote: v2Peer.Addr()}, true},
		{"id too big", TunnelConfig{Version: 2, ID: 65536, PeerID: 1, Encap: encap.EncapUDP, Remote: v2Peer.Addr()}, false},
		{"peer id too big", TunnelConfig{Version: 2, ID: 1, PeerID: 1 << 16, Encap: encap.EncapUDP, Remote: v2Peer.Addr()}, false},
		{"over ip", TunnelConfig{Version: 2, ID: 1, PeerID: 1, Encap: encap.EncapIP, Remote: v2Peer.Addr()}, false},
		{"version 4", TunnelConfig{Version: 4, ID: 1, PeerID: 1, Encap: encap.EncapUDP, Remote: v2Peer.Addr()}, false},
		{"v3 big id", TunnelConfig{Version: 3, ID: 1 << 20, PeerID: 1, Encap: encap.EncapUDP, Remote: v2Peer.Addr()}, true},
	} {
		if err := tc.cfg.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	pl := &PayloadRecorder{}
	for _, tc := range []struct {
		name string
		cfg  SessionConfig
		ok   bool
	}{
		{"ok", SessionConfig{TunnelID: 1, ID: 2, PeerID: 3, Payload: pl, SendSeq: true, RecvSeq: true}, true},
		{"id too big", SessionConfig{TunnelID: 1, ID: 1 << 16, PeerID: 3, Payload: pl}, false},
		{"name", SessionConfig{TunnelID: 1, ID: 2, PeerID: 3, Payload: pl, Name: "ppp0"}, false},
		{"l2spec", SessionConfig{TunnelID: 1, ID: 2, PeerID: 3, Payload: pl, L2Spec: encap.L2SpecDefault}, false},
	} {
		if err := tc.cfg.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// newLoopPlane makes a Plane with a Listener on 127.0.0.1 (a free port).
func newLoopPlane(t testing.TB) (*Plane, *Listener) {
	t.Helper()
	p := New(slog.New(slog.NewTextHandler(io.Discard, nil)), Options{SocketBuffer: -1})
	t.Cleanup(func() { p.Close() })
	l, err := p.Listen(ListenConfig{Local: netip.MustParseAddrPort("127.0.0.1:0"), UDPCsum: true, QueueLen: 4})
	if err != nil {
		t.Fatalf("no loopback socket: %v", err)
	}
	return p, l
}

// addV2 adds an L2TPv2 tunnel and session to p toward the peer's
// Listener address.
func addV2(t testing.TB, p *Plane, l *Listener, peer netip.AddrPort, tid, ptid, sid, psid uint32, pl Payload) *Session {
	t.Helper()
	_, err := p.AddTunnel(TunnelConfig{Version: 2, ID: tid, PeerID: ptid, Encap: encap.EncapUDP,
		Local: l.Local().Addr(), UDPSport: l.Local().Port(), Remote: peer.Addr(), UDPDport: peer.Port()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.AddSession(SessionConfig{TunnelID: tid, ID: sid, PeerID: psid, Payload: pl})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestV2Send: Send writes a data header ParseV2 reads back, with Ns
// counting up when send_seq is on.
func TestV2Send(t *testing.T) {
	p, l := newLoopPlane(t)
	peer, err := conn.Listen(conn.UDP, netip.MustParseAddrPort("127.0.0.1:0"), conn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	s := addV2(t, p, l, peer.LocalAddr(), 10, 20, 30, 40, &PayloadRecorder{})
	if s.IfName() != "" {
		t.Errorf("IfName %q, want none", s.IfName())
	}
	b := peer.NewBatch(1)
	b.Msgs[0].Buf = make([]byte, 2048)
	recv := func() (encap.V2Header, []byte) {
		t.Helper()
		if _, err := peer.Recv(b); err != nil {
			t.Fatal(err)
		}
		m := b.Msgs[0]
		if m.Addr != l.Local() {
			t.Fatalf("from %v, want %v", m.Addr, l.Local())
		}
		pkt := m.Buf[m.Off:m.N]
		h, err := encap.ParseV2(pkt)
		if err != nil {
			t.Fatal(err)
		}
		return h, pkt[h.PayloadOffset:]
	}
	frame := []byte{0xff, 0x03, 0xc0, 0x21, 1, 2, 3, 4}
	if err := s.Send(frame); err != nil {
		t.Fatal(err)
	}
	if h, f := recv(); h.Flags != 0 || h.TunnelID != 20 || h.SessionID != 40 || !bytes.Equal(f, frame) {
		t.Fatalf("got %+v %x", h, f)
	}
	on := true
	if err := p.ModifySession(10, 30, SessionModify{SendSeq: &on}); err != nil {
		t.Fatal(err)
	}
	for want := uint16(0); want < 3; want++ {
		if err := s.Send(frame); err != nil {
			t.Fatal(err)
		}
		if h, f := recv(); h.Flags != encap.V2FlagS || h.Ns != want || h.Nr != 0 || !bytes.Equal(f, frame) {
			t.Fatalf("got %+v %x, want Ns %d", h, f, want)
		}
	}
	if st := s.Stats(); st.TxPackets != 4 || st.TxBytes != 4*uint64(len(frame)) {
		t.Errorf("stats %+v", st)
	}
	if err := p.DelSession(10, 30); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(frame); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Send after delete: %v", err)
	}
}

// TestV2Loopback runs two Planes on 127.0.0.1: control messages go both
// ways through the Listeners, frames both ways between two sessions.
func TestV2Loopback(t *testing.T) {
	pa, la := newLoopPlane(t)
	pb, lb := newLoopPlane(t)
	// A control message from a peer the plane does not know yet.
	if err := la.Send(lb.Local(), []byte{0xc8, 0x02, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	pkt := <-lb.Packets()
	if pkt.From != la.Local() || pkt.Local != lb.Local() || pkt.Data[0] != 0xc8 {
		t.Fatalf("got %x from %v on %v", pkt.Data, pkt.From, pkt.Local)
	}
	pkt.Release()
	if err := lb.Send(la.Local(), []byte{0xc8, 0x02, 0, 12, 0, 5, 0, 0, 0, 0, 0, 1}); err != nil {
		t.Fatal(err)
	}
	pkt = <-la.Packets()
	if pkt.From != lb.Local() || pkt.Data[5] != 5 {
		t.Fatalf("got %x from %v", pkt.Data, pkt.From)
	}
	pkt.Release()

	ra, rb := &chanPayload{c: make(chan []byte, 4)}, &chanPayload{c: make(chan []byte, 4)}
	sa := addV2(t, pa, la, lb.Local(), 1, 2, 11, 22, ra)
	sb := addV2(t, pb, lb, la.Local(), 2, 1, 22, 11, rb)
	if err := sa.Send([]byte("from a")); err != nil {
		t.Fatal(err)
	}
	if got := <-rb.c; string(got) != "from a" {
		t.Fatalf("b got %q", got)
	}
	if err := sb.Send([]byte("from b")); err != nil {
		t.Fatal(err)
	}
	if got := <-ra.c; string(got) != "from b" {
		t.Fatalf("a got %q", got)
	}
	// Control still flows with tunnels on the socket.
	if err := la.Send(lb.Local(), []byte{0xc8, 0x02, 0, 12, 0, 2, 0, 0, 0, 1, 0, 1}); err != nil {
		t.Fatal(err)
	}
	pkt = <-lb.Packets()
	pkt.Release()
	if n := len(pa.Sessions(0)); n != 1 || pa.Tunnels()[0].Version() != 2 {
		t.Errorf("plane a: %d sessions, version %d", n, pa.Tunnels()[0].Version())
	}
	if st := sb.Stats(); st.RxPackets != 1 || st.TxPackets != 1 {
		t.Errorf("b stats %+v", st)
	}
	if st := lb.Stats(); st.ControlPackets != 2 || st.Unmatched != 0 {
		t.Errorf("b socket stats %+v", st)
	}
	// Closing the plane closes its Listener's queue.
	pb.Close()
	if _, ok := <-lb.Packets(); ok {
		t.Error("Packets not closed by Plane.Close")
	}
	lb.Close()
}

// TestListenShare: a second Listener on a socket is refused; an L2TPv2
// tunnel needs a Listener; deleting the tunnel leaves the Listener's
// socket open, closing the Listener after the tunnel closes it.
func TestListenShare(t *testing.T) {
	p, l := newLoopPlane(t)
	if _, err := p.Listen(ListenConfig{Local: l.Local(), UDPCsum: true}); !errors.Is(err, ErrExists) {
		t.Errorf("second Listen: %v", err)
	}
	_, err := p.AddTunnel(TunnelConfig{Version: 2, ID: 1, PeerID: 1, Encap: encap.EncapUDP,
		Local: l.Local().Addr(), UDPSport: l.Local().Port() + 1, Remote: l.Local().Addr()})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "local" {
		t.Errorf("v2 tunnel without a Listener: %v", err)
	}
	s := addV2(t, p, l, netip.MustParseAddrPort("127.0.0.1:9"), 1, 1, 1, 1, &PayloadRecorder{})
	if _, err := p.AddSession(SessionConfig{TunnelID: 1, ID: 2, PeerID: 2}); err == nil {
		t.Error("a session without a Payload in an L2TPv2 tunnel was added")
	}
	if err := p.DelTunnel(1); err != nil {
		t.Fatal(err)
	}
	if err := s.Send([]byte{1}); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("Send after tunnel delete: %v", err)
	}
	if err := l.Send(l.Local(), []byte{0xc8, 2, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	pkt := <-l.Packets()
	pkt.Release()
	l.Close()
	if _, ok := <-l.Packets(); ok {
		t.Error("Packets open after Close")
	}
	if err := l.Send(l.Local(), []byte{1}); err == nil {
		t.Error("Send on a closed Listener's socket")
	}
}

// chanPayload passes copies of frames to a channel, for tests across
// goroutines.
type chanPayload struct{ c chan []byte }

func (p *chanPayload) Deliver(f []byte) { p.c <- append([]byte(nil), f...) }

// countPayload counts frames, for benchmarks.
type countPayload struct{ n int }

func (p *countPayload) Deliver(f []byte) { p.n += len(f) }

func BenchmarkV2Receive(b *testing.B) {
	pl := &countPayload{}
	sock, _ := testV2Session(b, pl)
	d := sock.demux.Load()
	r := newReceiver(sock)
	pkt := v2Packet(b, encap.V2Header{Flags: encap.V2FlagS | encap.V2FlagL, TunnelID: 1, SessionID: 101},
		bytes.Repeat([]byte{0x21}, 1400))
	msgs := []conn.Msg{{Buf: pkt, N: len(pkt), Addr: v2Peer}}
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for i := 0; i < b.N; i++ {
		pkt[8], pkt[9] = byte(i>>8), byte(i) // Ns in order
		r.batch(d, msgs)
	}
	if pl.n != 1400*b.N {
		b.Fatalf("delivered %d bytes", pl.n)
	}
}

// seqSessionToSink makes an L2TPv2 session with send_seq on whose peer is
// a socket on loopback that drains what it gets, for the send benchmarks.
func seqSessionToSink(b *testing.B) *Session {
	b.Helper()
	p, l := newLoopPlane(b)
	peer, err := conn.Listen(conn.UDP, netip.MustParseAddrPort("127.0.0.1:0"), conn.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { peer.Close() })
	go func() { // drain
		rb := peer.NewBatch(32)
		for i := range rb.Msgs {
			rb.Msgs[i].Buf = make([]byte, 2048)
		}
		for {
			if _, err := peer.Recv(rb); err != nil {
				return
			}
		}
	}()
	s := addV2(b, p, l, peer.LocalAddr(), 1, 2, 3, 4, &countPayload{})
	on := true
	if err := p.ModifySession(1, 3, SessionModify{SendSeq: &on}); err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkV2Send(b *testing.B) {
	s := seqSessionToSink(b)
	frame := bytes.Repeat([]byte{0x21}, 1400)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		if err := s.Send(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// TestV2SendSegments: SendSegments sends each frame as Send would, in
// order: its data header (Ns counting up under sequencing) then the
// frame's header bytes and payload; equal frames may share a GSO send,
// which the peer receives as separate datagrams; stats count frames.
func TestV2SendSegments(t *testing.T) {
	p, l := newLoopPlane(t)
	peer, err := conn.Listen(conn.UDP, netip.MustParseAddrPort("127.0.0.1:0"), conn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	s := addV2(t, p, l, peer.LocalAddr(), 10, 20, 30, 40, &PayloadRecorder{})
	b := peer.NewBatch(1)
	b.Msgs[0].Buf = make([]byte, 4096)
	t.Logf("UDP GSO on the tunnel socket: %v", s.tunnel.sock.c.GSO())
	recv := func() (encap.V2Header, []byte) {
		t.Helper()
		if _, err := peer.Recv(b); err != nil {
			t.Fatal(err)
		}
		m := b.Msgs[0]
		pkt := m.Buf[m.Off:m.N]
		h, err := encap.ParseV2(pkt)
		if err != nil {
			t.Fatal(err)
		}
		return h, pkt[h.PayloadOffset:]
	}
	const hlen = 24 // PPP and "IP" headers in each stride
	const stride = encap.V2MaxDataHeaderLen + hlen
	send := func(sizes []int, seqOn bool) {
		t.Helper()
		before := s.Stats()
		hdrs := make([]byte, len(sizes)*stride)
		payloads := make([][]byte, len(sizes))
		var want [][]byte
		total := 0
		for i, n := range sizes {
			h := hdrs[i*stride+encap.V2MaxDataHeaderLen : (i+1)*stride]
			for j := range h {
				h[j] = byte(i)
			}
			payloads[i] = bytes.Repeat([]byte{byte(i) + 0x80}, n)
			want = append(want, append(append([]byte(nil), h...), payloads[i]...))
			total += hlen + n
		}
		if err := s.SendSegments(hdrs, stride, payloads); err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			h, f := recv()
			if h.TunnelID != 20 || h.SessionID != 40 || (h.Flags&encap.V2FlagS != 0) != seqOn {
				t.Fatalf("frame %d: header %+v", i, h)
			}
			if seqOn && h.Ns != uint16(i) {
				t.Fatalf("frame %d: Ns %d", i, h.Ns)
			}
			if !bytes.Equal(f, w) {
				t.Fatalf("frame %d: %d bytes, want %d", i, len(f), len(w))
			}
		}
		st := s.Stats()
		if st.TxPackets-before.TxPackets != uint64(len(sizes)) || st.TxBytes-before.TxBytes != uint64(total) {
			t.Fatalf("stats %+v after %+v: want %d frames, %d bytes more", st, before, len(sizes), total)
		}
	}
	// Equal frames, a shorter last, then a longer one after a short one.
	sizes := []int{1000, 1000, 1000, 999, 1000, 10, 1200, 1200}
	send(sizes, false)
	on := true
	if err := p.ModifySession(10, 30, SessionModify{SendSeq: &on}); err != nil {
		t.Fatal(err)
	}
	// More than one batch of messages: 130 frames of varying size.
	many := make([]int, 130)
	for i := range many {
		many[i] = 100 + i%3
	}
	send(many, true)
	if err := s.SendSegments(make([]byte, 10), stride, make([][]byte, 1)); err == nil {
		t.Error("SendSegments took headers shorter than its frames")
	}
	if err := p.DelSession(10, 30); err != nil {
		t.Fatal(err)
	}
	if err := s.SendSegments(make([]byte, stride), stride, [][]byte{{1}}); !errors.Is(err, ErrSessionClosed) {
		t.Errorf("SendSegments after delete: %v", err)
	}
}

func BenchmarkV2SendSegments(b *testing.B) {
	s := seqSessionToSink(b)
	const segs, stride = 44, encap.V2MaxDataHeaderLen + 4 + 52
	hdrs := make([]byte, segs*stride)
	payloads := make([][]byte, segs)
	for i := range payloads {
		payloads[i] = make([]byte, 1388)
	}
	b.ReportAllocs()
	b.SetBytes(segs * (stride - encap.V2MaxDataHeaderLen + 1388))
	for i := 0; i < b.N; i++ {
		if err := s.SendSegments(hdrs, stride, payloads); err != nil {
			b.Fatal(err)
		}
	}
}

// packetRecorder is a PacketPayload that records, in order, the frames
// delivered and the packets written (joined, behind their vnet header).
type packetRecorder struct {
	events []string
	writes [][]byte
}

func (p *packetRecorder) Deliver(f []byte) {
	p.events = append(p.events, fmt.Sprintf("deliver %x", f[:2]))
}

func (p *packetRecorder) PacketOffset(f []byte) int {
	proto, off, err := encap.ParsePPP(f)
	if err != nil || proto != encap.PPPIPv4 && proto != encap.PPPIPv6 {
		return -1
	}
	return off
}

func (p *packetRecorder) WritePacket(parts [][]byte) error {
	var b []byte
	for _, x := range parts {
		b = append(b, x...)
	}
	p.writes = append(p.writes, b)
	p.events = append(p.events, fmt.Sprintf("write %d", len(parts)-2))
	return nil
}

// tcpSegment is an IPv4 TCP segment (ACK) with seq and payload, checksums
// right, behind the PPP protocol field 0x21.
func tcpSegment(seq uint32, payload []byte) []byte {
	p := make([]byte, 1+40+len(payload))
	p[0] = 0x21
	ip := p[1:21]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(40+len(payload)))
	ip[6], ip[8], ip[9] = 0x40, 64, 6
	copy(ip[12:], []byte{10, 99, 0, 1, 10, 99, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], offload.Checksum(ip, 0))
	tcp := p[21:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12], tcp[13] = 5<<4, 0x10
	copy(tcp[20:], payload)
	binary.BigEndian.PutUint16(tcp[16:], offload.Checksum(tcp, offload.Sum(ip[12:20], 0)+6+uint64(len(tcp))))
	return p
}

// TestV2CoalescePackets: the TCP segments of one flow in a receive batch
// reach a PacketPayload merged into one super-packet with a GSO header;
// other frames go to Deliver or pass through after the session's pending
// super-packet, so the session's frames keep their order.
func TestV2CoalescePackets(t *testing.T) {
	pl := &packetRecorder{}
	sock, s := testV2Session(t, pl)
	d := sock.demux.Load()
	r := newReceiver(sock)
	udp := append([]byte(nil), tcpSegment(0, make([]byte, 8))...)
	udp[1+9] = 17 // not TCP: passes through
	frames := [][]byte{
		tcpSegment(1000, bytes.Repeat([]byte{1}, 1000)),
		tcpSegment(2000, bytes.Repeat([]byte{2}, 1000)),
		tcpSegment(3000, bytes.Repeat([]byte{3}, 1000)),
		{0xc0, 0x21, 9, 1, 0, 4}, // LCP: to Deliver, after the above
		tcpSegment(4000, bytes.Repeat([]byte{4}, 1000)),
		udp,
	}
	var msgs []conn.Msg
	for _, f := range frames {
		pkt := v2Packet(t, encap.V2Header{TunnelID: 1, SessionID: 101}, f)
		msgs = append(msgs, conn.Msg{Buf: pkt, N: len(pkt), Addr: v2Peer})
	}
	r.batch(d, msgs)
	want := []string{"write 3", "deliver c021", "write 1", "write 0"} // parts less the vnet header and IP/TCP headers
	if fmt.Sprint(pl.events) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", pl.events, want)
	}
	h, err := offload.DecodeVnetHdr(pl.writes[0])
	if err != nil || h.GSOType != offload.GSOTCPv4 || h.GSOSize != 1000 || h.CsumStart != 20 {
		t.Fatalf("super-packet's vnet header %v (%v)", h, err)
	}
	if p := pl.writes[0][offload.VnetHdrLen:]; len(p) != 40+3000 || binary.BigEndian.Uint16(p[2:]) != 3040 {
		t.Fatalf("super-packet of %d bytes", len(p))
	}
	if !bytes.Equal(pl.writes[2][offload.VnetHdrLen:], udp[1:]) {
		t.Fatal("the UDP packet changed on its way")
	}
	if st := s.Stats(); st.RxPackets != 6 || st.RxCoalescedFrames != 1 || st.RxCoalescedSegments != 3 {
		t.Errorf("stats %+v", st)
	}
}

// countPackets is a PacketPayload that counts, for benchmarks.
type countPackets struct{ frames, writes int }

func (p *countPackets) Deliver([]byte) { p.frames++ }

func (p *countPackets) PacketOffset(f []byte) int {
	if len(f) > 1 && f[0] == 0x21 {
		return 1
	}
	return -1
}

func (p *countPackets) WritePacket([][]byte) error { p.writes++; return nil }

// BenchmarkV2CoalescePackets receives a batch of 32 TCP segments of one
// flow for a PacketPayload, which get merged into one super-packet.
func BenchmarkV2CoalescePackets(b *testing.B) {
	pl := &countPackets{}
	sock, _ := testV2Session(b, pl)
	d := sock.demux.Load()
	r := newReceiver(sock)
	var msgs []conn.Msg
	for i := range 32 {
		pkt := v2Packet(b, encap.V2Header{TunnelID: 1, SessionID: 101}, tcpSegment(uint32(1000+i*1400), make([]byte, 1400)))
		msgs = append(msgs, conn.Msg{Buf: pkt, N: len(pkt), Addr: v2Peer})
	}
	b.ReportAllocs()
	b.SetBytes(32 * 1400)
	for b.Loop() {
		r.batch(d, msgs)
	}
	if pl.writes == 0 || pl.frames != 0 {
		b.Fatalf("%d writes, %d frames delivered", pl.writes, pl.frames)
	}
}
