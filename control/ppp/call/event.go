package call

import (
	"errors"

	"github.com/ul2tp/ul2tp/control/ppp"
	"github.com/ul2tp/ul2tp/control/ppp/auth"
)

// EventKind says what an Event reports.
type EventKind uint8

// Kinds of events.
const (
	// EventPhase: the link went from phase From to Phase.
	EventPhase EventKind = iota + 1
	// EventAuth: an authentication exchange finished; Err is nil when it
	// succeeded.
	EventAuth
	// EventEnd: the link ended (it is Dead), once per link that was
	// opened; Reason says why in a word, Err in full.
	EventEnd
)

// Event is something that happened to a Call's PPP link, for the owner's
// event stream and counters (Config.OnEvent).
type Event struct {
	Kind      EventKind
	Interface string // the call's TUN
	// Phase is the link's phase now (the new one, for EventPhase);
	// From the one before (EventPhase only).
	Phase, From ppp.Phase
	// User is the name authenticated or refused: the peer's when we
	// authenticate it, ours when it authenticates us; "" before
	// authentication (or when the peer sent none).
	User string
	// Method and Authenticator are the authentication protocol and our
	// role in it (true: we authenticate the peer, as an LNS), for
	// EventAuth.
	Method        auth.Method
	Authenticator bool
	// Reason classifies a failed EventAuth or an EventEnd; Err is the
	// failure itself (nil for a successful EventAuth, or an EventEnd
	// without a failure: ReasonTerminated, ReasonCallDown).
	Reason Reason
	Err    error
}

// Reason is why an authentication failed or a link ended, in a word from
// a fixed set (bounded, for metric labels).
type Reason uint8

// Reasons.
const (
	ReasonNone Reason = iota
	// Authentication failures (EventAuth).
	ReasonBadCredentials   // the peer's name or password is wrong (we authenticate)
	ReasonRefused          // the authenticator refused ours
	ReasonTimeout          // the other side stopped answering
	ReasonBadAuthenticator // MS-CHAPv2: the authenticator does not know our password
	ReasonNoSecret         // no secrets or credentials configured
	// Link ends (EventEnd).
	ReasonCallDown      // the L2TP call went down first (CDN, tunnel down, shutdown)
	ReasonTerminated    // the link was closed with no failure
	ReasonPeerTerminate // the peer sent LCP Terminate-Request
	ReasonAuthFailed    // authentication failed (either side)
	ReasonAuthRefused   // the peer would not authenticate
	ReasonNoCommonAuth  // no authentication method both sides support
	ReasonNegotiation   // LCP negotiation did not converge
	ReasonLoopback      // the link is looped back
	ReasonEchoTimeout   // no reply to LCP echo requests
	ReasonNoNetwork     // no network protocol came up
	ReasonPoolEmpty     // no address for the peer
	ReasonOther         // anything else
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonBadCredentials:   "bad-credentials",
	ReasonRefused:          "refused",
	ReasonTimeout:          "timeout",
	ReasonBadAuthenticator: "bad-authenticator",
	ReasonNoSecret:         "no-secret",
	ReasonCallDown:         "call-down",
	ReasonTerminated:       "terminated",
	ReasonPeerTerminate:    "peer-terminate",
	ReasonAuthFailed:       "auth-failed",
	ReasonAuthRefused:      "auth-refused",
	ReasonNoCommonAuth:     "no-common-auth",
	ReasonNegotiation:      "negotiation",
	ReasonLoopback:         "loopback",
	ReasonEchoTimeout:      "echo-timeout",
	ReasonNoNetwork:        "no-network",
	ReasonPoolEmpty:        "pool-empty",
	ReasonOther:            "other",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "other"
}

// EndReasons are the reasons an EventEnd may carry, in order.
var EndReasons = []Reason{ReasonCallDown, ReasonTerminated, ReasonPeerTerminate, ReasonAuthFailed, ReasonAuthRefused,
	ReasonNoCommonAuth, ReasonNegotiation, ReasonLoopback, ReasonEchoTimeout, ReasonNoNetwork, ReasonPoolEmpty, ReasonOther}

// authReason classifies a failed authentication exchange's error.
func authReason(err error) Reason {
	switch {
	case errors.Is(err, auth.ErrBadCredentials):
		return ReasonBadCredentials
	case errors.Is(err, auth.ErrRefused):
		return ReasonRefused
	case errors.Is(err, auth.ErrTimeout):
		return ReasonTimeout
	case errors.Is(err, auth.ErrBadAuthenticator):
		return ReasonBadAuthenticator
	case errors.Is(err, auth.ErrNoSecret):
		return ReasonNoSecret
	}
	return ReasonOther
}

// endReason classifies why a link ended: its failure, or none.
func endReason(err error, callDown bool) Reason {
	switch {
	case err == nil && callDown:
		return ReasonCallDown
	case err == nil:
		return ReasonTerminated
	case errors.Is(err, ppp.ErrPeerTerminate):
		return ReasonPeerTerminate
	case errors.Is(err, ppp.ErrAuthFailed):
		return ReasonAuthFailed
	case errors.Is(err, ppp.ErrAuthRefused):
		return ReasonAuthRefused
	case errors.Is(err, ppp.ErrNoCommonAuth):
		return ReasonNoCommonAuth
	case errors.Is(err, ppp.ErrNegotiation):
		return ReasonNegotiation
	case errors.Is(err, ppp.ErrLoopback):
		return ReasonLoopback
	case errors.Is(err, ppp.ErrEchoTimeout):
		return ReasonEchoTimeout
	case errors.Is(err, ppp.ErrNoNetwork):
		return ReasonNoNetwork
	case errors.Is(err, ppp.ErrPool):
		return ReasonPoolEmpty
	}
	return ReasonOther
}

// emit hands ev to Config.OnEvent, if set.
func (c *Call) emit(ev Event) {
	if c.cfg.OnEvent == nil {
		return
	}
	if c.dev != nil {
		ev.Interface = c.dev.Name()
	}
	c.cfg.OnEvent(ev)
}

// onPhase is the Link's OnPhase, on the Call's goroutine: it reports the
// change, and the link's end when it is Dead. When the call has gone
// (Stop), the link drops through its lower phases to Dead at once; only
// the change to Dead is reported.
func (c *Call) onPhase(p ppp.Phase) {
	c.log.Debug("ppp phase", "tunnel_id", c.cfg.TunnelID, "session_id", c.cfg.SessionID, "phase", p.String())
	callDown := false
	select {
	case <-c.quit:
		callDown = true
	default:
	}
	if callDown && p != ppp.PhaseDead {
		return
	}
	from := c.phase
	c.phase = p
	user := c.link.User()
	c.emit(Event{Kind: EventPhase, Phase: p, From: from, User: user})
	if p != ppp.PhaseDead {
		return
	}
	err := c.link.Failure()
	c.emit(Event{Kind: EventEnd, Phase: p, User: user, Reason: endReason(err, callDown), Err: err})
}

// authResult reports each exchange of an authenticator that finishes.
func (a *authAdapter) Result() (done, ok bool, user string, err error) {
	r := a.p.Result()
	if r.Done && !a.done && a.c != nil {
		ev := Event{Kind: EventAuth, User: r.User, Method: a.p.Method(), Authenticator: a.self, Err: r.Err}
		if !r.OK {
			if ev.Err == nil {
				ev.Err = errors.New("rejected")
			}
			ev.Reason = authReason(ev.Err)
		} else {
			ev.Err = nil
		}
		ev.Phase = a.c.phase
		a.c.emit(ev)
	}
	a.done = r.Done
	return r.Done, r.OK, r.User, r.Err
}
