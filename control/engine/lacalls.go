package engine

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ul2tp/ul2tp/control"
	"github.com/ul2tp/ul2tp/control/ppp"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
)

// lacCall is a configured call of a LAC across its placements: when a
// placement ends while the tunnel stays up (the LNS's CDN, or ours after
// PPP failed: a wrong password, LCP gave up) the call is placed again
// after a backoff, and why it ended is kept for Status.
//
// The backoff starts at the LAC's MinBackoff and doubles to MaxBackoff,
// each wait jittered by ±25% so that many LACs refused together do not
// come back together; a placement that stayed up for MaxBackoff resets
// it. A call the administrator ends (CloseCall) is not placed again
// until the tunnel is dialled again; with NoRedial none is.
type lacCall struct {
	name     string
	l        *lac
	sid      uint32    // the placement on l.cur; 0: none
	upAt     time.Time // when the placement came up
	backoff  time.Duration
	redialAt time.Time // zero: none due
	held     bool      // closed by CloseCall
	failures int       // placements ended since the last one that stayed up
	last     string    // why the last placement ended
	lastAt   time.Time
	timer    timed
}

// CallWait describes a configured LAC call with no placement now: it
// waits for its redial (or for its tunnel).
type CallWait struct {
	// RedialAt is when the call is placed again; zero: when the tunnel
	// is up again (or never, after CloseCall).
	RedialAt time.Time
}

// CallHistory is what the engine keeps of a configured LAC call's past
// placements.
type CallHistory struct {
	// LastFailure says why the last placement ended, at LastFailureAt;
	// "" if none has.
	LastFailure   string
	LastFailureAt time.Time
	// Failures counts the placements ended since the last that stayed up.
	Failures int
}

func newLACCalls(l *lac) {
	l.calls = make(map[string]*lacCall, len(l.cfg.Calls))
	for _, name := range l.cfg.Calls {
		lc := &lacCall{name: name, l: l, backoff: l.cfg.MinBackoff}
		lc.timer = timed{index: -1, lc: lc}
		l.calls[name] = lc
	}
}

// lacCallOf is the configured call that session sid of tn is, if any.
func lacCallOf(tn *tun, sid uint32) *lacCall {
	if tn.lac == nil || sid == 0 {
		return nil
	}
	c := tn.calls[sid]
	if c == nil {
		return nil
	}
	if lc := tn.lac.calls[c.name]; lc != nil && lc.sid == sid && tn.lac.cur == tn {
		return lc
	}
	return nil
}

// placed notes a placement of a configured call (openCall).
func (e *Engine) placed(tn *tun, name string, sid uint32) {
	if tn.lac == nil || tn.lac.cur != tn {
		return
	}
	if lc := tn.lac.calls[name]; lc != nil && lc.sid == 0 {
		lc.sid, lc.held, lc.upAt = sid, false, time.Time{}
		lc.redialAt = time.Time{}
		e.timers.set(&lc.timer, time.Time{}, false)
	}
}

// lacCallUp notes that a configured call's placement came up.
func (e *Engine) lacCallUp(tn *tun, sid uint32, now time.Time) {
	if lc := lacCallOf(tn, sid); lc != nil {
		lc.upAt = now
	}
}

// lacCallDown notes the end of a configured call's placement, why, and
// places it again after the backoff if the tunnel is still up.
func (e *Engine) lacCallDown(tn *tun, ev control.Event, c *call, now time.Time) {
	lc := lacCallOf(tn, ev.Call.LocalID)
	if lc == nil {
		return
	}
	lc.sid = 0
	why := fmt.Sprintf("CDN by %s %s", ev.By, ev.Result)
	if c != nil && c.ppp != nil {
		if f := c.ppp.Status().Failure; f != "" {
			why = "ppp: " + f + "; " + why
		}
	}
	lc.last, lc.lastAt = why, now
	stable := !lc.upAt.IsZero() && now.Sub(lc.upAt) >= tn.lac.cfg.MaxBackoff
	if stable {
		lc.backoff, lc.failures = tn.lac.cfg.MinBackoff, 0
	}
	lc.failures++
	if st := tn.t.State(); st != control.StateEstablished || lc.held || tn.lac.stopped || tn.lac.cfg.NoRedial {
		return
	}
	e.replaceLater(lc, now)
}

// replaceLater schedules the next placement of lc, backing off.
func (e *Engine) replaceLater(lc *lacCall, now time.Time) {
	d := lc.backoff
	d = d*3/4 + time.Duration(rand.Int64N(int64(d/2)+1))
	lc.redialAt = now.Add(d)
	lc.backoff = min(2*lc.backoff, lc.l.cfg.MaxBackoff)
	e.timers.set(&lc.timer, lc.redialAt, true)
	e.log.Info("l2tpv2 lac call redial", "name", lc.l.cfg.Name, "call", lc.name, "in", d.Round(time.Millisecond).String(),
		"failures", lc.failures, "last_failure", lc.last)
}

// replace places lc again (its timer fired).
func (e *Engine) replace(lc *lacCall, now time.Time) {
	lc.redialAt = time.Time{}
	l := lc.l
	tn := l.cur
	if l.stopped || lc.held || lc.sid != 0 || tn == nil || !tn.up || e.lacs[l.cfg.Name] != l {
		return
	}
	if _, err := e.openCall(tn, lc.name, now); err != nil {
		lc.last, lc.lastAt = "open call: "+err.Error(), now
		lc.failures++
		e.replaceLater(lc, now)
	}
}

// lacTunnelDown forgets the placements of a LAC's calls: the tunnel's
// next dial places them all.
func (e *Engine) lacTunnelDown(l *lac) {
	for _, lc := range l.calls {
		lc.sid, lc.redialAt, lc.held = 0, time.Time{}, false
		e.timers.set(&lc.timer, time.Time{}, false)
	}
}

// hold keeps a configured call the administrator ends from being placed
// again.
func (e *Engine) hold(tn *tun, sid uint32) {
	if lc := lacCallOf(tn, sid); lc != nil {
		lc.held = true
	}
}

// callStatus adds what the engine knows of configured LAC calls to its
// established tunnel's status: the history of the placed ones, and the
// ones waiting. (Between dials, the tunnel's last result says why.)
func (l *lac) callStatus(s *TunnelStatus) {
	for _, name := range l.cfg.Calls {
		lc := l.calls[name]
		h := CallHistory{LastFailure: lc.last, LastFailureAt: lc.lastAt, Failures: lc.failures}
		if lc.sid != 0 {
			for i := range s.Calls {
				if s.Calls[i].LocalID == lc.sid {
					s.Calls[i].History = h
				}
			}
			continue
		}
		w := CallStatus{Name: name, History: h, Wait: &CallWait{RedialAt: lc.redialAt}}
		if l.cfg.PPP[name] != nil {
			w.PPP = &pppcall.Status{Phase: ppp.PhaseDead.String()}
		}
		s.Waiting = append(s.Waiting, w)
	}
}
