package control

import (
	"encoding/binary"
	"fmt"
)

// AVP header (RFC 2661 section 4.1, the same in RFC 3931 section 5.1):
// M(1) H(1) reserved(4) length(10), vendor id(2), attribute type(2).
const (
	AVPHeaderLen = 6
	// MaxAVPLen is the largest AVP the 10-bit length can describe.
	MaxAVPLen = 1023

	avpFlagM      = 0x8000
	avpFlagH      = 0x4000
	avpReserved   = 0x3c00
	avpLengthBits = 0x03ff
)

// AVP is one attribute-value pair: a view into the message.
type AVP struct {
	Flags    uint16 // M, H and reserved bits of the first word, length masked off
	VendorID uint16 // 0 for the IETF attributes
	Type     AttrType
	Value    []byte // hidden (encrypted) when Hidden()
}

// Mandatory reports the M bit.
func (a AVP) Mandatory() bool { return a.Flags&avpFlagM != 0 }

// Hidden reports the H bit: Value is encrypted (see Unhide).
func (a AVP) Hidden() bool { return a.Flags&avpFlagH != 0 }

// Reserved reports whether any reserved bit is set. RFC 2661 section 4.1
// says such an AVP is treated as unrecognised.
func (a AVP) Reserved() bool { return a.Flags&avpReserved != 0 }

// IsVendor reports whether a is a vendor-specific AVP.
func (a AVP) IsVendor() bool { return a.VendorID != 0 }

func (a AVP) String() string {
	return fmt.Sprintf("avp(vendor %d type %d m=%t h=%t len %d)",
		a.VendorID, a.Type, a.Mandatory(), a.Hidden(), len(a.Value))
}

// AVPIter walks the AVPs of a message. Next returns them in order; after
// it returns false, Err says whether the walk stopped at a malformed AVP.
// It also remembers the last Random Vector seen, the one a following
// hidden AVP is encrypted with.
type AVPIter struct {
	b   []byte
	off int
	rv  []byte
	err error
}

// NewAVPIter returns an iterator over a message body: the bytes after the
// header.
func NewAVPIter(body []byte) AVPIter { return AVPIter{b: body} }

// Next returns the next AVP.
func (it *AVPIter) Next() (AVP, bool) {
	if it.err != nil || it.off >= len(it.b) {
		return AVP{}, false
	}
	rest := it.b[it.off:]
	if len(rest) < AVPHeaderLen {
		it.err = fmt.Errorf("AVP at offset %d: %d bytes left: %w", it.off, len(rest), ErrAVPLength)
		return AVP{}, false
	}
	w := binary.BigEndian.Uint16(rest)
	n := int(w & avpLengthBits)
	if n < AVPHeaderLen || n > len(rest) {
		it.err = fmt.Errorf("AVP at offset %d: length %d of %d bytes left: %w", it.off, n, len(rest), ErrAVPLength)
		return AVP{}, false
	}
	a := AVP{
		Flags:    w &^ avpLengthBits,
		VendorID: binary.BigEndian.Uint16(rest[2:]),
		Type:     AttrType(binary.BigEndian.Uint16(rest[4:])),
		Value:    rest[AVPHeaderLen:n:n],
	}
	it.off += n
	if a.VendorID == 0 && a.Type == AttrRandomVector && !a.Hidden() {
		it.rv = a.Value
	}
	return a, true
}

// Err returns the error that stopped the walk, if any.
func (it *AVPIter) Err() error { return it.err }

// RandomVector returns the value of the last Random Vector AVP returned
// by Next, or nil.
func (it *AVPIter) RandomVector() []byte { return it.rv }

// FirstUnknownMandatory walks m and returns the first AVP that known
// rejects and that has the M bit set; unknown AVPs without it are
// skipped, as RFC 2661 section 4.1 asks. The caller ends the tunnel
// (StopCCN) or, for a call message, the call (CDN) with result
// StopResultGeneralError / CDNResultGeneralError and ErrCodeUnknownMandatory.
func FirstUnknownMandatory(m Message, known func(AVP) bool) (AVP, bool) {
	it := m.AVPs()
	for {
		a, ok := it.Next()
		if !ok {
			return AVP{}, false
		}
		if a.Mandatory() && !known(a) {
			return a, true
		}
	}
}

func (a AVP) plain(name string, n int) error {
	if a.Hidden() {
		return fmt.Errorf("%s: %w", name, ErrHidden)
	}
	if n >= 0 && len(a.Value) != n {
		return fmt.Errorf("%s: %d bytes, want %d: %w", name, len(a.Value), n, ErrValueLength)
	}
	return nil
}

// Uint16 reads a 2-byte value: Message Type, Assigned Tunnel ID, Receive
// Window Size, Assigned Session ID, Firmware Revision, Protocol Version,
// Proxy Authen Type and Proxy Authen ID.
func (a AVP) Uint16() (uint16, error) {
	if err := a.plain(a.name(), 2); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(a.Value), nil
}

// Uint32 reads a 4-byte value: Framing and Bearer Capabilities, Call
// Serial Number, Minimum and Maximum BPS, Bearer and Framing Type, Tx and
// Rx Connect Speed, Physical Channel ID; in v3 also Assigned Control
// Connection ID, Router ID and the session ids.
func (a AVP) Uint32() (uint32, error) {
	if err := a.plain(a.name(), 4); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(a.Value), nil
}

// Uint64 reads an 8-byte value: the Tie Breaker (compare as unsigned
// big-endian numbers; the lower one wins).
func (a AVP) Uint64() (uint64, error) {
	if err := a.plain(a.name(), 8); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(a.Value), nil
}

// Bytes returns the value of a variable-length AVP: Host Name, Vendor
// Name, Challenge, Called and Calling Number, Sub-Address, Private Group
// ID, Random Vector, the LCP CONFREQ and Proxy Authen Name, Challenge
// and Response AVPs.
func (a AVP) Bytes() ([]byte, error) {
	if err := a.plain(a.name(), -1); err != nil {
		return nil, err
	}
	return a.Value, nil
}

// ChallengeResponse returns the 16-byte Challenge Response value.
func (a AVP) ChallengeResponse() ([16]byte, error) {
	var r [16]byte
	if err := a.plain("challenge response", 16); err != nil {
		return r, err
	}
	copy(r[:], a.Value)
	return r, nil
}

// Empty checks an AVP that has no value: Sequencing Required.
func (a AVP) Empty() error { return a.plain(a.name(), 0) }

// ResultCode is the value of the Result Code AVP.
type ResultCode struct {
	Result   uint16
	Error    uint16 // valid when HasError
	HasError bool
	Message  []byte // optional error message, a view into the AVP
}

// ResultCode reads a Result Code AVP: a result code, then optionally an
// error code and a message.
func (a AVP) ResultCode() (ResultCode, error) {
	var r ResultCode
	if err := a.plain("result code", -1); err != nil {
		return r, err
	}
	switch v := a.Value; {
	case len(v) == 2:
	case len(v) >= 4:
		r.Error, r.HasError, r.Message = binary.BigEndian.Uint16(v[2:]), true, v[4:]
	default:
		return r, fmt.Errorf("result code: %d bytes: %w", len(v), ErrValueLength)
	}
	r.Result = binary.BigEndian.Uint16(a.Value)
	return r, nil
}

// ProtocolVersion reads a Protocol Version AVP: version and revision.
func (a AVP) ProtocolVersion() (ver, rev uint8, err error) {
	if err := a.plain("protocol version", 2); err != nil {
		return 0, 0, err
	}
	return a.Value[0], a.Value[1], nil
}

// Q931Cause is the value of the Q.931 Cause Code AVP.
type Q931Cause struct {
	Cause    uint16
	Msg      uint8
	Advisory []byte
}

// Q931Cause reads a Q.931 Cause Code AVP.
func (a AVP) Q931Cause() (Q931Cause, error) {
	var q Q931Cause
	if err := a.plain("q931 cause", -1); err != nil {
		return q, err
	}
	if len(a.Value) < 3 {
		return q, fmt.Errorf("q931 cause: %d bytes: %w", len(a.Value), ErrValueLength)
	}
	q.Cause, q.Msg, q.Advisory = binary.BigEndian.Uint16(a.Value), a.Value[2], a.Value[3:]
	return q, nil
}

// CallErrors is the value of the Call Errors AVP (after 2 reserved bytes).
type CallErrors struct {
	CRC, Framing, HardwareOverruns, BufferOverruns, Timeout, Alignment uint32
}

// CallErrors reads a Call Errors AVP.
func (a AVP) CallErrors() (CallErrors, error) {
	var c CallErrors
	if err := a.plain("call errors", 26); err != nil {
		return c, err
	}
	v := a.Value[2:]
	u := func(i int) uint32 { return binary.BigEndian.Uint32(v[4*i:]) }
	c = CallErrors{u(0), u(1), u(2), u(3), u(4), u(5)}
	return c, nil
}

// ACCM reads an ACCM AVP (after 2 reserved bytes): the send and receive
// async control character maps.
func (a AVP) ACCM() (send, recv uint32, err error) {
	if err := a.plain("accm", 10); err != nil {
		return 0, 0, err
	}
	return binary.BigEndian.Uint32(a.Value[2:]), binary.BigEndian.Uint32(a.Value[6:]), nil
}

func (a AVP) name() string {
	if a.VendorID != 0 {
		return fmt.Sprintf("vendor %d attribute %d", a.VendorID, a.Type)
	}
	return a.Type.String()
}

var attrNames = [...]string{
	"message type", "result code", "protocol version", "framing capabilities",
	"bearer capabilities", "tie breaker", "firmware revision", "host name",
	"vendor name", "assigned tunnel id", "receive window size", "challenge",
	"q931 cause", "challenge response", "assigned session id", "call serial number",
	"minimum bps", "maximum bps", "bearer type", "framing type", "", "called number",
	"calling number", "sub-address", "tx connect speed", "physical channel id",
	"initial received lcp confreq", "last sent lcp confreq", "last received lcp confreq",
	"proxy authen type", "proxy authen name", "proxy authen challenge", "proxy authen id",
	"proxy authen response", "call errors", "accm", "random vector", "private group id",
	"rx connect speed", "sequencing required",
}

func (t AttrType) String() string {
	if int(t) < len(attrNames) && attrNames[t] != "" {
		return attrNames[t]
	}
	return fmt.Sprintf("attribute %d", uint16(t))
}
