// Package call runs PPP on one L2TPv2 call over a TUN device: the glue
// between a datapath session, a ppp.Link and the kernel.
//
// Each Call has three parts:
//
//   - Deliver, on the session's receive pump: IPv4 and IPv6 data frames
//     go straight to the TUN (no allocation); every other frame (LCP,
//     authentication, NCPs) is copied into a bounded queue for the
//     Call's goroutine, and dropped and counted when it is full, so the
//     pump never blocks.
//   - the Call's goroutine, which owns the ppp.Link: it feeds it the
//     queued frames, runs its timers, configures the TUN when the first
//     NCP opens (MTU from the peer's MRU, up) and for each NCP: IPCP's
//     address and point-to-point peer, IPv6CP's link-local address and
//     the peer's (the kernel's own link-local is turned off), and reports
//     a failed or terminated link through Config.OnEnd (the engine then
//     ends the call with a CDN).
//   - a TUN reader goroutine: IPv4 and IPv6 packets, told apart by the
//     version nibble, go out behind the negotiated PPP header with
//     Session.Send, without allocation.
//
// The TUN has offloads unless Config.NoOffload says no (ul2tpd
// --no-offload) or the kernel refuses them: it carries a virtio_net_hdr
// and TSO and checksum offload are on, so the kernel hands the reader TCP
// super-packets of up to 64 KiB and leaves checksums partial. The reader
// completes partial checksums and cuts super-packets into MSS-sized IP
// packets (package offload), each behind its PPP header, sent together
// with Session.SendSegments (one sendmmsg, UDP GSO where it can). In the
// other direction the Call is a datapath.PacketPayload: the receive pump
// merges the TCP segments of a flow in one receive batch into a GSO
// super-packet for the TUN, as GRO would.
//
// A goroutine per call rather than the engine's own: the Link is pure
// protocol, but authentication (MS-CHAPv2's hashes), the TUN's ioctls and
// a slow peer's retransmissions would otherwise sit on the goroutine that
// owes acks and HELLOs to every tunnel; and each Link's timers stay out of
// the engine's heap. It costs two goroutines per call (a few KiB each).
package call

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ul2tp/ul2tp/control/ppp"
	"github.com/ul2tp/ul2tp/control/ppp/auth"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/offload"
	"github.com/ul2tp/ul2tp/datapath/tap"
	"github.com/ul2tp/ul2tp/encap"
)

// DefaultName is the TUN name pattern: the kernel picks the number.
const DefaultName = "ppp%d"

// QueueLen bounds the control frames waiting for a Call's goroutine.
const QueueLen = 64

// Each end's first Configure-Request is easily lost: an L2TP peer sets
// its session up only once the ICCN has gone through (xl2tpd's LAC after
// sending it, an LNS such as ours after processing it), and a frame that
// arrives before is dropped, costing the sender's 3 s restart timer. So a
// Call waits for the peer's first PPP frame before it opens LCP, at most
// LNSOpenWait on the LNS and LACOpenWait on the LAC. The LAC waits longer
// (an LNS on a slow machine may take most of a second to set its session
// up); an LNS that waits for the LAC (pppd's "passive") hears from it
// after that; two of ours open when the LNS's wait is over.
const (
	LNSOpenWait = 500 * time.Millisecond
	LACOpenWait = time.Second
)

// Server is the LNS side of PPP: how peers are authenticated and what
// addresses they get. One Server serves every call of an LNS.
type Server struct {
	// Method is the authentication method required of peers; nil: none.
	Method *ppp.AuthMethod
	// Name is our name (CHAP's Name, the server column of Secrets).
	Name    string
	Secrets *auth.Secrets
	Local   netip.Addr // our address on every call's TUN
	Pool    *Pool
	DNS     [2]netip.Addr
	Options
	Hooks *Hooks // ip-up, ip-down, ipv6-up and ipv6-down; nil: none
}

// Client is the LAC side: our credentials. The address is the one IPCP
// gives.
type Client struct {
	User, Password string
	Options
	Hooks *Hooks // nil: none
}

// Config sets up a Call.
type Config struct {
	TunnelID, SessionID uint32
	// Peer is the address of the tunnel's peer (the LNS, for a LAC's
	// Hooks.DefaultRoute).
	Peer netip.Addr
	// Name is the TUN name pattern; "": DefaultName.
	Name string
	// Exactly one of Server and Client is set.
	Server *Server
	Client *Client
	// OnEnd is called once, on the Call's goroutine, when the PPP link
	// fails or terminates while the call is up: the owner ends the call
	// (CDN). It may block (Stop does not wait for the goroutine).
	OnEnd func(err error)
	Log   *slog.Logger
	// Timers of the PPP automata; zero: RFC 1661's defaults.
	Timers ppp.Timers
	// OnEvent, if set, hears of each phase change, authentication
	// outcome and the link's end, on the Call's goroutine; it must not
	// block.
	OnEvent func(Event)
	// Dropped, if set, also counts the control frames dropped with the
	// queue full (one counter for all of the owner's calls).
	Dropped *atomic.Uint64
	// CloseSlots, if set, bounds the TUN closes in progress across the
	// owner's calls: a close holds an OS thread while the kernel
	// unregisters the device, so ending many calls at once would start
	// as many threads. nil: no bound.
	CloseSlots chan struct{}
	// NoOffload opens the TUN without a virtio_net_hdr and offloads:
	// the kernel then hands over MTU-sized packets with full checksums
	// (the fallback path, for comparison). With offloads, TCP
	// super-packets are segmented here, and a TUN the kernel refuses
	// them on is opened without.
	NoOffload bool
	// Buffers lends the TUN reader its buffers when the TUN has
	// offloads (64 KiB and more); one may serve all of the owner's
	// calls. nil: the Call has its own.
	Buffers *TUNBuffers
}

// Status describes a Call.
type Status struct {
	Phase       string
	User        string
	Local, Peer netip.Addr // IPv4 addresses on the TUN, once IPCP is open
	// Local6 and Peer6 are the IPv6 link-local addresses on the TUN,
	// once IPv6CP is open.
	Local6, Peer6 netip.Addr
	Interface     string // the TUN's name
	Failure       string // the last failure, "" if none
	Dropped       uint64 // control frames dropped with the queue full
	// EchoMissed counts LCP Echo-Requests that had no reply in time.
	EchoMissed uint64
}

// Call is PPP on one L2TPv2 call.
type Call struct {
	cfg  Config
	log  *slog.Logger
	dev  *tap.Device
	q    *tap.Queue
	sess atomic.Pointer[datapath.Session]
	link *ppp.Link
	// noVnet is the virtio_net_hdr of packets written to a TUN with
	// offloads: all zero, read only.
	noVnet [offload.VnetHdrLen]byte

	ctl      chan []byte
	openWait time.Duration // before it opens LCP unprompted
	dropped  atomic.Uint64
	ip4      atomic.Bool   // IPCP open and the TUN configured
	ip6      atomic.Bool   // IPv6CP open and the TUN configured
	hdr      atomic.Uint32 // 1: ACFC, 2: PFC as negotiated
	start    chan struct{}
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
	reader   sync.WaitGroup
	hooks    *hookRun

	mu     sync.Mutex // guards st, peer4, opened and open6
	st     Status
	peer4  netip.Addr // from the pool, released at the end
	ended  bool
	opened bool      // for IPCP
	open6  bool      // for IPv6CP
	up     bool      // the TUN is up
	phase  ppp.Phase // as OnPhase last said, on the Call's goroutine
}

// New creates the TUN device and the Link of a call; Start begins PPP.
func New(cfg Config) (*Call, error) {
	if (cfg.Server == nil) == (cfg.Client == nil) {
		return nil, errors.New("ppp call: want exactly one of Server and Client")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	c := &Call{cfg: cfg, log: cfg.Log, ctl: make(chan []byte, QueueLen),
		start: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	c.openWait = openWait(cfg)
	if c.log == nil {
		c.log = slog.Default()
	}
	lc, err := c.linkConfig()
	if err != nil {
		return nil, err
	}
	if c.link, err = ppp.New(lc); err != nil {
		return nil, fmt.Errorf("ppp call %d/%d: %w", cfg.TunnelID, cfg.SessionID, err)
	}
	if c.dev, err = c.createTUN(); err != nil {
		return nil, fmt.Errorf("ppp call %d/%d: %w", cfg.TunnelID, cfg.SessionID, err)
	}
	c.q = c.dev.Queues()[0]
	c.hooks = newHookRun(&cfg, c.log)
	c.st = Status{Phase: ppp.PhaseDead.String(), Interface: c.dev.Name()}
	go c.run()
	return c, nil
}

// createTUN makes the call's TUN, with offloads unless the Config says
// no or the kernel refuses a TUN with a virtio_net_hdr.
func (c *Call) createTUN() (*tap.Device, error) {
	tc := tap.Config{Name: c.cfg.Name, TUN: true, Offload: !c.cfg.NoOffload}
	d, err := tap.Create(tc)
	if err == nil || !tc.Offload {
		return d, err
	}
	tc.Offload = false
	d, err2 := tap.Create(tc)
	if err2 == nil {
		c.log.Debug("ppp call: TUN without offloads", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID, "err", err)
	}
	return d, err2
}

// openWait is how long a Call of cfg's role waits for the peer's first
// frame before it opens LCP.
func openWait(cfg Config) time.Duration {
	if cfg.Client != nil {
		return LACOpenWait
	}
	return LNSOpenWait
}

// linkConfig is the ppp.Config of the call's role.
func (c *Call) linkConfig() (ppp.Config, error) {
	lc := ppp.Config{Timers: c.cfg.Timers, Send: c.send, OnPhase: c.onPhase}
	c.cfg.options().apply(&lc)
	if s := c.cfg.Server; s != nil {
		if s.Method != nil {
			if s.Secrets == nil {
				return lc, fmt.Errorf("ppp call: %v needs secrets", *s.Method)
			}
			lc.LCP.Require = []ppp.AuthMethod{*s.Method}
		}
		lc.NewAuth = c.newAuth
		lc.IPCP = &ppp.IPCPConfig{Local: s.Local, Assign: c.assign, DNS: s.DNS}
		return lc, nil
	}
	lc.LCP.Accept = []ppp.AuthMethod{ppp.MSCHAPv2, ppp.CHAPMD5, ppp.PAP}
	lc.NewAuth = c.newAuth
	lc.IPCP = &ppp.IPCPConfig{RequestDNS: true}
	return lc, nil
}

// Interface is the TUN's name.
func (c *Call) Interface() string { return c.dev.Name() }

// Start runs PPP on s, the call's datapath session.
func (c *Call) Start(s *datapath.Session) {
	c.sess.Store(s)
	c.reader.Add(1)
	go c.readTUN()
	close(c.start)
}

// Stop ends the call's PPP (the call is down): the Link goes Dead, the TUN
// is removed and the pool address released, on the Call's goroutine. It
// does not wait; Wait does.
func (c *Call) Stop() {
	c.once.Do(func() { close(c.quit) })
}

// Wait waits for a stopped Call's goroutines to end.
func (c *Call) Wait() {
	<-c.done
	c.hooks.wait()
	c.reader.Wait()
}

// Status returns the call's PPP state.
func (c *Call) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.Dropped = c.dropped.Load()
	return st
}

// Deliver takes a frame of the call from the receive pump. It does not
// block and allocates only for control frames.
func (c *Call) Deliver(frame []byte) {
	proto, off, err := encap.ParsePPP(frame)
	if err != nil {
		return
	}
	if proto == encap.PPPIPv4 {
		if c.ip4.Load() {
			c.writeTUN(frame[off:])
		}
		return
	}
	if proto == encap.PPPIPv6 {
		if c.ip6.Load() {
			c.writeTUN(frame[off:])
		}
		return
	}
	select {
	case c.ctl <- append([]byte(nil), frame...):
	default:
		c.dropped.Add(1)
		if d := c.cfg.Dropped; d != nil {
			d.Add(1)
		}
	}
}

// PacketOffset is datapath.PacketPayload's: for a TUN with offloads, the
// receive pump coalesces the IPv4 and IPv6 packets of the call (of a
// version whose NCP is open) and writes them with WritePacket; -1 sends
// every other frame to Deliver.
func (c *Call) PacketOffset(frame []byte) int {
	if !c.dev.VnetHdr() {
		return -1
	}
	proto, off, err := encap.ParsePPP(frame)
	if err != nil || off == len(frame) {
		return -1
	}
	if proto == encap.PPPIPv4 && c.ip4.Load() || proto == encap.PPPIPv6 && c.ip6.Load() {
		return off
	}
	return -1
}

// WritePacket is datapath.PacketPayload's: it writes a packet, given as
// its virtio_net_hdr and pieces, to the TUN.
func (c *Call) WritePacket(parts [][]byte) error { return c.q.WriteParts(parts) }

// writeTUN writes a received IP packet to the TUN, behind a virtio_net_hdr
// saying nothing (no GSO, checksums to check) if the TUN has one.
func (c *Call) writeTUN(pkt []byte) {
	if !c.dev.VnetHdr() {
		c.q.Write(pkt)
		return
	}
	parts := [2][]byte{c.noVnet[:], pkt}
	c.q.WriteParts(parts[:])
}

// send is the Link's Send: control frames to the peer.
func (c *Call) send(frame []byte) {
	if s := c.sess.Load(); s != nil {
		if err := s.Send(frame); err != nil {
			c.log.Debug("ppp send", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID, "err", err)
		}
	}
}

// run is the Call's goroutine: it owns the Link.
func (c *Call) run() {
	defer close(c.done)
	defer c.cleanup()
	select {
	case <-c.start:
	case <-c.quit:
		return
	}
	var first []byte
	if c.openWait > 0 {
		wait := time.NewTimer(c.openWait)
		select {
		case first = <-c.ctl:
		case <-wait.C:
		case <-c.quit:
			wait.Stop()
			return
		}
		wait.Stop()
	}
	c.link.Open(time.Now())
	if first != nil {
		c.link.Receive(time.Now(), first)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.settle()
		if d := c.link.Deadline(); !d.IsZero() {
			timer.Reset(max(time.Until(d), 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case f := <-c.ctl:
			c.link.Receive(time.Now(), f)
		case <-timer.C:
			c.link.Tick(time.Now())
		case <-c.quit:
			c.link.Down(time.Now())
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// settle acts on the Link's state after each event: configures the TUN
// once IPCP is open, and reports a link that has ended.
func (c *Call) settle() {
	l := c.link
	c.mu.Lock()
	c.st.Phase = l.Phase().String()
	c.st.User = l.User()
	if err := l.Failure(); err != nil {
		c.st.Failure = err.Error()
	}
	c.st.EchoMissed = l.EchoMissed()
	local, peer := l.IPv4()
	opened, open6 := c.opened, c.open6
	c.mu.Unlock()
	if !opened && local.IsValid() && peer.IsValid() {
		c.openTUN(local, peer)
	}
	c.settle6(open6)
	if l.Phase() == ppp.PhaseDead && !c.ended {
		c.ended = true
		c.ip4.Store(false)
		c.ip6.Store(false)
		err := l.Failure()
		if err == nil {
			err = errors.New("PPP link terminated")
		}
		c.log.Info("ppp link down", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID,
			"user", l.User(), "err", err.Error())
		if c.cfg.OnEnd != nil {
			c.cfg.OnEnd(err)
		}
	}
}

// openTUN configures the TUN for the addresses IPCP agreed and lets data
// through.
func (c *Call) openTUN(local, peer netip.Addr) {
	c.mu.Lock()
	c.opened = true
	c.st.Local, c.st.Peer = local, peer
	c.mu.Unlock()
	name := c.dev.Name()
	err := tap.SetPointToPoint4(name, local, peer)
	if err == nil {
		err = c.tunUp()
	}
	if err != nil {
		c.log.Error("ppp tun", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID, "interface", name, "err", err)
		c.link.Close(time.Now(), "interface setup failed")
		return
	}
	c.ip4.Store(true)
	c.hooks.up(c.hookInfo(name, local, peer))
	c.log.Info("ppp link up", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID, "interface", name,
		"user", c.link.User(), "local", local.String(), "peer", peer.String(), "mtu", c.mtu())
}

// cleanup runs the down hooks, then removes the TUN and gives the peer's
// address back.
func (c *Call) cleanup() {
	c.ip4.Store(false)
	c.ip6.Store(false)
	c.mu.Lock()
	c.st.Phase = ppp.PhaseDead.String()
	a := c.peer4
	c.peer4 = netip.Addr{}
	c.mu.Unlock()
	c.hooks.down(c.sessionBytes, func() {
		if sl := c.cfg.CloseSlots; sl != nil {
			sl <- struct{}{}
			c.dev.Close()
			<-sl
		} else {
			c.dev.Close()
		}
		if s := c.cfg.Server; s != nil && s.Pool != nil && a.IsValid() {
			s.Pool.Put(a)
		}
	})
}

// assign is IPCP's Assign on the LNS: the user's fixed address from the
// secrets file, else one from the pool. It runs on the Call's goroutine
// after authentication.
func (c *Call) assign() (netip.Addr, error) {
	s := c.cfg.Server
	if s.Secrets != nil && c.link.User() != "" {
		if e, ok := s.Secrets.Lookup(c.link.User(), s.Name); ok {
			if a, ok := e.Fixed(); ok {
				return a, nil
			}
		}
	}
	if s.Pool == nil {
		return netip.Addr{}, errors.New("no address pool")
	}
	a, err := s.Pool.Get()
	if err != nil {
		return a, err
	}
	c.mu.Lock()
	c.peer4 = a
	c.mu.Unlock()
	return a, nil
}

// newAuth adapts package auth's state machines to ppp.Authenticator.
func (c *Call) newAuth(m ppp.AuthMethod, asAuthenticator bool) (ppp.Authenticator, error) {
	var am auth.Method
	switch m {
	case ppp.PAP:
		am = auth.PAP
	case ppp.CHAPMD5:
		am = auth.CHAPMD5
	case ppp.MSCHAPv2:
		am = auth.MSCHAPv2
	default:
		return nil, fmt.Errorf("method %v not supported", m)
	}
	var p auth.Protocol
	if asAuthenticator {
		s := c.cfg.Server
		if s == nil || s.Secrets == nil {
			return nil, fmt.Errorf("%v: %w", m, auth.ErrNoSecret)
		}
		p = auth.NewAuthenticator(am, auth.AuthenticatorConfig{Name: s.Name,
			Verify: s.Secrets.VerifyPassword, Secret: s.Secrets.Secret})
	} else {
		cl := c.cfg.Client
		if cl == nil {
			return nil, fmt.Errorf("%v: %w", m, auth.ErrNoSecret)
		}
		p = auth.NewPeer(am, auth.PeerConfig{User: cl.User, Password: cl.Password})
	}
	if p == nil {
		return nil, fmt.Errorf("method %v not supported", m)
	}
	return &authAdapter{p: p, c: c, self: asAuthenticator}, nil
}

// authAdapter is an auth.Protocol as a ppp.Authenticator; its Result
// (event.go) reports each exchange that finishes.
type authAdapter struct {
	p    auth.Protocol
	c    *Call
	self bool // we are the authenticator
	done bool // p was done at the last Result
}

func (a *authAdapter) Start(now time.Time) [][]byte               { return a.p.Start(now) }
func (a *authAdapter) Receive(now time.Time, pkt []byte) [][]byte { return a.p.Receive(pkt, now) }
func (a *authAdapter) Tick(now time.Time) [][]byte {
	if d, ok := a.p.Deadline(); !ok || now.Before(d) {
		return nil
	}
	return a.p.Tick(now)
}
