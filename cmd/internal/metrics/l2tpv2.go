//go:build !nometrics

package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ul2tp/ul2tp/control/engine"
)

// l2tpv2Metric is one of engine.Stats's fields as a metric.
type l2tpv2Metric struct {
	name, help string
	kind       prometheus.ValueType
	value      func(*engine.Stats) uint64
}

// l2tpv2Metrics are the L2TPv2 engine's gauges and counters; the names
// are in docs/metrics.md.
var l2tpv2Metrics = [...]l2tpv2Metric{
	{"ul2tp_l2tpv2_tunnels", "L2TPv2 tunnels established.", prometheus.GaugeValue, func(s *engine.Stats) uint64 { return s.Tunnels }},
	{"ul2tp_l2tpv2_calls", "L2TPv2 calls established.", prometheus.GaugeValue, func(s *engine.Stats) uint64 { return s.Calls }},
	{"ul2tp_l2tpv2_tunnels_up_total", "L2TPv2 tunnels set up.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.TunnelsUp }},
	{"ul2tp_l2tpv2_tunnels_down_total", "L2TPv2 tunnels gone down, set up or not.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.TunnelsDown }},
	{"ul2tp_l2tpv2_calls_up_total", "L2TPv2 calls set up.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.CallsUp }},
	{"ul2tp_l2tpv2_calls_down_total", "L2TPv2 calls gone down, set up or not.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.CallsDown }},
	{"ul2tp_l2tpv2_retransmits_total", "L2TPv2 control messages retransmitted.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.Retransmits }},
	{"ul2tp_l2tpv2_peer_lost_total", "L2TPv2 tunnels down because retransmission gave up.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.PeerLost }},
	{"ul2tp_l2tpv2_setups_refused_total", "SCCRQs refused: peer address or host name not allowed.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.Refused }},
	{"ul2tp_l2tpv2_setups_dropped_total", "SCCRQs dropped at max_tunnels or max_pending.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.DroppedSetups }},
	{"ul2tp_l2tpv2_control_malformed_total", "L2TPv2 control packets dropped as malformed.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.Malformed }},
	{"ul2tp_l2tpv2_control_unknown_tunnel_total", "L2TPv2 control packets for no tunnel of ours or from the wrong peer.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.UnknownTunnel }},
	{"ul2tp_l2tpv2_datapath_errors_total", "L2TPv2 tunnels or calls the datapath refused.", prometheus.CounterValue, func(s *engine.Stats) uint64 { return s.DatapathErrors }},
}

// L2TPv2Collector is a prometheus.Collector of an L2TPv2 engine's
// counters, read at scrape time.
type L2TPv2Collector struct {
	src   L2TPv2
	descs [len(l2tpv2Metrics)]*prometheus.Desc
}

// NewL2TPv2 returns a Collector of e's counters.
func NewL2TPv2(e L2TPv2) *L2TPv2Collector {
	c := &L2TPv2Collector{src: e}
	for i, m := range l2tpv2Metrics {
		c.descs[i] = prometheus.NewDesc(m.name, m.help, nil, nil)
	}
	return c
}

// Describe sends every metric's description.
func (c *L2TPv2Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads the engine's counters now.
func (c *L2TPv2Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	for i, m := range l2tpv2Metrics {
		ch <- prometheus.MustNewConstMetric(c.descs[i], m.kind, float64(m.value(&st)))
	}
}
