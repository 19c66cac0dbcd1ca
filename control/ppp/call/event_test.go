package call

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/control/ppp"
	"github.com/ul2tp/ul2tp/control/ppp/auth"
)

// linkPair is an LNS Call and a LAC Call without TUN devices or
// sessions: their Links talk through in-memory queues on a fake clock,
// driven by the test (no goroutines), and their events are recorded.
type linkPair struct {
	t        testing.TB
	now      time.Time
	lns, lac *Call
	toLNS    [][]byte
	toLAC    [][]byte
	lnsEv    []Event
	lacEv    []Event
}

// eventCall is a Call with a Link but no TUN, its frames sent with send.
func eventCall(t testing.TB, cfg Config, send func([]byte), seed uint64) *Call {
	t.Helper()
	c := &Call{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), quit: make(chan struct{})}
	lc, err := c.linkConfig()
	if err != nil {
		t.Fatal(err)
	}
	lc.Send = func(f []byte) { send(bytes.Clone(f)) }
	lc.Rand = rand.New(rand.NewPCG(seed, seed+1))
	if c.link, err = ppp.New(lc); err != nil {
		t.Fatal(err)
	}
	return c
}

func newLinkPair(t testing.TB, srv *Server, user, password string) *linkPair {
	p := &linkPair{t: t, now: time.Unix(1e9, 0)}
	var mu sync.Mutex // OnEvent runs on the driving goroutine; the lock is for -race's sake in the concurrent test
	p.lns = eventCall(t, Config{Server: srv, OnEvent: func(e Event) { mu.Lock(); p.lnsEv = append(p.lnsEv, e); mu.Unlock() }},
		func(f []byte) { p.toLAC = append(p.toLAC, f) }, 1)
	p.lac = eventCall(t, Config{Client: &Client{User: user, Password: password},
		OnEvent: func(e Event) { mu.Lock(); p.lacEv = append(p.lacEv, e); mu.Unlock() }},
		func(f []byte) { p.toLNS = append(p.toLNS, f) }, 3)
	return p
}

// run opens both links and delivers frames, advancing the clock to each
// deadline, until both are open or dead (or 60 s of fake time pass).
func (p *linkPair) run() {
	p.lns.link.Open(p.now)
	p.lac.link.Open(p.now)
	end := p.now.Add(60 * time.Second)
	for range 10000 {
		if len(p.toLNS) > 0 || len(p.toLAC) > 0 {
			toLNS, toLAC := p.toLNS, p.toLAC
			p.toLNS, p.toLAC = nil, nil
			for _, f := range toLNS {
				p.lns.link.Receive(p.now, f)
			}
			for _, f := range toLAC {
				p.lac.link.Receive(p.now, f)
			}
			continue
		}
		if settled(p.lns.link) && settled(p.lac.link) {
			return
		}
		next := p.lns.link.Deadline()
		if d := p.lac.link.Deadline(); next.IsZero() || !d.IsZero() && d.Before(next) {
			next = d
		}
		if next.IsZero() || next.After(end) {
			return
		}
		if next.After(p.now) {
			p.now = next
		}
		p.lns.link.Tick(p.now)
		p.lac.link.Tick(p.now)
	}
	p.t.Error("links did not settle") // Error: run may be on another goroutine
}

func settled(l *ppp.Link) bool { return l.Phase() == ppp.PhaseOpen || l.Phase() == ppp.PhaseDead }

// callDown ends both links as the engine does when the call goes down.
func (p *linkPair) callDown() {
	for _, c := range []*Call{p.lns, p.lac} {
		c.Stop()
		c.link.Down(p.now)
	}
}

func testServer(t testing.TB, method ppp.AuthMethod) *Server {
	t.Helper()
	s, err := auth.ParseSecrets(strings.NewReader("alice * \"alice pass\" *\n"), "secrets")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := ParsePool("10.99.0.10-10.99.0.250")
	if err != nil {
		t.Fatal(err)
	}
	return &Server{Method: &method, Name: "lns", Secrets: s, Local: netip.MustParseAddr("10.99.0.1"), Pool: pool}
}

// phases are the phase changes among evs, as "from>to".
func phases(evs []Event) string {
	var b []string
	for _, e := range evs {
		if e.Kind == EventPhase {
			b = append(b, e.From.String()+">"+e.Phase.String())
		}
	}
	return strings.Join(b, " ")
}

func find(evs []Event, k EventKind) []Event {
	var out []Event
	for _, e := range evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// TestEventsLogin: a good login reports each phase change with the user
// once known, a successful authentication on both sides, and, when the
// call goes down, the link's end as call-down.
func TestEventsLogin(t *testing.T) {
	for _, m := range []ppp.AuthMethod{ppp.PAP, ppp.CHAPMD5, ppp.MSCHAPv2} {
		t.Run(fmt.Sprint(m), func(t *testing.T) {
			p := newLinkPair(t, testServer(t, m), "alice", "alice pass")
			p.run()
			want := "dead>establish establish>authenticate authenticate>network network>open"
			if got := phases(p.lnsEv); got != want {
				t.Errorf("LNS phases %q, want %q", got, want)
			}
			if got := phases(p.lacEv); got != want {
				t.Errorf("LAC phases %q, want %q", got, want)
			}
			for side, evs := range map[string][]Event{"lns": p.lnsEv, "lac": p.lacEv} {
				a := find(evs, EventAuth)
				if len(a) != 1 || a[0].Err != nil || a[0].User != "alice" || a[0].Reason != ReasonNone ||
					a[0].Authenticator != (side == "lns") || a[0].Method.String() != authMethodName(m) {
					t.Errorf("%s auth events %+v, want one success of alice by %s", side, a, authMethodName(m))
				}
				if last := evs[len(evs)-1]; last.Kind != EventPhase || last.User != "alice" {
					t.Errorf("%s: last event %+v, want the open phase with user alice", side, last)
				}
				if len(find(evs, EventEnd)) != 0 {
					t.Errorf("%s: end event while open", side)
				}
			}
			p.callDown()
			for side, evs := range map[string][]Event{"lns": p.lnsEv, "lac": p.lacEv} {
				end := find(evs, EventEnd)
				if len(end) != 1 || end[0].Reason != ReasonCallDown || end[0].Err != nil || end[0].User != "alice" {
					t.Errorf("%s end events %+v, want one call-down", side, end)
				}
				if got := phases(evs); !strings.HasSuffix(got, "network>open open>dead") {
					t.Errorf("%s phases %q: want open>dead when the call goes", side, got)
				}
			}
		})
	}
}

func authMethodName(m ppp.AuthMethod) string {
	switch m {
	case ppp.PAP:
		return "pap"
	case ppp.CHAPMD5:
		return "chap"
	}
	return "mschap-v2"
}

// TestEventsWrongPassword: a wrong password is one failed authentication
// on each side (bad-credentials at the LNS, with the user tried; refused
// at the LAC), and each link ends as auth-failed; the pool lends nothing.
func TestEventsWrongPassword(t *testing.T) {
	for _, m := range []ppp.AuthMethod{ppp.PAP, ppp.CHAPMD5, ppp.MSCHAPv2} {
		t.Run(fmt.Sprint(m), func(t *testing.T) {
			srv := testServer(t, m)
			p := newLinkPair(t, srv, "alice", "wrong")
			p.run()
			la, ca := find(p.lnsEv, EventAuth), find(p.lacEv, EventAuth)
			if len(la) != 1 || la[0].Reason != ReasonBadCredentials || la[0].User != "alice" || !la[0].Authenticator ||
				!errors.Is(la[0].Err, auth.ErrBadCredentials) || la[0].Method.String() != authMethodName(m) {
				t.Errorf("LNS auth events %+v, want one bad-credentials for alice", la)
			}
			if len(ca) != 1 || ca[0].Reason != ReasonRefused || ca[0].Authenticator || !errors.Is(ca[0].Err, auth.ErrRefused) {
				t.Errorf("LAC auth events %+v, want one refused", ca)
			}
			p.callDown() // whichever link is not dead yet goes with the call
			for side, evs := range map[string][]Event{"lns": p.lnsEv, "lac": p.lacEv} {
				end := find(evs, EventEnd)
				if len(end) != 1 || end[0].Reason != ReasonAuthFailed || !errors.Is(end[0].Err, ppp.ErrAuthFailed) {
					t.Errorf("%s end events %+v, want one auth-failed", side, end)
				}
				if strings.Contains(phases(evs), ">network") {
					t.Errorf("%s reached the network phase: %s", side, phases(evs))
				}
			}
			if n := srv.Pool.InUse(); n != 0 {
				t.Errorf("pool lends %d addresses after failed logins", n)
			}
		})
	}
}

// TestWrongPasswordsDoNotBlockOthers: while clients retry wrong
// passwords as fast as they can (MS-CHAPv2, the costliest check) against
// one Server, another user's login completes and gets its address: the
// calls share only the Server's immutable secrets and its pool, and a
// failed login takes nothing from the pool. (Each call's hashing runs on
// its own goroutine in the daemon, as here.)
func TestWrongPasswordsDoNotBlockOthers(t *testing.T) {
	srv := testServer(t, ppp.MSCHAPv2)
	const attackers, tries = 4, 25
	stop := make(chan struct{})
	var wg, warm sync.WaitGroup // warm: each attacker has failed once
	failures := make([]int, attackers)
	for i := range attackers {
		wg.Add(1)
		warm.Add(1)
		go func() {
			defer wg.Done()
			for n := range tries {
				if n == 1 {
					warm.Done()
				}
				select {
				case <-stop:
					return
				default:
				}
				p := newLinkPair(t, srv, "alice", "guess")
				p.run()
				if a := find(p.lnsEv, EventAuth); len(a) == 1 && a[0].Reason == ReasonBadCredentials {
					failures[i]++
				}
			}
		}()
	}
	warm.Wait()
	good := newLinkPair(t, srv, "alice", "alice pass")
	good.run()
	close(stop)
	wg.Wait()
	if good.lac.link.Phase() != ppp.PhaseOpen {
		t.Fatalf("the good login is %v (%v) among wrong passwords", good.lac.link.Phase(), good.lac.link.Failure())
	}
	if _, peer := good.lns.link.IPv4(); !srv.Pool.Contains(peer) || srv.Pool.InUse() != 1 {
		t.Errorf("good login's address %v, pool in use %d: want one address from the pool", peer, srv.Pool.InUse())
	}
	total := 0
	for _, n := range failures {
		total += n
	}
	if total < attackers {
		t.Errorf("%d wrong-password logins refused, want at least %d", total, attackers)
	}
	t.Logf("%d wrong-password logins refused meanwhile", total)
}

// TestReasons: every reason has a name, and each of ppp's and auth's
// failures maps to its own.
func TestReasons(t *testing.T) {
	for r := ReasonNone + 1; r < NumReasons; r++ {
		if r.String() == "" || r.String() == "other" && r != ReasonOther {
			t.Errorf("reason %d has no name", r)
		}
	}
	for err, want := range map[error]Reason{
		fmt.Errorf("%w: %w", ppp.ErrAuthFailed, auth.ErrBadCredentials): ReasonAuthFailed,
		ppp.ErrEchoTimeout:               ReasonEchoTimeout,
		ppp.ErrNegotiation:               ReasonNegotiation,
		fmt.Errorf("%w: x", ppp.ErrPool): ReasonPoolEmpty,
		errors.New("x"):                  ReasonOther,
	} {
		if got := endReason(err, false); got != want {
			t.Errorf("endReason(%v) = %v, want %v", err, got, want)
		}
	}
	if endReason(nil, true) != ReasonCallDown || endReason(nil, false) != ReasonTerminated {
		t.Error("endReason without failure")
	}
	if authReason(fmt.Errorf("%w: x", auth.ErrTimeout)) != ReasonTimeout || authReason(errors.New("x")) != ReasonOther {
		t.Error("authReason")
	}
}
