package encap

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Encap is the transport an L2TPv3 tunnel runs over, numbered as the
// kernel's L2TP_ATTR_ENCAP_TYPE values.
type Encap uint8

const (
	EncapUDP Encap = 0 // L2TP_ENCAPTYPE_UDP
	EncapIP  Encap = 1 // L2TP_ENCAPTYPE_IP: IP protocol 115
)

// IPProtoL2TP is the IP protocol number of L2TPv3 over IP (IPPROTO_L2TP).
const IPProtoL2TP = 115

func (e Encap) String() string {
	switch e {
	case EncapUDP:
		return "udp"
	case EncapIP:
		return "ip"
	}
	return fmt.Sprintf("encap(%d)", uint8(e))
}

// ParseEncap reads "udp" or "ip".
func ParseEncap(s string) (Encap, error) {
	switch strings.ToLower(s) {
	case "udp":
		return EncapUDP, nil
	case "ip":
		return EncapIP, nil
	}
	return 0, fmt.Errorf("encap %q: want udp or ip", s)
}

// L2Spec is the L2-specific sublayer type, numbered as L2TP_ATTR_L2SPEC_TYPE.
type L2Spec uint8

const (
	L2SpecNone    L2Spec = 0 // L2TP_L2SPECTYPE_NONE: no sublayer
	L2SpecDefault L2Spec = 1 // L2TP_L2SPECTYPE_DEFAULT: RFC 4719 sublayer
)

func (l L2Spec) String() string {
	switch l {
	case L2SpecNone:
		return "none"
	case L2SpecDefault:
		return "default"
	}
	return fmt.Sprintf("l2spec(%d)", uint8(l))
}

// ParseL2Spec reads "none" or "default".
func ParseL2Spec(s string) (L2Spec, error) {
	switch strings.ToLower(s) {
	case "none":
		return L2SpecNone, nil
	case "default":
		return L2SpecDefault, nil
	}
	return 0, fmt.Errorf("l2spec_type %q: want none or default", s)
}

// Header sizes and field offsets.
const (
	V3UDPPrefixLen   = 4 // flags/version word and reserved field before the session id over UDP
	V3SessionIDLen   = 4 // session id
	L2SpecDefaultLen = 4 // RFC 4719 default sublayer
	MaxCookieLen     = 8 // longest cookie
	MaxV3HeaderLen   = V3UDPPrefixLen + V3SessionIDLen + MaxCookieLen + L2SpecDefaultLen

	v3Version    = 3      // version nibble of the UDP flags word
	flagT        = 0x8000 // T bit: control message
	versionMask  = 0x000f
	l2specS      = 0x40000000 // S bit of the default sublayer
	l2specSeqMsk = 0x00ffffff
)

// SeqMaskV3 is the sequence number space of the default L2-specific sublayer.
const SeqMaskV3 = l2specSeqMsk

// Errors returned by the parsers. The datapath counts drops by them.
var (
	ErrTruncated = errors.New("packet shorter than its header")
	ErrControl   = errors.New("control message, not data")
	ErrVersion   = errors.New("unsupported L2TP version")
	ErrCookie    = errors.New("cookie mismatch")
	ErrSession   = errors.New("session id 0 in a data header")
	ErrLength    = errors.New("message longer than an L2TP Length field holds")
)

// Cookie is an L2TPv3 cookie of 0, 4 or 8 bytes, held by value.
type Cookie struct {
	b [MaxCookieLen]byte
	n uint8
}

// ParseCookie reads a cookie written as 8 or 16 hex digits (empty for none),
// the form iproute2 uses.
func ParseCookie(s string) (Cookie, error) {
	var c Cookie
	if s == "" {
		return c, nil
	}
	if len(s) != 8 && len(s) != 16 {
		return c, fmt.Errorf("cookie %q: want 8 or 16 hex digits", s)
	}
	if _, err := hex.Decode(c.b[:], []byte(s)); err != nil {
		return Cookie{}, fmt.Errorf("cookie %q: %w", s, err)
	}
	c.n = uint8(len(s) / 2)
	return c, nil
}

// CookieFromBytes makes a cookie of 0, 4 or 8 bytes.
func CookieFromBytes(b []byte) (Cookie, error) {
	var c Cookie
	switch len(b) {
	case 0, 4, 8:
	default:
		return c, fmt.Errorf("cookie of %d bytes: want 0, 4 or 8", len(b))
	}
	c.n = uint8(copy(c.b[:], b))
	return c, nil
}

// Len is the cookie's length in bytes.
func (c Cookie) Len() int { return int(c.n) }

// Bytes returns a copy of the cookie's bytes.
func (c Cookie) Bytes() []byte { return append([]byte(nil), c.b[:c.n]...) }

// String is the cookie in hex, "" for none.
func (c Cookie) String() string { return hex.EncodeToString(c.b[:c.n]) }

// matches reports whether b begins with the cookie.
func (c *Cookie) matches(b []byte) bool {
	for i := 0; i < int(c.n); i++ {
		if b[i] != c.b[i] {
			return false
		}
	}
	return true
}

// V3Layout is the shape of one L2TPv3 session's data header: what the two
// ends agreed on. A session has two: one to encode with, holding the
// session's cookie (what this end sends, the kernel's "cookie"), and one to
// decode with, holding the cookie it expects (the kernel's "peer_cookie").
type V3Layout struct {
	Encap  Encap
	Cookie Cookie
	L2Spec L2Spec
}

// HeaderLen is the length of the data header in bytes: over UDP the
// flags/version word and reserved field, then the session id, cookie and
// sublayer.
func (l *V3Layout) HeaderLen() int {
	n := V3SessionIDLen + int(l.Cookie.n)
	if l.Encap == EncapUDP {
		n += V3UDPPrefixLen
	}
	if l.L2Spec == L2SpecDefault {
		n += L2SpecDefaultLen
	}
	return n
}

// Encode writes the header into b[:l.HeaderLen()] for a packet to session
// sessionID. With the default sublayer and withSeq, it sets the S bit and the
// low 24 bits of ns. It returns the header length; b must be long enough.
func (l *V3Layout) Encode(b []byte, sessionID uint32, ns uint32, withSeq bool) int {
	n := 0
	if l.Encap == EncapUDP {
		binary.BigEndian.PutUint32(b[0:4], v3Version<<16) // T=0, ver=3, then 16 reserved bits
		n = V3UDPPrefixLen
	}
	binary.BigEndian.PutUint32(b[n:n+4], sessionID)
	n += V3SessionIDLen
	n += copy(b[n:n+int(l.Cookie.n)], l.Cookie.b[:l.Cookie.n])
	if l.L2Spec == L2SpecDefault {
		var w uint32
		if withSeq {
			w = l2specS | ns&l2specSeqMsk
		}
		binary.BigEndian.PutUint32(b[n:n+4], w)
		n += L2SpecDefaultLen
	}
	return n
}

// PeekV3SessionID reads the session id of an L2TPv3 packet as it arrives on
// a socket of encapsulation e: the UDP payload, or the IP payload for IP
// encapsulation. It rejects control messages (T bit over UDP, session id 0
// over IP) with ErrControl and other versions with ErrVersion.
func PeekV3SessionID(b []byte, e Encap) (uint32, error) {
	if e == EncapUDP {
		if len(b) < V3UDPPrefixLen+V3SessionIDLen {
			return 0, ErrTruncated
		}
		flags := binary.BigEndian.Uint16(b[0:2])
		if flags&flagT != 0 {
			return 0, ErrControl
		}
		if flags&versionMask != v3Version {
			return 0, ErrVersion
		}
		sid := binary.BigEndian.Uint32(b[4:8])
		if sid == 0 {
			return 0, ErrSession
		}
		return sid, nil
	}
	if len(b) < V3SessionIDLen {
		return 0, ErrTruncated
	}
	sid := binary.BigEndian.Uint32(b[0:4])
	if sid == 0 {
		return 0, ErrControl
	}
	return sid, nil
}

// V3Data is what Decode finds in a data header.
type V3Data struct {
	PayloadOffset int    // where the tunnelled frame starts in b
	Ns            uint32 // sequence number, valid when HasSeq
	HasSeq        bool   // the S bit was set
}

// Decode checks the header of a packet already matched to this session by
// PeekV3SessionID: the cookie must match (ErrCookie) and the packet must hold
// the whole header (ErrTruncated).
func (l *V3Layout) Decode(b []byte) (V3Data, error) {
	hl := l.HeaderLen()
	if len(b) < hl {
		return V3Data{}, ErrTruncated
	}
	n := V3SessionIDLen
	if l.Encap == EncapUDP {
		n += V3UDPPrefixLen
	}
	if !l.Cookie.matches(b[n:]) {
		return V3Data{}, ErrCookie
	}
	d := V3Data{PayloadOffset: hl}
	if l.L2Spec == L2SpecDefault {
		w := binary.BigEndian.Uint32(b[hl-4 : hl])
		if w&l2specS != 0 {
			d.HasSeq = true
			d.Ns = w & l2specSeqMsk
		}
	}
	return d, nil
}
