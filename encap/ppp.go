package encap

import "errors"

// PPP protocol numbers (RFC 1661 and the assigned numbers it points to).
const (
	PPPIPv4   = 0x0021 // Internet Protocol version 4
	PPPIPv6   = 0x0057 // Internet Protocol version 6
	PPPIPCP   = 0x8021 // IP Control Protocol (RFC 1332)
	PPPIPv6CP = 0x8057 // IPv6 Control Protocol (RFC 5072)
	PPPCCP    = 0x80fd // Compression Control Protocol (RFC 1962)
	PPPLCP    = 0xc021 // Link Control Protocol
	PPPPAP    = 0xc023 // Password Authentication Protocol (RFC 1334)
	PPPCHAP   = 0xc223 // Challenge Handshake Authentication Protocol (RFC 1994)

	// PPPMaxHeaderLen is the longest header EncodePPP writes: address,
	// control and a two-byte protocol field.
	PPPMaxHeaderLen = 4
)

// ErrPPPProtocol reports a PPP protocol field that breaks the rule of RFC
// 1661 section 2: the last octet odd, every earlier octet even.
var ErrPPPProtocol = errors.New("malformed PPP protocol field")

// PPPHeader says how a PPP frame's header is written.
type PPPHeader struct {
	// ACFC omits the address and control fields (ff 03); never applied
	// to LCP, whose packets always carry them (RFC 1661 section 6.6).
	ACFC bool
	// PFC writes protocols below 0x100 in one byte (RFC 1661 section 6.5).
	PFC bool
}

// ParsePPP reads the header of a PPP frame as L2TP carries it (RFC 2661
// section 1: no HDLC flags, no FCS, no byte stuffing): an optional address
// and control field (ff 03) and a one or two byte protocol field. It returns
// the protocol and the offset of the information field in b.
func ParsePPP(b []byte) (proto uint16, off int, err error) {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0x03 {
		off = 2
	}
	if len(b) <= off {
		return 0, 0, ErrTruncated
	}
	if b[off]&1 != 0 { // compressed: one odd octet
		return uint16(b[off]), off + 1, nil
	}
	if len(b) < off+2 {
		return 0, 0, ErrTruncated
	}
	if b[off+1]&1 == 0 {
		return 0, 0, ErrPPPProtocol
	}
	return uint16(b[off])<<8 | uint16(b[off+1]), off + 2, nil
}

// PPPHeaderLen is the length of the header EncodePPP writes for proto.
func PPPHeaderLen(proto uint16, h PPPHeader) int {
	n := 2
	if h.ACFC && proto != PPPLCP {
		n = 0
	}
	if h.PFC && proto < 0x100 {
		return n + 1
	}
	return n + 2
}

// EncodePPP writes the header of a PPP frame carrying proto at the start of
// b and returns its length (PPPHeaderLen). The information field follows it.
func EncodePPP(b []byte, proto uint16, h PPPHeader) (int, error) {
	if proto>>8&1 != 0 || proto&1 == 0 {
		return 0, ErrPPPProtocol
	}
	n := PPPHeaderLen(proto, h)
	if len(b) < n {
		return 0, ErrTruncated
	}
	i := 0
	if !h.ACFC || proto == PPPLCP {
		b[0], b[1] = 0xff, 0x03
		i = 2
	}
	if n-i == 1 {
		b[i] = byte(proto)
	} else {
		b[i], b[i+1] = byte(proto>>8), byte(proto)
	}
	return n, nil
}
