//go:build !nometrics

// Package metrics exports a datapath.Plane's counters to Prometheus.
//
// The Collector reads the counters the pumps already keep, at scrape time:
// it adds nothing per packet and takes no lock a pump takes. Between
// scrapes it keeps only each session's and tunnel's labels, dropped with
// the session, so a deleted session is gone from the next scrape.
// The metric names are in docs/metrics.md.
package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/event"
)

// counter is one of datapath.Stats's counters, by its kernel name.
type counter struct{ name, help string }

// counters are the counters show session -s prints, in its order;
// values reads them in the same order.
var counters = [...]counter{
	{"tx_packets", "Packets sent."},
	{"tx_bytes", "Bytes of tunnelled frames sent."},
	{"tx_errors", "Frames that could not be sent."},
	{"rx_packets", "Packets received."},
	{"rx_bytes", "Bytes of tunnelled frames received."},
	{"rx_errors", "Received packets that could not be delivered."},
	{"rx_seq_discards", "Received packets discarded as out of sequence."},
	{"rx_oos_packets", "Received packets that arrived out of sequence."},
	{"rx_cookie_discards", "Received packets discarded for a wrong cookie."},
	{"rx_invalid", "Received packets that were not valid L2TPv3."},
	{"tx_tso_frames", "TSO super-frames read from the TAP."},
	{"tx_tso_segments", "Segments cut from TSO super-frames."},
	{"tx_gso_sends", "UDP GSO sends."},
	{"tx_gso_datagrams", "Datagrams carried by UDP GSO sends."},
	{"rx_gro_datagrams", "Datagrams received in UDP GRO batches."},
	{"rx_coalesced_frames", "Super-frames coalesced for the TAP."},
	{"rx_coalesced_segments", "Segments merged into coalesced super-frames."},
}

// values are st's counters, in the order of counters. (A table of
// functions would make st escape to the heap: an allocation per session
// per scrape.)
func values(st *datapath.Stats) [len(counters)]uint64 {
	return [...]uint64{
		st.TxPackets,
		st.TxBytes,
		st.TxErrors,
		st.RxPackets,
		st.RxBytes,
		st.RxErrors,
		st.RxSeqDiscards,
		st.RxOOSPackets,
		st.RxCookieDiscards,
		st.RxInvalid,
		st.TxTSOFrames,
		st.TxTSOSegments,
		st.TxGSOSends,
		st.TxGSODatagrams,
		st.RxGRODatagrams,
		st.RxCoalescedFrames,
		st.RxCoalescedSegments,
	}
}

// tunnel and session are what a Collector reads of a datapath.Tunnel and
// datapath.Session.
type (
	tunnel interface {
		Config() datapath.TunnelConfig
		Stats() datapath.Stats
		SocketStats() datapath.SocketStats
	}
	session interface {
		Config() datapath.SessionConfig
		IfName() string
		Stats() datapath.Stats
		Health() datapath.Health
	}
)

// source is where a Collector finds the tunnels and sessions, in fresh
// slices the Collector may reorder: a datapath.Plane (planeSource), or
// the benchmarks' fakes (sessions need TAP devices).
type source interface {
	tunnels() []tunnel
	sessions() []session
	// events is the hub monitor clients subscribe to, nil if none.
	events() *event.Hub
}

// planeSource is a datapath.Plane as a source.
type planeSource struct{ p *datapath.Plane }

func (s planeSource) tunnels() []tunnel {
	ts := s.p.Tunnels()
	out := make([]tunnel, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

func (s planeSource) events() *event.Hub { return s.p.Events() }

func (s planeSource) sessions() []session {
	ss := s.p.Sessions(0)
	out := make([]session, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Collector is a prometheus.Collector of a Plane's tunnels, sessions and
// sockets.
type Collector struct {
	src source

	session, tunnel     []*prometheus.Desc // parallel to counters
	labels              labelCache
	sessions, tunnels   *prometheus.Desc
	reorderDepth        *prometheus.Desc
	up, restarts        *prometheus.Desc
	unmatched, rxErrors *prometheus.Desc
	controlDrops        *prometheus.Desc
	buildInfo           *prometheus.Desc
	monitorDropped      *prometheus.Desc
	version             string
}

// New returns a Collector of p's counters.
func New(p *datapath.Plane) *Collector { return newCollector(planeSource{p}) }

func newCollector(src source) *Collector {
	sl := []string{"tunnel_id", "session_id", "name"}
	tl := []string{"tunnel_id"}
	c := &Collector{
		src:          src,
		sessions:     prometheus.NewDesc("ul2tp_sessions", "Sessions configured.", nil, nil),
		tunnels:      prometheus.NewDesc("ul2tp_tunnels", "Tunnels configured.", nil, nil),
		reorderDepth: prometheus.NewDesc("ul2tp_session_reorder_queue_depth", "Frames waiting in the session's reorder queue.", sl, nil),
		up:           prometheus.NewDesc("ul2tp_session_up", "1 while the session's TAP pumps run, 0 while it is recreated.", sl, nil),
		restarts:     prometheus.NewDesc("ul2tp_session_pump_restarts_total", "TAP devices recreated after a pump failure.", sl, nil),
		unmatched:    prometheus.NewDesc("ul2tp_socket_unmatched_total", "Datagrams on a tunnel socket from no configured peer.", []string{"local"}, nil),
		rxErrors:     prometheus.NewDesc("ul2tp_socket_rx_errors_total", "Failed receive calls on a tunnel socket.", []string{"local"}, nil),
		controlDrops: prometheus.NewDesc("ul2tp_socket_control_queue_drops_total",
			"L2TP control messages dropped on a tunnel socket because the control plane's queue was full.", []string{"local"}, nil),
		buildInfo: prometheus.NewDesc("ul2tp_build_info", "Always 1; the labels name the build.", []string{"version", "goversion"}, nil),
		monitorDropped: prometheus.NewDesc("ul2tp_monitor_events_dropped_total",
			"Events dropped for monitor clients that did not keep up.", nil, nil),
		version: version(),
		labels: labelCache{
			sessions: make(map[session]*cachedLabels),
			tunnels:  make(map[tunnel]*cachedLabels),
		},
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
	for _, d := range []*prometheus.Desc{c.sessions, c.tunnels, c.reorderDepth, c.up, c.restarts, c.unmatched, c.rxErrors, c.controlDrops, c.buildInfo, c.monitorDropped} {
		ch <- d
	}
}

// Collect reads the plane's counters now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, c.version, runtime.Version())
	if hub := c.src.events(); hub != nil {
		ch <- prometheus.MustNewConstMetric(c.monitorDropped, prometheus.CounterValue, float64(hub.Dropped()))
	}
	tunnels, sessions := c.src.tunnels(), c.src.sessions()
	// In the order the client library sorts each metric's series in (by
	// label value, name first), which its sort then only has to confirm.
	slices.SortFunc(sessions, func(a, b session) int { return strings.Compare(a.IfName(), b.IfName()) })
	ch <- prometheus.MustNewConstMetric(c.tunnels, prometheus.GaugeValue, float64(len(tunnels)))
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(len(sessions)))
	ts := make([]tunnelSamples, len(tunnels))
	ss := make([]sessionSamples, len(sessions))
	c.label(tunnels, ts, sessions, ss)
	seen := make(map[string]bool)
	for i, t := range tunnels {
		c.collectTunnel(ch, t, &ts[i], seen)
	}
	for i, s := range sessions {
		c.collectSession(ch, s, &ss[i])
	}
}

// label gives each tunnel's and session's samples their descriptions and
// cached labels, under the cache's lock (a scrape's, never a pump's).
func (c *Collector) label(tunnels []tunnel, ts []tunnelSamples, sessions []session, ss []sessionSamples) {
	c.labels.mu.Lock()
	defer c.labels.mu.Unlock()
	c.labels.gen++
	for i, t := range tunnels {
		l := c.labels.tunnelLabels(t)
		for k := range ts[i].counters {
			ts[i].counters[k].desc, ts[i].counters[k].labels = c.tunnel[k], l
		}
	}
	for i, s := range sessions {
		l := c.labels.sessionLabels(s)
		x := &ss[i]
		for k := range x.counters {
			x.counters[k].desc, x.counters[k].labels = c.restarts, l
			if k < len(counters) {
				x.counters[k].desc = c.session[k]
			}
		}
		x.gauges[0].desc, x.gauges[0].labels = c.reorderDepth, l
		x.gauges[1].desc, x.gauges[1].labels = c.up, l
	}
	c.labels.prune(len(tunnels), len(sessions))
}

// collectTunnel sends t's counters, and its socket's unless seen (tunnels
// on one local address and port share a socket).
func (c *Collector) collectTunnel(ch chan<- prometheus.Metric, t tunnel, x *tunnelSamples, seen map[string]bool) {
	st := t.Stats()
	for i, v := range values(&st) {
		x.counters[i].value = float64(v)
		ch <- &x.counters[i]
	}
	ss := t.SocketStats()
	local := ss.Local.String()
	if seen[local] {
		return
	}
	seen[local] = true
	ch <- prometheus.MustNewConstMetric(c.unmatched, prometheus.CounterValue, float64(ss.Unmatched), local)
	ch <- prometheus.MustNewConstMetric(c.rxErrors, prometheus.CounterValue, float64(ss.RxErrors), local)
	ch <- prometheus.MustNewConstMetric(c.controlDrops, prometheus.CounterValue, float64(ss.ControlQueueDrops), local)
}

// collectSession sends s's counters and state.
func (c *Collector) collectSession(ch chan<- prometheus.Metric, s session, x *sessionSamples) {
	st := s.Stats()
	h := s.Health()
	for i, v := range values(&st) {
		x.counters[i].value = float64(v)
	}
	x.counters[len(counters)].value = float64(h.Restarts)
	x.gauges[0].value = float64(st.ReorderQueueDepth)
	if h.Up {
		x.gauges[1].value = 1
	}
	for i := range x.counters {
		ch <- &x.counters[i]
	}
	for i := range x.gauges {
		ch <- &x.gauges[i]
	}
}

// Handler serves /metrics-style scrapes of p's counters, and of the
// L2TPv2 engine's and its PPP links' if v2 is given, with the Go runtime
// and process collectors, from a registry of its own.
func Handler(p *datapath.Plane, v2 ...L2TPv2) (http.Handler, error) {
	r := prometheus.NewRegistry()
	cs := []prometheus.Collector{
		New(p),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, e := range v2 {
		cs = append(cs, NewL2TPv2(e), NewPPP(e))
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{}), nil
}
