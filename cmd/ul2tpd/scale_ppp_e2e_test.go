package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"golang.org/x/sys/unix"
)

// PPP scale test size: LAC tunnels to one LNS and PPP calls per tunnel.
// UL2TP_SCALE_PPP_TUNNELS and UL2TP_SCALE_PPP_CALLS make smaller runs,
// UL2TP_SCALE_PPP_IDLE (seconds) a shorter idle time, and
// UL2TP_SCALE_PPP_HEAP=FILE saves the LNS's heap profile at the end.
const (
	scalePPPTunnels = 100
	scalePPPCalls   = 10
	scalePPPIdle    = 60 * time.Second
)

// TestE2EScalePPP measures one LNS daemon (namespace B) holding
// scalePPPTunnels*scalePPPCalls PPP calls from one LAC daemon of ours
// (namespace A): PAP against a chap-secrets file, an address each from
// the pool, a TUN device per call at each end. Every call passes
// traffic: a UDP datagram from the LAC's namespace, sent from a socket
// bound to the call's TUN and address, to an echo server on the LNS's
// local address, and the echo back through the same call. It logs the
// setup rate (calls with PPP open per second), the LNS's live heap
// (after a GC), RSS, goroutines and fds per call, the kernel's slab
// growth, the LNS's CPU time over 60 s idle (with the daemons' default
// HELLO and LCP echo timers), and the teardown time (the
// LAC daemon stopping: StopCCNs, 1,000 TUNs removed at each end). It
// runs only with UL2TP_SCALE=1 (make scale-ppp).
func TestE2EScalePPP(t *testing.T) {
	if os.Getenv("UL2TP_SCALE") == "" {
		t.Skip("set UL2TP_SCALE=1 (make scale-ppp) to run the scale test")
	}
	tunnels := scaleV2Size(t, "UL2TP_SCALE_PPP_TUNNELS", scalePPPTunnels)
	calls := scaleV2Size(t, "UL2TP_SCALE_PPP_CALLS", scalePPPCalls)
	n := tunnels * calls
	raiseNoFile(t, uint64(n)+1024) // a socket per call in this process
	e := newEnv(t)
	const debugAddr, metricsAddr = "127.0.0.1:6063", "127.0.0.1:9663"
	lnsAddr := e.outer4(2)
	secrets := filepath.Join(e.dir, "chap-secrets")
	if err := os.WriteFile(secrets, []byte("scale * \"scale pass\" *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// local_ip and a pool of 10.98.0.10 to 10.98.7.250 (2,033 addresses).
	const local = "10.98.0.1"
	lnsFile := filepath.Join(e.dir, "lns.toml")
	lnsConf := fmt.Sprintf(`[lns]
listen = "%s:1701"
max_tunnels = %d
max_calls = %d
max_pending = %d
ppp_auth = "pap"
chap_secrets = %q
ppp_name = "lns"
local_ip = %q
pool = "10.98.0.10-10.98.7.250"
`, lnsAddr, tunnels+10, calls+10, tunnels+10, secrets, local)
	if err := os.WriteFile(lnsFile, []byte(lnsConf), 0o600); err != nil {
		t.Fatal(err)
	}
	lacFile := filepath.Join(e.dir, "lac.toml")
	if err := os.WriteFile(lacFile, []byte(scalePPPLACConfig(lnsAddr.String(), tunnels, calls)), 0o600); err != nil {
		t.Fatal(err)
	}

	slab0 := meminfo(t, "Slab")
	lns := e.startDaemon(e.nsB, "--config", lnsFile, "--log-level", "warn",
		"--debug-addr", debugAddr, "--metrics-listen", metricsAddr)
	pid := lns.cmd.Process.Pid
	waitListening(t, e.nsB, debugAddr)
	report := func(when string) (heap, rss int) {
		heap, rss = heapInuse(t, e.nsB, debugAddr), procStatus(t, pid, "VmRSS")
		t.Logf("LNS %-22s heap %7.2f MiB  RSS %6.1f MiB  fds %5d  goroutines %5d  threads %3d", when,
			float64(heap)/(1<<20), float64(rss)/(1<<20), countFDs(t, pid), goroutines(t, e.nsB, debugAddr),
			procStatus(t, pid, "Threads"))
		return heap, rss
	}
	h0, r0 := report("started")
	g0 := goroutines(t, e.nsB, debugAddr)

	start := time.Now()
	lac := e.startDaemon(e.nsA, "--config", lacFile, "--log-level", "warn")
	// Poll the LNS's calls until every one has PPP open (IPCP done,
	// TUN configured), for up to 10 minutes.
	var open []api.SessionInfo
	var took time.Duration
	for i := 0; ; i++ {
		open = pppOpen(t, lns)
		if len(open) == n {
			took = time.Since(start)
			break
		}
		if i == 600 {
			t.Fatalf("%d of %d calls have PPP open on the LNS after 10 minutes", len(open), n)
		}
		time.Sleep(time.Second)
	}
	t.Logf("%d tunnels with %d calls: %d PPP calls open on the LNS in %v: %.1f calls/s",
		tunnels, calls, n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	time.Sleep(2 * time.Second)
	h1, r1 := report(fmt.Sprintf("with %d PPP calls", n))
	g1 := goroutines(t, e.nsB, debugAddr)
	slab1 := meminfo(t, "Slab")
	t.Logf("per call on the LNS: heap %.2f KiB, RSS %.2f KiB, goroutines %.2f; kernel Slab +%.1f MiB for %d TUNs at each end (%.1f KiB per TUN, machine-wide, noisy)",
		float64(h1-h0)/float64(n)/1024, float64(r1-r0)/float64(n)/1024, float64(g1-g0)/float64(n),
		float64(slab1-slab0)/(1<<20), n, float64(slab1-slab0)/float64(2*n)/1024)
	peers := map[string]bool{}
	for _, s := range open {
		peers[s.Call.PPPPeer] = true
	}
	if len(peers) != n {
		t.Errorf("%d calls open but %d distinct peer addresses", n, len(peers))
	}

	// Traffic: one datagram each way through every call.
	lacCalls := pppOpen(t, lac)
	if len(lacCalls) != n {
		t.Fatalf("LAC has %d calls with PPP open, want %d", len(lacCalls), n)
	}
	start = time.Now()
	if failed := pppEchoEach(t, e, lacCalls, local); len(failed) > 0 {
		t.Errorf("%d of %d calls passed no traffic, e.g. %v", len(failed), n, failed[:min(5, len(failed))])
	}
	t.Logf("a UDP echo through each of the %d calls (LAC namespace to %s and back) in %v", n, local,
		time.Since(start).Round(time.Millisecond))

	idle := time.Duration(scaleV2Size(t, "UL2TP_SCALE_PPP_IDLE", int(scalePPPIdle/time.Second))) * time.Second
	t0, lt0 := cpuTicks(t, pid), cpuTicks(t, lac.cmd.Process.Pid)
	time.Sleep(idle)
	t1, lt1 := cpuTicks(t, pid), cpuTicks(t, lac.cmd.Process.Pid)
	t.Logf("idle %v (the daemons' default HELLO and LCP echo timers): LNS CPU %d ms (%.3f%% of a core), LAC CPU %d ms",
		idle, (t1-t0)*10, float64((t1-t0)*10)/float64(idle.Milliseconds())*100, (lt1-lt0)*10)
	report("after idle")

	// Teardown: the LAC daemon stops (a StopCCN per tunnel, its TUNs
	// removed); the LNS ends the calls and removes its TUNs.
	start = time.Now()
	lacExit := stopWithin(t, lac, 5*time.Minute)
	t.Logf("LAC daemon exited in %v (StopCCNs sent, %d TUNs removed)", lacExit.Round(time.Millisecond), n)
	for i := 0; ; i++ {
		tuns := countLinks(t, e.nsB, "ppp")
		body := scrape(t, e.nsB, metricsAddr)
		cl, _ := metricValue(t, body, "ul2tp_l2tpv2_calls")
		if tuns == 0 && cl == 0 {
			break
		}
		if i == 1200 {
			t.Fatalf("LNS: %v calls and %d TUNs 5 minutes after the LAC stopped", cl, tuns)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("LNS back to 0 calls and 0 TUNs %v after the LAC was told to stop", time.Since(start).Round(time.Millisecond))
	report("after teardown")
	// The LNS keeps a stopped tunnel a while (to ack a retransmitted
	// StopCCN); the memory of its calls goes with it.
	for i := 0; ; i++ {
		tn, _ := metricValue(t, scrape(t, e.nsB, metricsAddr), "ul2tp_l2tpv2_tunnels")
		if tn == 0 {
			break
		}
		if i == 240 {
			t.Errorf("LNS: %v tunnels 2 minutes after its calls ended", tn)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("LNS back to 0 tunnels %v after the LAC was told to stop", time.Since(start).Round(time.Millisecond))
	report("tunnels gone")
	time.Sleep(30 * time.Second)
	report("30 s later")
	if f := os.Getenv("UL2TP_SCALE_PPP_HEAP"); f != "" {
		saveHeapProfile(t, e.nsB, debugAddr, f)
	}
	t.Logf("LNS daemon exited in %v", stopWithin(t, lns, 5*time.Minute).Round(time.Millisecond))
}

// scalePPPLACConfig is a LAC daemon's config: tunnels l2tpv2 tunnels to
// lns:1701, on one local socket, with calls PPP calls each (PAP user
// "scale").
func scalePPPLACConfig(lns string, tunnels, calls int) string {
	var b strings.Builder
	for i := range tunnels {
		fmt.Fprintf(&b, "[tunnel.t%d]\nversion = \"l2tpv2\"\npeer = \"%s:1701\"\nlocal = \"0.0.0.0:1701\"\n", i, lns)
		for j := range calls {
			fmt.Fprintf(&b, "[tunnel.t%d.session.c%d]\npseudowire = \"ppp\"\nuser = \"scale\"\npassword = \"scale pass\"\n", i, j)
		}
	}
	return b.String()
}

// pppOpen is d's L2TPv2 calls whose PPP link is open.
func pppOpen(t *testing.T, d *daemon) []api.SessionInfo {
	t.Helper()
	out, errOut, code := d.cli("-j", "show", "session")
	if code != 0 {
		t.Fatalf("ul2tp -j show session: exit %d: %s", code, errOut)
	}
	var ss, open []api.SessionInfo
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		t.Fatalf("ul2tp -j show session: %v", err)
	}
	for _, s := range ss {
		if s.Version == 2 && s.Call != nil && s.Call.PPP == "open" && s.Call.PPPInterface != "" {
			open = append(open, s)
		}
	}
	return open
}

// pppEchoEach sends a UDP datagram through each of the LAC's calls to an
// echo server on the LNS's address dst, from a socket in the LAC's
// namespace bound to the call's TUN (SO_BINDTODEVICE) and address, and
// waits for the echo on that socket: it can only come back through the
// same call. 64 calls at a time, 3 tries of 2 s each. It returns the
// TUNs of the calls that got no echo.
func pppEchoEach(t *testing.T, e *env, calls []api.SessionInfo, dst string) []string {
	t.Helper()
	srv := listenIn(t, e.nsB, func() (*net.UDPConn, error) {
		return net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(dst)})
	})
	defer srv.Close()
	_ = srv.SetReadBuffer(4 << 20)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	to := srv.LocalAddr().(*net.UDPAddr).AddrPort()
	conns := make([]*net.UDPConn, len(calls))
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := inNetns(e.nsA, func() error {
		for i, s := range calls {
			c, err := boundUDP(s.Call.PPPInterface, s.Call.PPPLocal)
			if err != nil {
				return err
			}
			conns[i] = c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
		sem    = make(chan struct{}, 64)
	)
	for i, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if !udpEcho(c, to, fmt.Sprintf("call %d via %s", i, calls[i].Call.PPPInterface)) {
				mu.Lock()
				failed = append(failed, calls[i].Call.PPPInterface)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// boundUDP opens a UDP socket bound to local:0 and to the device dev.
func boundUDP(dev, local string) (*net.UDPConn, error) {
	a, err := netip.ParseAddr(local)
	if err != nil {
		return nil, fmt.Errorf("call on %s: local address %q: %w", dev, local, err)
	}
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", local, err)
	}
	rc, err := c.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("SO_BINDTODEVICE %s: %w", dev, err)
	}
	return c, nil
}

// udpEcho sends msg to `to` and waits for it to come back, 3 tries of 2 s.
func udpEcho(c *net.UDPConn, to netip.AddrPort, msg string) bool {
	buf := make([]byte, 2048)
	for range 3 {
		if _, err := c.WriteToUDPAddrPort([]byte(msg), to); err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			if string(buf[:n]) == msg {
				return true
			}
		}
	}
	return false
}

// raiseNoFile raises this process's RLIMIT_NOFILE soft limit to at least
// n (up to the hard limit).
func raiseNoFile(t *testing.T, n uint64) {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("RLIMIT_NOFILE hard limit %d: need %d", lim.Max, n)
	}
	lim.Cur = n
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// meminfo reads a field of /proc/meminfo, in bytes.
func meminfo(t *testing.T, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, val, ok := strings.Cut(line, ":"); ok && name == field {
			kb, err := strconv.Atoi(strings.Fields(val)[0])
			if err != nil {
				t.Fatalf("/proc/meminfo %s: %v", field, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/meminfo has no %s", field)
	return 0
}

// waitListening waits up to 10 s for addr in ns to take a TCP connection
// (the daemon's debug server starts after its API socket answers).
func waitListening(t *testing.T, ns, addr string) {
	t.Helper()
	var err error
	for range 100 {
		if err = inNetns(ns, func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s in %s: %v", addr, ns, err)
}

// saveHeapProfile writes the heap profile (after a GC) of the daemon's
// pprof server at addr in ns to file, for go tool pprof.
func saveHeapProfile(t *testing.T, ns, addr, file string) {
	t.Helper()
	err := inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(c, "GET /debug/pprof/heap?gc=1 HTTP/1.0\r\nHost: %s\r\n\r\n", addr); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		_, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
		if !ok {
			return fmt.Errorf("no HTTP body from %s", addr)
		}
		return os.WriteFile(file, body, 0o644)
	})
	if err != nil {
		t.Errorf("heap profile: %v", err)
		return
	}
	t.Logf("LNS heap profile in %s", file)
}

// countLinks counts the interfaces in ns whose name starts with prefix.
func countLinks(t *testing.T, ns, prefix string) int {
	t.Helper()
	out, err := runCmd(30*time.Second, "ip", "-n", ns, "-o", "link", "show")
	if err != nil {
		t.Fatalf("ip -n %s link show: %v\n%s", ns, err, out)
	}
	k := 0
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], prefix) {
			k++
		}
	}
	return k
}

// stopWithin sends d SIGTERM and waits up to limit for it to exit 0
// (daemon.stop gives up after 10 s, too short for a daemon removing a
// thousand TUNs), and returns how long it took.
func stopWithin(t *testing.T, d *daemon, limit time.Duration) time.Duration {
	t.Helper()
	var took time.Duration
	d.stopOnce.Do(func() {
		start := time.Now()
		if err := d.cmd.Process.Signal(unix.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("SIGTERM ul2tpd (pid %d): %v", d.cmd.Process.Pid, err)
		}
		select {
		case <-d.done:
			took = time.Since(start)
		case <-time.After(limit):
			t.Errorf("ul2tpd in %s still running %v after SIGTERM; killing it", d.ns, limit)
			_ = d.cmd.Process.Kill()
			<-d.done
			return
		}
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("ul2tpd in %s exited with %v after SIGTERM, want 0:\n%s", d.ns, d.cmd.ProcessState, d.log())
		}
	})
	return took
}
