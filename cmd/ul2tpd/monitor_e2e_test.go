package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// monitorEvent is one line of "ul2tp -j monitor", written from the
// documented keys (docs/api.md) rather than taken from package api.
type monitorEvent struct {
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	TunnelID  uint32    `json:"tunnel_id"`
	SessionID uint32    `json:"session_id"`
	Interface string    `json:"interface"`
	Reason    string    `json:"reason"`
	Count     uint64    `json:"count"`
	Detail    string    `json:"detail"`
	// PPP events' keys.
	Phase     string `json:"phase"`
	FromPhase string `json:"from_phase"`
	User      string `json:"user"`
	Method    string `json:"method"`
	Role      string `json:"role"`
}

// monitorProc is "ul2tp -j monitor" running against a daemon.
type monitorProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	events chan monitorEvent
	done   chan struct{} // closed when the process has exited
	mu     sync.Mutex
	seen   []monitorEvent
	stderr strings.Builder
}

// startMonitor starts "ul2tp -j monitor" against d and waits until it
// is subscribed: it adds and deletes a tunnel (id 999) until the monitor
// shows it.
func (d *daemon) startMonitor() *monitorProc {
	t := d.e.t
	t.Helper()
	m := &monitorProc{t: t, events: make(chan monitorEvent, 1024), done: make(chan struct{})}
	m.cmd = exec.Command(filepath.Join(d.e.bin, "ul2tp"), "--socket", d.socket, "monitor", "-j")
	m.cmd.Stderr = &m.stderr
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start ul2tp monitor: %v", err)
	}
	t.Cleanup(func() {
		if m.alive() {
			_ = m.cmd.Process.Kill()
			<-m.done
		}
	})
	go func() {
		defer close(m.done)
		defer m.cmd.Wait()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e monitorEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("ul2tp -j monitor printed %q: %v", sc.Text(), err)
				continue
			}
			m.events <- e
		}
	}()
	remote := d.e.outer4(99).String()
	for try := 0; ; try++ {
		if try == 50 {
			t.Fatalf("ul2tp monitor shows no event after 50 tries; stderr: %s", m.stderr.String())
		}
		d.mustCLI("add", "tunnel", "tunnel_id", "999", "peer_tunnel_id", "999", "remote", remote, "udp_sport", "1999")
		d.mustCLI("del", "tunnel", "tunnel_id", "999")
		if _, ok := m.wait(200*time.Millisecond, func(e monitorEvent) bool { return e.Event == "tunnel_deleted" && e.TunnelID == 999 }); ok {
			return m
		}
	}
}

func (m *monitorProc) alive() bool {
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// wait reads events until one satisfies ok or limit passes; every event
// read is kept in m.seen.
func (m *monitorProc) wait(limit time.Duration, ok func(monitorEvent) bool) (monitorEvent, bool) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case e := <-m.events:
			m.mu.Lock()
			m.seen = append(m.seen, e)
			m.mu.Unlock()
			if ok(e) {
				return e, true
			}
		case <-timer.C:
			return monitorEvent{}, false
		}
	}
}

// must waits up to 10s for an event ok accepts, and fails the test
// without one.
func (m *monitorProc) must(what string, ok func(monitorEvent) bool) monitorEvent {
	m.t.Helper()
	e, found := m.wait(10*time.Second, ok)
	if !found {
		m.t.Fatalf("ul2tp monitor: no %s event in 10s; saw %+v", what, m.seen)
	}
	return e
}

// TestE2EMonitor follows a session's life and a cookie mismatch with
// "ul2tp -j monitor": the tunnel and session added, the drops of
// packets with a wrong cookie (paced, with their count), the session
// deleted; then SIGINT ends the monitor with status 0.
func TestE2EMonitor(t *testing.T) {
	e := newEnv(t)
	a, b := e.startDaemon(e.nsA), e.startDaemon(e.nsB)
	m := a.startMonitor()
	la, lb := e.outer4(1).String(), e.outer4(2).String()
	innerA, innerB := fmt.Sprintf("10.214.%d.1", e.n), fmt.Sprintf("10.214.%d.2", e.n)
	a.mustCLI("add", "tunnel", "tunnel_id", "1", "peer_tunnel_id", "2", "local", la, "remote", lb)
	b.mustCLI("add", "tunnel", "tunnel_id", "2", "peer_tunnel_id", "1", "local", lb, "remote", la)
	a.mustCLI("add", "session", "name", "mon0", "tunnel_id", "1", "session_id", "11", "peer_session_id", "22",
		"cookie", "11223344", "peer_cookie", "55667788")
	b.mustCLI("add", "session", "name", "mon0", "tunnel_id", "2", "session_id", "22", "peer_session_id", "11",
		"cookie", "55667788", "peer_cookie", "11223344")
	a.upTAP("mon0", innerA+"/24")
	b.upTAP("mon0", innerB+"/24")
	e.ping(e.nsA, innerB)

	m.must("tunnel_added 1", func(ev monitorEvent) bool { return ev.Event == "tunnel_added" && ev.TunnelID == 1 })
	m.must("session_added 1/11", func(ev monitorEvent) bool {
		return ev.Event == "session_added" && ev.TunnelID == 1 && ev.SessionID == 11 && ev.Interface == "mon0"
	})

	// B now sends the wrong cookie: A drops what it sends.
	b.mustCLI("del", "session", "tunnel_id", "2", "session_id", "22")
	b.mustCLI("add", "session", "name", "mon0", "tunnel_id", "2", "session_id", "22", "peer_session_id", "11",
		"cookie", "deadbeef", "peer_cookie", "11223344")
	b.upTAP("mon0", innerB+"/24")
	// Pings from B for three seconds, none answered: 15 echo requests (a
	// static neighbour entry, so they go without waiting for ARP).
	e.ip("-n", e.nsB, "neigh", "replace", innerA, "lladdr", e.macOf(e.nsA, "mon0").String(), "dev", "mon0", "nud", "permanent")
	_, _ = runCmd(20*time.Second, "ip", "netns", "exec", e.nsB, "ping", "-n", "-c", "15", "-i", "0.2", "-W", "1", innerA)
	isDrop := func(ev monitorEvent) bool {
		return ev.Event == "drop" && ev.Reason == "cookie-mismatch" && ev.TunnelID == 1 && ev.SessionID == 11 &&
			ev.Interface == "mon0"
	}
	first := m.must("cookie-mismatch drop", isDrop)
	if first.Count < 1 {
		t.Errorf("first drop event without a count: %+v", first)
	}
	// The drops that follow within a second are suppressed and counted
	// in the next event.
	second := m.must("second cookie-mismatch drop", isDrop)
	if second.Count < 2 {
		t.Errorf("second drop event counts %d, want the suppressed drops too: %+v", second.Count, second)
	}
	discards := a.session(1, 11).Stats.RxCookieDiscards
	t.Logf("cookie-mismatch events: count %d, then %d; rx_cookie_discards %d", first.Count, second.Count, discards)
	if first.Count+second.Count > discards {
		t.Errorf("drop events count %d+%d, more than rx_cookie_discards %d", first.Count, second.Count, discards)
	}

	a.mustCLI("del", "session", "tunnel_id", "1", "session_id", "11")
	m.must("session_deleted 1/11", func(ev monitorEvent) bool {
		return ev.Event == "session_deleted" && ev.TunnelID == 1 && ev.SessionID == 11 && ev.Interface == "mon0"
	})

	if err := m.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		t.Fatal("ul2tp monitor still running 10s after SIGINT")
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("ul2tp monitor exited %d after SIGINT, want 0; stderr: %s", code, m.stderr.String())
	}
}

// TestE2EMonitorStuckClient: a monitor client that asks for events and
// never reads them, while a flood of drops and a stream of tunnel events
// run, stops neither traffic nor the daemon's answers; its events are
// dropped, and the daemon closes its connection once a write has waited
// for it too long.
func TestE2EMonitorStuckClient(t *testing.T) {
	p := newPseudowire(t, "stuck0", nil, nil)
	e, a := p.e, p.a
	stuck, err := net.Dial("unix", a.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if _, err := stuck.Write([]byte(`{"op":"monitor"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	// Never read from here on.

	// A flood from B to A's tunnel port from a port no tunnel uses:
	// dropped as unmatched-peer, one event a second.
	ctx, cancel := context.WithCancel(context.Background())
	var flood sync.WaitGroup
	flood.Add(1)
	go func() {
		defer flood.Done()
		err := inNetns(e.nsB, func() error {
			c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.outer4(2), 1777)),
				net.UDPAddrFromAddrPort(netip.AddrPortFrom(e.outer4(1), 1701)))
			if err != nil {
				return err
			}
			defer c.Close()
			pkt := make([]byte, 100)
			for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
				_, _ = c.Write(pkt) // ECONNREFUSED and the like are of no interest
			}
			return nil
		})
		if err != nil {
			t.Errorf("flood: %v", err)
		}
	}()
	defer func() {
		cancel()
		flood.Wait()
	}()

	// Enough events to fill the stuck client's buffer and socket: 2,000
	// tunnels added and deleted on A's socket, over one connection.
	c, err := net.Dial("unix", a.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := range 1000 {
		id := 1000 + i
		remote := netip.AddrFrom4([4]byte{10, 215, byte(i >> 8), byte(i)}).String()
		for _, req := range []string{
			fmt.Sprintf(`{"op":"add_tunnel","tunnel":{"tunnel_id":%d,"peer_tunnel_id":%d,"local":%q,"remote":%q,"udp_sport":1701,"udp_dport":1701}}`,
				id, id, e.outer4(1).String(), remote),
			fmt.Sprintf(`{"op":"del_tunnel","tunnel":{"tunnel_id":%d}}`, id),
		} {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(req + "\n")); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			line, err := r.ReadBytes('\n')
			if err != nil || strings.Contains(string(line), `"error"`) {
				t.Fatalf("request %s: %v %s", req, err, line)
			}
		}
	}

	// Traffic flows and the daemon answers, the stuck client there.
	e.ping(e.nsA, p.innerB)
	e.ping(e.nsB, p.innerA)
	if s := a.session(1, 11); s.State != "up" {
		t.Errorf("session %+v", s)
	}
	// The stuck client is cut off once a write has waited for it
	// (10s, the request timeout).
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.log(), "monitor client dropped") {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not drop the stuck monitor client in 30s:\n%s", a.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.ping(e.nsA, p.innerB)
}
