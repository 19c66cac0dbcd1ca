// Package event carries the datapath's structured events (tunnels and
// sessions coming and going, packets dropped and why, sequencing state
// changes) to whoever follows them: the daemon's debug log and "ul2tp
// monitor" clients.
//
// A Hub fans events out to subscribers without ever blocking the
// publisher: each subscriber has a bounded buffer, and an event that does
// not fit is dropped and counted for that subscriber, who is told how many
// it lost once it catches up. Events about packets come through a Limiter
// per (session, reason), so a flood makes one event a second carrying the
// count, not one per packet.
package event

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says what happened.
type Kind uint8

// Kinds of events.
const (
	TunnelAdded Kind = iota + 1
	TunnelDeleted
	SessionAdded
	SessionModified
	SessionDeleted
	// SessionDown: a session's TAP pump failed and the device is being
	// recreated; SessionUp: it was.
	SessionDown
	SessionUp
	// Drop: packets were dropped; Reason says why, Count how many since
	// the previous Drop event for the same session (or socket) and
	// reason.
	Drop
	// Seq: the sequencing state changed (Reason Resync or SendSeq).
	Seq
	// Lost: a subscriber's buffer was full; Count events were dropped for
	// it since its previous Lost event.
	Lost
	// ControlTunnelUp and ControlTunnelDown: an L2TPv2 control
	// connection came up or went down (Detail: peer, host name, result
	// and who ended it); CallUp and CallDown: a call of one did.
	ControlTunnelUp
	ControlTunnelDown
	CallUp
	CallDown
	// ControlRetransmit: an L2TPv2 tunnel retransmitted control
	// messages; Count how many since its previous ControlRetransmit
	// event (at most one a second per tunnel).
	ControlRetransmit
	// PPPPhase: a call's PPP link changed phase; PPPAuthFailed: an
	// authentication exchange on it failed; PPPDown: the link ended.
	// PPP says more.
	PPPPhase
	PPPAuthFailed
	PPPDown
	numKinds
)

var kindNames = [numKinds]string{
	TunnelAdded:     "tunnel_added",
	TunnelDeleted:   "tunnel_deleted",
	SessionAdded:    "session_added",
	SessionModified: "session_modified",
	SessionDeleted:  "session_deleted",
	SessionDown:     "session_down",
	SessionUp:       "session_up",
	Drop:            "drop",
	Seq:             "seq",
	Lost:            "lost",

	ControlTunnelUp:   "tunnel-up",
	ControlTunnelDown: "tunnel-down",
	CallUp:            "call-up",
	CallDown:          "call-down",
	ControlRetransmit: "retransmit",
	PPPPhase:          "ppp-phase",
	PPPAuthFailed:     "ppp-auth-failed",
	PPPDown:           "ppp-down",
}

func (k Kind) String() string {
	if k < numKinds && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Reason qualifies a Drop or Seq event.
type Reason uint8

// Reasons.
const (
	// Drops of received packets.
	CookieMismatch Reason = iota + 1 // the session's peer cookie did not match
	UnknownSession                   // from a configured peer, for no session of it
	UnmatchedPeer                    // from no configured peer
	InvalidHeader                    // not a valid L2TPv3 data header
	FrameTooLong                     // longer than the TAP's MTU allows
	SeqDiscard                       // discarded by sequencing (Detail says why)
	TAPWriteError                    // the TAP refused the frame
	// TxError: frames read from the TAP that could not be sent.
	TxError
	// Sequencing: Resync, the expected Ns jumped (packets taken as lost,
	// or the peer restarted its numbering); SendSeq, a LAC started or
	// stopped sending sequence numbers following its peer.
	Resync
	SendSeq
	// ControlQueueFull: an L2TP control message was dropped because the
	// control plane's queue was full.
	ControlQueueFull
	// NumReasons bounds the reasons, for arrays of Limiters.
	NumReasons
)

var reasonNames = [NumReasons]string{
	CookieMismatch:   "cookie-mismatch",
	UnknownSession:   "unknown-session",
	UnmatchedPeer:    "unmatched-peer",
	InvalidHeader:    "invalid-header",
	FrameTooLong:     "frame-too-long",
	SeqDiscard:       "seq-discard",
	TAPWriteError:    "tap-write-error",
	TxError:          "tx-error",
	Resync:           "resync",
	SendSeq:          "send-seq",
	ControlQueueFull: "control-queue-full",
}

func (r Reason) String() string {
	if r < NumReasons && reasonNames[r] != "" {
		return reasonNames[r]
	}
	if r == 0 {
		return ""
	}
	return "unknown"
}

// Event is one thing that happened in the datapath.
type Event struct {
	Time      time.Time
	Kind      Kind
	TunnelID  uint32 // 0 if none
	SessionID uint32 // 0 if none
	Interface string // the session's TAP, if any
	Reason    Reason // Drop and Seq events
	// Count is, for Drop, Seq and ControlRetransmit events, how many times it happened since
	// the previous event of its kind, session (or socket) and reason, this
	// one included; for Lost, the events lost.
	Count uint64
	// Detail is free text: the error, the peer, the new settings.
	Detail string
	// PPP describes PPPPhase, PPPAuthFailed and PPPDown events; nil for
	// the others.
	PPP *PPP
}

// PPP is what a PPP event says beyond the call and its TUN (Interface).
type PPP struct {
	// Phase is the link's phase (the new one for PPPPhase), From the one
	// before (PPPPhase).
	Phase, From string
	// User is the name authenticated or refused ("" before
	// authentication).
	User string
	// Method is the authentication method (pap, chap, mschap-v2) and
	// Role ours in it (authenticator or peer), for PPPAuthFailed.
	Method, Role string
	// Reason is why authentication failed or the link ended, in a word
	// from a fixed set (docs/api.md).
	Reason string
}

// Every is the least time between two events of one Limiter.
const Every = time.Second

// Limiter lets one event through per Every and counts the others. It is
// lock-free and allocates nothing; the zero value is ready.
type Limiter struct {
	last    atomic.Int64 // time of the last event let through, 0 for never
	pending atomic.Uint64
}

// Allow counts one occurrence at now (a monotonic clock in nanoseconds)
// and reports whether to make an event of it, with the occurrences it
// stands for (the ones suppressed since the last event, and this one).
func (l *Limiter) Allow(now int64) (count uint64, ok bool) {
	l.pending.Add(1)
	last := l.last.Load()
	if last != 0 && now-last < int64(Every) {
		return 0, false
	}
	if !l.last.CompareAndSwap(last, max(now, 1)) {
		return 0, false
	}
	return l.pending.Swap(0), true
}

// DefaultBuffer is a subscriber's buffer, in events.
const DefaultBuffer = 256

// Hub fans events out to its subscribers and logs each at debug level.
// Its methods are safe for concurrent use, and a nil *Hub takes events and
// drops them.
type Hub struct {
	log *slog.Logger

	mu   sync.Mutex                    // serialises changes to subs
	subs atomic.Pointer[[]*Subscriber] // replaced whole, read without a lock
	// dropped counts the events dropped for subscribers whose buffer was
	// full, over the Hub's life.
	dropped atomic.Uint64
}

// NewHub makes a Hub that logs the events it publishes to log at debug
// level (nil: no log).
func NewHub(log *slog.Logger) *Hub {
	h := &Hub{log: log}
	h.subs.Store(&[]*Subscriber{})
	return h
}

// Publish hands e to every subscriber that has room for it and counts it
// as lost for the others. It never blocks. A zero e.Time is set to now.
func (h *Hub) Publish(e Event) {
	if h == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if h.log != nil && h.log.Enabled(context.Background(), slog.LevelDebug) {
		reason := e.Reason.String()
		if e.PPP != nil {
			reason = e.PPP.Reason
		}
		h.log.Debug("event", "event", e.Kind.String(), "tunnel_id", e.TunnelID, "session_id", e.SessionID,
			"interface", e.Interface, "reason", reason, "count", e.Count, "detail", e.Detail)
	}
	for _, s := range *h.subs.Load() {
		select {
		case s.c <- e:
		default:
			s.lost.Add(1)
			h.dropped.Add(1)
		}
	}
}

// Dropped is the number of events dropped for subscribers that did not
// keep up.
func (h *Hub) Dropped() uint64 {
	if h == nil {
		return 0
	}
	return h.dropped.Load()
}

// Subscribers is the number of subscribers now.
func (h *Hub) Subscribers() int {
	if h == nil {
		return 0
	}
	return len(*h.subs.Load())
}

// Subscribe adds a subscriber with a buffer of n events (0 or less:
// DefaultBuffer). It must be closed when done.
func (h *Hub) Subscribe(n int) *Subscriber {
	if n <= 0 {
		n = DefaultBuffer
	}
	s := &Subscriber{hub: h, c: make(chan Event, n)}
	if h == nil {
		return s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.subs.Load()
	subs := make([]*Subscriber, len(old), len(old)+1)
	copy(subs, old)
	subs = append(subs, s)
	h.subs.Store(&subs)
	return s
}

// Subscriber receives a Hub's events.
type Subscriber struct {
	hub  *Hub
	c    chan Event
	lost atomic.Uint64
}

// Next waits for the next event, or until ctx ends (false); an event
// waiting comes even if ctx has ended. When events
// were lost for the subscriber and its buffer has drained to half, a Lost
// event saying how many comes first.
func (s *Subscriber) Next(ctx context.Context) (Event, bool) {
	if len(s.c) <= cap(s.c)/2 {
		if n := s.lost.Swap(0); n > 0 {
			return Event{Time: time.Now(), Kind: Lost, Count: n}, true
		}
	}
	select {
	case e := <-s.c:
		return e, true
	default:
	}
	select {
	case e := <-s.c:
		return e, true
	case <-ctx.Done():
		return Event{}, false
	}
}

// Close removes the subscriber from its Hub.
func (s *Subscriber) Close() {
	h := s.hub
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.subs.Load()
	subs := make([]*Subscriber, 0, len(old))
	for _, o := range old {
		if o != s {
			subs = append(subs, o)
		}
	}
	h.subs.Store(&subs)
}

// Reset forgets the last event, so the next occurrence makes one (as if
// event.Every had passed).
func (l *Limiter) Reset() { l.last.Store(0) }
