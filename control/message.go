package control

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Control message header (RFC 2661 section 3.1, RFC 3931 section 3.2.1):
//
//	v2: flags+ver(2) length(2) tunnel id(2) session id(2) Ns(2) Nr(2)
//	v3: flags+ver(2) length(2) control connection id(4)   Ns(2) Nr(2)
//
// Both are 12 bytes with Ns and Nr at the same offsets. An L2TPv3 control
// message over IP is preceded by a zero session id; the caller strips it.
const (
	HeaderLen = 12

	flagT       = 0x8000
	flagL       = 0x4000
	flagS       = 0x0800
	flagO       = 0x0200
	flagP       = 0x0100
	versionMask = 0x000f

	offLength = 2
	offNs     = 8
	offNr     = 10
)

// Protocol versions carried in the header's Ver field.
const (
	V2 = 2
	V3 = 3
)

// Errors returned by the parsers, possibly wrapped with the field's name.
var (
	ErrTruncated   = errors.New("control: truncated")
	ErrVersion     = errors.New("control: unsupported version")
	ErrNotControl  = errors.New("control: not a control message")
	ErrFlags       = errors.New("control: bad header flags")
	ErrLength      = errors.New("control: bad length")
	ErrAVPLength   = errors.New("control: bad AVP length")
	ErrNoType      = errors.New("control: first AVP is not Message Type")
	ErrValueLength = errors.New("control: bad AVP value length")
	ErrHidden      = errors.New("control: AVP is hidden")
	ErrBufferFull  = errors.New("control: buffer full")
)

// Header holds the fields of a control message header.
type Header struct {
	Version   uint8  // V2 or V3
	Length    uint16 // whole message, header included
	TunnelID  uint32 // v2: 16-bit tunnel id; v3: control connection id
	SessionID uint16 // v2 only
	Ns, Nr    uint16
}

// Message is a parsed control message: a view over the received bytes.
type Message struct {
	Header
	b []byte // the message, b[:Length] of the input
}

// ParseHeader reads a control message header. It requires the T, L and S
// bits (RFC 2661 section 3.1), the O and P bits clear for v2, and a Length
// between the header length and len(b).
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < 2 {
		return h, fmt.Errorf("flags: %w", ErrTruncated)
	}
	flags := binary.BigEndian.Uint16(b)
	ver := flags & versionMask
	if ver != V2 && ver != V3 {
		return h, fmt.Errorf("version %d: %w", ver, ErrVersion)
	}
	if flags&flagT == 0 {
		return h, ErrNotControl
	}
	if flags&(flagL|flagS) != flagL|flagS {
		return h, fmt.Errorf("flags %#04x: L and S must be set: %w", flags, ErrFlags)
	}
	if ver == V2 && flags&(flagO|flagP) != 0 {
		return h, fmt.Errorf("flags %#04x: O and P must be clear: %w", flags, ErrFlags)
	}
	if len(b) < HeaderLen {
		return h, fmt.Errorf("header: %w", ErrTruncated)
	}
	h.Version = uint8(ver)
	h.Length = binary.BigEndian.Uint16(b[offLength:])
	if int(h.Length) < HeaderLen || int(h.Length) > len(b) {
		return h, fmt.Errorf("length %d of %d bytes: %w", h.Length, len(b), ErrLength)
	}
	if ver == V2 {
		h.TunnelID = uint32(binary.BigEndian.Uint16(b[4:]))
		h.SessionID = binary.BigEndian.Uint16(b[6:])
	} else {
		h.TunnelID = binary.BigEndian.Uint32(b[4:])
	}
	h.Ns = binary.BigEndian.Uint16(b[offNs:])
	h.Nr = binary.BigEndian.Uint16(b[offNr:])
	return h, nil
}

// Parse reads a control message and checks every AVP's length, so that
// later iteration over m.AVPs() cannot fail. Bytes after Length are
// ignored. A ZLB (no AVPs) is valid; any other message must start with a
// Message Type AVP.
func Parse(b []byte) (Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Message{}, err
	}
	m := Message{Header: h, b: b[:h.Length]}
	if m.IsZLB() {
		return m, nil
	}
	it := m.AVPs()
	first := true
	for {
		a, ok := it.Next()
		if !ok {
			break
		}
		if first {
			if a.VendorID != 0 || a.Type != AttrMessageType || a.Hidden() || len(a.Value) != 2 {
				return Message{}, ErrNoType
			}
			first = false
		}
	}
	if err := it.Err(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Bytes returns the message, header included.
func (m Message) Bytes() []byte { return m.b }

// IsZLB reports whether m is a Zero-Length Body message: an acknowledgement
// with no AVPs.
func (m Message) IsZLB() bool { return len(m.b) == HeaderLen }

// Type returns the Message Type; 0 for a ZLB or a Message not from Parse.
func (m Message) Type() MessageType {
	if len(m.b) < HeaderLen+AVPHeaderLen+2 {
		return 0
	}
	// Parse checked that the first AVP is a 2-byte Message Type.
	return MessageType(binary.BigEndian.Uint16(m.b[HeaderLen+AVPHeaderLen:]))
}

// AVPs returns an iterator over the message's AVPs.
func (m Message) AVPs() AVPIter { return AVPIter{b: m.b[min(HeaderLen, len(m.b)):]} }

// Find returns the first IETF AVP of type t.
func (m Message) Find(t AttrType) (AVP, bool) {
	it := m.AVPs()
	for {
		a, ok := it.Next()
		if !ok {
			return AVP{}, false
		}
		if a.VendorID == 0 && a.Type == t {
			return a, true
		}
	}
}

// SetNsNr writes Ns and Nr into a built control message (at least
// HeaderLen bytes), as the transport does at each transmission.
func SetNsNr(msg []byte, ns, nr uint16) {
	binary.BigEndian.PutUint16(msg[offNs:], ns)
	binary.BigEndian.PutUint16(msg[offNr:], nr)
}

// PutHeader writes a control message header with the given length into
// b, which must hold HeaderLen bytes. For V2 the tunnel id is truncated to
// 16 bits; for V3 the session id is not written.
func PutHeader(b []byte, h Header) {
	binary.BigEndian.PutUint16(b, flagT|flagL|flagS|uint16(h.Version&versionMask))
	binary.BigEndian.PutUint16(b[offLength:], h.Length)
	if h.Version == V3 {
		binary.BigEndian.PutUint32(b[4:], h.TunnelID)
	} else {
		binary.BigEndian.PutUint16(b[4:], uint16(h.TunnelID))
		binary.BigEndian.PutUint16(b[6:], h.SessionID)
	}
	SetNsNr(b, h.Ns, h.Nr)
}

// AppendZLB writes a ZLB acknowledgement into b (at least HeaderLen
// bytes) and returns it.
func AppendZLB(b []byte, version uint8, tunnelID uint32, ns, nr uint16) []byte {
	b = b[:HeaderLen]
	PutHeader(b, Header{Version: version, Length: HeaderLen, TunnelID: tunnelID, Ns: ns, Nr: nr})
	return b
}
