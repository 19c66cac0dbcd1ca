package ppp

import (
	"fmt"
	"net/netip"
)

// optInterfaceID is IPv6CP's Interface-Identifier option (RFC 5072 section 4.1).
const optInterfaceID = 1

// IPv6CPConfig is what a Link asks for in IPv6CP.
type IPv6CPConfig struct {
	// Local is our interface identifier; zero draws a random one.
	Local [8]byte
	// Peer, when non-zero, is the identifier the peer must use (LNS: from
	// a pool): we Nak any other. Zero accepts the peer's own choice and
	// Naks only zero or ours, with a random identifier.
	Peer [8]byte
}

// LinkLocal is the IPv6 link-local address fe80::/64 with interface
// identifier id (RFC 5072 section 5).
func LinkLocal(id [8]byte) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	copy(a[8:], id[:])
	return netip.AddrFrom16(a)
}

// ipv6cpOptions negotiates IPv6CP's Interface-Identifier.
type ipv6cpOptions struct {
	cfg   *IPv6CPConfig
	rand  func() uint32
	local [8]byte
	peer  [8]byte
	req   bool
}

func (o *ipv6cpOptions) randomID(not1, not2 [8]byte) [8]byte {
	for {
		var id [8]byte
		a, b := o.rand(), o.rand()
		id[0], id[1], id[2], id[3] = byte(a>>24), byte(a>>16), byte(a>>8), byte(a)
		id[4], id[5], id[6], id[7] = byte(b>>24), byte(b>>16), byte(b>>8), byte(b)
		if id != [8]byte{} && id != not1 && id != not2 {
			return id
		}
	}
}

func (o *ipv6cpOptions) Reset() {
	o.req = true
	if o.local == [8]byte{} {
		o.local = o.cfg.Local
		if o.local == [8]byte{} {
			o.local = o.randomID(o.cfg.Peer, o.cfg.Peer)
		}
	}
}

func (o *ipv6cpOptions) AppendRequest(b []byte) []byte {
	if o.req {
		b = appendOption(b, optInterfaceID, o.local[:]...)
	}
	return b
}

func (o *ipv6cpOptions) Judge(req, out []byte, rejectNaks bool) (byte, []byte) {
	v := verdict{code: ConfAck, out: out, base: len(out)}
	for rest := req; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		if opt.typ != optInterfaceID || len(opt.value) != 8 {
			v.reject(opt.raw)
			continue
		}
		id := [8]byte(opt.value)
		want := o.cfg.Peer
		if want == o.local {
			want = [8]byte{}
		}
		if id == [8]byte{} || id == o.local || want != [8]byte{} && id != want {
			if want == [8]byte{} {
				want = o.randomID(o.local, id)
			}
			v.nak(rejectNaks, opt.raw, appendOption(nil, optInterfaceID, want[:]...))
			continue
		}
		o.peer = id
	}
	if v.code == ConfAck {
		v.out = append(v.out[:v.base], req...)
	}
	return v.code, v.out
}

func (o *ipv6cpOptions) Acked([]byte) {}

func (o *ipv6cpOptions) Naked(opts []byte) error {
	for rest := opts; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		if opt.typ != optInterfaceID || len(opt.value) != 8 {
			continue
		}
		id := [8]byte(opt.value)
		if id == [8]byte{} || id == o.peer {
			id = o.randomID(o.peer, o.local)
		}
		o.local = id
	}
	return nil
}

func (o *ipv6cpOptions) Rejected(opts []byte) error {
	for rest := opts; len(rest) > 0; {
		opt, r, _ := nextOption(rest)
		rest = r
		if opt.typ != optInterfaceID {
			return fmt.Errorf("%w: Configure-Reject of IPv6CP option %d we did not send", ErrMalformed, opt.typ)
		}
		o.req = false
	}
	return nil
}
