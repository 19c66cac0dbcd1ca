// Package engine runs L2TPv2 control connections (RFC 2661) on a
// datapath.Plane: the LNS role, answering SCCRQs on a listening socket,
// and LAC tunnels, dialled to an LNS and redialled with backoff, their
// configured calls placed again with backoff when they end (lacalls.go). It
// ties the control package's state machines to the sockets and the data
// sessions: a tunnel that comes up gets an L2TPv2 datapath tunnel, a call
// that comes up a datapath session whose frames go to a
// datapath.PayloadRecorder ("ppp: none") until PPP exists.
//
// One goroutine owns every Tunnel: it reads the Listeners' control
// packets, routes them by the header's tunnel id (and an SCCRQ by the
// peer's address and Assigned Tunnel ID), runs one timer set to the
// earliest Deadline of all tunnels and LAC redials (kept in a min-heap,
// so a packet or a timer costs O(log n) in the number of tunnels), and executes the
// commands of the other goroutines (Status, CloseTunnel, CloseCall,
// OpenCall), so the state machines need no locks.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ul2tp/ul2tp/control"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/event"
)

// Errors of the engine's commands.
var (
	ErrClosed   = errors.New("l2tpv2 engine closed")
	ErrNotFound = errors.New("no such L2TPv2 tunnel or call")
	ErrExists   = errors.New("already configured")
)

// Options set up an Engine.
type Options struct {
	Plane *datapath.Plane
	Log   *slog.Logger // nil: slog.Default()
	// Events receives tunnel-up/down and call-up/down events, and the
	// PPP links' ppp-phase, ppp-auth-failed and ppp-down; nil: the
	// Plane's hub.
	Events *event.Hub
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Stats are the engine's gauges and counters (the counters since New).
type Stats struct {
	Tunnels        uint64 // tunnels established now
	Calls          uint64 // calls established now
	Malformed      uint64 // control packets with no valid L2TPv2 header, or unreadable SCCRQs
	UnknownTunnel  uint64 // for no tunnel of ours (or from the wrong peer)
	Refused        uint64 // SCCRQs from peers or host names not allowed
	DroppedSetups  uint64 // SCCRQs dropped at max_tunnels or max_pending
	TunnelsUp      uint64 // tunnels set up
	TunnelsDown    uint64 // tunnels gone down (set up or not)
	CallsUp        uint64
	CallsDown      uint64
	Retransmits    uint64 // control messages sent again
	PeerLost       uint64 // tunnels down because retransmission gave up
	DatapathErrors uint64 // AddTunnel or AddSession refused
}

type counters struct {
	tunnels, calls                       atomic.Int64
	malformed, unknown, refused, dropped atomic.Uint64
	tunnelsUp, tunnelsDown               atomic.Uint64
	callsUp, callsDown, dpErrors         atomic.Uint64
	retransmits, peerLost                atomic.Uint64
}

// Engine runs L2TPv2 control connections. Its methods are safe for
// concurrent use.
type Engine struct {
	plane *datapath.Plane
	log   *slog.Logger
	hub   *event.Hub
	now   func() time.Time

	in    chan inPacket
	cmds  chan func()
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
	fwd   sync.WaitGroup
	stats counters
	ppp   pppCounters

	// Owned by the run goroutine.
	listeners map[netip.AddrPort]*listener
	tunnels   map[uint32]*tun
	setups    map[setupKey]*tun
	lns       *LNSConfig
	lnsL      *listener
	lacs      map[string]*lac
	nextID    uint32
	nLNS      int // LNS tunnels
	pending   int // LNS tunnels in setup
	events    []tunEvent
	timers    timers   // tunnel Deadlines and LAC redials
	dueBuf    []*timed // tick's scratch

	// pppEnding counts the PPP calls stopped and not yet done: shutdown
	// waits for their ip-down and their TUN's removal.
	pppEnding sync.WaitGroup
	// pppClosing bounds the PPP calls' TUN closes in progress.
	pppClosing chan struct{}
	// pppBufs lends the PPP calls' TUN readers their buffers.
	pppBufs pppcall.TUNBuffers
	// sent, if set (tests), sees each control packet after it is sent,
	// on the engine's goroutine.
	sent func(tn *tun, p []byte)
}

type inPacket struct {
	l *listener
	p datapath.ControlPacket
}

type listener struct {
	l *datapath.Listener
}

type setupKey struct {
	from   netip.AddrPort
	peerID uint32
}

// tun is one control connection.
type tun struct {
	t       *control.Tunnel
	id      uint32
	l       *listener
	peer    netip.AddrPort
	lac     *lac // nil for an LNS tunnel
	key     setupKey
	pending bool // LNS: counted in Engine.pending
	up      bool
	dp      bool // the datapath tunnel exists
	calls   map[uint32]*call
	waiters []chan struct{}
	timer   timed
	counted bool   // in the tunnels gauge
	retx    uint64 // the Tunnel's retransmissions seen
	retxEv  event.Limiter
}

type call struct {
	up   bool // in the calls gauge
	name string
	rec  *datapath.PayloadRecorder
	ppp  *pppcall.Call // instead of rec when PPP runs
	dp   bool
}

// lac is a configured LAC tunnel across its dials.
type lac struct {
	cfg      LACConfig
	l        *listener
	cur      *tun
	redialAt time.Time // zero: none due
	backoff  time.Duration
	stopped  bool
	lastID   uint32
	last     control.Result
	lastBy   control.Origin
	dialled  bool
	timer    timed
	calls    map[string]*lacCall // by name: cfg.Calls
}

type tunEvent struct {
	tn *tun
	ev control.Event
}

// New starts an Engine with no role; add them with StartLNS and AddLAC.
func New(o Options) *Engine {
	e := &Engine{
		plane:     o.Plane,
		log:       o.Log,
		hub:       o.Events,
		now:       o.Now,
		in:        make(chan inPacket, 64),
		cmds:      make(chan func()),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		listeners: make(map[netip.AddrPort]*listener),
		tunnels:   make(map[uint32]*tun),
		setups:    make(map[setupKey]*tun),
		lacs:      make(map[string]*lac),
		nextID:    1,
		// As many as the datapath closes sessions at once.
		pppClosing: make(chan struct{}, 128),
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.hub == nil {
		e.hub = o.Plane.Events()
	}
	if e.now == nil {
		e.now = time.Now
	}
	go e.run()
	return e
}

// do runs f on the engine's goroutine and waits for it.
func (e *Engine) do(f func()) error {
	ran := make(chan struct{})
	select {
	case e.cmds <- func() { f(); close(ran) }:
	case <-e.quit: // closing: shutdown may be waiting for the caller
		return ErrClosed
	case <-e.done:
		return ErrClosed
	}
	select {
	case <-ran:
		return nil
	case <-e.done:
		return ErrClosed
	}
}

// Close stops the engine at once: no StopCCN is sent (see Shutdown),
// the datapath tunnels it made are deleted and its Listeners closed.
func (e *Engine) Close() error {
	e.once.Do(func() { close(e.quit) })
	<-e.done
	e.fwd.Wait()
	return nil
}

// Shutdown closes every tunnel with a StopCCN and waits, until ctx
// ends, for them to be acked; then it closes the engine.
func (e *Engine) Shutdown(ctx context.Context) error {
	var waits []chan struct{}
	e.do(func() {
		now := e.now()
		for _, l := range e.lacs {
			l.stopped = true
		}
		for _, tn := range e.tunnels {
			if ch := e.closeTunnel(tn, now); ch != nil {
				waits = append(waits, ch)
			}
		}
		e.settle(now)
	})
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
	return e.Close()
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	c := &e.stats
	return Stats{
		Tunnels: uint64(max(c.tunnels.Load(), 0)), Calls: uint64(max(c.calls.Load(), 0)),
		Retransmits: c.retransmits.Load(), PeerLost: c.peerLost.Load(),
		Malformed: c.malformed.Load(), UnknownTunnel: c.unknown.Load(), Refused: c.refused.Load(),
		DroppedSetups: c.dropped.Load(), TunnelsUp: c.tunnelsUp.Load(), TunnelsDown: c.tunnelsDown.Load(),
		CallsUp: c.callsUp.Load(), CallsDown: c.callsDown.Load(), DatapathErrors: c.dpErrors.Load(),
	}
}

// StartLNS starts answering SCCRQs on c.Listen. One LNS per engine.
func (e *Engine) StartLNS(c LNSConfig) error {
	if err := c.check(); err != nil {
		return err
	}
	var err error
	if derr := e.do(func() {
		if e.lns != nil {
			err = fmt.Errorf("lns: %w", ErrExists)
			return
		}
		var l *listener
		if l, err = e.listen(c.Listen); err != nil {
			err = fmt.Errorf("lns listen %s: %w", c.Listen, err)
			return
		}
		e.lns, e.lnsL = &c, l
		e.log.Info("l2tpv2 lns listening", "local", l.l.Local().String())
	}); derr != nil {
		return derr
	}
	return err
}

// LNSAddr is the LNS's socket address (the invalid AddrPort if none).
func (e *Engine) LNSAddr() netip.AddrPort {
	var a netip.AddrPort
	e.do(func() {
		if e.lnsL != nil {
			a = e.lnsL.l.Local()
		}
	})
	return a
}

// AddLAC dials a tunnel to an LNS now.
func (e *Engine) AddLAC(c LACConfig) error {
	if err := c.check(); err != nil {
		return err
	}
	var err error
	if derr := e.do(func() {
		if e.lacs[c.Name] != nil {
			err = fmt.Errorf("lac %s: %w", c.Name, ErrExists)
			return
		}
		var l *listener
		if l, err = e.listen(c.Local); err != nil {
			err = fmt.Errorf("lac %s local %s: %w", c.Name, c.Local, err)
			return
		}
		now := e.now()
		nl := &lac{cfg: c, l: l, redialAt: now, backoff: c.MinBackoff}
		nl.timer = timed{index: -1, l: nl}
		newLACCalls(nl)
		e.lacs[c.Name] = nl
		e.scheduleRedial(nl)
	}); derr != nil {
		return derr
	}
	return err
}

// listen returns the listener on a, opening it if needed.
func (e *Engine) listen(a netip.AddrPort) (*listener, error) {
	if a.Port() != 0 {
		if l := e.listeners[a]; l != nil {
			return l, nil
		}
	}
	dl, err := e.plane.Listen(datapath.ListenConfig{Local: a, UDPCsum: true, UDP6CsumTx: true, UDP6CsumRx: true})
	if err != nil {
		return nil, err
	}
	l := &listener{l: dl}
	e.listeners[dl.Local()] = l
	if a.Port() != 0 {
		e.listeners[a] = l
	}
	e.fwd.Add(1)
	go e.forward(l)
	return l, nil
}

// forward feeds a Listener's packets to the engine's goroutine.
func (e *Engine) forward(l *listener) {
	defer e.fwd.Done()
	for p := range l.l.Packets() {
		select {
		case e.in <- inPacket{l, p}:
		case <-e.quit:
			p.Release()
		}
	}
}

// run is the engine's goroutine.
func (e *Engine) run() {
	defer close(e.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if at, ok := e.timers.next(); ok {
			timer.Reset(max(at.Sub(e.now()), 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case ip := <-e.in:
			now := e.now()
			e.receive(ip.l, ip.p, now)
			ip.p.Release()
			e.settle(now)
		case f := <-e.cmds:
			f()
		case <-timer.C:
			now := e.now()
			e.tick(now)
			e.settle(now)
		case <-e.quit:
			e.shutdown()
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

// shutdown deletes the datapath tunnels and closes the listeners.
func (e *Engine) shutdown() {
	var ppps []*pppcall.Call
	for _, tn := range e.tunnels {
		for _, c := range tn.calls {
			if c.ppp != nil {
				c.ppp.Stop()
				ppps = append(ppps, c.ppp)
			}
		}
		if tn.dp {
			e.plane.DelTunnel(tn.id)
		}
		for _, ch := range tn.waiters {
			close(ch)
		}
	}
	e.tunnels = nil
	for _, p := range ppps {
		p.Wait() // their TUNs are gone
	}
	e.pppEnding.Wait()
	e.stats.tunnels.Store(0)
	e.stats.calls.Store(0)
	seen := make(map[*listener]bool)
	for _, l := range e.listeners {
		if !seen[l] {
			seen[l] = true
			l.l.Close()
		}
	}
	// Drain the forwarders' last packets.
	go func() {
		e.fwd.Wait()
		close(e.in)
	}()
	for ip := range e.in {
		ip.p.Release()
	}
}

// tick runs the tunnels and redials that are due, each once.
func (e *Engine) tick(now time.Time) {
	e.dueBuf = e.timers.due(now, e.dueBuf[:0])
	for i, t := range e.dueBuf {
		e.dueBuf[i] = nil
		if tn := t.tn; tn != nil {
			if e.tunnels[tn.id] == tn {
				e.apply(tn, tn.t.Tick(now))
				e.retransmitted(tn, now)
			}
			continue
		}
		if t.lc != nil {
			e.replace(t.lc, now)
			continue
		}
		t.l.redialAt = time.Time{}
		e.dial(t.l, now)
	}
}

// retransmitted counts the retransmissions of tn's last Tick and
// publishes them, at most one event a second per tunnel.
func (e *Engine) retransmitted(tn *tun, now time.Time) {
	n := tn.t.Status().Delivery.Retransmits
	if n <= tn.retx {
		return
	}
	d := n - tn.retx
	tn.retx = n
	e.stats.retransmits.Add(d)
	for range d {
		if count, ok := tn.retxEv.Allow(now.UnixNano()); ok {
			e.hub.Publish(event.Event{Kind: event.ControlRetransmit, TunnelID: tn.id, Count: count,
				Detail: fmt.Sprintf("%s peer %s", e.role(tn), tn.peer)})
		}
	}
}

// settle handles the events the tunnels produced, and forgets the done
// tunnels.
func (e *Engine) settle(now time.Time) {
	for len(e.events) > 0 {
		te := e.events[0]
		e.events = e.events[1:]
		e.onEvent(te.tn, te.ev, now)
	}
	e.events = e.events[:0]
}

// apply sends a tunnel's packets and queues its events.
//
// When a call comes up, the events are handled first: the call gets its
// datapath session before the ICCN (a LAC's) or the ack of the ICCN (an
// LNS's) goes out, since the peer may send data as soon as it has that,
// and a frame arriving before the session would be dropped (PPP's first
// Configure-Request, costing its 3 s restart timer).
func (e *Engine) apply(tn *tun, out control.TunnelOutput) {
	up := false
	for _, ev := range out.Events {
		e.events = append(e.events, tunEvent{tn, ev})
		up = up || ev.Kind == control.EventCallUp
	}
	if up {
		e.settle(e.now())
	}
	for _, p := range out.Transmit {
		if err := tn.l.l.Send(tn.peer, p); err != nil {
			e.log.Debug("l2tpv2 send", "tunnel_id", tn.id, "err", err)
		}
		if e.sent != nil {
			e.sent(tn, p)
		}
	}
	if tn.t.Done() {
		e.forget(tn)
		return
	}
	e.schedule(tn)
}

func newTun(t *control.Tunnel, id uint32, l *listener, peer netip.AddrPort) *tun {
	tn := &tun{t: t, id: id, l: l, peer: peer, calls: make(map[uint32]*call)}
	tn.timer = timed{index: -1, tn: tn}
	return tn
}

// forget drops a Done tunnel.
func (e *Engine) forget(tn *tun) {
	if e.tunnels[tn.id] != tn {
		return
	}
	delete(e.tunnels, tn.id)
	e.timers.set(&tn.timer, time.Time{}, false)
	if tn.lac == nil {
		if e.setups[tn.key] == tn {
			delete(e.setups, tn.key)
		}
		e.nLNS--
		if tn.pending {
			tn.pending = false
			e.pending--
		}
	} else if tn.lac.cur == tn {
		tn.lac.cur = nil
	}
	for _, ch := range tn.waiters {
		close(ch)
	}
	tn.waiters = nil
}

// allocID returns a free 16-bit tunnel id, 0 if none: not used by a
// tunnel of ours nor by a datapath tunnel (L2TPv3 ones included).
func (e *Engine) allocID() uint32 {
	for range 1 << 16 {
		id := e.nextID
		e.nextID++
		if e.nextID > 0xffff {
			e.nextID = 1
		}
		if e.tunnels[id] == nil && e.plane.Tunnel(id) == nil {
			return id
		}
	}
	return 0
}

// dial starts a LAC's tunnel.
func (e *Engine) dial(l *lac, now time.Time) {
	if l.stopped || l.cur != nil {
		return
	}
	id := e.allocID()
	if id == 0 {
		e.redial(l, now)
		return
	}
	t, err := control.NewTunnel(l.cfg.tunnelConfig(id), control.Initiator)
	if err != nil {
		e.log.Error("l2tpv2 lac", "name", l.cfg.Name, "err", err)
		return
	}
	tn := newTun(t, id, l.l, l.cfg.Peer)
	tn.lac = l
	e.tunnels[id] = tn
	l.cur, l.lastID, l.dialled = tn, id, true
	out, err := t.Open(now)
	if err != nil {
		e.log.Error("l2tpv2 lac open", "name", l.cfg.Name, "err", err)
	}
	e.log.Debug("l2tpv2 lac dialling", "name", l.cfg.Name, "tunnel_id", id, "peer", l.cfg.Peer.String())
	e.apply(tn, out)
}

// redial schedules a LAC's next dial, backing off.
func (e *Engine) redial(l *lac, now time.Time) {
	if l.stopped || l.cfg.NoRedial {
		return
	}
	l.redialAt = now.Add(l.backoff)
	l.backoff = min(2*l.backoff, l.cfg.MaxBackoff)
	e.scheduleRedial(l)
}

// receive routes one control packet.
func (e *Engine) receive(l *listener, p datapath.ControlPacket, now time.Time) {
	h, err := control.ParseHeader(p.Data)
	if err != nil || h.Version != control.V2 {
		e.stats.malformed.Add(1)
		return
	}
	if h.TunnelID == 0 {
		if m, err := control.Parse(p.Data); err == nil && m.Type() == control.MsgStopCCN {
			e.stopUnassigned(l, p, m, now)
			return
		}
		e.sccrq(l, p, now)
		return
	}
	tn := e.tunnels[h.TunnelID]
	if tn == nil || tn.l != l || p.From.Addr() != tn.peer.Addr() {
		e.stats.unknown.Add(1)
		return
	}
	if p.From != tn.peer {
		if tn.up {
			e.stats.unknown.Add(1)
			return
		}
		tn.peer = p.From // the LNS answered from another port
	}
	e.apply(tn, tn.t.Receive(p.Data, now))
}

// stopUnassigned routes a StopCCN sent to tunnel 0: from a peer that
// ended a setup before it learned our tunnel id (xl2tpd does so when it
// cannot unhide the Assigned Tunnel ID). It goes to the LNS setup from
// that peer whose peer id is the StopCCN's Assigned Tunnel ID, or to our
// LAC dialling that peer, still without a peer id.
func (e *Engine) stopUnassigned(l *listener, p datapath.ControlPacket, m control.Message, now time.Time) {
	var tn *tun
	if a, ok := m.Find(control.AttrAssignedTunnelID); ok && !a.Hidden() {
		if id, err := a.Uint16(); err == nil {
			tn = e.setups[setupKey{p.From, uint32(id)}]
		}
	}
	if tn == nil {
		for _, c := range e.lacs {
			if t := c.cur; t != nil && t.l == l && !t.up && t.peer == p.From && t.t.PeerID() == 0 {
				tn = t
				break
			}
		}
	}
	if tn == nil || tn.l != l {
		e.stats.unknown.Add(1)
		return
	}
	e.apply(tn, tn.t.Receive(p.Data, now))
}

// sccrq handles a message to tunnel 0: an SCCRQ to the LNS.
func (e *Engine) sccrq(l *listener, p datapath.ControlPacket, now time.Time) {
	c := e.lns
	if c == nil || l != e.lnsL {
		e.stats.unknown.Add(1)
		return
	}
	info, err := control.PeekSCCRQ(p.Data, []byte(c.Secret))
	if err != nil {
		e.stats.malformed.Add(1)
		return
	}
	key := setupKey{p.From, info.PeerID}
	if tn := e.setups[key]; tn != nil {
		if st := tn.t.State(); st != control.StateClosing && st != control.StateClosed {
			e.apply(tn, tn.t.Receive(p.Data, now))
			return
		}
		// The old tunnel lingers after a StopCCN; an SCCRQ with its
		// address and peer id is the peer starting again (a restarted
		// LAC), a new tunnel.
		delete(e.setups, key)
	}
	if !c.allowed(p.From.Addr(), info.HostName) {
		if e.stats.refused.Add(1) == 1 || e.log.Enabled(context.Background(), slog.LevelDebug) {
			e.log.Info("l2tpv2 sccrq refused: peer not allowed", "peer", p.From.String(), "host_name", info.HostName)
		}
		return
	}
	if e.nLNS >= c.MaxTunnels || e.pending >= c.MaxPending {
		e.stats.dropped.Add(1)
		return
	}
	id := e.allocID()
	if id == 0 {
		e.stats.dropped.Add(1)
		return
	}
	t, err := control.NewTunnel(c.tunnelConfig(id), control.Responder)
	if err != nil {
		e.log.Error("l2tpv2 lns", "err", err)
		return
	}
	tn := newTun(t, id, l, p.From)
	tn.key, tn.pending = key, true
	e.tunnels[id] = tn
	e.setups[key] = tn
	e.nLNS++
	e.pending++
	e.apply(tn, t.Receive(p.Data, now))
}
