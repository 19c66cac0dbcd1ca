package call

import (
	"net/netip"
	"time"

	"github.com/ul2tp/ul2tp/control/ppp"
	"github.com/ul2tp/ul2tp/datapath/tap"
)

// minIPv6MTU is IPv6's minimum link MTU (RFC 8200 section 5): below it
// the kernel turns IPv6 off on the interface.
const minIPv6MTU = 1280

// mtu is the TUN's MTU: the largest frame the peer takes, capped by
// Options.MTU.
func (c *Call) mtu() int { return c.tunMTU(c.link.PeerMRU()) }

// tunMTU is the TUN's MTU for a peer's MRU.
func (c *Call) tunMTU(peerMRU int) int {
	m := peerMRU
	if m <= 0 {
		m = ppp.DefaultMRU
	}
	if o := c.cfg.options(); o.MTU > 0 && o.MTU < m {
		m = o.MTU
	}
	return m
}

// tunUp brings the TUN up when the first NCP opens: the PPP header the
// Link negotiated for data, the MTU, and no link-local address of the
// kernel's own when IPv6CP runs (its address comes from IPv6CP). It runs
// on the Call's goroutine and does its work once.
func (c *Call) tunUp() error {
	if c.up {
		return nil
	}
	h := c.link.Header()
	var bits uint32
	if h.ACFC {
		bits |= 1
	}
	if h.PFC {
		bits |= 2
	}
	c.hdr.Store(bits)
	name := c.dev.Name()
	if !c.cfg.options().NoIPv6 {
		if err := tap.SetNoLinkLocal(name); err != nil {
			// IPv6 may be off in this kernel; IPv4 still runs.
			c.log.Debug("ppp tun", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID, "interface", name, "err", err)
		}
	}
	if err := tap.SetMTU(name, c.mtu()); err != nil {
		return err
	}
	if err := tap.SetUp(name); err != nil {
		return err
	}
	c.up = true
	return nil
}

// settle6 follows IPv6CP: when it first opens, the TUN gets the
// link-local addresses; IPv6 data then passes only while IPv6CP is open
// with those addresses (an IPv6CP closed or renegotiated on its own stops
// it, IPv4 goes on). open6 tells whether it had opened before.
func (c *Call) settle6(open6 bool) {
	id, peerID, ok := c.link.IPv6()
	if !ok {
		c.ip6.Store(false)
		return
	}
	local, peer := ppp.LinkLocal(id), ppp.LinkLocal(peerID)
	if !open6 {
		c.openTUN6(local, peer)
		return
	}
	c.mu.Lock()
	same := c.st.Local6 == local && c.st.Peer6 == peer
	c.mu.Unlock()
	c.ip6.Store(same)
}

// openTUN6 gives the TUN the link-local addresses IPv6CP agreed (ours and
// the peer's), lets IPv6 data through and starts ipv6-up. An interface that cannot carry
// IPv6 (MTU below 1280, IPv6 off in the kernel) leaves the call to IPv4.
func (c *Call) openTUN6(local, peer netip.Addr) {
	c.mu.Lock()
	c.open6 = true
	c.mu.Unlock()
	name := c.dev.Name()
	if m := c.mtu(); m < minIPv6MTU {
		c.log.Warn("ppp ipv6: MTU below IPv6's minimum, no IPv6 on the call", "tunnel_id", c.cfg.TunnelID,
			"session_id", c.cfg.SessionID, "interface", name, "mtu", m)
		return
	}
	if err := c.tunUp(); err != nil {
		c.log.Error("ppp tun", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID, "interface", name, "err", err)
		c.link.Close(time.Now(), "interface setup failed")
		return
	}
	if err := tap.SetPointToPoint6(name, local, peer); err != nil {
		c.log.Warn("ppp ipv6: no IPv6 on the call", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID,
			"interface", name, "err", err)
		return
	}
	c.mu.Lock()
	c.st.Local6, c.st.Peer6 = local, peer
	c.mu.Unlock()
	c.ip6.Store(true)
	c.hooks.up6(c.hookInfo(name, local, peer))
	c.log.Info("ppp ipv6 up", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID, "interface", name,
		"user", c.link.User(), "local", local.String(), "peer", peer.String())
}
