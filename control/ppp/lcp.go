package ppp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ul2tp/ul2tp/encap"
)

// LCP configuration option types (RFC 1661 section 6).
const (
	optMRU   = 1
	optACCM  = 2
	optAuth  = 3
	optMagic = 5
	optPFC   = 7
	optACFC  = 8
)

// MinMRU is the smallest MRU we let a peer announce; smaller requests are
// Nak'd up to it.
const MinMRU = 128

// DefaultMRU is PPP's MRU when none is negotiated.
const DefaultMRU = 1500

// AuthMethod is an authentication protocol as LCP's Authentication-Protocol
// option names it: the protocol number and, for CHAP, the algorithm.
type AuthMethod struct {
	Protocol  uint16
	Algorithm byte // CHAP only: 5 MD5, 0x81 MS-CHAPv2
}

// The authentication methods a Link negotiates.
var (
	PAP      = AuthMethod{Protocol: encap.PPPPAP}
	CHAPMD5  = AuthMethod{Protocol: encap.PPPCHAP, Algorithm: 5}
	MSCHAPv2 = AuthMethod{Protocol: encap.PPPCHAP, Algorithm: 0x81}
)

func (m AuthMethod) String() string {
	switch m {
	case PAP:
		return "pap"
	case CHAPMD5:
		return "chap-md5"
	case MSCHAPv2:
		return "mschap-v2"
	}
	return fmt.Sprintf("auth %#04x/%d", m.Protocol, m.Algorithm)
}

func (m AuthMethod) appendOption(b []byte) []byte {
	if m.Protocol == encap.PPPCHAP {
		return appendOption(b, optAuth, byte(m.Protocol>>8), byte(m.Protocol), m.Algorithm)
	}
	return appendOption(b, optAuth, byte(m.Protocol>>8), byte(m.Protocol))
}

// parseAuth reads an Authentication-Protocol option's value.
func parseAuth(v []byte) (AuthMethod, bool) {
	if len(v) < 2 {
		return AuthMethod{}, false
	}
	m := AuthMethod{Protocol: binary.BigEndian.Uint16(v)}
	switch {
	case m.Protocol == encap.PPPPAP && len(v) == 2:
		return m, true
	case m.Protocol == encap.PPPCHAP && len(v) == 3:
		m.Algorithm = v[2]
		return m, true
	}
	return m, false
}

// LCPConfig is what a Link asks for and accepts in LCP.
type LCPConfig struct {
	// MRU we announce; 0 means DefaultMRU, which is not requested.
	MRU int
	// PFC and ACFC ask the peer to compress the protocol field and to
	// omit address and control (we accept both either way).
	PFC, ACFC bool
	// Require lists the methods we authenticate the peer with, best
	// first (LNS). Empty: we do not authenticate the peer.
	Require []AuthMethod
	// Accept lists the methods we can authenticate ourselves with, best
	// first (LAC). Empty: we refuse to be authenticated.
	Accept []AuthMethod
	// LoopLimit is how many Configure-Requests carrying our own magic
	// number in a row mean the link is looped back; 0 means 5.
	LoopLimit int
	// EchoInterval between Echo-Requests once LCP is open; 0 disables
	// keepalives. After EchoFailures (0 means 3) unanswered requests the
	// link is taken down.
	EchoInterval time.Duration
	EchoFailures int
}

// Errors a Link reports as its failure.
var (
	ErrLoopback      = errors.New("LCP: link looped back (own magic number seen repeatedly)")
	ErrNoCommonAuth  = errors.New("LCP: no authentication method both sides support")
	ErrAuthRefused   = errors.New("LCP: peer refused to authenticate")
	ErrEchoTimeout   = errors.New("LCP: no reply to echo requests")
	ErrNegotiation   = errors.New("LCP: negotiation did not converge")
	ErrPeerTerminate = errors.New("LCP: peer terminated the link")
	ErrAuthFailed    = errors.New("authentication failed")
	ErrNoNetwork     = errors.New("no network protocol came up")
)

// lcpOptions negotiates LCP's options (RFC 1661 section 6).
type lcpOptions struct {
	cfg  *LCPConfig
	rand func() uint32

	// Our request.
	mru              int
	magic            uint32
	reqMRU, reqMagic bool
	reqPFC, reqACFC  bool
	auth             AuthMethod // method we ask for, when reqAuth
	reqAuth          bool
	tried            []AuthMethod // methods the peer Nak'd
	fatal            error        // negotiation cannot succeed
	collisions       int          // peer requests with our magic number in a row

	// The peer's last acceptable request.
	peerMRU            int
	peerMagic          uint32
	sendPFC, sendACFC  bool
	peerAuth           AuthMethod // method we authenticate ourselves with
	peerAuthNegotiated bool
}

func (o *lcpOptions) Reset() {
	c := o.cfg
	o.mru = c.MRU
	if o.mru == 0 {
		o.mru = DefaultMRU
	}
	o.reqMRU = o.mru != DefaultMRU
	o.reqMagic = true
	o.magic = o.newMagic(0)
	o.reqPFC, o.reqACFC = c.PFC, c.ACFC
	o.reqAuth = len(c.Require) > 0
	if o.reqAuth {
		o.auth = c.Require[0]
	}
	o.tried = o.tried[:0]
	o.collisions = 0
}

// newMagic draws a non-zero magic number different from not.
func (o *lcpOptions) newMagic(not uint32) uint32 {
	for {
		if m := o.rand(); m != 0 && m != not {
			return m
		}
	}
}

func (o *lcpOptions) AppendRequest(b []byte) []byte {
	if o.reqMRU {
		b = appendOption(b, optMRU, byte(o.mru>>8), byte(o.mru))
	}
	if o.reqAuth {
		b = o.auth.appendOption(b)
	}
	if o.reqMagic {
		b = appendOption(b, optMagic, byte(o.magic>>24), byte(o.magic>>16), byte(o.magic>>8), byte(o.magic))
	}
	if o.reqPFC {
		b = appendOption(b, optPFC)
	}
	if o.reqACFC {
		b = appendOption(b, optACFC)
	}
	return b
}

// verdict collects the reply to a Configure-Request: rejected options
// override Nak'd ones, which override an Ack.
type verdict struct {
	code byte
	out  []byte
	base int
}

func (v *verdict) reject(raw []byte) {
	if v.code != ConfRej {
		v.code, v.out = ConfRej, v.out[:v.base]
	}
	v.out = append(v.out, raw...)
}

// nak answers the option raw with want, the option as we would accept it,
// or rejects it when Naks have failed Max-Failure times.
func (v *verdict) nak(rejectNaks bool, raw, want []byte) {
	switch {
	case rejectNaks:
		v.reject(raw)
	case v.code == ConfRej:
	default:
		v.code = ConfNak
		v.out = append(v.out, want...)
	}
}

// opt32 is an option with a four-byte value, built on the stack.
func opt32(typ byte, n uint32) []byte {
	return []byte{typ, 6, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func (o *lcpOptions) Judge(req, out []byte, rejectNaks bool) (byte, []byte) {
	v := verdict{code: ConfAck, out: out, base: len(out)}
	o.peerMRU, o.peerMagic, o.sendPFC, o.sendACFC = DefaultMRU, 0, false, false
	o.peerAuthNegotiated = false
	for rest := req; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		val := opt.value
		switch {
		case opt.typ == optMRU && len(val) == 2:
			mru := int(binary.BigEndian.Uint16(val))
			if mru < MinMRU {
				v.nak(rejectNaks, opt.raw, []byte{optMRU, 4, MinMRU >> 8, MinMRU & 0xff})
			}
			o.peerMRU = mru
		case opt.typ == optACCM && len(val) == 4:
			// No async framing on L2TP: any map will do.
		case opt.typ == optAuth:
			m, ok := parseAuth(val)
			switch {
			case ok && slices.Contains(o.cfg.Accept, m):
				o.peerAuth, o.peerAuthNegotiated = m, true
			case len(o.cfg.Accept) > 0:
				v.nak(rejectNaks, opt.raw, o.cfg.Accept[0].appendOption(nil))
			default:
				v.reject(opt.raw)
			}
		case opt.typ == optMagic && len(val) == 4:
			m := binary.BigEndian.Uint32(val)
			switch {
			case m == 0:
				n := o.newMagic(o.magic)
				v.nak(rejectNaks, opt.raw, opt32(optMagic, n))
			case o.reqMagic && m == o.magic:
				// Our own number: a loop, or a coincidence (RFC 1661
				// section 6.4). Both sides pick new numbers.
				o.collisions++
				if o.collisions >= o.loopLimit() {
					o.fatal = ErrLoopback
				}
				o.magic = o.newMagic(m)
				n := o.newMagic(o.magic)
				v.nak(rejectNaks, opt.raw, opt32(optMagic, n))
			default:
				o.peerMagic, o.collisions = m, 0
			}
		case opt.typ == optPFC && len(val) == 0:
			o.sendPFC = true
		case opt.typ == optACFC && len(val) == 0:
			o.sendACFC = true
		default:
			v.reject(opt.raw)
		}
	}
	if v.code == ConfAck {
		v.out = append(v.out[:v.base], req...)
	}
	return v.code, v.out
}

func (o *lcpOptions) loopLimit() int {
	if o.cfg.LoopLimit > 0 {
		return o.cfg.LoopLimit
	}
	return 5
}

func (o *lcpOptions) Acked([]byte) {}

func (o *lcpOptions) Naked(opts []byte) error {
	for rest := opts; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		switch opt.typ {
		case optMRU:
			if len(opt.value) == 2 {
				if mru := int(binary.BigEndian.Uint16(opt.value)); mru >= MinMRU && mru <= 65535 {
					o.mru, o.reqMRU = mru, mru != DefaultMRU
				}
			}
		case optAuth:
			if o.reqAuth {
				o.nakAuth(opt.value)
			}
		case optMagic:
			if o.reqMagic {
				o.magic = o.newMagic(o.magic)
			}
		case optPFC:
			o.reqPFC = false
		case optACFC:
			o.reqACFC = false
		}
	}
	return nil
}

// nakAuth moves to the method the peer suggests if we allow it, or else to
// our next method not yet tried.
func (o *lcpOptions) nakAuth(v []byte) {
	o.tried = append(o.tried, o.auth)
	if m, ok := parseAuth(v); ok && slices.Contains(o.cfg.Require, m) && !slices.Contains(o.tried, m) {
		o.auth = m
		return
	}
	for _, m := range o.cfg.Require {
		if !slices.Contains(o.tried, m) {
			o.auth = m
			return
		}
	}
	o.fatal = ErrNoCommonAuth
}

func (o *lcpOptions) Rejected(opts []byte) error {
	for rest := opts; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		switch opt.typ {
		case optMRU:
			o.reqMRU, o.mru = false, DefaultMRU
		case optAuth:
			if o.reqAuth {
				o.fatal = ErrAuthRefused
			}
		case optMagic:
			o.reqMagic, o.magic = false, 0
		case optPFC:
			o.reqPFC = false
		case optACFC:
			o.reqACFC = false
		default:
			return fmt.Errorf("%w: Configure-Reject of option %d we did not send", ErrMalformed, opt.typ)
		}
	}
	return nil
}
