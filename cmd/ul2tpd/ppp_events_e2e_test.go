package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// seenAll reads m's events until done holds over every event seen so
// far, for up to 15 s, and fails the test otherwise.
func (m *monitorProc) seenAll(what string, done func([]monitorEvent) bool) {
	m.t.Helper()
	check := func(monitorEvent) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return done(m.seen)
	}
	if check(monitorEvent{}) {
		return
	}
	if _, ok := m.wait(15*time.Second, check); !ok {
		m.t.Fatalf("ul2tp monitor: no %s in 15s; saw %+v", what, m.seen)
	}
}

// pppPhases is the phase changes of session sid among evs, as
// "from>to[user]".
func pppPhases(evs []monitorEvent, sid uint32) string {
	var out []string
	for _, e := range evs {
		if e.Event == "ppp-phase" && e.SessionID == sid {
			out = append(out, fmt.Sprintf("%s>%s[%s]", e.FromPhase, e.Phase, e.User))
		}
	}
	return strings.Join(out, " ")
}

// TestE2EPPPEvents follows PPP calls from our LAC (namespace A) to our
// LNS (B, MS-CHAPv2) with "ul2tp -j monitor" and /metrics: alice's link
// goes through each phase, mallory's wrong password is an authentication
// failure event (user, method, role, reason) and a ppp-down event, both
// daemons count them by role and method, and when the LAC stops, alice's
// link ends as call-down and leaves the open gauge.
func TestE2EPPPEvents(t *testing.T) {
	e := newEnv(t)
	const metricsAddr = "127.0.0.1:9701" // inside each namespace
	lnsAddr := e.outer4(2)
	secrets := filepath.Join(e.dir, "chap-secrets")
	if err := os.WriteFile(secrets, []byte("alice * \"alice pass\" *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	timers := "hello_timeout = 1000\nretry_timeout = 200\nmax_retries = 3\n"
	lnsConf := fmt.Sprintf(`[lns]
listen = "%s:1701"
%s
ppp_auth = "mschap-v2"
ppp_name = "lns"
chap_secrets = %q
local_ip = "10.99.0.1"
pool = "10.99.0.10-10.99.0.20"
tun_name = "uelns%%d"
`, lnsAddr, timers, secrets)
	lacConf := fmt.Sprintf(`[tunnel.lac1]
version = "l2tpv2"
peer = "%s:1701"
tun_name = "uelac%%d"
redial = false # mallory's call once: the counts below are of one refusal
%s
[tunnel.lac1.session.alice]
pseudowire = "ppp"
user = "alice"
password = "alice pass"

[tunnel.lac1.session.mallory]
pseudowire = "ppp"
user = "alice"
password = "wrong"
`, lnsAddr, timers)
	lnsFile, lacFile := e.writeFile("lns.toml", lnsConf), e.writeFile("lac.toml", lacConf)
	lns := e.startDaemon(e.nsB, "--config", lnsFile, "--metrics-listen", metricsAddr)
	mon := lns.startMonitor() // before the LAC dials: it sees every call
	lac := e.startDaemon(e.nsA, "--config", lacFile, "--metrics-listen", metricsAddr)

	var alice api.SessionInfo
	until(t, "alice's link open at the LNS", func() bool {
		var ok bool
		alice, ok = pppCall(lns, func(c *api.CallInfo) bool { return c.PPPUser == "alice" && c.PPP == "open" })
		return ok
	})
	sid := alice.SessionID
	want := "dead>establish[] establish>authenticate[] authenticate>network[alice] network>open[alice]"
	mon.seenAll("alice's phase changes", func(evs []monitorEvent) bool { return pppPhases(evs, sid) == want })
	var failed monitorEvent
	mon.seenAll("mallory's authentication failure and link end", func(evs []monitorEvent) bool {
		down := false
		for _, ev := range evs {
			if ev.Event == "ppp-auth-failed" {
				failed = ev
			}
			if ev.Event == "ppp-down" && ev.SessionID == failed.SessionID && ev.Reason == "auth-failed" {
				down = true
			}
		}
		return failed.Event != "" && down
	})
	if failed.User != "alice" || failed.Method != "mschap-v2" || failed.Role != "authenticator" ||
		failed.Reason != "bad-credentials" || failed.Phase != "authenticate" || failed.SessionID == sid ||
		!strings.HasPrefix(failed.Interface, "uelns") || !strings.Contains(failed.Detail, "wrong user name or password") {
		t.Errorf("ppp-auth-failed event %+v", failed)
	}
	for _, ev := range mon.seen {
		if ev.Event == "ppp-phase" && ev.SessionID == failed.SessionID && ev.Phase == "network" {
			t.Errorf("the refused call reached the network phase: %+v", ev)
		}
	}
	if !strings.Contains(lns.log(), "l2tpv2 ppp authentication failed") {
		t.Errorf("the LNS log has no authentication failure")
	}

	metric := func(ns, line string) float64 {
		t.Helper()
		v, ok := metricValue(t, scrape(t, ns, metricsAddr), line)
		if !ok {
			t.Fatalf("%s's scrape lacks %s", ns, line)
		}
		return v
	}
	for line, want := range map[string]float64{
		`ul2tp_ppp_auth_success_total{method="mschap-v2",role="authenticator"}`:  1,
		`ul2tp_ppp_auth_failures_total{method="mschap-v2",role="authenticator"}`: 1,
		`ul2tp_ppp_auth_failures_total{method="pap",role="authenticator"}`:       0,
		`ul2tp_ppp_calls{phase="open"}`:                                          1,
		`ul2tp_ppp_link_ends_total{reason="auth-failed"}`:                        1,
		`ul2tp_ppp_phase_entered_total{phase="establish"}`:                       2,
	} {
		if v := metric(e.nsB, line); v != want {
			t.Errorf("LNS %s %v, want %v", line, v, want)
		}
	}
	until(t, "the LAC counts its refusal", func() bool {
		return metric(e.nsA, `ul2tp_ppp_link_ends_total{reason="auth-failed"}`) == 1
	})
	for line, want := range map[string]float64{
		`ul2tp_ppp_auth_success_total{method="mschap-v2",role="peer"}`:  1,
		`ul2tp_ppp_auth_failures_total{method="mschap-v2",role="peer"}`: 1,
		`ul2tp_ppp_calls{phase="open"}`:                                 1,
	} {
		if v := metric(e.nsA, line); v != want {
			t.Errorf("LAC %s %v, want %v", line, v, want)
		}
	}

	// The LAC goes: alice's link ends with its call.
	lac.stop(true)
	mon.seenAll("alice's link end", func(evs []monitorEvent) bool {
		for _, ev := range evs {
			if ev.Event == "ppp-down" && ev.SessionID == sid && ev.Reason == "call-down" && ev.User == "alice" {
				return true
			}
		}
		return false
	})
	if v := metric(e.nsB, `ul2tp_ppp_calls{phase="open"}`); v != 0 {
		t.Errorf("LNS ul2tp_ppp_calls{phase=\"open\"} %v after the LAC left, want 0", v)
	}
	if got := pppPhases(mon.seen, sid); got != want+" open>dead[alice]" {
		t.Errorf("alice's phase changes %q, want %q then open>dead", got, want)
	}
	for line, want := range map[string]float64{
		`ul2tp_ppp_link_ends_total{reason="call-down"}`:    1,
		`ul2tp_ppp_phase_entered_total{phase="establish"}`: 2,
	} {
		if v := metric(e.nsB, line); v != want {
			t.Errorf("LNS %s %v after the LAC left, want %v", line, v, want)
		}
	}
}
