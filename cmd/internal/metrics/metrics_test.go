//go:build !nometrics

package metrics

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/encap"
)

// freePort returns a UDP port on loopback that was free a moment ago.
func freePort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// newPlane returns a plane with n UDP tunnels on loopback (no root needed:
// sessions, which need TAP devices, are tested in cmd/ul2tpd's e2e tests).
func newPlane(t *testing.T, n int) *datapath.Plane {
	t.Helper()
	p := datapath.New(slog.New(slog.NewTextHandler(io.Discard, nil)), datapath.Options{})
	t.Cleanup(func() { p.Close() })
	lo := netip.MustParseAddr("127.0.0.1")
	for i := 1; i <= n; i++ {
		_, err := p.AddTunnel(datapath.TunnelConfig{
			ID: uint32(i), PeerID: uint32(100 + i), Encap: encap.EncapUDP,
			Local: lo, Remote: lo, UDPSport: freePort(t), UDPDport: 9, UDPCsum: true,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestCollectTunnels(t *testing.T) {
	p := newPlane(t, 2)
	c := New(p)
	// Per tunnel: every counter and its socket's three; then
	// ul2tp_tunnels, ul2tp_sessions and ul2tp_build_info.
	if got, want := testutil.CollectAndCount(c), 2*(len(counters)+3)+3; got != want {
		t.Errorf("CollectAndCount = %d, want %d", got, want)
	}
	want := `
# HELP ul2tp_sessions Sessions configured.
# TYPE ul2tp_sessions gauge
ul2tp_sessions 0
# HELP ul2tp_tunnels Tunnels configured.
# TYPE ul2tp_tunnels gauge
ul2tp_tunnels 2
# HELP ul2tp_tunnel_rx_packets_total Packets received.
# TYPE ul2tp_tunnel_rx_packets_total counter
ul2tp_tunnel_rx_packets_total{tunnel_id="1"} 0
ul2tp_tunnel_rx_packets_total{tunnel_id="2"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "ul2tp_sessions", "ul2tp_tunnels", "ul2tp_tunnel_rx_packets_total"); err != nil {
		t.Error(err)
	}
	if err := p.DelTunnel(1); err != nil {
		t.Fatal(err)
	}
	if got, want := testutil.CollectAndCount(c, "ul2tp_tunnel_tx_tso_frames_total"), 1; got != want {
		t.Errorf("after del tunnel: %d ul2tp_tunnel_tx_tso_frames_total, want %d", got, want)
	}
}

// TestCollectUnmatched sends datagrams from an unconfigured peer and finds
// them in ul2tp_socket_unmatched_total.
func TestCollectUnmatched(t *testing.T) {
	p := newPlane(t, 1)
	c := New(p)
	local := p.Tunnel(1).SocketStats().Local
	src, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// The pump counts asynchronously: send until counted, boundedly.
	for i := 0; i < 1000 && sum(t, c, "ul2tp_socket_unmatched_total") == 0; i++ {
		if _, err := src.WriteToUDPAddrPort(make([]byte, 12), local); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if sum(t, c, "ul2tp_socket_unmatched_total") == 0 {
		t.Errorf("ul2tp_socket_unmatched_total{local=%q} = 0 after datagrams from an unknown peer", local)
	}
}

// sum is the sum of c's metrics called name.
func sum(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	r := prometheus.NewPedanticRegistry()
	r.MustRegister(c)
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

func TestHandler(t *testing.T) {
	h, err := Handler(newPlane(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{"ul2tp_build_info{goversion=", "ul2tp_tunnels 1", "go_goroutines ", "process_open_fds "} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// BenchmarkCollect scrapes a plane of 1,000 tunnels sharing one socket
// (sessions need TAP devices, so the per-session path is not measured).
func BenchmarkCollect(b *testing.B) {
	p := datapath.New(slog.New(slog.NewTextHandler(io.Discard, nil)), datapath.Options{})
	defer p.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	for i := 1; i <= 1000; i++ {
		_, err := p.AddTunnel(datapath.TunnelConfig{
			ID: uint32(i), PeerID: uint32(i), Encap: encap.EncapUDP,
			Local: lo, Remote: lo, UDPSport: port, UDPDport: uint16(10000 + i), UDPCsum: true,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	col := New(p)
	ch := make(chan prometheus.Metric, 1024)
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		col.Collect(ch)
	}
	b.StopTimer()
	close(ch)
	<-done
}

// TestMonitorDropped checks ul2tp_monitor_events_dropped_total follows
// the plane's event hub.
func TestMonitorDropped(t *testing.T) {
	hub := event.NewHub(nil)
	p := datapath.New(slog.New(slog.NewTextHandler(io.Discard, nil)), datapath.Options{Events: hub})
	t.Cleanup(func() { p.Close() })
	sub := hub.Subscribe(1)
	defer sub.Close()
	for range 4 {
		hub.Publish(event.Event{Kind: event.TunnelAdded}) // one fits, three are dropped
	}
	want := `
# HELP ul2tp_monitor_events_dropped_total Events dropped for monitor clients that did not keep up.
# TYPE ul2tp_monitor_events_dropped_total counter
ul2tp_monitor_events_dropped_total 3
`
	if err := testutil.CollectAndCompare(New(p), strings.NewReader(want), "ul2tp_monitor_events_dropped_total"); err != nil {
		t.Fatal(err)
	}
}

// fakeSource is a plane of tunnels and sessions without sockets or TAP
// devices, with every counter set, for the benchmarks and the allocation
// test.
type fakeSource struct {
	ts []tunnel
	ss []session
}

type fakeTunnel struct {
	cfg  datapath.TunnelConfig
	sock datapath.SocketStats
}

func (t *fakeTunnel) Config() datapath.TunnelConfig     { return t.cfg }
func (t *fakeTunnel) Stats() datapath.Stats             { return fakeStats(t.cfg.ID) }
func (t *fakeTunnel) SocketStats() datapath.SocketStats { return t.sock }

type fakeSession struct {
	cfg  datapath.SessionConfig
	name string
}

func (s *fakeSession) Config() datapath.SessionConfig { return s.cfg }
func (s *fakeSession) IfName() string                 { return s.name }
func (s *fakeSession) Stats() datapath.Stats          { return fakeStats(s.cfg.ID) }
func (s *fakeSession) Health() datapath.Health        { return datapath.Health{Up: true} }

func fakeStats(id uint32) datapath.Stats {
	n := uint64(id)
	return datapath.Stats{TxPackets: n, TxBytes: 1500 * n, RxPackets: n, RxBytes: 1500 * n, ReorderQueueDepth: 1}
}

func (f *fakeSource) tunnels() []tunnel   { return slices.Clone(f.ts) }
func (f *fakeSource) sessions() []session { return slices.Clone(f.ss) }
func (f *fakeSource) events() *event.Hub  { return nil }

// newFakeSource has tunnels × perTunnel sessions, the tunnels in pairs
// on one socket.
func newFakeSource(tunnels, perTunnel int) *fakeSource {
	f := &fakeSource{}
	for i := 1; i <= tunnels; i++ {
		f.ts = append(f.ts, &fakeTunnel{
			cfg:  datapath.TunnelConfig{ID: uint32(i), PeerID: uint32(i)},
			sock: datapath.SocketStats{Local: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(1700+i/2))},
		})
		for j := 1; j <= perTunnel; j++ {
			id := uint32(i*100000 + j)
			f.ss = append(f.ss, &fakeSession{
				cfg:  datapath.SessionConfig{TunnelID: uint32(i), ID: id},
				name: "l2tpeth" + strconv.Itoa(len(f.ss)), // as the kernel numbers them
			})
		}
	}
	return f
}

// BenchmarkScrape10kSessions serves /metrics (the registry's gather and
// the text encoding) for 100 tunnels of 100 sessions each.
func BenchmarkScrape10kSessions(b *testing.B) {
	r := prometheus.NewRegistry()
	r.MustRegister(newCollector(newFakeSource(100, 100)))
	h := promhttp.HandlerFor(r, promhttp.HandlerOpts{})
	req := httptest.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := &discardResponse{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// discardResponse is an http.ResponseWriter that keeps nothing.
type discardResponse struct {
	h    http.Header
	code int
}

func (w *discardResponse) Header() http.Header         { return w.h }
func (w *discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardResponse) WriteHeader(code int)        { w.code = code }

// TestCollectSessions checks the sessions' series, through a pedantic
// registry (which checks each series' labels against its description),
// and that the label cache follows the plane: a deleted session's series
// and cached labels go with the next scrape.
func TestCollectSessions(t *testing.T) {
	f := newFakeSource(1, 2)
	c := newCollector(f)
	want := `
# HELP ul2tp_session_rx_packets_total Packets received.
# TYPE ul2tp_session_rx_packets_total counter
ul2tp_session_rx_packets_total{name="l2tpeth0",session_id="100001",tunnel_id="1"} 100001
ul2tp_session_rx_packets_total{name="l2tpeth1",session_id="100002",tunnel_id="1"} 100002
# HELP ul2tp_session_up 1 while the session's TAP pumps run, 0 while it is recreated.
# TYPE ul2tp_session_up gauge
ul2tp_session_up{name="l2tpeth0",session_id="100001",tunnel_id="1"} 1
ul2tp_session_up{name="l2tpeth1",session_id="100002",tunnel_id="1"} 1
# HELP ul2tp_session_reorder_queue_depth Frames waiting in the session's reorder queue.
# TYPE ul2tp_session_reorder_queue_depth gauge
ul2tp_session_reorder_queue_depth{name="l2tpeth0",session_id="100001",tunnel_id="1"} 1
ul2tp_session_reorder_queue_depth{name="l2tpeth1",session_id="100002",tunnel_id="1"} 1
# HELP ul2tp_session_pump_restarts_total TAP devices recreated after a pump failure.
# TYPE ul2tp_session_pump_restarts_total counter
ul2tp_session_pump_restarts_total{name="l2tpeth0",session_id="100001",tunnel_id="1"} 0
ul2tp_session_pump_restarts_total{name="l2tpeth1",session_id="100002",tunnel_id="1"} 0
# HELP ul2tp_tunnel_tx_bytes_total Bytes of tunnelled frames sent.
# TYPE ul2tp_tunnel_tx_bytes_total counter
ul2tp_tunnel_tx_bytes_total{tunnel_id="1"} 1500
`
	names := []string{"ul2tp_session_rx_packets_total", "ul2tp_session_up", "ul2tp_session_reorder_queue_depth",
		"ul2tp_session_pump_restarts_total", "ul2tp_tunnel_tx_bytes_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if got, want := testutil.CollectAndCount(c), 3+len(counters)+3+2*(len(counters)+3); got != want {
		t.Errorf("CollectAndCount = %d, want %d", got, want)
	}
	f.ss = f.ss[1:]
	if got, want := testutil.CollectAndCount(c, "ul2tp_session_up"), 1; got != want {
		t.Errorf("after del session: %d ul2tp_session_up, want %d", got, want)
	}
	if n := len(c.labels.sessions); n != 1 {
		t.Errorf("label cache holds %d sessions after del session, want 1", n)
	}
	f.ss[0].(*fakeSession).name = "renamed"
	if got := sum(t, c, "ul2tp_session_up"); got != 1 {
		t.Errorf("ul2tp_session_up = %v after a rename", got)
	}
	if l := c.labels.sessions[f.ss[0]]; l == nil || l.labels[0].GetValue() != "renamed" {
		t.Errorf("label cache did not follow the interface's new name")
	}
}

// TestScrapeAllocs bounds what a scrape allocates as sessions grow: the
// Collector's own allocations, once the labels are cached, do not grow
// with the sessions at all, and a whole scrape's (the client library's
// gathering and encoding included) grow linearly.
func TestScrapeAllocs(t *testing.T) {
	collect := func(f *fakeSource) float64 {
		c := newCollector(f)
		ch := make(chan prometheus.Metric, 64)
		done := make(chan struct{})
		go func() {
			for range ch {
			}
			close(done)
		}()
		defer func() { close(ch); <-done }()
		return testing.AllocsPerRun(2, func() { c.Collect(ch) })
	}
	small, large := collect(newFakeSource(10, 10)), collect(newFakeSource(10, 1000))
	if large > small+5 {
		t.Errorf("Collect allocates %v times for 100 sessions, %v for 10,000: want no growth with sessions", small, large)
	}
	scrape := func(f *fakeSource) float64 {
		r := prometheus.NewRegistry()
		r.MustRegister(newCollector(f))
		h := promhttp.HandlerFor(r, promhttp.HandlerOpts{})
		req := httptest.NewRequest("GET", "/metrics", nil)
		return testing.AllocsPerRun(2, func() { h.ServeHTTP(&discardResponse{h: http.Header{}}, req) })
	}
	small, large = scrape(newFakeSource(10, 50)), scrape(newFakeSource(10, 200))
	t.Logf("a scrape allocates %v times for 500 sessions, %v for 2,000", small, large)
	if large > 4.4*small {
		t.Errorf("a scrape allocates %v times for 500 sessions, %v for 2,000: want at most linear growth", small, large)
	}
}

// TestValues checks that values reads every datapath counter, each under
// its own name in counters.
func TestValues(t *testing.T) {
	var st datapath.Stats
	v := reflect.ValueOf(&st).Elem()
	field := map[string]int{} // lower-case field name without "_" -> value
	for i := range v.NumField() {
		if f := v.Field(i); f.CanUint() {
			f.SetUint(uint64(i + 1))
			field[strings.ToLower(v.Type().Field(i).Name)] = i + 1
		}
	}
	if len(field) != len(counters) {
		t.Errorf("datapath.Stats has %d counters, the collector %d", len(field), len(counters))
	}
	got := values(&st)
	for i, k := range counters {
		if want := field[strings.ReplaceAll(k.name, "_", "")]; want == 0 || got[i] != uint64(want) {
			t.Errorf("%s: %d, want %d", k.name, got[i], want)
		}
	}
}
