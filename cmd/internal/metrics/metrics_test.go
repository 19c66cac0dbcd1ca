//go:build !nometrics

package metrics

import (
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ul2tp/ul2tp/datapath"
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
	// Per tunnel: every counter and its socket's two; then ul2tp_tunnels,
	// ul2tp_sessions and ul2tp_build_info.
	if got, want := testutil.CollectAndCount(c), 2*(len(counters)+2)+3; got != want {
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
