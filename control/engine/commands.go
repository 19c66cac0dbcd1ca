package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ul2tp/ul2tp/control"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/encap"
)

// onEvent acts on one event of a tunnel: the datapath follows the
// control connection, the LAC opens its calls or redials, and the event
// is logged and published.
func (e *Engine) onEvent(tn *tun, ev control.Event, now time.Time) {
	switch ev.Kind {
	case control.EventTunnelUp:
		e.tunnelUp(tn, ev, now)
	case control.EventTunnelDown:
		e.tunnelDown(tn, ev, now)
	case control.EventCallUp:
		e.callUp(tn, ev)
	case control.EventCallDown:
		e.callDown(tn, ev)
	default:
		e.log.Debug("l2tpv2 "+ev.Kind.String(), "tunnel_id", tn.id, "session_id", ev.Call.LocalID)
	}
}

func (e *Engine) role(tn *tun) string {
	if tn.lac != nil {
		return "lac"
	}
	return "lns"
}

func (e *Engine) tunnelUp(tn *tun, ev control.Event, now time.Time) {
	tn.up = true
	if tn.pending {
		tn.pending = false
		e.pending--
	}
	e.stats.tunnelsUp.Add(1)
	tn.counted = true
	e.stats.tunnels.Add(1)
	local := tn.l.l.Local()
	_, err := e.plane.AddTunnel(datapath.TunnelConfig{
		Version: 2, ID: tn.id, PeerID: ev.Tunnel.PeerID, Encap: encap.EncapUDP,
		Local: local.Addr(), UDPSport: local.Port(),
		Remote: tn.peer.Addr(), UDPDport: tn.peer.Port(),
	})
	if err != nil {
		e.stats.dpErrors.Add(1)
		e.log.Error("l2tpv2 datapath tunnel", "tunnel_id", tn.id, "err", err)
	} else {
		tn.dp = true
	}
	e.log.Info("l2tpv2 tunnel up", "role", e.role(tn), "name", tn.name(), "tunnel_id", tn.id,
		"peer_tunnel_id", ev.Tunnel.PeerID, "peer", tn.peer.String(), "host_name", ev.Tunnel.HostName)
	e.hub.Publish(event.Event{Kind: event.ControlTunnelUp, TunnelID: tn.id,
		Detail: fmt.Sprintf("%s peer %s host %q peer_tunnel_id %d", e.role(tn), tn.peer, ev.Tunnel.HostName, ev.Tunnel.PeerID)})
	if l := tn.lac; l != nil {
		l.backoff = l.cfg.MinBackoff
		for _, name := range l.cfg.Calls {
			e.openCall(tn, name, now)
		}
	}
}

func (e *Engine) tunnelDown(tn *tun, ev control.Event, now time.Time) {
	e.stats.tunnelsDown.Add(1)
	if tn.counted {
		tn.counted = false
		e.stats.tunnels.Add(-1)
	}
	if ev.By == control.ByPeerLost {
		e.stats.peerLost.Add(1)
	}
	if tn.dp {
		tn.dp = false
		if err := e.plane.DelTunnel(tn.id); err != nil {
			e.log.Debug("l2tpv2 datapath tunnel delete", "tunnel_id", tn.id, "err", err)
		}
	}
	e.log.Info("l2tpv2 tunnel down", "role", e.role(tn), "name", tn.name(), "tunnel_id", tn.id,
		"peer_tunnel_id", tn.t.PeerID(), "peer", tn.peer.String(), "host_name", tn.t.Status().Info.HostName,
		"by", ev.By.String(), "result_code", ev.Result.Code, "result", ev.Result.String())
	e.hub.Publish(event.Event{Kind: event.ControlTunnelDown, TunnelID: tn.id,
		Detail: fmt.Sprintf("by %s %s", ev.By, ev.Result)})
	if l := tn.lac; l != nil {
		l.last, l.lastBy = ev.Result, ev.By
		if l.cur == tn {
			l.cur = nil
			e.lacTunnelDown(l)
		}
		e.redial(l, now)
	}
}

func (e *Engine) callUp(tn *tun, ev control.Event) {
	e.stats.callsUp.Add(1)
	c := tn.calls[ev.Call.LocalID]
	if c == nil {
		c = &call{}
		tn.calls[ev.Call.LocalID] = c
	}
	if !c.up {
		c.up = true
		e.stats.calls.Add(1)
	}
	e.lacCallUp(tn, ev.Call.LocalID, e.now())
	var payload datapath.Payload
	if c.ppp = e.newPPP(tn, c, ev.Call.LocalID); c.ppp != nil {
		payload = c.ppp
	} else {
		c.rec = &datapath.PayloadRecorder{}
		payload = c.rec
	}
	if tn.dp {
		s, err := e.plane.AddSession(datapath.SessionConfig{
			TunnelID: tn.id, ID: ev.Call.LocalID, PeerID: ev.Call.PeerID,
			Payload: payload, SendSeq: ev.Call.SequencingRequired,
		})
		if err != nil {
			e.stats.dpErrors.Add(1)
			e.log.Error("l2tpv2 datapath session", "tunnel_id", tn.id, "session_id", ev.Call.LocalID, "err", err)
		} else {
			c.dp = true
			if c.ppp != nil {
				c.ppp.Start(s)
			}
		}
	}
	e.log.Info("l2tpv2 call up", "tunnel_id", tn.id, "session_id", ev.Call.LocalID, "peer_session_id", ev.Call.PeerID,
		"kind", ev.Call.Kind.String(), "serial", ev.Call.Serial, "peer", tn.peer.String(), "name", c.name)
	e.hub.Publish(event.Event{Kind: event.CallUp, TunnelID: tn.id, SessionID: ev.Call.LocalID,
		Detail: fmt.Sprintf("%s call serial %d peer_session_id %d", ev.Call.Kind, ev.Call.Serial, ev.Call.PeerID)})
}

func (e *Engine) callDown(tn *tun, ev control.Event) {
	e.stats.callsDown.Add(1)
	c := tn.calls[ev.Call.LocalID]
	e.lacCallDown(tn, ev, c, e.now())
	delete(tn.calls, ev.Call.LocalID)
	if c != nil && c.up {
		e.stats.calls.Add(-1)
	}
	if c != nil && c.ppp != nil {
		p := c.ppp
		p.Stop()
		// Shutdown waits for its ip-down and the TUN's removal.
		e.pppEnding.Add(1)
		go func() {
			defer e.pppEnding.Done()
			p.Wait()
		}()
	}
	// A call ended with its tunnel leaves with the datapath tunnel (one
	// table rebuild in tunnelDown, not one per call: 10,000 calls took
	// seconds that the engine owed to acks).
	if st := tn.t.State(); c != nil && c.dp && st != control.StateClosing && st != control.StateClosed {
		if err := e.plane.DelSession(tn.id, ev.Call.LocalID); err != nil {
			e.log.Debug("l2tpv2 datapath session delete", "tunnel_id", tn.id, "session_id", ev.Call.LocalID, "err", err)
		}
	}
	e.log.Info("l2tpv2 call down", "tunnel_id", tn.id, "session_id", ev.Call.LocalID, "peer_session_id", ev.Call.PeerID,
		"peer", tn.peer.String(), "by", ev.By.String(), "result_code", ev.Result.Code, "result", ev.Result.String())
	e.hub.Publish(event.Event{Kind: event.CallDown, TunnelID: tn.id, SessionID: ev.Call.LocalID,
		Detail: fmt.Sprintf("by %s %s", ev.By, ev.Result)})
}

func (tn *tun) name() string {
	if tn.lac != nil {
		return tn.lac.cfg.Name
	}
	return ""
}

// openCall opens an incoming call (ICRQ) on tn.
func (e *Engine) openCall(tn *tun, name string, now time.Time) (uint32, error) {
	// A LAC places an incoming call (ICRQ), an LNS an outgoing one (OCRQ).
	kind := control.IncomingCall
	if tn.lac == nil {
		kind = control.OutgoingCall
	}
	id, out, err := tn.t.OpenCall(control.CallParams{Kind: kind}, now)
	if err == nil {
		tn.calls[id] = &call{name: name}
		e.placed(tn, name, id)
	}
	e.apply(tn, out)
	if err != nil {
		e.log.Warn("l2tpv2 open call", "tunnel_id", tn.id, "name", name, "err", err)
	}
	return id, err
}

// closeTunnel sends the StopCCN and returns a channel closed when the
// tunnel is done (nil if it already is).
func (e *Engine) closeTunnel(tn *tun, now time.Time) chan struct{} {
	out, _ := tn.t.Close(control.Result{}, now)
	var ch chan struct{}
	if !tn.t.Done() {
		ch = make(chan struct{})
		tn.waiters = append(tn.waiters, ch)
	}
	e.apply(tn, out)
	return ch
}

// CloseTunnel ends an L2TPv2 tunnel with a StopCCN and waits, until ctx
// ends, for the peer to ack it. A LAC tunnel is not redialled: its
// configuration is dropped. ErrNotFound: no L2TPv2 tunnel has that id.
func (e *Engine) CloseTunnel(ctx context.Context, id uint32) error {
	var ch chan struct{}
	found := false
	if err := e.do(func() {
		now := e.now()
		tn := e.tunnels[id]
		for name, l := range e.lacs {
			if (tn != nil && l == tn.lac) || (l.cur == nil && l.lastID == id) {
				l.stopped, found = true, true
				delete(e.lacs, name)
				e.timers.set(&l.timer, time.Time{}, false)
				e.lacTunnelDown(l)
			}
		}
		if tn == nil {
			return
		}
		found = true
		ch = e.closeTunnel(tn, now)
		e.settle(now)
	}); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("tunnel %d: %w", id, ErrNotFound)
	}
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tunnel %d: StopCCN not acknowledged: %w", id, ctx.Err())
	}
}

// CloseCall ends a call with a CDN. A LAC's configured call so ended
// is not placed again until its tunnel is dialled again.
func (e *Engine) CloseCall(tunnelID, sessionID uint32) error {
	return e.closeCall(tunnelID, sessionID, control.Result{}, true)
}

// closeCall ends a call with a CDN carrying r; hold: by the
// administrator.
func (e *Engine) closeCall(tunnelID, sessionID uint32, r control.Result, hold bool) error {
	var err error
	if derr := e.do(func() {
		now := e.now()
		tn := e.tunnels[tunnelID]
		if tn == nil {
			err = fmt.Errorf("tunnel %d: %w", tunnelID, ErrNotFound)
			return
		}
		if hold {
			e.hold(tn, sessionID)
		}
		var out control.TunnelOutput
		out, err = tn.t.CloseCall(sessionID, r, now)
		e.apply(tn, out)
		e.settle(now)
		if err != nil {
			err = fmt.Errorf("tunnel %d session %d: %w", tunnelID, sessionID, err)
		}
	}); derr != nil {
		return derr
	}
	return err
}

// OpenCall opens an incoming call on an established tunnel and returns
// its session id.
func (e *Engine) OpenCall(tunnelID uint32, name string) (uint32, error) {
	var id uint32
	var err error
	if derr := e.do(func() {
		now := e.now()
		tn := e.tunnels[tunnelID]
		if tn == nil {
			err = fmt.Errorf("tunnel %d: %w", tunnelID, ErrNotFound)
			return
		}
		id, err = e.openCall(tn, name, now)
		e.settle(now)
	}); derr != nil {
		return 0, derr
	}
	return id, err
}

// TunnelStatus describes one L2TPv2 tunnel, or a LAC between dials
// (Control.State idle or closed, Control.LastResult why it went down).
type TunnelStatus struct {
	ID, PeerID  uint32
	Role        string // "lns" or "lac"
	Name        string // the LAC's name
	Local, Peer netip.AddrPort
	Control     control.TunnelStatus
	Calls       []CallStatus
	// Waiting are a LAC's configured calls with no placement now (their
	// Wait set): redialling after a failure, or waiting for the tunnel.
	Waiting []CallStatus
}

// CallStatus describes one call.
type CallStatus struct {
	control.CallStatus
	Name   string
	Frames uint64 // received PPP frames (recorded: no PPP on the call)
	// PPP is the call's PPP state when PPP runs on it; nil: "ppp none".
	PPP *pppcall.Status
	// History is a LAC's configured call's past placements.
	History CallHistory
	// Wait is set for a configured LAC call not placed now (in
	// TunnelStatus.Waiting).
	Wait *CallWait
}

// Status returns every tunnel, by id.
func (e *Engine) Status() []TunnelStatus {
	var st []TunnelStatus
	e.do(func() {
		for _, tn := range e.tunnels {
			s := TunnelStatus{ID: tn.id, PeerID: tn.t.PeerID(), Role: e.role(tn), Name: tn.name(),
				Local: tn.l.l.Local(), Peer: tn.peer, Control: tn.t.Status()}
			for _, c := range tn.t.Calls() {
				cs := CallStatus{CallStatus: c}
				if cc := tn.calls[c.LocalID]; cc != nil {
					cs.Name = cc.name
					if cc.rec != nil {
						_, cs.Frames = cc.rec.Frames()
					}
					if cc.ppp != nil {
						st := cc.ppp.Status()
						cs.PPP = &st
					}
				}
				s.Calls = append(s.Calls, cs)
			}
			slices.SortFunc(s.Calls, func(a, b CallStatus) int { return int(a.LocalID) - int(b.LocalID) })
			if l := tn.lac; l != nil && l.cur == tn && tn.up {
				l.callStatus(&s)
			}
			st = append(st, s)
		}
		for _, l := range e.lacs {
			if l.cur != nil {
				continue
			}
			s := TunnelStatus{ID: l.lastID, Role: "lac", Name: l.cfg.Name, Local: l.l.l.Local(), Peer: l.cfg.Peer}
			s.Control.Role = control.Initiator
			s.Control.LastResult, s.Control.LastBy = l.last, l.lastBy
			if l.dialled {
				s.Control.State = control.StateClosed
			}
			st = append(st, s)
		}
	})
	slices.SortFunc(st, func(a, b TunnelStatus) int { return int(a.ID) - int(b.ID) })
	return st
}

// Owns reports whether id is an L2TPv2 tunnel of the engine (or a LAC's
// last tunnel id while it redials).
func (e *Engine) Owns(id uint32) bool {
	owns := false
	e.do(func() {
		if e.tunnels[id] != nil {
			owns = true
			return
		}
		for _, l := range e.lacs {
			if l.cur == nil && l.lastID == id {
				owns = true
			}
		}
	})
	return owns
}

// newPPP makes the PPP handler of a call that comes up, when its role
// runs PPP (nil otherwise, or when the TUN cannot be made: the call then
// records its frames, and the failure is logged).
func (e *Engine) newPPP(tn *tun, c *call, sid uint32) *pppcall.Call {
	cfg := pppcall.Config{TunnelID: tn.id, SessionID: sid, Log: e.log, Peer: tn.peer.Addr().Unmap()}
	if l := tn.lac; l != nil {
		cfg.Client, cfg.Name = l.cfg.PPP[c.name], l.cfg.TUNName
	} else if e.lns != nil {
		cfg.Server, cfg.Name = e.lns.PPP, e.lns.TUNName
	}
	if cfg.Client == nil && cfg.Server == nil {
		return nil
	}
	tid := tn.id
	cfg.OnEvent = func(ev pppcall.Event) { e.pppEvent(tid, sid, ev) }
	cfg.Dropped = &e.ppp.dropped
	cfg.CloseSlots = e.pppClosing
	cfg.Buffers = &e.pppBufs
	cfg.NoOffload = e.plane != nil && !e.plane.Offload()
	cfg.OnEnd = func(err error) {
		// On the call's goroutine: the engine's goroutine may be busy.
		r := control.Result{Code: control.CDNResultGeneralError, HasError: true, Message: "ppp: " + err.Error()}
		if err := e.closeCall(tid, sid, r, false); err != nil {
			e.log.Debug("l2tpv2 ppp close call", "tunnel_id", tid, "session_id", sid, "err", err)
		}
	}
	p, err := pppcall.New(cfg)
	if err != nil {
		e.log.Error("l2tpv2 ppp", "tunnel_id", tn.id, "session_id", sid, "err", err)
		return nil
	}
	return p
}
