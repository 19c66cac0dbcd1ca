package control

import (
	"encoding/binary"
	"fmt"
)

// Builder writes a control message into a caller's buffer, one AVP at a
// time, without allocating. Errors are sticky: after the buffer fills,
// every Add is a no-op and Finish returns ErrBufferFull.
//
//	b := control.NewBuilder(buf, control.Header{Version: control.V2, TunnelID: peer}, control.MsgSCCRQ)
//	b.AddUint16(control.AttrProtocolVersion, true, control.ProtocolVersionV2)
//	b.AddString(control.AttrHostName, true, "lac1")
//	msg, err := b.Finish()
//
// Ns and Nr are left as given in the header; the Transport sets them.
type Builder struct {
	buf []byte
	n   int
	rv  []byte // value of the last Random Vector added
	err error
}

// NewBuilder starts a message of type t in buf with header h (its Length
// is ignored) and the Message Type AVP. A zero t starts a ZLB.
func NewBuilder(buf []byte, h Header, t MessageType) Builder {
	b := Builder{buf: buf}
	if len(buf) < HeaderLen {
		b.err = fmt.Errorf("header: %w", ErrBufferFull)
		return b
	}
	PutHeader(buf, h)
	b.n = HeaderLen
	if t != 0 {
		b.AddUint16(AttrMessageType, true, uint16(t))
	}
	return b
}

// Err returns the first error met.
func (b *Builder) Err() error { return b.err }

// Finish writes the Length field and returns the message.
func (b *Builder) Finish() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	binary.BigEndian.PutUint16(b.buf[offLength:], uint16(b.n))
	return b.buf[:b.n], nil
}

// reserve appends an AVP header for a value of n bytes and returns the
// value's bytes.
func (b *Builder) reserve(vendor uint16, t AttrType, mandatory, hidden bool, n int) []byte {
	if b.err != nil {
		return nil
	}
	total := AVPHeaderLen + n
	if total > MaxAVPLen {
		b.err = fmt.Errorf("%s: %d bytes: %w", t, n, ErrValueLength)
		return nil
	}
	if b.n+total > len(b.buf) || b.n+total > 0xffff {
		b.err = fmt.Errorf("%s: %w", t, ErrBufferFull)
		return nil
	}
	w := uint16(total)
	if mandatory {
		w |= avpFlagM
	}
	if hidden {
		w |= avpFlagH
	}
	p := b.buf[b.n : b.n+total]
	binary.BigEndian.PutUint16(p, w)
	binary.BigEndian.PutUint16(p[2:], vendor)
	binary.BigEndian.PutUint16(p[4:], uint16(t))
	b.n += total
	return p[AVPHeaderLen:]
}

// AddUint16 adds a 2-byte IETF AVP.
func (b *Builder) AddUint16(t AttrType, mandatory bool, v uint16) {
	if p := b.reserve(0, t, mandatory, false, 2); p != nil {
		binary.BigEndian.PutUint16(p, v)
	}
}

// AddUint32 adds a 4-byte IETF AVP.
func (b *Builder) AddUint32(t AttrType, mandatory bool, v uint32) {
	if p := b.reserve(0, t, mandatory, false, 4); p != nil {
		binary.BigEndian.PutUint32(p, v)
	}
}

// AddUint64 adds an 8-byte IETF AVP (the Tie Breaker).
func (b *Builder) AddUint64(t AttrType, mandatory bool, v uint64) {
	if p := b.reserve(0, t, mandatory, false, 8); p != nil {
		binary.BigEndian.PutUint64(p, v)
	}
}

// AddBytes adds an IETF AVP with value v.
func (b *Builder) AddBytes(t AttrType, mandatory bool, v []byte) {
	if p := b.reserve(0, t, mandatory, false, len(v)); p != nil {
		copy(p, v)
		if t == AttrRandomVector {
			b.rv = p
		}
	}
}

// AddString adds an IETF AVP with a text value (Host Name, Vendor Name...).
func (b *Builder) AddString(t AttrType, mandatory bool, v string) {
	if p := b.reserve(0, t, mandatory, false, len(v)); p != nil {
		copy(p, v)
	}
}

// AddEmpty adds an IETF AVP with no value (Sequencing Required).
func (b *Builder) AddEmpty(t AttrType, mandatory bool) { b.reserve(0, t, mandatory, false, 0) }

// AddVendor adds a vendor-specific AVP.
func (b *Builder) AddVendor(vendor uint16, t AttrType, mandatory bool, v []byte) {
	if p := b.reserve(vendor, t, mandatory, false, len(v)); p != nil {
		copy(p, v)
	}
}

// AddResultCode adds a Result Code AVP (mandatory); the error code and
// message are written when r.HasError.
func (b *Builder) AddResultCode(r ResultCode) {
	n := 2
	if r.HasError {
		n = 4 + len(r.Message)
	}
	p := b.reserve(0, AttrResultCode, true, false, n)
	if p == nil {
		return
	}
	binary.BigEndian.PutUint16(p, r.Result)
	if r.HasError {
		binary.BigEndian.PutUint16(p[2:], r.Error)
		copy(p[4:], r.Message)
	}
}

// AddHidden adds an IETF AVP with value v hidden with the shared secret
// and the Random Vector added last (RFC 2661 section 4.3), followed by pad
// bytes of padding that hide its true length. Without a preceding Random
// Vector it fails.
func (b *Builder) AddHidden(t AttrType, mandatory bool, v, secret []byte, pad int) {
	if b.err == nil && b.rv == nil {
		b.err = fmt.Errorf("%s: hidden AVP needs a Random Vector before it", t)
	}
	p := b.reserve(0, t, mandatory, true, HiddenLen(len(v), pad))
	if p != nil {
		hide(p, t, v, secret, b.rv)
	}
}
