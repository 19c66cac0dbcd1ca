package engine

import (
	"sync/atomic"

	"github.com/ul2tp/ul2tp/control/ppp"
	"github.com/ul2tp/ul2tp/control/ppp/auth"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
	"github.com/ul2tp/ul2tp/datapath/event"
)

// The PPP links' counters are arrays indexed by phase, method and
// reason: every label value is known in advance (bounded), and the
// calls' goroutines update them without the engine's.
const (
	numPhases  = int(ppp.PhaseTerminate) + 1
	numMethods = int(auth.MSCHAPv2) + 1
)

// pppMethods are the authentication methods, in the order PPPStats
// lists them.
var pppMethods = [...]auth.Method{auth.PAP, auth.CHAPMD5, auth.MSCHAPv2}

// Our role in an authentication exchange, as events and metrics name it.
const (
	roleAuthenticator = "authenticator" // we authenticate the peer (LNS)
	rolePeer          = "peer"          // the peer authenticates us (LAC)
)

type pppCounters struct {
	links   [numPhases]atomic.Int64 // links in each phase now (dead: not counted)
	entered [numPhases]atomic.Uint64
	// auth is by role (0: authenticator, 1: peer), method and outcome
	// (0: success, 1: failure).
	auth    [2][numMethods][2]atomic.Uint64
	ends    [pppcall.NumReasons]atomic.Uint64
	dropped atomic.Uint64
}

// PPPStats are the gauges and counters of the PPP links on calls (the
// counters since New), by bounded label values only.
type PPPStats struct {
	// Phases are the phases a link goes through, dead excepted (a dead
	// link is an ended one: Ends counts them).
	Phases []PPPPhaseStats
	// Auth is each role and method.
	Auth []PPPAuthStats
	// Ends is each reason a link ends for (pppcall.EndReasons).
	Ends []PPPEndStats
	// ControlDropped counts the PPP control frames dropped because a
	// call's queue was full.
	ControlDropped uint64
}

// PPPPhaseStats is one phase: the links in it now, and how many times a
// link entered it.
type PPPPhaseStats struct {
	Phase          string
	Links, Entered uint64
}

// PPPAuthStats are the authentication exchanges of one role
// (authenticator or peer) and method that succeeded and failed.
type PPPAuthStats struct {
	Role, Method      string
	Succeeded, Failed uint64
}

// PPPEndStats counts the links that ended for one reason.
type PPPEndStats struct {
	Reason string
	Links  uint64
}

// PPPStats returns the PPP links' counters.
func (e *Engine) PPPStats() PPPStats {
	c := &e.ppp
	var st PPPStats
	for p := ppp.PhaseEstablish; int(p) < numPhases; p++ {
		st.Phases = append(st.Phases, PPPPhaseStats{Phase: p.String(),
			Links: uint64(max(c.links[p].Load(), 0)), Entered: c.entered[p].Load()})
	}
	for r, role := range [2]string{roleAuthenticator, rolePeer} {
		for _, m := range pppMethods {
			st.Auth = append(st.Auth, PPPAuthStats{Role: role, Method: m.String(),
				Succeeded: c.auth[r][m][0].Load(), Failed: c.auth[r][m][1].Load()})
		}
	}
	for _, r := range pppcall.EndReasons {
		st.Ends = append(st.Ends, PPPEndStats{Reason: r.String(), Links: c.ends[r].Load()})
	}
	st.ControlDropped = c.dropped.Load()
	return st
}

// pppEvent counts an event of a call's PPP link and publishes it; an
// authentication failure is logged too. It runs on the call's goroutine.
func (e *Engine) pppEvent(tid, sid uint32, ev pppcall.Event) {
	c := &e.ppp
	pe := &event.PPP{Phase: ev.Phase.String(), User: ev.User}
	out := event.Event{TunnelID: tid, SessionID: sid, Interface: ev.Interface, PPP: pe}
	switch ev.Kind {
	case pppcall.EventPhase:
		if i := int(ev.From); i > 0 && i < numPhases {
			c.links[i].Add(-1)
		}
		if i := int(ev.Phase); i > 0 && i < numPhases {
			c.links[i].Add(1)
			c.entered[i].Add(1)
		}
		out.Kind, pe.From = event.PPPPhase, ev.From.String()
	case pppcall.EventAuth:
		r, role := 0, roleAuthenticator
		if !ev.Authenticator {
			r, role = 1, rolePeer
		}
		failed := 0
		if ev.Err != nil {
			failed = 1
		}
		if m := int(ev.Method); m > 0 && m < numMethods {
			c.auth[r][m][failed].Add(1)
		}
		if ev.Err == nil {
			return // the network phase's event says who logged in
		}
		e.log.Info("l2tpv2 ppp authentication failed", "tunnel_id", tid, "session_id", sid, "interface", ev.Interface,
			"user", ev.User, "method", ev.Method.String(), "role", role, "reason", ev.Reason.String(), "err", ev.Err.Error())
		out.Kind, out.Detail = event.PPPAuthFailed, ev.Err.Error()
		pe.Method, pe.Role, pe.Reason = ev.Method.String(), role, ev.Reason.String()
	case pppcall.EventEnd:
		if ev.Reason < pppcall.NumReasons {
			c.ends[ev.Reason].Add(1)
		}
		out.Kind, pe.Reason = event.PPPDown, ev.Reason.String()
		if ev.Err != nil {
			out.Detail = ev.Err.Error()
		}
	default:
		return
	}
	e.hub.Publish(out)
}
