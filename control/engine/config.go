package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/ul2tp/ul2tp/control"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
)

// Defaults of the limits and of the LAC's redial backoff.
const (
	DefaultMaxTunnels = 1000
	DefaultMaxCalls   = 1000
	DefaultMaxPending = 64
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 60 * time.Second
	// DefaultPort is L2TP's UDP port.
	DefaultPort = 1701
)

// Params are the control connection settings LNS and LAC share.
type Params struct {
	Secret   string // tunnel secret (Challenge AVPs); empty: none
	HideAVPs bool   // send the ids and call numbers hidden (needs Secret)
	HostName string // our Host Name AVP; empty: "ul2tp"
	// HelloInterval is the idle time before a HELLO; 0: the control
	// package's default (60 s).
	HelloInterval time.Duration
	RetryTimeout  time.Duration // first retransmission; 0: 1 s
	MaxRetries    int           // 0: 5
	Window        uint16        // our receive window; 0: 4
	MaxCalls      int           // calls per tunnel; 0: DefaultMaxCalls
}

// tunnelConfig is the control.TunnelConfig for p with our id.
func (p *Params) tunnelConfig(id uint32) control.TunnelConfig {
	host := p.HostName
	if host == "" {
		host = "ul2tp"
	}
	max := p.MaxCalls
	if max == 0 {
		max = DefaultMaxCalls
	}
	c := control.TunnelConfig{
		LocalID:       id,
		HostName:      host,
		VendorName:    "ul2tp",
		HideAVPs:      p.HideAVPs,
		HelloInterval: p.HelloInterval,
		MaxCalls:      max,
		Transport: control.TransportConfig{
			RecvWindow:   p.Window,
			RetryTimeout: p.RetryTimeout,
			MaxRetries:   p.MaxRetries,
		},
	}
	if p.Secret != "" {
		c.Secret = []byte(p.Secret)
	}
	// The backoff cap: eight times the first timeout, as the default.
	if p.RetryTimeout > 0 {
		c.Transport.MaxRetryTimeout = 8 * p.RetryTimeout
	}
	return c
}

// LNSConfig sets up the LNS role: answering SCCRQs on Listen.
type LNSConfig struct {
	Listen netip.AddrPort
	Params
	// Peers are the address ranges that may open tunnels; empty: any.
	Peers []netip.Prefix
	// PeerHostNames are the Host Name AVPs allowed; empty: any.
	PeerHostNames []string
	MaxTunnels    int // 0: DefaultMaxTunnels
	MaxPending    int // tunnels in setup at once; 0: DefaultMaxPending
	// PPP runs PPP on every call, on a TUN device per call; nil records
	// the frames ("ppp none").
	PPP *pppcall.Server
	// TUNName is the calls' TUN name pattern; "": pppcall.DefaultName.
	TUNName string
}

func (c *LNSConfig) check() error {
	if !c.Listen.IsValid() {
		return fmt.Errorf("lns listen: an address is required")
	}
	if c.HideAVPs && c.Secret == "" {
		return fmt.Errorf("lns hide_avps: needs a secret")
	}
	if c.MaxTunnels == 0 {
		c.MaxTunnels = DefaultMaxTunnels
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	return nil
}

// allowed reports whether a tunnel from addr with host name host may be
// set up.
func (c *LNSConfig) allowed(addr netip.Addr, host string) bool {
	if len(c.Peers) > 0 {
		ok := false
		for _, p := range c.Peers {
			if p.Contains(addr.Unmap()) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.PeerHostNames) == 0 {
		return true
	}
	for _, h := range c.PeerHostNames {
		if h == host {
			return true
		}
	}
	return false
}

// LACConfig is one tunnel to an LNS: dialled when added, redialled
// with backoff when it drops, its calls opened when it is up.
type LACConfig struct {
	Name string
	Peer netip.AddrPort // the LNS
	// Local is our address and port; the zero value is any address of
	// Peer's family, port 1701. A socket shared with the LNS role when
	// they are the same.
	Local netip.AddrPort
	Params
	// Calls are the incoming calls (ICRQ) opened when the tunnel is up,
	// by name.
	Calls []string
	// PPP runs PPP on the calls named, as a client with these
	// credentials, on a TUN device per call; a call not named records its
	// frames ("ppp none").
	PPP map[string]*pppcall.Client
	// TUNName is the calls' TUN name pattern; "": pppcall.DefaultName.
	TUNName string
	// NoRedial leaves the tunnel down when it drops, and a call that
	// ends not placed again.
	NoRedial bool
	// MinBackoff and MaxBackoff bound the redial delay, doubling from
	// the first to the second; 0: DefaultMinBackoff, DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
}

func (c *LACConfig) check() error {
	if c.Name == "" {
		return fmt.Errorf("lac: a name is required")
	}
	if !c.Peer.IsValid() {
		return fmt.Errorf("lac %s peer: an address is required", c.Name)
	}
	if c.HideAVPs && c.Secret == "" {
		return fmt.Errorf("lac %s hide_avps: needs a secret", c.Name)
	}
	if !c.Local.IsValid() {
		a := netip.IPv4Unspecified()
		if c.Peer.Addr().Unmap().Is6() {
			a = netip.IPv6Unspecified()
		}
		c.Local = netip.AddrPortFrom(a, DefaultPort)
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	return nil
}
