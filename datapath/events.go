package datapath

import (
	"net/netip"

	"github.com/ul2tp/ul2tp/datapath/event"
)

// Events are published to the Plane's event.Hub (Options.Events), if any:
// lifecycle events as they happen, events about packets (drops, sequencing
// changes) through a Limiter per session (or socket) and reason, so a
// flood makes one event a second per reason with the count. The path of a
// suppressed event is two atomic operations and allocates nothing.

// Events returns the Hub the plane publishes to, nil for none.
func (p *Plane) Events() *event.Hub { return p.events }

// publish sends a lifecycle event about a tunnel or session.
func (p *Plane) publish(e event.Event) { p.events.Publish(e) }

// note publishes an event of kind about the session for reason, unless
// one went less than event.Every ago. detail must not be built per call
// (a constant), as it would cost on the suppressed path too; err, if not
// nil, is appended to it only when the event goes.
func (s *Session) note(kind event.Kind, why event.Reason, detail string, err error) {
	ev := s.tunnel.sock.events
	if ev == nil {
		return
	}
	n, ok := s.limits[why].Allow(nanotime())
	if !ok {
		return
	}
	if err != nil {
		detail = joinDetail(detail, err.Error())
	}
	ev.Publish(event.Event{Kind: kind, TunnelID: s.cfg.TunnelID, SessionID: s.cfg.ID, Interface: s.ifName(),
		Reason: why, Count: n, Detail: detail})
}

// ifName is the TAP's name, "" before it has one (tests).
func (s *Session) ifName() string {
	if d := s.dev.Load(); d != nil {
		return d.Name()
	}
	return s.life.tapCfg.Name
}

// noteDrop publishes a drop event about a datagram the socket received for
// no session: from no configured peer (tunnelID 0), or for an unknown
// session or with a bad header from one.
func (s *socket) noteDrop(why event.Reason, tunnelID, sessionID uint32, from netip.AddrPort) {
	if s.events == nil {
		return
	}
	n, ok := s.limits[why].Allow(nanotime())
	if !ok {
		return
	}
	s.events.Publish(event.Event{Kind: event.Drop, TunnelID: tunnelID, SessionID: sessionID, Reason: why,
		Count: n, Detail: "from " + from.String()})
}

// joinDetail joins two parts of an event's detail.
func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + ": " + b
}
