package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// scrape fetches /metrics from addr inside ns. It dials in ns itself
// (http.Transport would dial on another thread, outside it).
func scrape(t *testing.T, ns, addr string) string {
	t.Helper()
	var conn net.Conn
	err := inNetns(ns, func() error {
		c, err := net.Dial("tcp", addr)
		conn = c
		return err
	})
	if err != nil {
		t.Fatalf("dial %s in %s: %v", addr, ns, err)
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Close = true
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("scrape %s in %s: %v", addr, ns, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s in %s: %s %v", addr, ns, resp.Status, err)
	}
	return string(b)
}

// metricValue is the value of the sample line starting with prefix (a
// name and its labels) in a scrape, and whether there is one.
func metricValue(t *testing.T, body, prefix string) (float64, bool) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", prefix, err)
	}
	return v, true
}

// TestE2EMetrics scrapes --metrics-listen inside the daemon's namespace:
// a session's counters match show session's, and a deleted session is gone
// from the next scrape.
func TestE2EMetrics(t *testing.T) {
	const addr = "127.0.0.1:9701"
	p := newPseudowire(t, "met0", []string{"--metrics-listen", addr}, nil)
	e, a := p.e, p.a
	e.ip("-n", e.nsA, "link", "set", "lo", "up")
	e.ping(e.nsA, p.innerB)
	s := a.session(1, 11)
	body := scrape(t, e.nsA, addr)
	series := `ul2tp_session_rx_packets_total{name="met0",session_id="11",tunnel_id="1"}`
	v, ok := metricValue(t, body, series)
	if !ok {
		t.Fatalf("no %s in scrape:\n%s", series, body)
	}
	if v < float64(s.Stats.RxPackets) || s.Stats.RxPackets == 0 {
		t.Errorf("%s = %v, show session's rx_packets %d", series, v, s.Stats.RxPackets)
	}
	for _, want := range []string{
		`ul2tp_session_up{name="met0",session_id="11",tunnel_id="1"} 1`,
		`ul2tp_sessions 1`, `ul2tp_tunnels 1`, `ul2tp_build_info{goversion="`,
		`ul2tp_tunnel_rx_packets_total{tunnel_id="1"}`, `ul2tp_socket_unmatched_total{local="`,
		`ul2tp_session_tx_tso_frames_total{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	a.mustCLI("del", "session", "tunnel_id", "1", "session_id", "11")
	body = scrape(t, e.nsA, addr)
	if strings.Contains(body, `session_id="11"`) {
		t.Errorf("deleted session still in scrape")
	}
	if _, ok := metricValue(t, body, "ul2tp_sessions"); !ok || !strings.Contains(body, "\nul2tp_sessions 0\n") {
		t.Errorf("ul2tp_sessions not 0 after del session")
	}
}
