//go:build !nometrics

// Package metrics exports a datapath.Plane's counters to Prometheus.
//
// The Collector reads the counters the pumps already keep, at scrape time:
// it adds nothing per packet, takes no lock a pump takes, and keeps no
// state between scrapes, so a deleted session is gone from the next one.
// The metric names are in docs/metrics.md.
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/ul2tp/ul2tp/datapath"
)

// counter is one of datapath.Stats's counters, by its kernel name.
type counter struct {
	name string
	help string
	get  func(*datapath.Stats) uint64
}

// counters are the counters show session -s prints, in its order.
var counters = []counter{
	{"tx_packets", "Packets sent.", func(s *datapath.Stats) uint64 { return s.TxPackets }},
	{"tx_bytes", "Bytes of tunnelled frames sent.", func(s *datapath.Stats) uint64 { return s.TxBytes }},
	{"tx_errors", "Frames that could not be sent.", func(s *datapath.Stats) uint64 { return s.TxErrors }},
	{"rx_packets", "Packets received.", func(s *datapath.Stats) uint64 { return s.RxPackets }},
	{"rx_bytes", "Bytes of tunnelled frames received.", func(s *datapath.Stats) uint64 { return s.RxBytes }},
	{"rx_errors", "Received packets that could not be delivered.", func(s *datapath.Stats) uint64 { return s.RxErrors }},
	{"rx_seq_discards", "Received packets discarded as out of sequence.", func(s *datapath.Stats) uint64 { return s.RxSeqDiscards }},
	{"rx_oos_packets", "Received packets that arrived out of sequence.", func(s *datapath.Stats) uint64 { return s.RxOOSPackets }},
	{"rx_cookie_discards", "Received packets discarded for a wrong cookie.", func(s *datapath.Stats) uint64 { return s.RxCookieDiscards }},
	{"rx_invalid", "Received packets that were not valid L2TPv3.", func(s *datapath.Stats) uint64 { return s.RxInvalid }},
	{"tx_tso_frames", "TSO super-frames read from the TAP.", func(s *datapath.Stats) uint64 { return s.TxTSOFrames }},
	{"tx_tso_segments", "Segments cut from TSO super-frames.", func(s *datapath.Stats) uint64 { return s.TxTSOSegments }},
	{"tx_gso_sends", "UDP GSO sends.", func(s *datapath.Stats) uint64 { return s.TxGSOSends }},
	{"tx_gso_datagrams", "Datagrams carried by UDP GSO sends.", func(s *datapath.Stats) uint64 { return s.TxGSODatagrams }},
	{"rx_gro_datagrams", "Datagrams received in UDP GRO batches.", func(s *datapath.Stats) uint64 { return s.RxGRODatagrams }},
	{"rx_coalesced_frames", "Super-frames coalesced for the TAP.", func(s *datapath.Stats) uint64 { return s.RxCoalescedFrames }},
	{"rx_coalesced_segments", "Segments merged into coalesced super-frames.", func(s *datapath.Stats) uint64 { return s.RxCoalescedSegments }},
}

// Collector is a prometheus.Collector of a Plane's tunnels, sessions and
// sockets.
type Collector struct {
	plane *datapath.Plane

	session, tunnel     []*prometheus.Desc // parallel to counters
	sessions, tunnels   *prometheus.Desc
	reorderDepth        *prometheus.Desc
	up, restarts        *prometheus.Desc
	unmatched, rxErrors *prometheus.Desc
	buildInfo           *prometheus.Desc
	version             string
}

// New returns a Collector of p's counters.
func New(p *datapath.Plane) *Collector {
	sl := []string{"tunnel_id", "session_id", "name"}
	tl := []string{"tunnel_id"}
	c := &Collector{
		plane:        p,
		sessions:     prometheus.NewDesc("ul2tp_sessions", "Sessions configured.", nil, nil),
		tunnels:      prometheus.NewDesc("ul2tp_tunnels", "Tunnels configured.", nil, nil),
		reorderDepth: prometheus.NewDesc("ul2tp_session_reorder_queue_depth", "Frames waiting in the session's reorder queue.", sl, nil),
		up:           prometheus.NewDesc("ul2tp_session_up", "1 while the session's TAP pumps run, 0 while it is recreated.", sl, nil),
		restarts:     prometheus.NewDesc("ul2tp_session_pump_restarts_total", "TAP devices recreated after a pump failure.", sl, nil),
		unmatched:    prometheus.NewDesc("ul2tp_socket_unmatched_total", "Datagrams on a tunnel socket from no configured peer.", []string{"local"}, nil),
		rxErrors:     prometheus.NewDesc("ul2tp_socket_rx_errors_total", "Failed receive calls on a tunnel socket.", []string{"local"}, nil),
		buildInfo:    prometheus.NewDesc("ul2tp_build_info", "Always 1; the labels name the build.", []string{"version", "goversion"}, nil),
		version:      version(),
	}
	for _, k := range counters {
		c.session = append(c.session, prometheus.NewDesc("ul2tp_session_"+k.name+"_total", k.help, sl, nil))
		c.tunnel = append(c.tunnel, prometheus.NewDesc("ul2tp_tunnel_"+k.name+"_total", k.help, tl, nil))
	}
	return c
}

// version is the main module's version, "(devel)" if unknown.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for i := range counters {
		ch <- c.session[i]
		ch <- c.tunnel[i]
	}
	for _, d := range []*prometheus.Desc{c.sessions, c.tunnels, c.reorderDepth, c.up, c.restarts, c.unmatched, c.rxErrors, c.buildInfo} {
		ch <- d
	}
}

// Collect reads the plane's counters now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, c.version, runtime.Version())
	tunnels := c.plane.Tunnels()
	ch <- prometheus.MustNewConstMetric(c.tunnels, prometheus.GaugeValue, float64(len(tunnels)))
	seen := make(map[string]bool)
	for _, t := range tunnels {
		c.collectTunnel(ch, t, seen)
	}
	sessions := c.plane.Sessions(0)
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(len(sessions)))
	for _, s := range sessions {
		c.collectSession(ch, s)
	}
}

// collectTunnel sends t's counters, and its socket's unless seen (tunnels
// on one local address and port share a socket).
func (c *Collector) collectTunnel(ch chan<- prometheus.Metric, t *datapath.Tunnel, seen map[string]bool) {
	id := strconv.FormatUint(uint64(t.Config().ID), 10)
	st := t.Stats()
	for i, k := range counters {
		ch <- prometheus.MustNewConstMetric(c.tunnel[i], prometheus.CounterValue, float64(k.get(&st)), id)
	}
	ss := t.SocketStats()
	local := ss.Local.String()
	if seen[local] {
		return
	}
	seen[local] = true
	ch <- prometheus.MustNewConstMetric(c.unmatched, prometheus.CounterValue, float64(ss.Unmatched), local)
	ch <- prometheus.MustNewConstMetric(c.rxErrors, prometheus.CounterValue, float64(ss.RxErrors), local)
}

// collectSession sends s's counters and state.
func (c *Collector) collectSession(ch chan<- prometheus.Metric, s *datapath.Session) {
	cfg := s.Config()
	l := []string{strconv.FormatUint(uint64(cfg.TunnelID), 10), strconv.FormatUint(uint64(cfg.ID), 10), s.IfName()}
	st := s.Stats()
	for i, k := range counters {
		ch <- prometheus.MustNewConstMetric(c.session[i], prometheus.CounterValue, float64(k.get(&st)), l...)
	}
	ch <- prometheus.MustNewConstMetric(c.reorderDepth, prometheus.GaugeValue, float64(st.ReorderQueueDepth), l...)
	h := s.Health()
	up := 0.0
	if h.Up {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, l...)
	ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(h.Restarts), l...)
}

// Handler serves /metrics-style scrapes of p's counters, with the Go
// runtime and process collectors, from a registry of its own.
func Handler(p *datapath.Plane) (http.Handler, error) {
	r := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		New(p),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{}), nil
}
