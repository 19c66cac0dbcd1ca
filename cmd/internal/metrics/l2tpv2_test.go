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
