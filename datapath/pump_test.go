package datapath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/datapath/conn"
	"github.com/ul2tp/ul2tp/datapath/offload"
	"github.com/ul2tp/ul2tp/encap"
	"github.com/ul2tp/ul2tp/reorder"
)

// frameRecorder stands in for a TAP queue.
type frameRecorder struct {
	frames [][]byte
	keep   bool
	err    error
}

func (r *frameRecorder) Write(f []byte) error {
	if r.err != nil {
		return r.err
	}
	if r.keep {
		r.frames = append(r.frames, append([]byte(nil), f...))
	}
	return nil
}

func (r *frameRecorder) WriteParts(parts [][]byte) error {
	var f []byte
	for _, p := range parts {
		f = append(f, p...)
	}
	return r.Write(f)
}

// testSession builds a tunnel with one session and a demux table for it,
// without sockets or devices.
func testSession(t testing.TB, e encap.Encap, cookie, peerCookie string, l2 encap.L2Spec) (*socket, *Session, *frameRecorder) {
	t.Helper()
	c, err := encap.ParseCookie(cookie)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := encap.ParseCookie(peerCookie)
	if err != nil {
		t.Fatal(err)
	}
	tc := TunnelConfig{ID: 1, PeerID: 2, Encap: e, Remote: netip.MustParseAddr("10.9.0.2")}
	if err := tc.Check(); err != nil {
		t.Fatal(err)
	}
	tun := &Tunnel{cfg: tc, remote: tc.remoteAddrPort(), sessions: map[uint32]*Session{}}
	rec := &frameRecorder{}
	s := &Session{
		cfg:    SessionConfig{TunnelID: 1, ID: 101, PeerID: 201, Cookie: c, PeerCookie: pc, L2Spec: l2},
		tunnel: tun,
		tx:     encap.V3Layout{Encap: e, Cookie: c, L2Spec: l2},
		rx:     encap.V3Layout{Encap: e, Cookie: pc, L2Spec: l2},
		seq:    reorder.New[rxItem](reorder.Config{}),
	}
	s.out.Store(&tapWriter{rec})
	s.maxFrame.Store(1518)
	tun.sessions[101] = s
	sock := &socket{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if e == encap.EncapIP {
		sock.key.kind = conn.IP
	}
	p := &Plane{tunnels: map[uint32]*Tunnel{1: tun}}
	tun.sock = sock
	sock.rebuild(p)
	return sock, s, rec
}

// packet builds what the peer would send to session 101.
func packet(e encap.Encap, cookie string, l2 encap.L2Spec, sid uint32, frame []byte) []byte {
	return seqPacket(e, cookie, l2, sid, frame, 0, false)
}

func seqPacket(e encap.Encap, cookie string, l2 encap.L2Spec, sid uint32, frame []byte, ns uint32, seq bool) []byte {
	c, _ := encap.ParseCookie(cookie)
	l := encap.V3Layout{Encap: e, Cookie: c, L2Spec: l2}
	b := make([]byte, l.HeaderLen()+len(frame))
	n := l.Encode(b, sid, ns, seq)
	copy(b[n:], frame)
	return b
}

var frame60 = bytes.Repeat([]byte{0x5a}, 60)

// receiveOne hands r one received datagram, as a batch of one.
func receiveOne(r *receiver, d *demux, pkt []byte, from netip.AddrPort, truncated bool) {
	r.batch(d, []conn.Msg{{Buf: pkt, N: len(pkt), Addr: from, Truncated: truncated}})
}

func TestDeliverCounts(t *testing.T) {
	peer := netip.MustParseAddrPort("10.9.0.2:1701")
	for _, e := range []encap.Encap{encap.EncapUDP, encap.EncapIP} {
		if e == encap.EncapIP {
			peer = netip.AddrPortFrom(peer.Addr(), 0)
		}
		t.Run(e.String(), func(t *testing.T) {
			sock, s, rec := testSession(t, e, "11223344", "55667788", encap.L2SpecDefault)
			rec.keep = true
			d := sock.demux.Load()
			send := func(pkt []byte, from netip.AddrPort, trunc bool) {
				receiveOne(newReceiver(sock), d, append([]byte(nil), pkt...), from, trunc)
			}
			good := packet(e, "55667788", encap.L2SpecDefault, 101, frame60)
			send(good, peer, false)
			send(packet(e, "55667789", encap.L2SpecDefault, 101, frame60), peer, false) // wrong cookie
			send(packet(e, "55667788", encap.L2SpecDefault, 999, frame60), peer, false) // unknown session
			send(good[:5], peer, false)                                                 // truncated
			send(good, peer, true)                                                      // oversized
			send(packet(e, "55667788", encap.L2SpecDefault, 101, frame60[:10]), peer, false)
			other := netip.AddrPortFrom(netip.MustParseAddr("10.9.0.3"), peer.Port())
			send(good, other, false) // wrong source
			if e == encap.EncapUDP {
				bad := append([]byte(nil), good...)
				bad[1] = 2 // version 2
				send(bad, peer, false)
				send(good, netip.AddrPortFrom(peer.Addr(), 1702), false) // wrong source port
			}
			st, tst := s.Stats(), s.tunnel.Stats()
			if len(rec.frames) != 1 || !bytes.Equal(rec.frames[0], frame60) {
				t.Fatalf("delivered %d frames", len(rec.frames))
			}
			if st.RxPackets != 1 || st.RxBytes != 60 || tst.RxPackets != 1 || tst.RxBytes != 60 {
				t.Errorf("rx counters %+v, tunnel %+v", st, tst)
			}
			if st.RxCookieDiscards != 1 {
				t.Errorf("rx_cookie_discards %d, want 1", st.RxCookieDiscards)
			}
			// Session errors: wrong cookie and runt frame; over IP the
			// 5-byte packet carries a whole session id, so it is the
			// session's (truncated header) rather than the tunnel's.
			wantErrors, wantSessInvalid := uint64(2), uint64(1)
			wantInvalid := uint64(2) // unknown session, oversized
			wantUnmatched := uint64(1)
			if e == encap.EncapUDP {
				wantInvalid += 2 // truncated, version
				wantUnmatched++
			} else {
				wantErrors++
				wantSessInvalid++
			}
			if st.RxErrors != wantErrors || st.RxInvalid != wantSessInvalid {
				t.Errorf("session rx_errors %d rx_invalid %d, want %d and %d", st.RxErrors, st.RxInvalid, wantErrors, wantSessInvalid)
			}
			if tst.RxInvalid != wantInvalid {
				t.Errorf("tunnel rx_invalid %d, want %d", tst.RxInvalid, wantInvalid)
			}
			if got := sock.unmatched.Load(); got != wantUnmatched {
				t.Errorf("unmatched %d, want %d", got, wantUnmatched)
			}
		})
	}
}

func TestDeliverWriteError(t *testing.T) {
	sock, s, rec := testSession(t, encap.EncapUDP, "", "", encap.L2SpecNone)
	rec.err = errors.New("device down")
	buf := packet(encap.EncapUDP, "", encap.L2SpecNone, 101, frame60)
	receiveOne(newReceiver(sock), sock.demux.Load(), buf, s.tunnel.remote, false)
	// Counted as received by L2TP, then as an error when the TAP refused
	// it (the kernel counts the device's drop separately).
	if st := s.Stats(); st.RxErrors != 1 || st.RxPackets != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPrepare(t *testing.T) {
	_, s, _ := testSession(t, encap.EncapUDP, "11223344", "", encap.L2SpecDefault)
	x := &transmitter{s: s, b: &conn.Batch{Msgs: make([]conn.Msg, 1)}, off: Headroom,
		bufs: [][]byte{make([]byte, frameBufFor(1518))}, sizes: []int{60}}
	copy(x.bufs[0][Headroom:], frame60)
	if msgs, n := x.prepare(1); msgs != 1 || n != 60 {
		t.Fatalf("prepare: %d messages, %d bytes", msgs, n)
	}
	msgs := x.b.Msgs
	want := packet(encap.EncapUDP, "11223344", encap.L2SpecDefault, 201, frame60)
	if !bytes.Equal(msgs[0].Buf, want) || msgs[0].Addr != s.tunnel.remote {
		t.Fatalf("got %x to %v\nwant %x", msgs[0].Buf, msgs[0].Addr, want)
	}
	if &msgs[0].Buf[0] != &x.bufs[0][Headroom-s.tx.HeaderLen()] {
		t.Fatal("prepare copied the frame")
	}
}

// TestPrepareTruncated reads a frame that fills its buffer, as a TAP hands
// over a frame longer than the buffer (cut short, with the length read):
// it is counted as a transmit error and not sent, and the others are.
func TestPrepareTruncated(t *testing.T) {
	_, s, _ := testSession(t, encap.EncapUDP, "", "", encap.L2SpecNone)
	s.mtuReread.Store(nanotime())
	size := frameBufFor(1518)
	x := &transmitter{s: s, b: &conn.Batch{Msgs: make([]conn.Msg, 3)}, off: Headroom,
		bufs:  [][]byte{make([]byte, size), make([]byte, size), make([]byte, size)},
		sizes: []int{60, size - Headroom, 1518}}
	msgs, n := x.prepare(3)
	if msgs != 2 || n != 60+1518 {
		t.Fatalf("prepare: %d messages, %d bytes; want 2 and %d", msgs, n, 60+1518)
	}
	if got := len(x.b.Msgs[1].Buf) - s.tx.HeaderLen(); got != 1518 {
		t.Fatalf("second message carries %d bytes, want the third frame's 1518", got)
	}
	if st := s.Stats(); st.TxErrors != 1 || st.TxPackets != 0 {
		t.Fatalf("stats %+v: want one tx_error", st)
	}
}

// TestDeliverAfterDelete checks that the receiver's one-entry demux cache
// does not outlive the table it came from: once the session is gone from a
// rebuilt table, its packets are counted as invalid, not delivered.
func TestDeliverAfterDelete(t *testing.T) {
	for _, peerOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("peerOnly=%v", peerOnly), func(t *testing.T) { testDeliverAfterDelete(t, peerOnly) })
	}
}

// testDeliverAfterDelete deletes the session and rebuilds the whole table,
// or with peerOnly only the peer's session table, as DelSession does.
func testDeliverAfterDelete(t *testing.T, peerOnly bool) {
	sock, s, rec := testSession(t, encap.EncapUDP, "", "", encap.L2SpecNone)
	rec.keep = true
	r := newReceiver(sock)
	pkt := packet(encap.EncapUDP, "", encap.L2SpecNone, 101, frame60)
	receiveOne(r, sock.demux.Load(), pkt, s.tunnel.remote, false)
	delete(s.tunnel.sessions, 101)
	p := &Plane{tunnels: map[uint32]*Tunnel{1: s.tunnel}}
	if peerOnly {
		sock.rebuildPeer(p, s.tunnel.remote)
	} else {
		sock.rebuild(p)
	}
	receiveOne(r, sock.demux.Load(), pkt, s.tunnel.remote, false)
	if len(rec.frames) != 1 {
		t.Errorf("delivered %d frames, want 1", len(rec.frames))
	}
	if st, tst := s.Stats(), s.tunnel.Stats(); st.RxPackets != 1 || tst.RxInvalid != 1 {
		t.Errorf("session rx_packets %d, want 1; tunnel rx_invalid %d, want 1", st.RxPackets, tst.RxInvalid)
	}
}

func BenchmarkDeliver(b *testing.B) {
	sock, s, _ := testSession(b, encap.EncapUDP, "", "0011223344556677", encap.L2SpecDefault)
	pkt := packet(encap.EncapUDP, "0011223344556677", encap.L2SpecDefault, 101, make([]byte, 1400))
	d := sock.demux.Load()
	r := newReceiver(sock)
	b.ReportAllocs()
	b.SetBytes(1400)
	for i := 0; i < b.N; i++ {
		r.deliver(d, pkt, s.tunnel.remote, false, encap.EncapUDP)
	}
}

func BenchmarkPrepare(b *testing.B) {
	_, s, _ := testSession(b, encap.EncapUDP, "0011223344556677", "", encap.L2SpecDefault)
	const n = 32
	x := &transmitter{s: s, b: &conn.Batch{Msgs: make([]conn.Msg, n)}, off: Headroom,
		bufs: make([][]byte, n), sizes: make([]int, n)}
	for i := range x.bufs {
		x.bufs[i] = make([]byte, frameBufFor(1518))
		x.sizes[i] = 1400
	}
	b.ReportAllocs()
	b.SetBytes(n * 1400)
	for i := 0; i < b.N; i++ {
		x.prepare(n)
	}
}

func TestDeliverSequenced(t *testing.T) {
	sock, s, rec := testSession(t, encap.EncapUDP, "", "", encap.L2SpecDefault)
	rec.keep = true
	s.seq = reorder.New[rxItem](reorder.Config{Timeout: time.Second, RecvSeq: true})
	r := newReceiver(sock)
	d := sock.demux.Load()
	buf := make([]byte, 256)
	for _, ns := range []uint32{0, 2, 3, 1} {
		// The same receive buffer for every packet: a queued frame must
		// have been copied out of it.
		pkt := seqPacket(encap.EncapUDP, "", encap.L2SpecDefault, 101, bytes.Repeat([]byte{byte(ns)}, 60), ns, true)
		n := copy(buf, pkt)
		receiveOne(r, d, buf[:n], s.tunnel.remote, false)
	}
	// A packet without a sequence number on a recv_seq session.
	receiveOne(r, d, packet(encap.EncapUDP, "", encap.L2SpecDefault, 101, frame60), s.tunnel.remote, false)
	if len(rec.frames) != 4 {
		t.Fatalf("delivered %d frames", len(rec.frames))
	}
	for i, f := range rec.frames {
		if f[0] != byte(i) {
			t.Fatalf("frame %d carries %d", i, f[0])
		}
	}
	st := s.Stats()
	if st.RxPackets != 4 || st.RxOOSPackets != 1 || st.RxSeqDiscards != 1 || st.RxErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
	if !s.seq.SendSeq() {
		t.Fatal("did not start sending Ns after the peer did")
	}
}

func TestJoinRuns(t *testing.T) {
	a := netip.MustParseAddrPort("10.0.0.2:1701")
	b := netip.MustParseAddrPort("10.0.0.3:1701")
	type dg struct {
		n    int
		addr netip.AddrPort
	}
	for _, tc := range []struct {
		name string
		in   []dg
		want []string // per message: "GSO/count" or "1"
	}{
		{"equal", []dg{{100, a}, {100, a}, {100, a}}, []string{"100/3"}},
		{"shorter last", []dg{{100, a}, {100, a}, {60, a}, {100, a}}, []string{"100/3", "1"}},
		{"longer breaks", []dg{{60, a}, {100, a}, {100, a}}, []string{"1", "100/2"}},
		{"other peer", []dg{{100, a}, {100, b}, {100, b}}, []string{"1", "100/2"}},
		{"too long for the path", []dg{{1500, a}, {1500, a}}, []string{"1", "1"}},
		{"alone", []dg{{100, a}}, []string{"1"}},
		{"segment cap", func() []dg {
			v := make([]dg, maxGSOSegs+1)
			for i := range v {
				v[i] = dg{64, a}
			}
			return v
		}(), []string{"64/64", "1"}},
		{"byte cap", func() []dg {
			v := make([]dg, 50)
			for i := range v {
				v[i] = dg{1400, a}
			}
			return v
		}(), []string{"1400/46", "1400/4"}},
	} {
		x := &transmitter{s: &Session{}, b: &conn.Batch{Msgs: make([]conn.Msg, len(tc.in))}, parts: make([][]byte, 0, 256)}
		x.s.gsoMax.Store(1472)
		var total int
		for i, d := range tc.in {
			x.b.Msgs[i] = conn.Msg{Buf: make([]byte, d.n), Addr: d.addr}
			total += d.n
		}
		n := x.joinRuns(len(tc.in))
		var got []string
		var sum int
		for _, m := range x.b.Msgs[:n] {
			if m.GSOSize == 0 {
				got = append(got, "1")
			} else {
				got = append(got, fmt.Sprintf("%d/%d", m.GSOSize, len(m.Parts)))
			}
			sum += m.Len()
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || sum != total {
			t.Errorf("%s: got %v (%d bytes), want %v (%d bytes)", tc.name, got, sum, tc.want, total)
		}
	}
}

func BenchmarkJoinRuns(b *testing.B) {
	const n = 32
	a := netip.MustParseAddrPort("10.0.0.2:1701")
	x := &transmitter{s: &Session{}, b: &conn.Batch{Msgs: make([]conn.Msg, n)}, parts: make([][]byte, 0, 3*n)}
	x.s.gsoMax.Store(1472)
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, 122) // a 64-byte UDP payload, encapsulated
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for j := range bufs {
			x.b.Msgs[j] = conn.Msg{Buf: bufs[j], Addr: a}
		}
		x.parts = x.parts[:0]
		if x.joinRuns(n) != 1 {
			b.Fatal("not joined")
		}
	}
}

// loopbackTransmitter is a transmitter whose session's socket sends n
// 100-byte datagrams per batch to a second loopback socket, which nobody
// reads (the kernel drops what does not fit).
func loopbackTransmitter(tb testing.TB, n int) *transmitter {
	tb.Helper()
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	c, err := conn.Listen(conn.UDP, lo, conn.Options{})
	if err != nil {
		tb.Fatalf("no loopback socket: %v", err)
	}
	sink, err := conn.Listen(conn.UDP, lo, conn.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(); sink.Close() })
	sock := &socket{c: c, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	x := &transmitter{s: &Session{tunnel: &Tunnel{sock: sock}}, b: c.NewBatch(n)}
	for i := range x.b.Msgs {
		x.b.Msgs[i] = conn.Msg{Buf: make([]byte, 100), Addr: sink.LocalAddr()}
	}
	return x
}

// TestSendAllocs guards the transmit pump's send step, which the other
// micro-benchmarks do not cover: an error check there once allocated on
// every call.
func TestSendAllocs(t *testing.T) {
	x := loopbackTransmitter(t, 8)
	if n := testing.AllocsPerRun(200, func() { x.send(8, 800) }); n != 0 {
		t.Errorf("send: %v allocs per call, want 0", n)
	}
	if p, e := x.s.stats.txPackets.Load(), x.s.stats.txErrors.Load(); p == 0 || e != 0 {
		t.Errorf("tx_packets %d, tx_errors %d after the sends", p, e)
	}
}

func BenchmarkSend(b *testing.B) {
	x := loopbackTransmitter(b, 8)
	b.ReportAllocs()
	b.SetBytes(800)
	for i := 0; i < b.N; i++ {
		x.send(8, 800)
	}
}

// FuzzDeliver feeds arbitrary datagrams to the receive demultiplexer, from
// the tunnel's peer or a stranger, over UDP or IP encapsulation: it must
// not panic, and every datagram but a control message moves exactly one
// of the counters that account for it (the socket's unmatched, the
// tunnel's rx_invalid, the session's rx_packets or rx_errors).
func FuzzDeliver(f *testing.F) {
	frame := make([]byte, 60)
	for _, e := range []encap.Encap{encap.EncapUDP, encap.EncapIP} {
		f.Add(byte(e), packet(e, "11223344", encap.L2SpecDefault, 101, frame))
		f.Add(byte(e)|2, packet(e, "11223344", encap.L2SpecDefault, 101, frame))
		f.Add(byte(e), packet(e, "99999999", encap.L2SpecDefault, 101, frame))
		f.Add(byte(e), seqPacket(e, "11223344", encap.L2SpecDefault, 101, frame, 7, true))
		f.Add(byte(e), packet(e, "11223344", encap.L2SpecDefault, 102, frame))
	}
	f.Add(byte(0), []byte{0xc8, 0x02, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add(byte(1), []byte{0, 0, 0, 0, 0x80, 0, 0, 3})
	socks := map[encap.Encap]*socket{}
	sessions := map[encap.Encap]*Session{}
	for _, e := range []encap.Encap{encap.EncapUDP, encap.EncapIP} {
		socks[e], sessions[e], _ = testSession(f, e, "55667788", "11223344", encap.L2SpecDefault)
	}
	f.Fuzz(func(t *testing.T, sel byte, pkt []byte) {
		e := encap.EncapUDP
		if sel&1 != 0 {
			e = encap.EncapIP
		}
		sock, s := socks[e], sessions[e]
		from := s.tunnel.remote
		if sel&2 != 0 {
			from = netip.MustParseAddrPort("10.9.9.9:1701")
		}
		total := func() uint64 {
			st := s.Stats()
			return sock.unmatched.Load() + s.tunnel.Stats().RxInvalid + st.RxPackets + st.RxErrors
		}
		before := total()
		receiveOne(newReceiver(sock), sock.demux.Load(), append([]byte(nil), pkt...), from, sel&4 != 0)
		moved := total() - before
		_, err := encap.PeekV3SessionID(pkt, e)
		want := uint64(1)
		if err == encap.ErrControl && from == s.tunnel.remote {
			want = 0 // control messages are for the control plane, not counted here
		}
		if moved != want && !(want == 1 && moved == 0 && s.Stats().ReorderQueueDepth > 0) {
			t.Fatalf("counters moved by %d for one datagram (sel %#x, % x)", moved, sel, pkt)
		}
	})
}

// TestModifySessionConcurrent changes a session's sequencing with
// ModifySession while the pumps use it (receiving, taking Ns to send) and
// "show session" reads it; go test -race checks it.
func TestModifySessionConcurrent(t *testing.T) {
	const n = 500
	sock, s, _ := testSession(t, encap.EncapUDP, "", "", encap.L2SpecDefault)
	p := &Plane{log: sock.log, tunnels: map[uint32]*Tunnel{1: s.tunnel}}
	s.seq = reorder.New[rxItem](reorder.Config{Max: reorder.MaxV3, SendSeq: true})
	r := newReceiver(sock)
	d := sock.demux.Load()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			timeout, lns := time.Duration(i%3)*time.Millisecond, i%2 == 0
			if err := p.ModifySession(1, 101, SessionModify{ReorderTimeout: &timeout, LNSMode: &lns}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			pkt := seqPacket(encap.EncapUDP, "", encap.L2SpecDefault, 101, frame60, uint32(i), true)
			receiveOne(r, d, pkt, s.tunnel.remote, false)
		}
	}()
	b := make([]byte, 64)
	for i := 0; i < n; i++ {
		s.encode(b)
		if c := s.Config(); !c.SendSeq {
			t.Fatalf("send_seq off in %+v", c)
		}
	}
	wg.Wait()
}

// TestSendCountsRefused sends a batch whose first datagram the kernel
// refuses (longer than UDP takes) before a UDP GSO run of three: the
// refused one is counted as an error, with no bytes, and only the run as
// sent.
func TestSendCountsRefused(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	c, err := conn.Listen(conn.UDP, lo, conn.Options{Offload: true, UDPCsum: true})
	if err != nil {
		t.Skipf("no loopback socket: %v", err)
	}
	sink, err := conn.Listen(conn.UDP, lo, conn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); sink.Close() })
	if !c.GSO() {
		t.Skip("no UDP GSO")
	}
	_, s, _ := testSession(t, encap.EncapUDP, "", "", encap.L2SpecNone)
	s.tunnel.sock.c = c
	hl := s.tx.HeaderLen()
	x := &transmitter{s: s, b: c.NewBatch(2)}
	x.b.Msgs[0] = conn.Msg{Buf: make([]byte, 70000), Addr: sink.LocalAddr()}
	x.b.Msgs[1] = conn.Msg{Buf: make([]byte, 3*(hl+100)), Addr: sink.LocalAddr(), GSOSize: hl + 100}
	if !x.send(2, uint64(70000-hl+300)) {
		t.Fatal("send stopped")
	}
	if st := s.Stats(); st.TxPackets != 3 || st.TxBytes != 300 || st.TxErrors != 1 {
		t.Fatalf("tx_packets %d tx_bytes %d tx_errors %d, want 3, 300, 1", st.TxPackets, st.TxBytes, st.TxErrors)
	}
}

// tcpSuperFrame builds an IPv4 TCP super-frame of payload bytes as a TAP
// with TSO hands it over, with its virtio_net_hdr in front, at
// buf[Headroom-VnetHdrLen:], and returns the length read.
func tcpSuperFrame(buf []byte, payload, mss int) int {
	f := buf[Headroom:]
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := f[14:]
	copy(ip, []byte{0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+payload))
	tcp := ip[20:]
	copy(tcp, []byte{0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0})
	for i := range payload {
		tcp[20+i] = byte(i)
	}
	h := offload.VnetHdr{Flags: offload.FlagNeedsCsum, GSOType: offload.GSOTCPv4, HdrLen: 54,
		GSOSize: uint16(mss), CsumStart: 34, CsumOffset: 16}
	h.Encode(buf[Headroom-offload.VnetHdrLen:])
	return offload.VnetHdrLen + 54 + payload
}

// TestTransmitSmallMSS segments 64 KiB super-frames at MSS 536 (122
// segments each, more than a super-frame's share of the batch) through a
// loopback socket with UDP GSO: every segment is sent and counted, none
// dropped.
func TestTransmitSmallMSS(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	c, err := conn.Listen(conn.UDP, lo, conn.Options{Offload: true, UDPCsum: true})
	if err != nil {
		t.Skipf("no loopback socket: %v", err)
	}
	sink, err := conn.Listen(conn.UDP, lo, conn.Options{BufBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); sink.Close() })
	_, s, _ := testSession(t, encap.EncapUDP, "", "", encap.L2SpecNone)
	s.tunnel.sock.c, s.tunnel.remote, s.vnet = c, sink.LocalAddr(), true
	x := newTransmitter(s, nil)
	const payload, mss, frames = 65000, 536, offloadBatch
	for i := 0; i < frames; i++ {
		x.sizes[i] = tcpSuperFrame(x.bufs[i], payload, mss)
	}
	x.reset()
	msgs, bytes := x.prepareVnet(frames)
	if c.GSO() {
		msgs = x.joinRuns(msgs)
	}
	if !x.send(msgs, bytes) {
		t.Fatal("send stopped")
	}
	segs := (payload + mss - 1) / mss
	st := s.Stats()
	if st.TxErrors != 0 || st.TxPackets != uint64(frames*segs) || st.TxBytes != uint64(frames*(54*segs+payload)) {
		t.Fatalf("tx_packets %d tx_bytes %d tx_errors %d, want %d, %d, 0", st.TxPackets, st.TxBytes, st.TxErrors,
			frames*segs, frames*(54*segs+payload))
	}
	rb := sink.NewBatch(64)
	for i := range rb.Msgs {
		rb.Msgs[i].Buf = make([]byte, 2048)
	}
	got := 0
	for got < frames*segs {
		n, err := sink.Recv(rb)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
}

// BenchmarkPrepareVnet segments a batch of 64 KiB super-frames at the
// usual MSS into UDP GSO runs (without sending them).
func BenchmarkPrepareVnet(b *testing.B) {
	c, err := conn.Listen(conn.UDP, netip.MustParseAddrPort("127.0.0.1:0"), conn.Options{Offload: true, UDPCsum: true})
	if err != nil {
		b.Skipf("no loopback socket: %v", err)
	}
	b.Cleanup(func() { c.Close() })
	_, s, _ := testSession(b, encap.EncapUDP, "", "", encap.L2SpecDefault)
	s.tunnel.sock.c, s.vnet = c, true
	s.gsoMax.Store(1472)
	s.pmtuReread.Store(1 << 62) // no re-read of the path MTU in the loop
	x := newTransmitter(s, nil)
	for i := range x.bufs {
		x.sizes[i] = tcpSuperFrame(x.bufs[i], 65000, 1448)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(x.bufs) * 65000))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.reset()
		if msgs, _ := x.prepareVnet(len(x.bufs)); msgs == 0 {
			b.Fatal("nothing prepared")
		}
	}
}

// TestDemuxPeers checks the socket's table for two tunnels to one peer
// and a third to another: a session added to or deleted from one tunnel
// (its peer's table rebuilt alone) is found, or not, and the others stay.
func TestDemuxPeers(t *testing.T) {
	sock := &socket{}
	a, b := netip.MustParseAddrPort("10.9.0.2:1701"), netip.MustParseAddrPort("10.9.0.3:1701")
	t1 := &Tunnel{remote: a, sock: sock, sessions: map[uint32]*Session{}}
	t2 := &Tunnel{remote: a, sock: sock, sessions: map[uint32]*Session{}}
	t3 := &Tunnel{remote: b, sock: sock, sessions: map[uint32]*Session{}}
	other := &Tunnel{remote: a, sock: &socket{}, sessions: map[uint32]*Session{7: {}}}
	p := &Plane{tunnels: map[uint32]*Tunnel{1: t1, 2: t2, 3: t3, 4: other}}
	sock.rebuild(p)
	s1, s2, s3 := &Session{}, &Session{}, &Session{}
	t1.sessions[1] = s1
	sock.rebuildPeer(p, a)
	t2.sessions[2] = s2
	sock.rebuildPeer(p, a)
	t3.sessions[3] = s3
	sock.rebuildPeer(p, b)
	r := &receiver{}
	find := func(from netip.AddrPort, sid uint32) *Session {
		return r.session(r.peer(sock.demux.Load(), from), sid)
	}
	if find(a, 1) != s1 || find(a, 2) != s2 || find(b, 3) != s3 || find(b, 1) != nil || find(a, 7) != nil {
		t.Fatal("sessions not found by peer and id")
	}
	delete(t1.sessions, 1)
	sock.rebuildPeer(p, a)
	if find(a, 1) != nil || find(a, 2) != s2 || find(b, 3) != s3 {
		t.Fatal("after deleting session 1: wrong sessions found")
	}
	if pd := r.peer(sock.demux.Load(), b); pd == nil || pd.tunnel != t3 {
		t.Fatal("peer b's tunnel not found")
	}
}

// BenchmarkLendGiveBack is a transmit pump's buffer round trip per TAP
// read: a set from the socket's pool and back.
func BenchmarkLendGiveBack(b *testing.B) {
	_, s, _ := testSession(b, encap.EncapUDP, "", "", encap.L2SpecDefault)
	s.vnet = true
	x := newTransmitter(s, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x.giveBack()
		x.Lend()
	}
}

// TestModifySessionSeqNeedsSublayer checks that set session refuses
// sequencing on a session without the L2-specific sublayer and leaves the
// session as it was.
func TestModifySessionSeqNeedsSublayer(t *testing.T) {
	sock, s, _ := testSession(t, encap.EncapUDP, "", "", encap.L2SpecNone)
	p := &Plane{log: sock.log, tunnels: map[uint32]*Tunnel{1: s.tunnel}}
	s.seq = reorder.New[rxItem](reorder.Config{Max: reorder.MaxV3})
	on := true
	err := p.ModifySession(1, 101, SessionModify{RecvSeq: &on})
	if err == nil || !strings.HasPrefix(err.Error(), `invalid seq "recv"`) {
		t.Fatalf("recv_seq on l2spec_type none: error %v, want one naming seq", err)
	}
	if c := s.Config(); c.RecvSeq || c.SendSeq {
		t.Errorf("session changed by a refused modify: %+v", c)
	}
}
