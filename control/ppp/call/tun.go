package call

import (
	"github.com/ul2tp/ul2tp/control/ppp"
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
func (c *Call) sendPacket(buf []byte, n int) {
	if n == 0 {
		return
	}
	var proto uint16
	switch buf[headroom] >> 4 {
	case 4:
		if !c.ip4.Load() {
			return
		}
		proto = encap.PPPIPv4
	case 6:
		if !c.ip6.Load() {
			return
		}
		proto = encap.PPPIPv6
	default:
		return
	}
	bits := c.hdr.Load()
	h := encap.PPPHeader{ACFC: bits&1 != 0, PFC: bits&2 != 0}
	hl := encap.PPPHeaderLen(proto, h)
	if _, err := encap.EncodePPP(buf[headroom-hl:], proto, h); err != nil {
		return
	}
	if s := c.sess.Load(); s != nil {
		s.Send(buf[headroom-hl : headroom+n])
	}
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
