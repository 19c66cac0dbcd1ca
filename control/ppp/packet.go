package ppp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Codes of the packets LCP and the NCPs exchange (RFC 1661 section 5).
// Codes 8 to 11 are LCP's alone.
const (
	ConfReq    = 1
	ConfAck    = 2
	ConfNak    = 3
	ConfRej    = 4
	TermReq    = 5
	TermAck    = 6
	CodeRej    = 7
	ProtoRej   = 8
	EchoReq    = 9
	EchoReply  = 10
	DiscardReq = 11
)

// ErrMalformed reports a control packet or option list that does not parse.
var ErrMalformed = errors.New("malformed PPP control packet")

// packet is a parsed control packet: code, identifier and data, with any
// padding after the Length field dropped.
type packet struct {
	code, id byte
	data     []byte
}

// parsePacket reads a control packet (RFC 1661 section 5) from a PPP
// information field.
func parsePacket(b []byte) (packet, error) {
	if len(b) < 4 {
		return packet{}, fmt.Errorf("%w: %d bytes, want at least 4", ErrMalformed, len(b))
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < 4 || n > len(b) {
		return packet{}, fmt.Errorf("%w: Length %d in %d bytes", ErrMalformed, n, len(b))
	}
	return packet{code: b[0], id: b[1], data: b[4:n]}, nil
}

// option is one configuration option: type and value (the bytes after the
// type and length octets).
type option struct {
	typ   byte
	value []byte
	raw   []byte // type, length and value as received
}

// nextOption splits the first option off an option list. It returns the
// rest, or an error when the length octet is under 2 or overruns the list.
func nextOption(b []byte) (option, []byte, error) {
	if len(b) < 2 {
		return option{}, nil, fmt.Errorf("%w: %d bytes left for an option", ErrMalformed, len(b))
	}
	n := int(b[1])
	if n < 2 || n > len(b) {
		return option{}, nil, fmt.Errorf("%w: option %d with length %d in %d bytes", ErrMalformed, b[0], n, len(b))
	}
	return option{typ: b[0], value: b[2:n], raw: b[:n]}, b[n:], nil
}

// checkOptions reports whether b is a well-formed option list.
func checkOptions(b []byte) error {
	for len(b) > 0 {
		var err error
		if _, b, err = nextOption(b); err != nil {
			return err
		}
	}
	return nil
}

// appendOption appends an option of type typ and value v.
func appendOption(b []byte, typ byte, v ...byte) []byte {
	return append(append(b, typ, byte(2+len(v))), v...)
}

// appendPacket appends a control packet with its Length field.
func appendPacket(b []byte, code, id byte, data []byte) []byte {
	n := 4 + len(data)
	return append(append(b, code, id, byte(n>>8), byte(n)), data...)
}
