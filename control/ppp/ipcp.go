package ppp

import (
	"errors"
	"fmt"
	"net/netip"
)

// IPCP configuration option types (RFC 1332, RFC 1877).
const (
	optIPAddress = 3
	optDNS1      = 129
	optDNS2      = 131
)

// ErrPool reports that no address could be assigned to the peer.
var ErrPool = errors.New("IPCP: no address for the peer")

// IPCPConfig is what a Link asks for and gives in IPCP.
type IPCPConfig struct {
	// Local is our address; the zero Addr or 0.0.0.0 asks the peer for
	// one (LAC).
	Local netip.Addr
	// Assign gives the peer its address (LNS: from a pool), called once
	// per Link when the peer first asks. Nil: we accept the address the
	// peer asks for, if it names one.
	Assign func() (netip.Addr, error)
	// DNS are the primary and secondary servers we give a peer that asks
	// (RFC 1877); the zero Addr gives none.
	DNS [2]netip.Addr
	// RequestDNS asks the peer for DNS servers (LAC).
	RequestDNS bool
}

// ipcpOptions negotiates IPCP's options.
type ipcpOptions struct {
	cfg *IPCPConfig

	local    netip.Addr
	dns      [2]netip.Addr // as requested by us, then as the peer gave them
	reqAddr  bool
	reqDNS   [2]bool
	peer     netip.Addr // the peer's address, acked or assigned
	assigned bool
	fatal    error
}

var zero4 = netip.IPv4Unspecified()

func (o *ipcpOptions) Reset() {
	o.local = o.cfg.Local
	if !o.local.Is4() {
		o.local = zero4
	}
	o.reqAddr = true
	o.reqDNS = [2]bool{o.cfg.RequestDNS, o.cfg.RequestDNS}
	o.dns = [2]netip.Addr{zero4, zero4}
}

func (o *ipcpOptions) AppendRequest(b []byte) []byte {
	if o.reqAddr {
		b = appendAddr(b, optIPAddress, o.local)
	}
	for i, t := range [2]byte{optDNS1, optDNS2} {
		if o.reqDNS[i] {
			b = appendAddr(b, t, o.dns[i])
		}
	}
	return b
}

func appendAddr(b []byte, typ byte, a netip.Addr) []byte {
	v := a.As4()
	return appendOption(b, typ, v[:]...)
}

// peerAddr is the address we give the peer, assigning one on first use.
func (o *ipcpOptions) peerAddr() (netip.Addr, bool) {
	if o.cfg.Assign == nil {
		return netip.Addr{}, false
	}
	if !o.assigned {
		a, err := o.cfg.Assign()
		if err != nil || !a.Is4() {
			o.fatal = fmt.Errorf("%w: %v", ErrPool, err)
			return netip.Addr{}, false
		}
		o.peer, o.assigned = a, true
	}
	return o.peer, true
}

func (o *ipcpOptions) Judge(req, out []byte, rejectNaks bool) (byte, []byte) {
	v := verdict{code: ConfAck, out: out, base: len(out)}
	sawAddr := false
	for rest := req; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		if len(opt.value) != 4 {
			v.reject(opt.raw)
			continue
		}
		a := netip.AddrFrom4([4]byte(opt.value))
		switch opt.typ {
		case optIPAddress:
			sawAddr = true
			want, ok := o.peerAddr()
			switch {
			case ok && a == want:
			case ok:
				v.nak(rejectNaks, opt.raw, appendAddr(nil, optIPAddress, want))
			case o.fatal != nil:
				v.reject(opt.raw)
			case a != zero4:
				o.peer = a
			default:
				v.reject(opt.raw) // nothing to give it
			}
		case optDNS1, optDNS2:
			i := 0
			if opt.typ == optDNS2 {
				i = 1
			}
			switch want := o.cfg.DNS[i]; {
			case !want.Is4():
				v.reject(opt.raw)
			case a != want:
				v.nak(rejectNaks, opt.raw, appendAddr(nil, opt.typ, want))
			}
		default:
			v.reject(opt.raw)
		}
	}
	if want, ok := o.peerAddr(); ok && !sawAddr && !rejectNaks && v.code != ConfRej {
		// RFC 1332 section 3.3: a Nak may suggest an option the
		// request lacked.
		v.nak(false, nil, appendAddr(nil, optIPAddress, want))
	}
	if v.code == ConfAck {
		v.out = append(v.out[:v.base], req...)
	}
	return v.code, v.out
}

func (o *ipcpOptions) Acked([]byte) {}

func (o *ipcpOptions) Naked(opts []byte) error {
	for rest := opts; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		if len(opt.value) != 4 {
			continue
		}
		a := netip.AddrFrom4([4]byte(opt.value))
		switch opt.typ {
		case optIPAddress:
			if !o.cfg.Local.Is4() || o.cfg.Local == zero4 {
				o.local = a
			}
		case optDNS1:
			o.dns[0] = a
		case optDNS2:
			o.dns[1] = a
		}
	}
	return nil
}

func (o *ipcpOptions) Rejected(opts []byte) error {
	for rest := opts; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		switch opt.typ {
		case optIPAddress:
			o.reqAddr = false
		case optDNS1:
			o.reqDNS[0] = false
		case optDNS2:
			o.reqDNS[1] = false
		default:
			return fmt.Errorf("%w: Configure-Reject of IPCP option %d we did not send", ErrMalformed, opt.typ)
		}
	}
	return nil
}
