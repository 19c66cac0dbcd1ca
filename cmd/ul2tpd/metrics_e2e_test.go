package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
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
// a session's counters match show session's, read before and after each
// scrape while traffic flows, and a deleted session is gone from the next
// scrape.
func TestE2EMetrics(t *testing.T) {
	const addr = "127.0.0.1:9701"
	p := newPseudowire(t, "met0", []string{"--metrics-listen", addr}, nil)
	e, a := p.e, p.a
	e.ip("-n", e.nsA, "link", "set", "lo", "up")
	e.ping(e.nsA, p.innerB)
	first, body := scrapeDuringTraffic(t, a, e.nsA, addr, p.innerB)
	if first.Stats.RxPackets == 0 {
		t.Errorf("show session's rx_packets 0 after a ping")
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

// scrapeDuringTraffic pings dst from ns, 500 a second, and meanwhile
// scrapes addr and shows session 11 of tunnel 1 before and after each
// scrape: each scraped counter lies between the two shows' (counters only
// grow), and the traffic moved them across the scrapes. It returns the
// first show and the last scrape.
func scrapeDuringTraffic(t *testing.T, d *daemon, ns, addr, dst string) (sessionJSON, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ping := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "ping", "-n", "-q", "-i", "0.002", "-w", "25", dst)
	if err := ping.Start(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	defer func() {
		_ = ping.Process.Kill()
		_ = ping.Wait()
	}()
	const labels = `{name="met0",session_id="11",tunnel_id="1"}`
	get := map[string]func(*statsJSON) uint64{
		"rx_packets": func(s *statsJSON) uint64 { return s.RxPackets },
		"tx_packets": func(s *statsJSON) uint64 { return s.TxPackets },
		"rx_bytes":   func(s *statsJSON) uint64 { return s.RxBytes },
		"tx_bytes":   func(s *statsJSON) uint64 { return s.TxBytes },
	}
	first := d.session(1, 11)
	before := first
	var body string
	for i := 0; i < 8; i++ {
		time.Sleep(100 * time.Millisecond)
		body = scrape(t, ns, addr)
		after := d.session(1, 11)
		for name, f := range get {
			series := "ul2tp_session_" + name + "_total" + labels
			v, ok := metricValue(t, body, series)
			if !ok {
				t.Fatalf("no %s in scrape:\n%s", series, body)
			}
			if lo, hi := f(before.Stats), f(after.Stats); v < float64(lo) || v > float64(hi) {
				t.Errorf("scrape %d: %s = %v, show session's %s %d before it and %d after", i, series, v, name, lo, hi)
			}
		}
		before = after
	}
	if before.Stats.TxPackets == first.Stats.TxPackets || before.Stats.RxPackets == first.Stats.RxPackets {
		t.Errorf("no traffic across the scrapes: tx_packets %d -> %d, rx_packets %d -> %d",
			first.Stats.TxPackets, before.Stats.TxPackets, first.Stats.RxPackets, before.Stats.RxPackets)
	}
	return first, body
}
