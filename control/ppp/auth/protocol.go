package auth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Errors reported in Result.Err, wrapped with the detail (the user name or
// the message the other side sent).
var (
	// ErrTimeout: the other side stopped answering (retransmissions or the
	// wait ran out).
	ErrTimeout = errors.New("auth: no answer from peer")
	// ErrBadCredentials (authenticator role): the peer's name is unknown
	// or its password or response is wrong.
	ErrBadCredentials = errors.New("auth: wrong user name or password")
	// ErrRefused (peer role): the authenticator refused our credentials.
	ErrRefused = errors.New("auth: refused by authenticator")
	// ErrBadAuthenticator (peer role, MS-CHAPv2): the authenticator's
	// response in its Success packet is wrong: it does not know our
	// password.
	ErrBadAuthenticator = errors.New("auth: authenticator response does not match")
	// ErrNoSecret: a role is missing the credentials or callback it needs.
	ErrNoSecret = errors.New("auth: no secret configured")
)

// Method is an authentication protocol as LCP negotiates it (the
// Authentication-Protocol option, RFC 1661 section 6.2).
type Method uint8

// The methods.
const (
	PAP      Method = iota + 1 // RFC 1334, PPP protocol 0xc023
	CHAPMD5                    // RFC 1994, PPP protocol 0xc223, algorithm 5
	MSCHAPv2                   // RFC 2759, PPP protocol 0xc223, algorithm 0x81
)

// PPP protocol numbers of the authentication protocols.
const (
	ProtoPAP  uint16 = 0xc023
	ProtoCHAP uint16 = 0xc223
)

// CHAP algorithm numbers (the byte after 0xc223 in the LCP option).
const (
	algMD5      = 5
	algMSCHAPv2 = 0x81
)

// String returns the name pppd uses in its options.
func (m Method) String() string {
	switch m {
	case PAP:
		return "pap"
	case CHAPMD5:
		return "chap"
	case MSCHAPv2:
		return "mschap-v2"
	}
	return fmt.Sprintf("method(%d)", uint8(m))
}

// Protocol returns the PPP protocol number the method's frames travel in.
func (m Method) Protocol() uint16 {
	if m == PAP {
		return ProtoPAP
	}
	return ProtoCHAP
}

// Option returns the data of the LCP Authentication-Protocol option that
// asks for m: the protocol number, then for CHAP the algorithm. It returns
// nil for an unknown method.
func (m Method) Option() []byte {
	switch m {
	case PAP:
		return []byte{0xc0, 0x23}
	case CHAPMD5:
		return []byte{0xc2, 0x23, algMD5}
	case MSCHAPv2:
		return []byte{0xc2, 0x23, algMSCHAPv2}
	}
	return nil
}

// ParseOption returns the method an LCP Authentication-Protocol option's
// data asks for, or false for one this package does not implement (the
// LCP automaton then Naks it with one it does).
func ParseOption(data []byte) (Method, bool) {
	switch {
	case len(data) == 2 && binary.BigEndian.Uint16(data) == ProtoPAP:
		return PAP, true
	case len(data) == 3 && binary.BigEndian.Uint16(data) == ProtoCHAP && data[2] == algMD5:
		return CHAPMD5, true
	case len(data) == 3 && binary.BigEndian.Uint16(data) == ProtoCHAP && data[2] == algMSCHAPv2:
		return MSCHAPv2, true
	}
	return 0, false
}

// Protocol is the common shape of every state machine of this package, in
// both roles. The owner calls Start once when the link enters the
// authentication phase, Receive with each frame of Method().Protocol(),
// and Tick when the time of Deadline has come. Each returns the frames to
// send now (PPP information fields: code, identifier, length, data) in
// order; they stay valid until the next call on the Protocol.
//
// Result reports the outcome once Done: OK when the authentication phase
// succeeded (the link goes to the network phase), otherwise Err says why
// and the owner terminates the link (after sending the frames of the call
// that finished it: they carry the failure message). User is the peer's
// name (authenticator role) or ours (peer role). A Protocol keeps
// answering retransmissions after it is done (an authenticator resends its
// verdict to a repeated request), so the owner keeps feeding it frames
// until the link leaves the authentication protocol.
type Protocol interface {
	Method() Method
	Start(now time.Time) [][]byte
	Receive(frame []byte, now time.Time) [][]byte
	Tick(now time.Time) [][]byte
	Deadline() (time.Time, bool)
	Result() Result
}

// Result is the outcome of an authentication exchange.
type Result struct {
	Done bool
	OK   bool
	User string
	Err  error
}

// Defaults of the configs.
const (
	DefaultRestartTimer = 3 * time.Second  // RFC 1661's Restart timer
	DefaultMaxTransmits = 10               // pppd's pap/chap max-transmits
	DefaultTimeout      = 30 * time.Second // a role waiting for the other side
)

// header parses a frame: code, identifier, data. The data ends at the
// Length field; octets after it are padding (RFC 1661 section 5). ok is
// false for a frame shorter than its header or its Length.
func header(frame []byte) (code, id uint8, data []byte, ok bool) {
	if len(frame) < 4 {
		return 0, 0, nil, false
	}
	n := int(binary.BigEndian.Uint16(frame[2:4]))
	if n < 4 || n > len(frame) {
		return 0, 0, nil, false
	}
	return frame[0], frame[1], frame[4:n], true
}

// build appends a frame with the given code, identifier and data parts to
// buf[:0] and returns it.
func build(buf []byte, code, id uint8, parts ...[]byte) []byte {
	buf = append(buf[:0], code, id, 0, 0)
	for _, p := range parts {
		buf = append(buf, p...)
	}
	binary.BigEndian.PutUint16(buf[2:4], uint16(len(buf)))
	return buf
}

// timer is the restart timer the roles share: armed or not, and when.
type timer struct {
	at    time.Time
	armed bool
}

func (t *timer) set(at time.Time) { t.at, t.armed = at, true }
func (t *timer) stop()            { t.armed = false }
func (t *timer) expired(now time.Time) bool {
	return t.armed && !now.Before(t.at)
}
func (t *timer) deadline() (time.Time, bool) { return t.at, t.armed }

// orDefault returns v, or d when v is not positive.
func orDefault[T time.Duration | int](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}
