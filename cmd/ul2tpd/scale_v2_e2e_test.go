package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// L2TPv2 scale test size: LAC tunnels to one LNS, and calls per tunnel.
// UL2TP_SCALE_V2_TUNNELS and UL2TP_SCALE_V2_CALLS make smaller runs.
const (
	scaleV2Tunnels = 1000
	scaleV2Calls   = 10
)

func scaleV2Size(t *testing.T, env string, def int) int {
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", env, s)
	}
	return n
}

// TestE2EScaleL2TPv2 measures one LNS daemon (namespace B) holding
// scaleV2Tunnels L2TPv2 tunnels and scaleV2Tunnels*scaleV2Calls calls
// from a LAC daemon (namespace A, one socket, tunnels and calls from a
// generated config). In two phases, each a LAC daemon of its own: the
// tunnels without calls, then the tunnels with their calls. It logs the
// setup time and rate, the LNS's live heap (after a GC) and RSS per
// tunnel and per call, its CPU time over 30 s idle (HELLO every 60 s),
// goroutines and fds, and the teardown time (the LAC daemon stopping:
// a StopCCN per tunnel). It runs only with UL2TP_SCALE=1 (make
// scale-v2).
func TestE2EScaleL2TPv2(t *testing.T) {
	if os.Getenv("UL2TP_SCALE") == "" {
		t.Skip("set UL2TP_SCALE=1 (make scale-v2) to run the scale test")
	}
	tunnels := scaleV2Size(t, "UL2TP_SCALE_V2_TUNNELS", scaleV2Tunnels)
	calls := scaleV2Size(t, "UL2TP_SCALE_V2_CALLS", scaleV2Calls)
	e := newEnv(t)
	const debugAddr, metricsAddr = "127.0.0.1:6062", "127.0.0.1:9662"
	lnsAddr := e.outer4(2)
	lnsFile := filepath.Join(e.dir, "lns.toml")
	lnsConf := fmt.Sprintf("[lns]\nlisten = \"%s:1701\"\nmax_tunnels = %d\nmax_calls = %d\nhello_timeout = 60000\n",
		lnsAddr, tunnels+10, calls+10)
	if err := os.WriteFile(lnsFile, []byte(lnsConf), 0o600); err != nil {
		t.Fatal(err)
	}
	lns := e.startDaemon(e.nsB, "--config", lnsFile, "--log-level", "warn",
		"--debug-addr", debugAddr, "--metrics-listen", metricsAddr)
	pid := lns.cmd.Process.Pid
	report := func(when string) (heap, rss int) {
		heap, rss = heapInuse(t, e.nsB, debugAddr), procStatus(t, pid, "VmRSS")
		t.Logf("LNS %-34s heap %7.2f MiB  RSS %6.1f MiB  fds %5d  goroutines %5d  threads %3d", when,
			float64(heap)/(1<<20), float64(rss)/(1<<20), countFDs(t, pid), goroutines(t, e.nsB, debugAddr),
			procStatus(t, pid, "Threads"))
		return heap, rss
	}
	gauges := func() (float64, float64) {
		body := scrape(t, e.nsB, metricsAddr)
		tn, _ := metricValue(t, body, "ul2tp_l2tpv2_tunnels")
		cl, _ := metricValue(t, body, "ul2tp_l2tpv2_calls")
		return tn, cl
	}
	// waitGauges polls the LNS's gauges until they read tn and cl, for
	// up to 5 minutes, and returns how long it took since start.
	waitGauges := func(what string, start time.Time, tn, cl int) time.Duration {
		t.Helper()
		var gt, gc float64
		for range 1200 {
			if gt, gc = gauges(); gt == float64(tn) && gc == float64(cl) {
				return time.Since(start)
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("%s: LNS has %v tunnels and %v calls after 5 minutes, want %d and %d", what, gt, gc, tn, cl)
		return 0
	}
	h0, r0 := report("started")

	phase := func(calls int) (heap, rss int) {
		// Each phase's LAC on a port of its own: the LNS keeps the
		// previous phase's tunnels a while (closing, to re-ack their
		// StopCCN) and would take SCCRQs from the same address, port
		// and tunnel id for retransmissions to them.
		lacFile := filepath.Join(e.dir, fmt.Sprintf("lac%d.toml", calls))
		if err := os.WriteFile(lacFile, []byte(scaleV2LACConfig(lnsAddr.String(), 1701+calls, tunnels, calls)), 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		lac := e.startDaemon(e.nsA, "--config", lacFile, "--log-level", "warn", "--metrics-listen", metricsAddr)
		took := waitGauges("setup", start, tunnels, tunnels*calls)
		t.Logf("%d tunnels with %d calls (%d calls) up in %v: %.0f tunnels/s, %.0f calls/s", tunnels, calls,
			tunnels*calls, took.Round(time.Millisecond), float64(tunnels)/took.Seconds(), float64(tunnels*calls)/took.Seconds())
		time.Sleep(2 * time.Second)
		heap, rss = report(fmt.Sprintf("with %d tunnels, %d calls", tunnels, tunnels*calls))
		if calls > 0 {
			logCounters(t, "LNS", scrape(t, e.nsB, metricsAddr))
			logCounters(t, "LAC", scrape(t, e.nsA, metricsAddr))
			t0, lt0 := cpuTicks(t, pid), cpuTicks(t, lac.cmd.Process.Pid)
			const idle = 30 * time.Second
			time.Sleep(idle)
			t1, lt1 := cpuTicks(t, pid), cpuTicks(t, lac.cmd.Process.Pid)
			t.Logf("idle %v: LNS CPU %d ms (%.3f%% of a core), LAC CPU %d ms", idle, (t1-t0)*10,
				float64((t1-t0)*10)/float64(idle.Milliseconds())*100, (lt1-lt0)*10)
		}
		start = time.Now()
		lac.stop(false)
		took = waitGauges("teardown", start, 0, 0)
		t.Logf("LAC stopped (StopCCN per tunnel): LNS back to 0 tunnels in %v", took.Round(time.Millisecond))
		return heap, rss
	}
	h1, r1 := phase(0)
	h2, r2 := phase(calls)
	report("after teardown")
	t.Logf("per tunnel: heap %.1f KiB, RSS %.1f KiB; per call: heap %.2f KiB, RSS %.2f KiB",
		float64(h1-h0)/float64(tunnels)/1024, float64(r1-r0)/float64(tunnels)/1024,
		float64(h2-h1)/float64(tunnels*calls)/1024, float64(r2-r1)/float64(tunnels*calls)/1024)
}

// scaleV2LACConfig is a LAC daemon's config: tunnels l2tpv2 tunnels to
// lns:1701 with calls calls each, on one local socket (port).
func scaleV2LACConfig(lns string, port, tunnels, calls int) string {
	var b strings.Builder
	for i := range tunnels {
		fmt.Fprintf(&b, "[tunnel.t%d]\nversion = \"l2tpv2\"\npeer = \"%s:1701\"\nlocal = \"0.0.0.0:%d\"\nhello_timeout = 60000\n", i, lns, port)
		for j := range calls {
			fmt.Fprintf(&b, "[tunnel.t%d.session.c%d]\npseudowire = \"ppp\"\n", i, j)
		}
	}
	return b.String()
}

// logCounters logs the nonzero L2TPv2 drop and retransmission counters
// and control queue drops of a scrape.
func logCounters(t *testing.T, who, body string) {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if (strings.HasPrefix(line, "ul2tp_l2tpv2_") || strings.HasPrefix(line, "ul2tp_socket_control_queue_drops_total")) &&
			!strings.HasSuffix(line, " 0") {
			t.Logf("%s %s", who, line)
		}
	}
}

// cpuTicks is a process's user and system CPU time, in clock ticks
// (1/100 s), from /proc/PID/stat.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name (in parentheses, which may hold
	// spaces): state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	ut, err1 := strconv.Atoi(f[11])
	st, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return ut + st
}

// heapInuse asks the daemon's pprof server in ns for its HeapInuse after
// a GC (the heap profile's runtime.MemStats lines).
func heapInuse(t *testing.T, ns, addr string) int {
	t.Helper()
	return pprofNumber(t, ns, addr, "/debug/pprof/heap?debug=1&gc=1", "# HeapInuse = ")
}
