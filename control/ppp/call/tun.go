package call

import (
	"sync"

	"github.com/ul2tp/ul2tp/control/ppp"
	"github.com/ul2tp/ul2tp/datapath/offload"
	"github.com/ul2tp/ul2tp/encap"
)

// headroom is the room left before each packet read from the TUN for
// the longest PPP header (ff 03 and a two-byte protocol).
const headroom = 4

// readTUN is the TUN reader: each IP packet goes to the peer behind the
// PPP header the Link negotiated, as IPv4 (0x0021) or IPv6 (0x0057) by its
// version nibble, once the NCP of that version is open.
func (c *Call) readTUN() {
	defer c.reader.Done()
	if c.dev.VnetHdr() {
		c.readTUNVnet()
		return
	}
	bufs := [][]byte{make([]byte, headroom+c.readSize())}
	sizes := []int{0}
	for {
		n, err := c.q.Read(bufs, sizes, headroom)
		if err != nil {
			return
		}
		for i := range n {
			c.sendPacket(bufs[i], sizes[i])
		}
	}
}

// sendPacket sends the IP packet at buf[headroom:headroom+n], writing its
// PPP header into the headroom. It allocates nothing.
func (c *Call) sendPacket(buf []byte, n int) { c.sendPacketAt(buf, headroom, n) }

// sendPacketAt sends the IP packet at buf[at:at+n], writing its PPP header
// into the bytes before it (at least headroom of them).
func (c *Call) sendPacketAt(buf []byte, at, n int) {
	if n == 0 {
		return
	}
	proto, h, ok := c.pppHeader(buf[at])
	if !ok {
		return
	}
	hl := encap.PPPHeaderLen(proto, h)
	if _, err := encap.EncodePPP(buf[at-hl:], proto, h); err != nil {
		return
	}
	if s := c.sess.Load(); s != nil {
		s.Send(buf[at-hl : at+n])
	}
}

// pppHeader is the PPP protocol and header for an IP packet whose first
// byte is b0, by its version nibble; ok is false for a version whose NCP
// is not open (or no IP version).
func (c *Call) pppHeader(b0 byte) (proto uint16, h encap.PPPHeader, ok bool) {
	switch b0 >> 4 {
	case 4:
		if !c.ip4.Load() {
			return 0, h, false
		}
		proto = encap.PPPIPv4
	case 6:
		if !c.ip6.Load() {
			return 0, h, false
		}
		proto = encap.PPPIPv6
	default:
		return 0, h, false
	}
	bits := c.hdr.Load()
	return proto, encap.PPPHeader{ACFC: bits&1 != 0, PFC: bits&2 != 0}, true
}

// readSize is the largest packet the TUN reader takes: the TUN's MTU is
// at most Options.MTU, so an MTU-sized buffer does (not less than PPP's
// default MRU, should the MTU be raised by hand); without one, the most
// an MRU can announce.
func (c *Call) readSize() int {
	if m := c.cfg.options().MTU; m > 0 {
		return max(m, ppp.DefaultMRU)
	}
	return 65535
}

// With offloads (the TUN has a virtio_net_hdr and TSO), the reader takes
// TCP super-packets of up to 64 KiB and cuts them into MSS-sized IP
// packets here, as a NIC would; each goes behind its PPP header, and the
// segments of a super-packet leave in one Session.SendSegments.

// segBatch is how many segments one SendSegments takes; the headers of
// each have room for the L2TPv2 data header, the PPP header, and IP and
// TCP headers with options.
const (
	segBatch  = 64
	segStride = encap.V2MaxDataHeaderLen + headroom + 60 + 60
	vnetRead  = headroom + offload.VnetHdrLen + 65535
)

// TUNBuffers lends the TUN readers of calls with offloads the buffers
// they read super-packets into (64 KiB each) and cut them in: a reader
// holds one only while its TUN has packets, so idle calls share a few.
// One TUNBuffers may serve all of an owner's calls; the zero value is
// ready.
type TUNBuffers struct {
	pool sync.Pool
}

// tunBuf is one reader's buffers.
type tunBuf struct {
	bufs     [1][]byte
	sizes    [1]int
	hdrs     []byte
	payloads [][]byte
}

func (p *TUNBuffers) get() *tunBuf {
	if b, ok := p.pool.Get().(*tunBuf); ok {
		return b
	}
	b := &tunBuf{hdrs: make([]byte, segBatch*segStride), payloads: make([][]byte, segBatch)}
	b.bufs[0] = make([]byte, vnetRead)
	return b
}

func (p *TUNBuffers) put(b *tunBuf) {
	clear(b.payloads)
	p.pool.Put(b)
}

// tunLender is a reader's tap.Lender over its Call's TUNBuffers.
type tunLender struct {
	p   *TUNBuffers
	cur *tunBuf
}

// Lend takes a buffer from the pool.
func (l *tunLender) Lend() ([][]byte, []int) {
	l.cur = l.p.get()
	return l.cur.bufs[:], l.cur.sizes[:]
}

// Unlend gives it back.
func (l *tunLender) Unlend() {
	l.p.put(l.cur)
	l.cur = nil
}

// readTUNVnet is readTUN for a TUN with a virtio_net_hdr.
func (c *Call) readTUNVnet() {
	p := c.cfg.Buffers
	if p == nil {
		p = &TUNBuffers{}
	}
	l := &tunLender{p: p}
	for {
		n, err := c.q.ReadLent(l, headroom)
		if err != nil {
			return
		}
		for i := range n {
			c.sendVnet(l.cur, l.cur.bufs[i][:headroom+l.cur.sizes[i]])
		}
		l.Unlend()
	}
}

// sendVnet sends what the TUN read into buf[headroom:]: a virtio_net_hdr
// and an IP packet. A packet with a partial checksum gets it completed; a
// TCP super-packet is cut into segments, sent with b's room. Malformed
// ones are dropped. It allocates nothing.
func (c *Call) sendVnet(b *tunBuf, buf []byte) {
	h, err := offload.DecodeVnetHdr(buf[headroom:])
	at := headroom + offload.VnetHdrLen
	if err != nil || len(buf) == at {
		return
	}
	pkt := buf[at:]
	if h.GSOType == offload.GSONone {
		if offload.CompleteChecksum(pkt, h) == nil {
			c.sendPacketAt(buf, at, len(pkt))
		}
		return
	}
	proto, ph, ok := c.pppHeader(pkt[0])
	if !ok {
		return
	}
	tso, err := offload.ParsePacketTSO(pkt, h)
	if err != nil {
		return
	}
	s := c.sess.Load()
	if s == nil {
		return
	}
	prefix := encap.V2MaxDataHeaderLen + encap.PPPHeaderLen(proto, ph)
	for first := 0; first < tso.Segments(); {
		k, stride := tso.Segment(first, b.hdrs, prefix, b.payloads)
		if k == 0 {
			return
		}
		for i := range k {
			encap.EncodePPP(b.hdrs[i*stride+encap.V2MaxDataHeaderLen:], proto, ph)
		}
		if err := s.SendSegments(b.hdrs[:k*stride], stride, b.payloads[:k]); err != nil {
			return
		}
		first += k
	}
}
