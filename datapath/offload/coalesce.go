package offload

import (
	"bytes"
	"encoding/binary"
)

// maxCoalesceHdr bounds the headers a super-frame can have: Ethernet with
// two VLAN tags, IPv4 with options or IPv6, TCP with options.
const maxCoalesceHdr = ethHdrLen + 8 + 60 + 60

// maxSegs bounds the segments in one super-frame.
const maxSegs = 64

// Writer takes a frame for a TAP with IFF_VNET_HDR as a list of parts:
// the virtio_net_hdr first, then the frame's pieces in order.
type Writer[K comparable] interface {
	WriteParts(k K, parts [][]byte) error
}

// Coalescer merges in-order TCP segments of one flow, received for one
// owner (a session), into super-frames described by a GSO virtio_net_hdr,
// the way GRO does, so the kernel behind a TAP handles one large packet
// instead of many. Payloads are not copied: a super-frame is a header and a
// list of slices into the caller's receive buffers, which must stay
// unchanged until Flush. Frames that cannot be merged pass straight
// through, after their owner's pending super-frames, so each owner's frames
// keep their order. A Coalescer is used by one goroutine.
type Coalescer[K comparable] struct {
	w      Writer[K]
	slots  []slot[K]
	next   int // slot to evict when all are busy
	plain  [VnetHdrLen]byte
	valid  [VnetHdrLen]byte
	parts  [][]byte
	errors int
	// packets: the frames are bare IP packets (a TUN's), not Ethernet.
	packets bool
}

type slot[K comparable] struct {
	busy     bool
	owner    K
	t        tcpFrame
	hdr      [maxCoalesceHdr]byte
	vnet     [VnetHdrLen]byte
	payloads [][]byte
	bytes    int
	mss      int
	nextSeq  uint32
	closed   bool // a short or PSH segment ended it
	psh      bool
	checked  bool // the first segment's TCP checksum was verified here
}

// NewCoalescer makes a coalescer with room for n super-frames in flight.
func NewCoalescer[K comparable](n int, w Writer[K]) *Coalescer[K] {
	c := &Coalescer[K]{w: w, slots: make([]slot[K], n), parts: make([][]byte, 0, maxSegs+2)}
	for i := range c.slots {
		c.slots[i].payloads = make([][]byte, 0, maxSegs)
	}
	plain := VnetHdr{}
	plain.Encode(c.plain[:])
	valid := VnetHdr{Flags: FlagDataValid}
	valid.Encode(c.valid[:])
	return c
}

// NewPacketCoalescer makes a coalescer for bare IP packets, as a TUN
// device with IFF_VNET_HDR takes them, rather than Ethernet frames: the
// super-packets' virtio_net_hdr offsets count from the IP header.
func NewPacketCoalescer[K comparable](n int, w Writer[K]) *Coalescer[K] {
	c := NewCoalescer(n, w)
	c.packets = true
	return c
}

// Errors reports how many writes failed since the last call.
func (c *Coalescer[K]) Errors() int {
	n := c.errors
	c.errors = 0
	return n
}

// Add takes one received Ethernet frame for owner k. covered says that an
// outer checksum the kernel verified (a UDP checksum) already covered every
// byte of the frame, so its TCP checksum need not be read again before the
// frame joins a super-frame, whose checksum the kernel then recomputes.
// Frames that are not covered are checked here, so a corrupted segment
// never hides inside a super-frame.
func (c *Coalescer[K]) Add(k K, frame []byte, covered bool) {
	var t tcpFrame
	var ok bool
	if c.packets {
		t, ok = parsePacketTCP(frame)
	} else {
		t, ok = parseTCP(frame)
	}
	if !ok || !mergeable(frame, &t, !covered) {
		c.passThrough(k, frame)
		return
	}
	payload := frame[t.hdrLen:]
	for i := range c.slots {
		s := &c.slots[i]
		if !s.busy || s.owner != k || !sameConn(s.hdr[:s.t.hdrLen], &s.t, frame, &t) {
			continue
		}
		// One slot per connection: a segment that cannot join the
		// connection's super-frame ends it, so the connection's bytes
		// reach the TAP in the order they came.
		seq := binary.BigEndian.Uint32(frame[t.l4+4:])
		if !s.closed && seq == s.nextSeq && len(payload) <= s.mss &&
			len(s.payloads) < maxSegs && s.t.hdrLen-s.t.l3+s.bytes+len(payload) <= maxIPPacket &&
			sameHeaders(s.hdr[:s.t.hdrLen], &s.t, frame, &t) {
			s.payloads = append(s.payloads, payload)
			s.bytes += len(payload)
			s.nextSeq += uint32(len(payload))
			psh := frame[t.l4+13]&tcpFlagPSH != 0
			s.psh = s.psh || psh
			s.closed = len(payload) < s.mss || psh
			return
		}
		c.flushSlot(s)
		c.open(s, k, t, frame, !covered)
		return
	}
	c.open(c.freeSlot(), k, t, frame, !covered)
}

// mergeable reports whether a TCP frame may join a super-frame: a plain
// ACK (PSH allowed) with payload, whose lengths and IPv4 header checksum
// are right, and, if check is set, its TCP checksum. The TCP checksum is
// checked because the merged frame reaches the kernel marked as needing
// none.
func mergeable(f []byte, t *tcpFrame, check bool) bool {
	if len(f) <= t.hdrLen {
		return false
	}
	if f[t.l4+13]&^tcpFlagPSH != tcpFlagACK {
		return false
	}
	if t.v6 {
		if int(binary.BigEndian.Uint16(f[t.l3+4:])) != len(f)-t.l3-ipv6HdrLen {
			return false
		}
	} else {
		if int(binary.BigEndian.Uint16(f[t.l3+2:])) != len(f)-t.l3 {
			return false
		}
		if Checksum(f[t.l3:t.l4], 0) != 0 {
			return false
		}
	}
	return !check || t.tcpChecksumOK(f)
}

// sameConn reports whether two TCP frames belong to one connection: the
// same Ethernet and VLAN headers, IP version, addresses and ports.
func sameConn(h []byte, ht *tcpFrame, f []byte, t *tcpFrame) bool {
	if ht.l3 != t.l3 || ht.v6 != t.v6 || !bytes.Equal(h[:t.l3], f[:t.l3]) {
		return false
	}
	src, n := t.l3+12, 8 // IPv4 source and destination addresses
	if t.v6 {
		src, n = t.l3+8, 32
	}
	return bytes.Equal(h[src:src+n], f[src:src+n]) && bytes.Equal(h[ht.l4:ht.l4+4], f[t.l4:t.l4+4])
}

// sameHeaders compares, for two frames of one connection, everything but
// what differs between segments of one super-frame: IP length, id and
// checksum, TCP sequence number, PSH and checksum, and the window (the
// super-frame keeps the first).
func sameHeaders(h []byte, ht *tcpFrame, f []byte, t *tcpFrame) bool {
	if ht.l4 != t.l4 || ht.hdrLen != t.hdrLen {
		return false
	}
	if t.v6 {
		// Version, class, flow label; next header, hop limit.
		if !bytes.Equal(h[t.l3:t.l3+4], f[t.l3:t.l3+4]) || !bytes.Equal(h[t.l3+6:t.l3+8], f[t.l3+6:t.l3+8]) {
			return false
		}
	} else {
		// Version/IHL/TOS, flags (DF), TTL/protocol, options.
		if h[t.l3] != f[t.l3] || h[t.l3+1] != f[t.l3+1] || h[t.l3+6]&0xe0 != f[t.l3+6]&0xe0 ||
			h[t.l3+8] != f[t.l3+8] || h[t.l3+9] != f[t.l3+9] || !bytes.Equal(h[t.l3+20:t.l4], f[t.l3+20:t.l4]) {
			return false
		}
	}
	// Acknowledgment number, data offset, and options.
	return bytes.Equal(h[t.l4+8:t.l4+13], f[t.l4+8:t.l4+13]) &&
		bytes.Equal(h[t.l4+20:t.hdrLen], f[t.l4+20:t.hdrLen])
}

func (c *Coalescer[K]) freeSlot() *slot[K] {
	for i := range c.slots {
		if !c.slots[i].busy {
			return &c.slots[i]
		}
	}
	s := &c.slots[c.next]
	c.next = (c.next + 1) % len(c.slots)
	c.flushSlot(s)
	return s
}

func (c *Coalescer[K]) open(s *slot[K], k K, t tcpFrame, frame []byte, checked bool) {
	if t.hdrLen > maxCoalesceHdr {
		c.passThrough(k, frame)
		return
	}
	payload := frame[t.hdrLen:]
	s.busy, s.owner, s.t, s.checked = true, k, t, checked
	copy(s.hdr[:], frame[:t.hdrLen])
	s.payloads = append(s.payloads[:0], payload)
	s.bytes = len(payload)
	s.mss = len(payload)
	s.nextSeq = binary.BigEndian.Uint32(frame[t.l4+4:]) + uint32(len(payload))
	s.psh = frame[t.l4+13]&tcpFlagPSH != 0
	s.closed = s.psh
}

// Bypass writes a frame at once, unmerged, after the owner's pending
// super-frames, so the owner's frames stay in order. The frame's buffer is
// free again when Bypass returns.
func (c *Coalescer[K]) Bypass(k K, frame []byte) { c.passThrough(k, frame) }

// passThrough writes a frame that is not merged, after the owner's pending
// super-frames.
func (c *Coalescer[K]) passThrough(k K, frame []byte) {
	c.FlushOwner(k)
	c.parts = append(c.parts[:0], c.plain[:], frame)
	if c.w.WriteParts(k, c.parts) != nil {
		c.errors++
	}
}

// FlushOwner writes owner k's pending super-frames, before a frame of k
// that goes to its device another way.
func (c *Coalescer[K]) FlushOwner(k K) {
	for i := range c.slots {
		if c.slots[i].busy && c.slots[i].owner == k {
			c.flushSlot(&c.slots[i])
		}
	}
}

// Flush writes every pending super-frame. Call it at the end of each
// receive batch, before the buffers are reused.
func (c *Coalescer[K]) Flush() {
	for i := range c.slots {
		if c.slots[i].busy {
			c.flushSlot(&c.slots[i])
		}
	}
}

func (c *Coalescer[K]) flushSlot(s *slot[K]) {
	s.busy = false
	hdr := s.hdr[:s.t.hdrLen]
	switch {
	case len(s.payloads) == 1 && s.checked:
		// A lone segment goes as it came, its checksums already checked.
		c.parts = append(c.parts[:0], c.valid[:], hdr, s.payloads[0])
	case len(s.payloads) == 1:
		// Not checked here: the kernel checks it, as for any frame.
		c.parts = append(c.parts[:0], c.plain[:], hdr, s.payloads[0])
	default:
		l4len := s.t.hdrLen - s.t.l4 + s.bytes
		s.t.setIPLength(hdr, l4len)
		if s.psh {
			hdr[s.t.l4+13] |= tcpFlagPSH
		}
		src, dst := s.t.ipAddrs(hdr)
		binary.BigEndian.PutUint16(hdr[s.t.l4+tcpCsumOff:], Fold(pseudoSum(src, dst, protoTCP, l4len)))
		gso := uint8(GSOTCPv4)
		if s.t.v6 {
			gso = GSOTCPv6
		}
		v := VnetHdr{Flags: FlagNeedsCsum, GSOType: gso, HdrLen: uint16(s.t.hdrLen), GSOSize: uint16(s.mss),
			CsumStart: uint16(s.t.l4), CsumOffset: tcpCsumOff}
		v.Encode(s.vnet[:])
		c.parts = append(c.parts[:0], s.vnet[:], hdr)
		c.parts = append(c.parts, s.payloads...)
	}
	if c.w.WriteParts(s.owner, c.parts) != nil {
		c.errors++
	}
	s.payloads = s.payloads[:0]
	var zero K
	s.owner = zero
}
