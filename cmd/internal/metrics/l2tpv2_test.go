//go:build !nometrics

package metrics

import (
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ul2tp/ul2tp/control/engine"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
)

// fakeEngine's Stats has every field set to its index plus one.
type fakeEngine struct{}

func (fakeEngine) Stats() engine.Stats {
	var st engine.Stats
	v := reflect.ValueOf(&st).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(i + 1))
	}
	return st
}

// TestL2TPv2Collector: every field of engine.Stats is exported once,
// read at scrape time, under its documented name.
func TestL2TPv2Collector(t *testing.T) {
	c := NewL2TPv2(fakeEngine{})
	if n := testutil.CollectAndCount(c); n != reflect.TypeFor[engine.Stats]().NumField() {
		t.Errorf("%d metrics, want one per engine.Stats field (%d)", n, reflect.TypeFor[engine.Stats]().NumField())
	}
	var got []float64
	for _, m := range l2tpv2Metrics {
		got = append(got, sum(t, c, m.name))
	}
	slices.Sort(got)
	for i, v := range got {
		if v != float64(i+1) {
			t.Fatalf("values %v: a Stats field is missing or read twice", got)
		}
	}
	h, err := Handler(newPlane(t, 0), fakeEngine{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{"ul2tp_l2tpv2_tunnels 1\n", "ul2tp_l2tpv2_calls 2\n", "# TYPE ul2tp_l2tpv2_tunnels gauge",
		"# TYPE ul2tp_l2tpv2_retransmits_total counter", "ul2tp_l2tpv2_peer_lost_total 12\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// TestL2TPv2Engine: the collector reads a running engine.
func TestL2TPv2Engine(t *testing.T) {
	e := engine.New(engine.Options{Plane: newPlane(t, 0)})
	defer e.Close()
	if v := sum(t, NewL2TPv2(e), "ul2tp_l2tpv2_tunnels"); v != 0 {
		t.Errorf("ul2tp_l2tpv2_tunnels %v, want 0", v)
	}
}

// PPPStats has a link open, one in the authenticate phase, an MS-CHAPv2
// success and two CHAP failures as authenticator, an auth-failed end and
// three dropped frames.
func (fakeEngine) PPPStats() engine.PPPStats {
	return engine.PPPStats{
		Phases: []engine.PPPPhaseStats{{Phase: "establish", Entered: 4}, {Phase: "authenticate", Links: 1, Entered: 4},
			{Phase: "network", Entered: 1}, {Phase: "open", Links: 1, Entered: 1}, {Phase: "terminate", Entered: 2}},
		Auth: []engine.PPPAuthStats{{Role: "authenticator", Method: "chap", Failed: 2},
			{Role: "authenticator", Method: "mschap-v2", Succeeded: 1}, {Role: "peer", Method: "pap"}},
		Ends:           []engine.PPPEndStats{{Reason: "auth-failed", Links: 2}, {Reason: "echo-timeout"}},
		ControlDropped: 3,
	}
}

// TestPPPCollector: the PPP counters are scraped under their documented
// names, with every label value of the snapshot (zeros included).
func TestPPPCollector(t *testing.T) {
	c := NewPPP(fakeEngine{})
	if n := testutil.CollectAndCount(c); n != 5*2+3*2+2+1 {
		t.Errorf("%d series, want 19", n)
	}
	want := `# HELP ul2tp_ppp_auth_failures_total PPP authentications that failed, by our role and method.
# TYPE ul2tp_ppp_auth_failures_total counter
ul2tp_ppp_auth_failures_total{method="chap",role="authenticator"} 2
ul2tp_ppp_auth_failures_total{method="mschap-v2",role="authenticator"} 0
ul2tp_ppp_auth_failures_total{method="pap",role="peer"} 0
# HELP ul2tp_ppp_calls Calls whose PPP link is in the phase now.
# TYPE ul2tp_ppp_calls gauge
ul2tp_ppp_calls{phase="authenticate"} 1
ul2tp_ppp_calls{phase="establish"} 0
ul2tp_ppp_calls{phase="network"} 0
ul2tp_ppp_calls{phase="open"} 1
ul2tp_ppp_calls{phase="terminate"} 0
# HELP ul2tp_ppp_control_dropped_total PPP control frames (LCP, authentication, NCPs) dropped because a call's queue was full.
# TYPE ul2tp_ppp_control_dropped_total counter
ul2tp_ppp_control_dropped_total 3
# HELP ul2tp_ppp_link_ends_total PPP links ended, by reason.
# TYPE ul2tp_ppp_link_ends_total counter
ul2tp_ppp_link_ends_total{reason="auth-failed"} 2
ul2tp_ppp_link_ends_total{reason="echo-timeout"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "ul2tp_ppp_auth_failures_total", "ul2tp_ppp_calls",
		"ul2tp_ppp_control_dropped_total", "ul2tp_ppp_link_ends_total"); err != nil {
		t.Error(err)
	}
	h, err := Handler(newPlane(t, 0), fakeEngine{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`ul2tp_ppp_auth_success_total{method="mschap-v2",role="authenticator"} 1`,
		`ul2tp_ppp_phase_entered_total{phase="establish"} 4`, "ul2tp_ppp_control_dropped_total 3\n"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// TestPPPEngine: the collector reads a running engine's PPPStats: every
// phase, role x method and end reason is a series from the start.
func TestPPPEngine(t *testing.T) {
	e := engine.New(engine.Options{Plane: newPlane(t, 0)})
	defer e.Close()
	if n := testutil.CollectAndCount(NewPPP(e)); n != 5*2+6*2+len(pppcall.EndReasons)+1 {
		t.Errorf("%d series from an idle engine", n)
	}
}
