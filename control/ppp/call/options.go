package call

import (
	"time"

	"github.com/ul2tp/ul2tp/control/ppp"
)

// Options are the PPP settings an LNS's calls and a LAC's call share.
// The zero value runs IPv6CP with a random interface identifier and no
// LCP keepalives.
type Options struct {
	// NoIPv6 leaves IPv6CP out: the peer's IPv6CP is protocol-rejected
	// and the call carries IPv4 only.
	NoIPv6 bool
	// IPv6ID is our IPv6 interface identifier (the low 64 bits of our
	// link-local address); zero draws a random non-zero one per call.
	// The peer's own identifier is accepted unless it is zero or ours
	// (RFC 5072 section 4.1), which are Nak'd with a random one.
	IPv6ID [8]byte
	// EchoInterval is the time between LCP Echo-Requests once LCP is
	// open; 0 sends none.
	EchoInterval time.Duration
	// EchoFailures is how many Echo-Requests in a row may go unanswered
	// before the link, and the call, is ended; 0 means 3.
	EchoFailures int
	// MRU is the Maximum-Receive-Unit we announce (pppd's mru); 0: PPP's
	// default, 1500, not announced.
	MRU int
	// MTU caps the TUN's MTU (pppd's mtu): the smaller of it and the
	// peer's MRU; 0: the peer's MRU alone.
	MTU int
}

// options are the Options of the call's role.
func (c *Config) options() Options {
	switch {
	case c.Server != nil:
		return c.Server.Options
	case c.Client != nil:
		return c.Client.Options
	}
	return Options{}
}

// apply sets what o decides in a Link's configuration.
func (o Options) apply(lc *ppp.Config) {
	lc.LCP.EchoInterval, lc.LCP.EchoFailures = o.EchoInterval, o.EchoFailures
	lc.LCP.MRU = o.MRU
	if !o.NoIPv6 {
		lc.IPv6CP = &ppp.IPv6CPConfig{Local: o.IPv6ID}
	}
}
