//go:build !nometrics

package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// PPPCollector is a prometheus.Collector of the PPP links on L2TPv2
// calls: a snapshot of the engine's PPPStats at scrape time. Its labels
// take bounded values only (phases, roles, methods, reasons; never user
// names); the names are in docs/metrics.md.
type PPPCollector struct {
	src                     L2TPv2
	calls, entered          *prometheus.Desc
	authSuccess, authFailed *prometheus.Desc
	ends, dropped           *prometheus.Desc
}

// NewPPP returns a Collector of e's PPP counters.
func NewPPP(e L2TPv2) *PPPCollector {
	return &PPPCollector{
		src:     e,
		calls:   prometheus.NewDesc("ul2tp_ppp_calls", "Calls whose PPP link is in the phase now.", []string{"phase"}, nil),
		entered: prometheus.NewDesc("ul2tp_ppp_phase_entered_total", "Times a call's PPP link entered the phase.", []string{"phase"}, nil),
		authSuccess: prometheus.NewDesc("ul2tp_ppp_auth_success_total",
			"PPP authentications that succeeded, by our role (authenticator: we checked the peer; peer: it checked us) and method.",
			[]string{"role", "method"}, nil),
		authFailed: prometheus.NewDesc("ul2tp_ppp_auth_failures_total",
			"PPP authentications that failed, by our role and method.", []string{"role", "method"}, nil),
		ends: prometheus.NewDesc("ul2tp_ppp_link_ends_total", "PPP links ended, by reason.", []string{"reason"}, nil),
		dropped: prometheus.NewDesc("ul2tp_ppp_control_dropped_total",
			"PPP control frames (LCP, authentication, NCPs) dropped because a call's queue was full.", nil, nil),
	}
}

// Describe sends every metric's description.
func (c *PPPCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.calls, c.entered, c.authSuccess, c.authFailed, c.ends, c.dropped} {
		ch <- d
	}
}

// Collect reads the engine's PPP counters now.
func (c *PPPCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.PPPStats()
	for _, p := range st.Phases {
		ch <- prometheus.MustNewConstMetric(c.calls, prometheus.GaugeValue, float64(p.Links), p.Phase)
		ch <- prometheus.MustNewConstMetric(c.entered, prometheus.CounterValue, float64(p.Entered), p.Phase)
	}
	for _, a := range st.Auth {
		ch <- prometheus.MustNewConstMetric(c.authSuccess, prometheus.CounterValue, float64(a.Succeeded), a.Role, a.Method)
		ch <- prometheus.MustNewConstMetric(c.authFailed, prometheus.CounterValue, float64(a.Failed), a.Role, a.Method)
	}
	for _, e := range st.Ends {
		ch <- prometheus.MustNewConstMetric(c.ends, prometheus.CounterValue, float64(e.Links), e.Reason)
	}
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.ControlDropped))
}
