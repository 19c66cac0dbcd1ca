package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// Scale test size: sessions over tunnels on one daemon, and the most RSS
// the daemon may have with all of them.
const (
	scaleTunnels  = 200
	scaleSessions = 10000
	scaleMaxRSS   = 512 << 20
)

// scaleSize is the number of sessions to make: scaleSessions, or
// UL2TP_SCALE_SESSIONS (a multiple of scaleTunnels) to compare smaller runs.
func scaleSize(t *testing.T) int {
	s := os.Getenv("UL2TP_SCALE_SESSIONS")
	if s == "" {
		return scaleSessions
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < scaleTunnels || n%scaleTunnels != 0 {
		t.Fatalf("UL2TP_SCALE_SESSIONS=%q: want a multiple of %d", s, scaleTunnels)
	}
	return n
}

// TestE2EScale creates scaleSessions sessions over scaleTunnels tunnels
// (one socket: every tunnel on the same local port, to a peer port of its
// own) on one daemon through its API socket, prints the daemon's RSS,
// file descriptors, goroutines and the create and delete rates, and
// checks the RSS. It runs only with UL2TP_SCALE=1 (make scale).
func TestE2EScale(t *testing.T) {
	if os.Getenv("UL2TP_SCALE") == "" {
		t.Skip("set UL2TP_SCALE=1 (make scale) to run the scale test")
	}
	e := newEnv(t)
	const debugAddr = "127.0.0.1:6061"
	d := e.startDaemon(e.nsA, "--log-level", "warn", "--debug-addr", debugAddr)
	pid := d.cmd.Process.Pid
	report := func(when string) {
		t.Logf("%-26s RSS %6.1f MiB  fds %6d  goroutines %6d  threads %4d", when,
			float64(procStatus(t, pid, "VmRSS"))/(1<<20), countFDs(t, pid), goroutines(t, e.nsA, debugAddr),
			procStatus(t, pid, "Threads"))
	}
	report("started")

	sessions := scaleSize(t)
	perTunnel := sessions / scaleTunnels
	start := time.Now()
	scaleEach(t, d, func(tid uint32) []api.Request {
		reqs := []api.Request{{Op: api.OpAddTunnel, Tunnel: &api.TunnelArgs{
			TunnelID: tid, PeerTunnelID: tid, Local: e.outer4(1).String(), Remote: e.outer4(2).String(),
			UDPSport: 1701, UDPDport: uint16(20000 + tid)}}}
		for j := uint32(1); j <= uint32(perTunnel); j++ {
			sid := tid*1000 + j
			reqs = append(reqs, api.Request{Op: api.OpAddSession, Session: &api.SessionArgs{
				Name: fmt.Sprintf("sc%d", sid), TunnelID: tid, SessionID: sid, PeerSessionID: sid}})
		}
		return reqs
	})
	created := time.Since(start)
	t.Logf("created %d sessions over %d tunnels in %v: %.0f sessions/s", sessions, scaleTunnels,
		created.Round(time.Millisecond), float64(sessions)/created.Seconds())
	report("with every session")
	rss := procStatus(t, pid, "VmRSS")

	start = time.Now()
	scaleEach(t, d, func(tid uint32) []api.Request {
		return []api.Request{{Op: api.OpDelTunnel, Tunnel: &api.TunnelArgs{TunnelID: tid}}}
	})
	deleted := time.Since(start)
	t.Logf("deleted %d tunnels (%d sessions) in %v: %.0f sessions/s", scaleTunnels, sessions,
		deleted.Round(time.Millisecond), float64(sessions)/deleted.Seconds())
	report("after deleting them")
	time.Sleep(2 * time.Second) // the daemon returns memory a second after the last delete
	report("2 s later")
	if rss > scaleMaxRSS {
		t.Errorf("RSS with %d sessions is %d MiB, want under %d MiB", sessions, rss>>20, scaleMaxRSS>>20)
	}

	// One tunnel with bigTunnel sessions, deleted at once.
	const bigTunnel = 1000
	scaleDo(t, d, api.Request{Op: api.OpAddTunnel, Tunnel: &api.TunnelArgs{
		TunnelID: 1, PeerTunnelID: 1, Local: e.outer4(1).String(), Remote: e.outer4(2).String()}})
	for sid := uint32(1); sid <= bigTunnel; sid++ {
		scaleDo(t, d, api.Request{Op: api.OpAddSession, Session: &api.SessionArgs{
			Name: fmt.Sprintf("sc%d", sid), TunnelID: 1, SessionID: sid, PeerSessionID: sid}})
	}
	start = time.Now()
	scaleDo(t, d, api.Request{Op: api.OpDelTunnel, Tunnel: &api.TunnelArgs{TunnelID: 1}})
	t.Logf("deleted a tunnel with %d sessions in %v", bigTunnel, time.Since(start).Round(time.Millisecond))
}

// scaleClients is how many clients make requests at once in the scale
// test, each for its own tunnels.
const scaleClients = 8

// scaleEach sends the requests reqs makes for each tunnel id, the tunnels
// spread over scaleClients clients, and fails the test on an error.
func scaleEach(t *testing.T, d *daemon, reqs func(tid uint32) []api.Request) {
	t.Helper()
	errc := make(chan error, scaleClients)
	for c := uint32(0); c < scaleClients; c++ {
		go func() {
			for tid := 1 + c; tid <= scaleTunnels; tid += scaleClients {
				for _, r := range reqs(tid) {
					if err := scaleRequest(d, r); err != nil {
						errc <- err
						return
					}
				}
			}
			errc <- nil
		}()
	}
	for range scaleClients {
		if err := <-errc; err != nil {
			t.Fatalf("%v\n%s", err, d.log())
		}
	}
}

// scaleRequest sends one request to the daemon.
func scaleRequest(d *daemon, req api.Request) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := api.Do(ctx, d.socket, req)
	if err == nil && resp.Error != "" {
		err = fmt.Errorf("%s", resp.Error)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", req.Op, err)
	}
	return nil
}

// scaleDo sends one request to the daemon and fails the test on an error.
func scaleDo(t *testing.T, d *daemon, req api.Request) {
	t.Helper()
	if err := scaleRequest(d, req); err != nil {
		t.Fatalf("%v\n%s", err, d.log())
	}
}

// procStatus reads a field of /proc/PID/status: in bytes for a size (kB
// there), else the number.
func procStatus(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(val)
		n, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("/proc/%d/status %s: %v", pid, field, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		return n
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// countFDs counts the process's open file descriptors.
func countFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// goroutines asks the daemon's pprof server in ns for its goroutine count
// (the first line of /debug/pprof/goroutine?debug=1).
func goroutines(t *testing.T, ns, addr string) int {
	t.Helper()
	return pprofNumber(t, ns, addr, "/debug/pprof/goroutine?debug=1", "goroutine profile: total ")
}

// pprofNumber asks the daemon's pprof server in ns for path and returns
// the number after prefix on the first line that starts with it. The
// request is made by hand: net/http would dial from another thread,
// outside ns.
func pprofNumber(t *testing.T, ns, addr, path, prefix string) int {
	t.Helper()
	var n int
	err := inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr); err != nil {
			return err
		}
		sc := bufio.NewScanner(c)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				n, err = strconv.Atoi(rest)
				return err
			}
		}
		return fmt.Errorf("no %q in %s from pprof at %s: %v", prefix, path, addr, sc.Err())
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
