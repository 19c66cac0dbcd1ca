package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/control/ppp"
	"github.com/ul2tp/ul2tp/control/ppp/auth"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
	"github.com/ul2tp/ul2tp/datapath/event"
)

// TestPPPEvents feeds the events of two calls' PPP links to the engine,
// as their goroutines do: one user logs in, another is refused and its
// link ends. The hub gets typed ppp-phase, ppp-auth-failed and ppp-down
// events, and PPPStats counts them by phase, role, method and reason.
func TestPPPEvents(t *testing.T) {
	s := newSide(t)
	sub := s.hub.Subscribe(64)
	defer sub.Close()
	phase := func(sid uint32, from, to ppp.Phase, user string) {
		s.e.pppEvent(7, sid, pppcall.Event{Kind: pppcall.EventPhase, Interface: fmt.Sprintf("ppp%d", sid), From: from, Phase: to, User: user})
	}
	// Call 1: alice logs in with MS-CHAPv2.
	phase(1, ppp.PhaseDead, ppp.PhaseEstablish, "")
	phase(1, ppp.PhaseEstablish, ppp.PhaseAuthenticate, "")
	s.e.pppEvent(7, 1, pppcall.Event{Kind: pppcall.EventAuth, Interface: "ppp1", Phase: ppp.PhaseAuthenticate,
		User: "alice", Method: auth.MSCHAPv2, Authenticator: true})
	phase(1, ppp.PhaseAuthenticate, ppp.PhaseNetwork, "alice")
	phase(1, ppp.PhaseNetwork, ppp.PhaseOpen, "alice")
	// Call 2: mallory's CHAP response is wrong.
	phase(2, ppp.PhaseDead, ppp.PhaseEstablish, "")
	phase(2, ppp.PhaseEstablish, ppp.PhaseAuthenticate, "")
	authErr := fmt.Errorf("%w: CHAP user %q", auth.ErrBadCredentials, "mallory")
	s.e.pppEvent(7, 2, pppcall.Event{Kind: pppcall.EventAuth, Interface: "ppp2", Phase: ppp.PhaseAuthenticate,
		User: "mallory", Method: auth.CHAPMD5, Authenticator: true, Reason: pppcall.ReasonBadCredentials, Err: authErr})
	phase(2, ppp.PhaseAuthenticate, ppp.PhaseTerminate, "")
	phase(2, ppp.PhaseTerminate, ppp.PhaseDead, "")
	endErr := fmt.Errorf("%w: %w", ppp.ErrAuthFailed, authErr)
	s.e.pppEvent(7, 2, pppcall.Event{Kind: pppcall.EventEnd, Interface: "ppp2", Phase: ppp.PhaseDead,
		Reason: pppcall.ReasonAuthFailed, Err: endErr})

	var got []event.Event
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(got) < 10 {
		e, ok := sub.Next(ctx)
		if !ok {
			t.Fatalf("%d events, want 10: %+v", len(got), got)
		}
		got = append(got, e)
	}
	// Call 1: four phase changes, the success makes no event.
	if e := got[3]; e.Kind != event.PPPPhase || e.TunnelID != 7 || e.SessionID != 1 || e.Interface != "ppp1" ||
		*e.PPP != (event.PPP{Phase: "open", From: "network", User: "alice"}) {
		t.Errorf("event 3 %+v %+v, want alice's network -> open", e, e.PPP)
	}
	if e := got[6]; e.Kind != event.PPPAuthFailed || e.SessionID != 2 || e.Detail != authErr.Error() ||
		*e.PPP != (event.PPP{Phase: "authenticate", User: "mallory", Method: "chap", Role: "authenticator", Reason: "bad-credentials"}) {
		t.Errorf("event 6 %+v %+v, want mallory's bad-credentials", e, e.PPP)
	}
	if e := got[9]; e.Kind != event.PPPDown || e.SessionID != 2 || e.Detail != endErr.Error() ||
		e.PPP.Reason != "auth-failed" || e.PPP.Phase != "dead" {
		t.Errorf("event 9 %+v %+v, want call 2's ppp-down auth-failed", e, e.PPP)
	}

	st := s.e.PPPStats()
	links := map[string]uint64{}
	entered := map[string]uint64{}
	for _, p := range st.Phases {
		links[p.Phase], entered[p.Phase] = p.Links, p.Entered
	}
	if len(st.Phases) != 5 || links["open"] != 1 || links["establish"] != 0 || links["terminate"] != 0 ||
		entered["establish"] != 2 || entered["open"] != 1 || entered["terminate"] != 1 {
		t.Errorf("phases %+v: want alice's link open, two established, one terminated", st.Phases)
	}
	for _, a := range st.Auth {
		want := PPPAuthStats{Role: a.Role, Method: a.Method}
		switch {
		case a.Role == "authenticator" && a.Method == "mschap-v2":
			want.Succeeded = 1
		case a.Role == "authenticator" && a.Method == "chap":
			want.Failed = 1
		}
		if a != want {
			t.Errorf("auth %+v, want %+v", a, want)
		}
	}
	if len(st.Auth) != 6 {
		t.Errorf("%d auth rows, want 2 roles x 3 methods", len(st.Auth))
	}
	for _, e := range st.Ends {
		if want := uint64(0); e.Reason == "auth-failed" && e.Links != 1 || e.Reason != "auth-failed" && e.Links != want {
			t.Errorf("ends %+v: want one auth-failed", st.Ends)
		}
	}
	if len(st.Ends) != len(pppcall.EndReasons) {
		t.Errorf("%d end rows, want %d", len(st.Ends), len(pppcall.EndReasons))
	}
}
