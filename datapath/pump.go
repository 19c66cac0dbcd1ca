package datapath

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ul2tp/ul2tp/datapath/conn"
	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/datapath/offload"
	"github.com/ul2tp/ul2tp/datapath/tap"
	"github.com/ul2tp/ul2tp/encap"
)

// socket is a tunnel socket shared by the tunnels with the same local
// address, port and encapsulation.
type socket struct {
	c    *conn.Conn
	key  sockKey
	opts conn.Options
	log  *slog.Logger
	refs int // tunnels using it, guarded by Plane.mu
	tx   txPools

	// demux is replaced whole whenever a tunnel comes or goes, and a
	// peer's session table whenever one of its sessions does, so the
	// receive pump reads them without a lock.
	demux atomic.Pointer[demux]
	// unmatched counts datagrams from no configured peer; rxErrors the
	// receive calls that failed.
	unmatched, rxErrors atomic.Uint64
	// ctrl, if not nil, takes the control messages received (Listen);
	// ctrlPackets counts those it took, ctrlDrops those it had no room for.
	ctrl                   atomic.Pointer[controlQueue]
	ctrlPackets, ctrlDrops atomic.Uint64
	// events, if not nil, receives events about datagrams for no session,
	// paced by limits.
	events *event.Hub
	limits [event.NumReasons]event.Limiter
}

// demux is a socket's lookup table, by peer. Its map does not change;
// each peer's session table is replaced on its own, so adding a session
// costs the sessions of its peer, not of the socket.
type demux struct {
	peers map[netip.AddrPort]*peerDemux
}

// peerDemux holds what is received from one peer on a socket.
type peerDemux struct {
	// tunnel is one of the tunnels to the peer, L2TPv3 if it has one: it
	// counts the peer's datagrams for no session.
	tunnel *Tunnel
	// sessions are the sessions of every L2TPv3 tunnel to the peer on the
	// socket, by session id; the map is replaced, never changed.
	sessions atomic.Pointer[map[uint32]*Session]
	// v2tunnels are the peer's L2TPv2 tunnels, by our tunnel id; v2 their
	// sessions, by v2Key. As sessions, v2 is replaced, never changed.
	v2tunnels map[uint16]*Tunnel
	v2        atomic.Pointer[map[uint32]*Session]
}

// rebuild makes a new demux table from the plane's tunnels, after a tunnel
// came or went. Called with Plane.mu held.
func (s *socket) rebuild(p *Plane) {
	d := &demux{peers: map[netip.AddrPort]*peerDemux{}}
	for _, t := range p.tunnels {
		if t.sock != s {
			continue
		}
		pd := d.peers[t.remote]
		if pd == nil {
			pd = &peerDemux{tunnel: t}
			pd.sessions.Store(s.peerSessions(p, t.remote))
			pd.v2.Store(s.peerV2Sessions(p, t.remote))
			d.peers[t.remote] = pd
		}
		if t.cfg.V2() {
			if pd.v2tunnels == nil {
				pd.v2tunnels = map[uint16]*Tunnel{}
			}
			pd.v2tunnels[uint16(t.cfg.ID)] = t
		} else if pd.tunnel.cfg.V2() {
			pd.tunnel = t
		}
	}
	s.demux.Store(d)
}

// rebuildPeer makes a new session table for one peer, after a session of a
// tunnel to it came or went. Called with Plane.mu held.
func (s *socket) rebuildPeer(p *Plane, remote netip.AddrPort) {
	pd := s.demux.Load().peers[remote]
	if pd == nil {
		s.rebuild(p) // no table for the peer yet (not so while its tunnel exists)
		return
	}
	pd.sessions.Store(s.peerSessions(p, remote))
	pd.v2.Store(s.peerV2Sessions(p, remote))
}

// peerSessions collects the sessions of the socket's tunnels to remote.
func (s *socket) peerSessions(p *Plane, remote netip.AddrPort) *map[uint32]*Session {
	m := map[uint32]*Session{}
	for _, t := range p.tunnels {
		if t.sock != s || t.remote != remote || t.cfg.V2() {
			continue
		}
		for id, ss := range t.sessions {
			m[id] = ss
		}
	}
	return &m
}

// receive is the socket's receive pump: datagrams in, frames out to TAPs.
func (s *socket) receive() {
	b := s.c.NewBatch(batchSize)
	for i := range b.Msgs {
		b.Msgs[i].Buf = make([]byte, dgramBufSize)
	}
	r := newReceiver(s)
	var wait time.Duration // backoff while receiving fails
	var logged time.Time
	for {
		n, err := s.c.Recv(b)
		if err != nil {
			if conn.IsClosed(err) {
				return
			}
			// Anything else (ENOBUFS, ENOMEM, an ICMP error queued on
			// the socket) must not leave every tunnel on the socket
			// without a receiver: count it, say so now and then, back
			// off a little and go on.
			s.rxErrors.Add(1)
			if time.Since(logged) > 10*time.Second {
				logged = time.Now()
				s.log.Error("socket receive failed; retrying", "local", s.key.local.String(), "err", err,
					"errors", s.rxErrors.Load())
			}
			wait = min(max(2*wait, time.Millisecond), time.Second)
			time.Sleep(wait)
			continue
		}
		wait = 0
		r.batch(s.demux.Load(), b.Msgs[:n])
	}
}

// receiver is the per-pump state of the receive path.
type receiver struct {
	sock *socket
	co   *offload.Coalescer[*Session]
	// pco merges the IP packets of L2TPv2 sessions with a PacketPayload.
	pco *offload.Coalescer[*Session]
	sh  seqHandler
	// covered is set while the segments of a UDP GRO batch are delivered:
	// the kernel merges only datagrams whose UDP checksum it verified (or
	// local GSO sends, which always carry one), so their bytes need no
	// second check in the coalescer.
	covered bool
	// A one-entry cache of the demux table: a GRO run comes from one peer
	// and mostly carries one session.
	lastD    *demux
	lastFrom netip.AddrPort
	lastP    *peerDemux
	lastM    *map[uint32]*Session
	lastSID  uint32
	lastS    *Session
	// and of the L2TPv2 sessions.
	lastV2M   *map[uint32]*Session
	lastV2Key uint32
	lastV2S   *Session
	// Received frames not yet added to a session's counters: counting once
	// per batch and session keeps the atomic adds (on a cache line the
	// session's transmit pump writes too) out of the per-frame work.
	count struct {
		s                 *Session
		pkts, octets, gro uint64
	}
}

// addCount counts a frame delivered to s, flushing the previous session's
// pending counts if s is another.
func (r *receiver) addCount(s *Session, n int) {
	if r.count.s != s {
		r.flushCount()
		r.count.s = s
	}
	r.count.pkts++
	r.count.octets += uint64(n)
	if r.covered {
		r.count.gro++
	}
}

// flushCount adds the pending counts to the session's and tunnel's
// counters.
func (r *receiver) flushCount() {
	s := r.count.s
	if s == nil || r.count.pkts == 0 {
		return
	}
	s.stats.rxPackets.Add(r.count.pkts)
	s.stats.rxBytes.Add(r.count.octets)
	s.tunnel.stats.rxPackets.Add(r.count.pkts)
	s.tunnel.stats.rxBytes.Add(r.count.octets)
	if r.count.gro > 0 {
		s.stats.rxGRODatagrams.Add(r.count.gro)
	}
	r.count.pkts, r.count.octets, r.count.gro = 0, 0, 0
}

func newReceiver(s *socket) *receiver {
	r := &receiver{sock: s}
	r.co = offload.NewCoalescer[*Session](coalesceSlots, r)
	r.pco = offload.NewPacketCoalescer[*Session](coalesceSlots, packetWriter{})
	r.sh.r = r
	return r
}

// batch delivers a batch of received datagrams, splitting UDP GRO
// super-datagrams into their segments and coalescing TCP frames for TAPs
// with offloads.
func (r *receiver) batch(d *demux, msgs []conn.Msg) {
	kind := encap.EncapUDP
	if r.sock.key.kind == conn.IP {
		kind = encap.EncapIP
	}
	for i := range msgs {
		m := &msgs[i]
		if m.GSOSize <= 0 || m.N-m.Off <= m.GSOSize {
			r.deliver(d, m.Buf[m.Off:m.N], m.Addr, m.Truncated, kind)
			continue
		}
		r.covered = true
		for off := m.Off; off < m.N; off += m.GSOSize {
			r.deliver(d, m.Buf[off:min(off+m.GSOSize, m.N)], m.Addr, m.Truncated, kind)
		}
		r.covered = false
	}
	r.co.Flush()
	r.pco.Flush()
	r.flushCount()
}

// packetWriter writes a (possibly coalesced) IP packet to an L2TPv2
// session's PacketPayload.
type packetWriter struct{}

// WriteParts writes the packet and counts a coalesced one.
func (packetWriter) WriteParts(s *Session, parts [][]byte) error {
	err := s.packets.WritePacket(parts)
	s.tapWriteError(err)
	if len(parts) > 3 { // the vnet header, the headers, two payloads or more
		s.stats.rxCoalescedFrames.Add(1)
		s.stats.rxCoalescedSegments.Add(uint64(len(parts) - 2))
	}
	return err
}

// WriteParts writes a (possibly coalesced) frame to a session's TAP.
func (r *receiver) WriteParts(s *Session, parts [][]byte) error {
	err := s.out.Load().WriteParts(parts)
	s.tapWriteError(err)
	if len(parts) > 3 { // the vnet header, the headers, two payloads or more
		s.stats.rxCoalescedFrames.Add(1)
		s.stats.rxCoalescedSegments.Add(uint64(len(parts) - 2))
	}
	return err
}

// deliver checks one L2TP packet and passes its frame on: to the coalescer
// for a TAP with a virtio_net_hdr, else straight to the session's TAP.
func (r *receiver) deliver(d *demux, pkt []byte, from netip.AddrPort, truncated bool, kind encap.Encap) {
	s := r.sock
	if kind == encap.EncapUDP && len(pkt) >= 2 {
		switch {
		case pkt[0]&0x80 != 0: // T bit: a control message, L2TPv2 or v3
			if !truncated && s.control(pkt, from) {
				return
			}
		case pkt[1]&0x0f == 2:
			r.deliverV2(d, pkt, from, truncated)
			return
		}
	}
	sid, err := encap.PeekV3SessionID(pkt, kind)
	pd := r.peer(d, from)
	if err != nil || truncated {
		if pd == nil {
			s.unmatched.Add(1)
			s.noteDrop(event.UnmatchedPeer, 0, 0, from)
		} else if err != encap.ErrControl {
			pd.tunnel.stats.rxInvalid.Add(1)
			s.noteDrop(event.InvalidHeader, pd.tunnel.cfg.ID, 0, from)
		}
		return
	}
	ss := r.session(pd, sid)
	if ss == nil {
		if pd != nil {
			pd.tunnel.stats.rxInvalid.Add(1)
			s.noteDrop(event.UnknownSession, pd.tunnel.cfg.ID, sid, from)
		} else {
			s.unmatched.Add(1)
			s.noteDrop(event.UnmatchedPeer, 0, 0, from)
		}
		return
	}
	data, err := ss.rx.Decode(pkt)
	if err != nil {
		if errors.Is(err, encap.ErrCookie) {
			ss.stats.rxCookieDiscards.Add(1)
			ss.note(event.Drop, event.CookieMismatch, "", nil)
		} else {
			ss.stats.rxInvalid.Add(1)
			ss.note(event.Drop, event.InvalidHeader, "", err)
		}
		ss.stats.rxErrors.Add(1)
		return
	}
	frame := pkt[data.PayloadOffset:]
	if len(frame) < 14 {
		ss.stats.rxInvalid.Add(1)
		ss.stats.rxErrors.Add(1)
		ss.note(event.Drop, event.InvalidHeader, "frame shorter than an Ethernet header", nil)
		return
	}
	if len(frame) > int(ss.maxFrame.Load()) && !ss.fits(len(frame)) {
		// Longer than the TAP's MTU allows: the kernel's l2tp_eth drops
		// these too (is_skb_forwardable).
		ss.stats.rxErrors.Add(1)
		ss.note(event.Drop, event.FrameTooLong, "", nil)
		return
	}
	if data.HasSeq || !ss.seq.Idle() {
		// Sequencing: the reorder state machine decides (see seq.go).
		ss.seqMu.Lock()
		r.sh.s = ss
		r.sh.receive(nanotime(), data.HasSeq, data.Ns, rxItem{frame: frame})
		ss.seqMu.Unlock()
		return
	}
	r.toTAP(ss, frame, false)
}

// peer looks up the datagrams' peer in d, through the one-entry cache.
func (r *receiver) peer(d *demux, from netip.AddrPort) *peerDemux {
	if d != r.lastD || from != r.lastFrom {
		r.lastD, r.lastFrom, r.lastP, r.lastM = d, from, d.peers[from], nil
	}
	return r.lastP
}

// session looks up session sid of a peer (nil for none), through the
// one-entry cache.
func (r *receiver) session(pd *peerDemux, sid uint32) *Session {
	if pd == nil {
		return nil
	}
	if m := pd.sessions.Load(); m != r.lastM || sid != r.lastSID {
		r.lastM, r.lastSID, r.lastS = m, sid, (*m)[sid]
	}
	return r.lastS
}

// toTAP counts a received frame and passes it on: through the coalescer
// for a TAP with a virtio_net_hdr, else straight to the TAP. An owned
// frame (from the reorder queue) bypasses the coalescer's merging but
// still goes after the session's frames it holds, so TCP sees them in
// order.
func (r *receiver) toTAP(s *Session, frame []byte, owned bool) {
	r.addCount(s, len(frame))
	switch {
	case s.packets != nil: // L2TPv2 to a device with offloads
		off := s.packets.PacketOffset(frame)
		switch {
		case off < 0:
			r.pco.FlushOwner(s) // the session's frames stay in order
			s.payload.Deliver(frame)
		case owned:
			r.pco.Bypass(s, frame[off:])
		default:
			r.pco.Add(s, frame[off:], r.covered)
		}
	case s.payload != nil: // L2TPv2: no TAP
		s.payload.Deliver(frame)
	case s.vnet && owned:
		r.co.Bypass(s, frame)
	case s.vnet:
		r.co.Add(s, frame, r.covered)
	default:
		s.tapWriteError(s.out.Load().Write(frame))
	}
}

// tapWriteError counts a failed TAP write as a receive error, except EIO:
// the device is down, where the kernel's l2tp_eth counts the frame as
// received by L2TP and dropped by the device, not as an L2TP error.
func (s *Session) tapWriteError(err error) {
	if err == nil || errors.Is(err, syscall.EIO) {
		return
	}
	s.stats.rxErrors.Add(1)
	s.tunnel.stats.rxErrors.Add(1)
	s.note(event.Drop, event.TAPWriteError, "", err)
}

// transmitter is the per-queue state of a session's transmit pump.
type transmitter struct {
	s *Session
	q *tap.Queue
	// pool gives the buffer sets; cur is the one held, nil between
	// passes, and the fields below are its (see txbufs.go).
	pool  *sync.Pool
	cur   *txBufs
	b     *conn.Batch
	bufs  [][]byte
	sizes []int
	off   int // where a frame (or its virtio_net_hdr) starts in its buffer
	grow  bool
	// For TSO super-frames, shared by the frames of a batch in order: the
	// segments' headers (each with room for the L2TP header in front),
	// used up to hdrsUsed; per segment, its payload (a slice of the
	// frame), used up to segsUsed; and the I/O vectors of the batch,
	// header and payload alternating.
	hdrs     []byte
	hdrsUsed int
	payloads [][]byte
	segsUsed int
	parts    [][]byte
}

// newTransmitter makes a transmit pump's state, holding a buffer set from
// its socket's pool: for a TAP without offloads, frames of the TAP's MTU;
// with them, super-frames of 64 KiB and room for the segments of a batch.
func newTransmitter(s *Session, q *tap.Queue) *transmitter {
	x := &transmitter{s: s, q: q, off: Headroom}
	if s.vnet {
		x.off = vnetOffset
	}
	x.pool = s.tunnel.sock.txPool(s.vnet, s.maxFrame.Load())
	x.take()
	return x
}

// frameBufFor is the size of a buffer for frames of up to maxFrame bytes
// read from a TAP without offloads: the headroom, the frame, a second VLAN
// tag, and one byte more, so a frame that fills the buffer is known to
// have been cut short.
func frameBufFor(maxFrame int32) int { return Headroom + int(maxFrame) + 4 + 1 }

// transmit is a TAP queue's pump: frames in, datagrams out. It returns nil
// when the device or the socket is closed, and the error that stopped it
// otherwise.
func (s *Session) transmit(q *tap.Queue) error {
	sock := s.tunnel.sock
	multiQueue := s.life.tapCfg.Queues > 1
	x := newTransmitter(s, q)
	for {
		// Waiting for frames, the pump holds no buffers.
		x.giveBack()
		n, err := q.ReadLent(x, x.off)
		if err != nil {
			x.giveBack()
			if conn.IsClosed(err) {
				return nil
			}
			return fmt.Errorf("read from %s: %w", s.IfName(), err)
		}
		// With several queues and send_seq on, number and send under one
		// lock, so datagrams leave in the order of their Ns.
		seqLock := multiQueue && s.seq.SendSeq()
		if seqLock {
			s.txSeqMu.Lock()
		}
		var msgs int
		var bytes uint64
		x.reset()
		if s.vnet {
			msgs, bytes = x.prepareVnet(n)
		} else {
			msgs, bytes = x.prepare(n)
		}
		ok := true
		if msgs > 0 {
			if sock.c.GSO() {
				msgs = x.joinRuns(msgs)
			}
			ok = x.send(msgs, bytes)
		}
		if seqLock {
			s.txSeqMu.Unlock()
		}
		if !ok {
			return nil
		}
	}
}

// reset empties the batch's I/O vectors and segment room.
func (x *transmitter) reset() {
	x.parts = x.parts[:0]
	x.hdrsUsed, x.segsUsed = 0, 0
}

// flush sends the msgs datagrams prepared so far in the middle of a read
// batch (a super-frame's segments did not all fit) and empties the batch.
func (x *transmitter) flush(msgs int, bytes uint64) bool {
	if x.s.tunnel.sock.c.GSO() {
		msgs = x.joinRuns(msgs)
	}
	ok := x.send(msgs, bytes)
	x.reset()
	return ok
}

// send hands msgs datagrams to the socket and counts them: the ones the
// kernel refused as tx_errors, and only the others as sent.
func (x *transmitter) send(msgs int, bytes uint64) bool {
	s, t := x.s, x.s.tunnel
	_, err := t.sock.c.Send(x.b, msgs)
	if err != nil {
		if conn.IsClosed(err) {
			return false
		}
		// Declared here, not above: errors.As makes it escape, and the
		// allocation must stay off the path without errors.
		var refused *conn.ErrGSORefused
		if errors.As(err, &refused) {
			t.sock.log.Warn("kernel refused UDP GSO on the tunnel socket; sending one datagram per segment",
				"local", t.sock.key.local.String(), "err", refused.Err)
		}
	}
	hl := uint64(s.tx.HeaderLen())
	var pkts, gsoSends, gsoDgrams uint64
	for i := 0; i < msgs; i++ {
		m := &x.b.Msgs[i]
		segs := uint64(1)
		if m.GSOSize > 0 {
			segs = uint64((m.Len() + m.GSOSize - 1) / m.GSOSize)
			if m.Err == nil {
				gsoSends++
				gsoDgrams += segs
			}
		}
		if m.Err == nil {
			pkts += segs
			continue
		}
		l := m.Len()
		bytes -= uint64(l) - segs*hl
		x.drop(segs, "the tunnel socket refused it", m.Err, l)
	}
	s.stats.txPackets.Add(pkts)
	s.stats.txBytes.Add(bytes)
	if gsoSends > 0 {
		s.stats.txGSOSends.Add(gsoSends)
		s.stats.txGSODatagrams.Add(gsoDgrams)
	}
	t.stats.txPackets.Add(pkts)
	t.stats.txBytes.Add(bytes)
	return true
}

// prepare encapsulates n frames read from a TAP without offloads in place
// and points the batch at them. A frame cut short by its buffer is
// dropped.
func (x *transmitter) prepare(n int) (msgs int, bytes uint64) {
	s := x.s
	start := Headroom - s.tx.HeaderLen()
	for i := 0; i < n; i++ {
		if x.truncated(i) {
			continue
		}
		buf := x.bufs[i]
		s.encode(buf[start:Headroom])
		m := &x.b.Msgs[msgs]
		m.Buf, m.Parts, m.Addr, m.GSOSize = buf[start:Headroom+x.sizes[i]], nil, s.tunnel.remote, 0
		msgs++
		bytes += uint64(x.sizes[i])
	}
	x.growBuffers()
	return msgs, bytes
}

// truncated reports whether frame i filled its buffer: the TAP cuts a
// frame longer than the buffer short (its MTU was raised), so it is
// dropped, counted as an error, and the buffers grow to the TAP's new MTU
// once the batch is sent.
func (x *transmitter) truncated(i int) bool {
	if x.sizes[i] < len(x.bufs[i])-x.off {
		return false
	}
	x.drop(1, "longer than the read buffer", nil, x.sizes[i])
	if !x.s.vnet {
		x.s.fits(math.MaxInt32) // re-reads the TAP's MTU, at most once a second
		x.grow = x.grow || frameBufFor(x.s.maxFrame.Load()) > len(x.bufs[i])
	}
	return true
}

// growBuffers switches to the pool of frame buffers for the TAP's MTU,
// after a frame was cut short: the next read takes buffers from it. The
// batch being sent keeps the old ones, which go back to their own pool.
func (x *transmitter) growBuffers() {
	if !x.grow {
		return
	}
	x.grow = false
	x.pool = x.s.tunnel.sock.txPool(false, x.s.maxFrame.Load())
}

// prepareVnet turns n frames read with a virtio_net_hdr into datagrams:
// small frames are encapsulated in place (after completing a partial
// checksum); TSO super-frames are split into segments, each with its own
// L2TP header, and sent as UDP GSO batches where the socket and the path
// take them. A super-frame whose segments do not all fit the batch sends
// the batch on the way; should that find the socket closed (it is not
// while the pump runs: a tunnel's sessions go before its socket), the
// rest of the read is dropped and the pump's next read ends it.
func (x *transmitter) prepareVnet(n int) (msgs int, bytes uint64) {
	limit := x.s.gsoLimit()
	for i := 0; i < n; i++ {
		if x.truncated(i) {
			continue
		}
		buf := x.bufs[i]
		frame := buf[Headroom : Headroom-offload.VnetHdrLen+x.sizes[i]]
		h, err := offload.DecodeVnetHdr(buf[Headroom-offload.VnetHdrLen:])
		if err != nil || len(frame) < 14 {
			x.drop(1, "no virtio_net_hdr", err, x.sizes[i])
			continue
		}
		if msgs == len(x.b.Msgs) {
			if !x.flush(msgs, bytes) {
				return 0, 0
			}
			msgs, bytes = 0, 0
		}
		if h.GSOType == offload.GSONone {
			if err := offload.CompleteChecksum(frame, h); err != nil {
				x.drop(1, "checksum offset outside the frame", err, len(frame))
				continue
			}
			hl := x.s.tx.HeaderLen()
			x.s.encode(buf[Headroom-hl : Headroom])
			m := &x.b.Msgs[msgs]
			m.Buf, m.Parts, m.Addr, m.GSOSize = buf[Headroom-hl:Headroom+len(frame)], nil, x.s.tunnel.remote, 0
			msgs++
			bytes += uint64(len(frame))
			continue
		}
		var ok bool
		if msgs, bytes, ok = x.segment(frame, h, msgs, bytes, limit); !ok {
			return 0, 0
		}
	}
	return msgs, bytes
}

// segment cuts a TSO super-frame into segments, each with its own L2TP
// header, added to the batch from msgs on: as many as the batch has room
// for, then the batch is sent and the rest follow. It returns the batch's
// new length and bytes, and false if the socket is closed.
func (x *transmitter) segment(frame []byte, h offload.VnetHdr, msgs int, bytes uint64, limit int) (int, uint64, bool) {
	tso, err := offload.ParseTSO(frame, h)
	if err != nil {
		x.drop(1, "TSO super-frame without TCP headers", err, len(frame))
		return msgs, bytes, true
	}
	hl := x.s.tx.HeaderLen()
	x.s.stats.txTSOFrames.Add(1)
	x.s.stats.txTSOSegments.Add(uint64(tso.Segments()))
	for first := 0; first < tso.Segments(); {
		room := min(len(x.b.Msgs)-msgs, len(x.payloads)-x.segsUsed)
		k, stride := tso.Segment(first, x.hdrs[x.hdrsUsed:], hl, x.payloads[x.segsUsed:x.segsUsed+room])
		if k == 0 {
			if msgs == 0 {
				x.drop(uint64(tso.Segments()-first), "segment headers longer than their room", nil, len(frame))
				return msgs, bytes, true
			}
			if !x.flush(msgs, bytes) {
				return 0, 0, false
			}
			msgs, bytes = 0, 0
			continue
		}
		hdrs := x.hdrs[x.hdrsUsed : x.hdrsUsed+k*stride]
		payloads := x.payloads[x.segsUsed : x.segsUsed+k]
		x.hdrsUsed += k * stride
		x.segsUsed += k
		for j := range payloads {
			x.s.encode(hdrs[j*stride : j*stride+hl])
			bytes += uint64(stride - hl + len(payloads[j]))
		}
		msgs = x.addSegments(msgs, hdrs, payloads, stride, stride+int(h.GSOSize), limit)
		first += k
	}
	return msgs, bytes, true
}

// addSegments points the batch, from msgs on, at segments (headers hdrs,
// stride bytes each, and payloads): one datagram per segment, or with UDP
// GSO runs of segments, each run under the datagram limit. Every segment
// but a super-frame's last is size bytes, the GSO size; runs are only for
// segments that fit the path (limit), so the kernel does not refuse them:
// longer ones go one datagram each, and the kernel fragments them.
func (x *transmitter) addSegments(msgs int, hdrs []byte, payloads [][]byte, stride, size, limit int) int {
	per := 1
	if x.s.tunnel.sock.c.GSO() && size <= limit {
		per = max(1, min(maxGSOBytes/size, maxGSOSegs))
	}
	k := len(payloads)
	for j := 0; j < k; j += per {
		end := min(j+per, k)
		start := len(x.parts)
		for jj := j; jj < end; jj++ {
			x.parts = append(x.parts, hdrs[jj*stride:(jj+1)*stride], payloads[jj])
		}
		m := &x.b.Msgs[msgs]
		m.Buf, m.Parts, m.Addr, m.GSOSize = nil, x.parts[start:len(x.parts):len(x.parts)], x.s.tunnel.remote, 0
		if end-j > 1 {
			m.GSOSize = size
		}
		msgs++
	}
	return msgs
}

// drop counts n frames or segments that could not be sent as tx_errors
// and logs it, at most once per dropLogEvery per session.
func (x *transmitter) drop(n uint64, why string, err error, size int) {
	x.txError(n)
	x.s.logDrop(n, why, err, size)
}

// joinRuns turns runs of datagrams of one length in x.b.Msgs[:n] (the last
// of a run may be shorter), each sent from one buffer, into UDP GSO sends of
// several datagrams: one trip through the kernel's UDP and IP output, the
// veth or NIC, and a GRO receiver's input for the run instead of one per
// frame. The datagrams on the wire do not change. It compacts the batch in
// place and returns its new length.
func (x *transmitter) joinRuns(n int) int {
	msgs := x.b.Msgs
	limit := int(x.s.gsoMax.Load())
	out := 0
	for i := 0; i < n; {
		m := msgs[i]
		size := len(m.Buf)
		j := i + 1
		if len(m.Parts) == 0 && m.GSOSize == 0 && size <= limit {
			total := size
			for j < n && j-i < maxGSOSegs {
				next := &msgs[j]
				l := len(next.Buf)
				if len(next.Parts) != 0 || next.GSOSize != 0 || l > size || total+l > maxGSOBytes || next.Addr != m.Addr {
					break
				}
				total += l
				j++
				if l < size {
					break // a shorter datagram ends the run
				}
			}
		}
		if j-i < 2 {
			msgs[out] = m
			out++
			i++
			continue
		}
		start := len(x.parts)
		for k := i; k < j; k++ {
			x.parts = append(x.parts, msgs[k].Buf)
		}
		msgs[out] = conn.Msg{Parts: x.parts[start:len(x.parts):len(x.parts)], Addr: m.Addr, GSOSize: size}
		out++
		i = j
	}
	return out
}

func (x *transmitter) txError(n uint64) {
	x.s.stats.txErrors.Add(n)
	x.s.tunnel.stats.txErrors.Add(n)
}

// encode writes the session's L2TP header into b, with the next Ns when
// send_seq is on.
func (s *Session) encode(b []byte) {
	ns, seq := uint32(0), s.seq.SendSeq()
	if seq {
		ns = s.seq.NextNs()
	}
	s.tx.Encode(b, s.cfg.PeerID, ns, seq)
}

// nanotime is a monotonic clock in nanoseconds for reorder expiry.
func nanotime() int64 { return int64(time.Since(epoch)) }

var epoch = time.Now()

// SocketStats are the counters of a tunnel's socket, which the tunnels
// bound to the same local address and port share.
type SocketStats struct {
	// Local is the socket's address.
	Local netip.AddrPort
	// Unmatched counts datagrams from no configured peer; RxErrors the
	// receive calls that failed.
	Unmatched, RxErrors uint64
	// ControlPackets counts the control messages handed to the socket's
	// Listener, ControlQueueDrops those dropped because its queue was
	// full (both 0 without a Listener).
	ControlPackets, ControlQueueDrops uint64
}

// SocketStats returns the counters of the tunnel's socket.
func (t *Tunnel) SocketStats() SocketStats { return t.sock.stats() }

// stats returns the socket's counters.
func (s *socket) stats() SocketStats {
	return SocketStats{Local: s.c.LocalAddr(), Unmatched: s.unmatched.Load(), RxErrors: s.rxErrors.Load(),
		ControlPackets: s.ctrlPackets.Load(), ControlQueueDrops: s.ctrlDrops.Load()}
}
