package offload

import "encoding/binary"

// Ethernet and IP constants.
const (
	ethHdrLen   = 14
	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	etherVLAN   = 0x8100
	etherQinQ   = 0x88a8
	protoTCP    = 6
	ipv6HdrLen  = 40
	tcpFlagFIN  = 0x01
	tcpFlagSYN  = 0x02
	tcpFlagRST  = 0x04
	tcpFlagPSH  = 0x08
	tcpFlagACK  = 0x10
	tcpFlagURG  = 0x20
	tcpFlagECE  = 0x40
	tcpFlagCWR  = 0x80
	tcpCsumOff  = 16
	maxIPPacket = 65535
)

// tcpFrame locates the headers of an Ethernet frame carrying TCP.
type tcpFrame struct {
	l3, l4, hdrLen int // IP header offset, TCP header offset, end of TCP header
	v6             bool
}

// parseTCP finds the IP and TCP headers of an Ethernet frame (with up to
// two VLAN tags). It accepts IPv4 without fragmentation and IPv6 whose next
// header is TCP; ok is false for anything else.
func parseTCP(f []byte) (t tcpFrame, ok bool) {
	off := ethHdrLen - 2
	for i := 0; ; i++ {
		if len(f) < off+2 {
			return t, false
		}
		et := binary.BigEndian.Uint16(f[off:])
		if (et == etherVLAN || et == etherQinQ) && i < 2 {
			off += 4
			continue
		}
		switch et {
		case etherIPv4:
			return parseIPTCP(f, off+2, false)
		case etherIPv6:
			return parseIPTCP(f, off+2, true)
		}
		return t, false
	}
}

// parsePacketTCP finds the TCP header of a bare IP packet (as a TUN
// device carries it), IPv4 or IPv6 by its version nibble, with the same
// rules as parseTCP.
func parsePacketTCP(p []byte) (t tcpFrame, ok bool) {
	if len(p) == 0 {
		return t, false
	}
	switch p[0] >> 4 {
	case 4:
		return parseIPTCP(p, 0, false)
	case 6:
		return parseIPTCP(p, 0, true)
	}
	return t, false
}

// parseIPTCP finds the TCP header behind the IPv4 or IPv6 header at f[off:].
func parseIPTCP(f []byte, off int, v6 bool) (t tcpFrame, ok bool) {
	if !v6 {
		if len(f) < off+20 || f[off]>>4 != 4 {
			return t, false
		}
		ihl := int(f[off]&0x0f) * 4
		if ihl < 20 || len(f) < off+ihl || f[off+9] != protoTCP {
			return t, false
		}
		// No fragments: MF clear and offset 0.
		if binary.BigEndian.Uint16(f[off+6:])&0x3fff != 0 {
			return t, false
		}
		t.l3, t.l4 = off, off+ihl
	} else {
		if len(f) < off+ipv6HdrLen || f[off]>>4 != 6 || f[off+6] != protoTCP {
			return t, false
		}
		t.l3, t.l4, t.v6 = off, off+ipv6HdrLen, true
	}
	if len(f) < t.l4+20 {
		return t, false
	}
	doff := int(f[t.l4+12]>>4) * 4
	if doff < 20 || len(f) < t.l4+doff {
		return t, false
	}
	t.hdrLen = t.l4 + doff
	return t, true
}

// ipAddrs returns the source and destination addresses.
func (t *tcpFrame) ipAddrs(f []byte) (src, dst []byte) {
	if t.v6 {
		return f[t.l3+8 : t.l3+24], f[t.l3+24 : t.l3+40]
	}
	return f[t.l3+12 : t.l3+16], f[t.l3+16 : t.l3+20]
}

// setIPLength writes the IP length fields for an L4 segment of l4len bytes
// and, for IPv4, the header checksum.
func (t *tcpFrame) setIPLength(f []byte, l4len int) {
	if t.v6 {
		binary.BigEndian.PutUint16(f[t.l3+4:], uint16(t.l4-t.l3-ipv6HdrLen+l4len))
		return
	}
	binary.BigEndian.PutUint16(f[t.l3+2:], uint16(t.l4-t.l3+l4len))
	f[t.l3+10], f[t.l3+11] = 0, 0
	binary.BigEndian.PutUint16(f[t.l3+10:], Checksum(f[t.l3:t.l4], 0))
}

// tcpChecksumOK verifies the TCP checksum of a whole frame.
func (t *tcpFrame) tcpChecksumOK(f []byte) bool {
	src, dst := t.ipAddrs(f)
	l4len := len(f) - t.l4
	return Fold(Sum(f[t.l4:], pseudoSum(src, dst, protoTCP, l4len))) == 0xffff
}
