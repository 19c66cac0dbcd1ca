package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// heldConns is the number of control connections TestE2EHeldControlConnections
// holds, as issue 15 counts them.
const heldConns = 25000

// TestE2EHeldControlConnections has clients open and hold 25,000
// connections to a daemon's control socket, one in eight with half a
// request written, four times what the daemon has descriptors for. The
// connections are spread over the test process and copies of the test
// binary running TestHeldConnsHelper, as one process's descriptor limit
// may be lower than 25,000. The daemon and its pseudowire must keep
// running, and "ul2tp show tunnel" must work again once the held
// connections time out.
//
// "cap" runs the daemon with its default --max-conns: connections over the
// cap are refused, so descriptors never run out. "emfile" sets the cap
// above the descriptor limit, so that accept fails with EMFILE and the
// daemon must wait for descriptors to free.
func TestE2EHeldControlConnections(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"cap", nil},
		{"emfile", []string{"--max-conns", "1048576"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			share := holdPlan(t, heldConns)
			p := newPseudowire(t, "pwconn", tc.flags, nil)
			// The daemon gets a quarter as many descriptors as the
			// clients hold connections, as on a host whose hard limit
			// is lower than the clients' (the daemon raises its soft
			// limit to the hard limit at start; this lowers both).
			// A quarter, so that the daemon's descriptors and its
			// socket's backlog (net.core.somaxconn, 4096 by default)
			// together are fewer than the connections: in "emfile",
			// accept runs out of descriptors.
			limit := uint64(heldConns / 4)
			if err := unix.Prlimit(p.a.cmd.Process.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
				t.Fatalf("prlimit ul2tpd to %d descriptors (it cannot be raised above the hard limit it started with): %v", limit, err)
			}
			h := holdSpread(t, p.a.socket, heldConns, share)
			defer h.release()
			t.Logf("holding %d control connections over %d processes %v (%d dials failed and were retried); daemon descriptor limit %d",
				h.total(), len(h.counts), h.counts, h.failed, limit)
			if h.total() < heldConns {
				t.Fatalf("held %d control connections, want %d (per process %v):\n%s", h.total(), heldConns, h.counts, p.a.log())
			}
			if !p.a.alive() {
				t.Fatalf("ul2tpd died under %d held connections:\n%s", h.total(), p.a.log())
			}
			p.e.ping(p.e.nsA, p.innerB)
			// The daemon closes the connections that sent no whole
			// request within 10 s; after that it answers again, while
			// the clients still hold their ends.
			var out, errOut string
			deadline := time.Now().Add(40 * time.Second)
			for code := -1; code != 0; {
				if !p.a.alive() {
					t.Fatalf("ul2tpd died:\n%s", p.a.log())
				}
				if time.Now().After(deadline) {
					t.Fatalf("ul2tp show tunnel failing 40s into holding %d connections: %s", h.total(), errOut)
				}
				out, errOut, code = p.a.cli("show", "tunnel")
				if code != 0 {
					time.Sleep(500 * time.Millisecond)
				}
			}
			if !strings.Contains(out, "Tunnel 1,") {
				t.Errorf("show tunnel: %q", out)
			}
			p.e.ping(p.e.nsA, p.innerB)
			held := h.total()
			h.release()
			p.a.mustCLI("show", "tunnel")
			p.e.ping(p.e.nsA, p.innerB)
			if retried := strings.Contains(p.a.log(), "accept failed; retrying"); tc.name == "emfile" && !retried {
				t.Errorf("ul2tpd never ran out of descriptors in accept (held %d, limit %d): the test tested nothing", held, limit)
			}
		})
	}
}

// Held connections are spread over processes; these bound how.
const (
	// heldConnsEnv, in the environment of a copy of the test binary
	// running TestHeldConnsHelper, holds "n,half,socket": hold n
	// connections to socket, half requests written if half is 1.
	heldConnsEnv = "UL2TP_HELD_CONNS"
	// fileSpare is the descriptors each process keeps for other files.
	fileSpare = 1024
	// maxHoldProcs bounds the processes that hold connections.
	maxHoldProcs = 8
	// dialFor bounds how long a process dials; helperHold how long a
	// helper holds its connections once it is ready, should its stdin
	// never close.
	dialFor    = 90 * time.Second
	helperHold = 5 * time.Minute
)

// heldSet is the connections holdSpread holds, in this process and in
// helper processes.
type heldSet struct {
	t       *testing.T
	conns   []net.Conn // this process's
	helpers []*heldHelper
	counts  []int // connections held per process, this one first
	failed  int   // dials failed and retried, in all processes
	done    bool
}

// heldHelper is a copy of the test binary running TestHeldConnsHelper.
type heldHelper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	want   int
	stderr strings.Builder
	out    strings.Builder // stdout before "ready": why it is not
	ready  chan [2]int     // held, failed; zeroes if it never said
}

// total returns the connections held in all processes.
func (h *heldSet) total() int {
	n := 0
	for _, c := range h.counts {
		n += c
	}
	return n
}

// holdPlan returns the connections each process holds when holdSpread
// spreads total evenly over as few processes as the hard descriptor limit
// allows. It fails t if that would take more than maxHoldProcs processes.
func holdPlan(t *testing.T, total int) (share int) {
	t.Helper()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	perProc := int(min(lim.Max, 1<<30)) - fileSpare
	if perProc < 1 {
		t.Fatalf("descriptor hard limit %d leaves no descriptors for connections besides %d spare", lim.Max, fileSpare)
	}
	procs := (total + perProc - 1) / perProc
	if procs > maxHoldProcs {
		t.Fatalf("descriptor hard limit %d holds %d connections per process: %d would take %d processes, more than %d",
			lim.Max, perProc, total, procs, maxHoldProcs)
	}
	return (total + procs - 1) / procs
}

// holdSpread holds total connections to socket, one in eight with half a
// request written, share in this process and the rest in helper
// processes it starts (see holdPlan). Each process dials for at most
// dialFor; the caller checks h.total(). The connections are released
// when t ends, or before by h.release.
func holdSpread(t *testing.T, socket string, total, share int) *heldSet {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("test binary: %v", err)
	}
	restore, err := raiseTestFileLimit(share + fileSpare)
	if err != nil {
		t.Fatalf("descriptors for %d connections: %v", share, err)
	}
	t.Cleanup(restore)
	h := &heldSet{t: t}
	t.Cleanup(h.release) // runs before restore
	// Helpers start first, so that all processes dial at once.
	for left := total - share; left > 0; left -= share {
		hp, err := startHeldHelper(exe, socket, min(share, left))
		if err != nil {
			t.Fatalf("start connection holder: %v", err)
		}
		h.helpers = append(h.helpers, hp)
	}
	h.conns, h.failed = holdConns(socket, share, time.Now().Add(dialFor), true)
	h.counts = append(h.counts, len(h.conns))
	wait := time.NewTimer(dialFor + 30*time.Second)
	defer wait.Stop()
	for i, hp := range h.helpers {
		var r [2]int
		select {
		case r = <-hp.ready:
			if r[0] < hp.want {
				t.Logf("connection holder %d (pid %d) holds %d of %d:\n%s", i+1, hp.cmd.Process.Pid, r[0], hp.want, hp.out.String())
			}
		case <-wait.C:
			t.Errorf("connection holder %d (pid %d) not ready after %v", i+1, hp.cmd.Process.Pid, dialFor+30*time.Second)
			wait.Reset(0)
		}
		h.counts = append(h.counts, r[0])
		h.failed += r[1]
	}
	return h
}

// startHeldHelper starts a copy of the test binary holding n connections
// to socket. Its ready channel gets what it holds once it has dialled.
func startHeldHelper(exe, socket string, n int) (*heldHelper, error) {
	hp := &heldHelper{want: n, ready: make(chan [2]int, 1)}
	hp.cmd = exec.Command(exe, "-test.run=^TestHeldConnsHelper$", "-test.timeout="+(dialFor+helperHold+time.Minute).String())
	hp.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d,1,%s", heldConnsEnv, n, socket))
	hp.cmd.Stderr = &hp.stderr
	stdout, err := hp.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if hp.stdin, err = hp.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := hp.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		var r [2]int
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if _, err := fmt.Sscanf(s.Text(), "ready %d failed %d", &r[0], &r[1]); err == nil {
				break
			}
			fmt.Fprintln(&hp.out, s.Text())
		}
		hp.ready <- r
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return hp, nil
}

// release closes the connections this process holds and ends the
// helpers: their stdin closes, and any still running 10 s later is
// killed.
func (h *heldSet) release() {
	if h.done {
		return
	}
	h.done = true
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
	for _, hp := range h.helpers {
		hp.stdin.Close()
		exited := make(chan error, 1)
		go func() { exited <- hp.cmd.Wait() }()
		var err error
		select {
		case err = <-exited:
		case <-time.After(10 * time.Second):
			_ = hp.cmd.Process.Kill()
			err = <-exited
			h.t.Errorf("connection holder (pid %d) still running 10s after its stdin closed; killed", hp.cmd.Process.Pid)
		}
		if err != nil {
			h.t.Logf("connection holder (pid %d): %v\n%s", hp.cmd.Process.Pid, err, hp.stderr.String())
		}
	}
}

// TestHeldConnsHelper is not a test: holdSpread runs the test binary with
// this test and heldConnsEnv set, to hold connections in another process.
// It dials, writes "ready N failed F" to stdout, and holds the
// connections until its stdin closes or helperHold has passed.
func TestHeldConnsHelper(t *testing.T) {
	v := os.Getenv(heldConnsEnv)
	if v == "" {
		return
	}
	f := strings.SplitN(v, ",", 3)
	if len(f) != 3 {
		t.Fatalf("%s=%q: want n,half,socket", heldConnsEnv, v)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: bad count %q", heldConnsEnv, v, f[0])
	}
	restore, err := raiseTestFileLimit(n + fileSpare)
	if err != nil {
		t.Fatalf("descriptors for %d connections: %v", n, err)
	}
	defer restore()
	conns, failed := holdConns(f[2], n, time.Now().Add(dialFor), f[1] == "1")
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	fmt.Printf("ready %d failed %d\n", len(conns), failed)
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(helperHold):
	}
}

// raiseTestFileLimit raises this process's soft descriptor limit to at least
// need, within the hard limit, and returns a func restoring it.
func raiseTestFileLimit(need int) (restore func(), err error) {
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		return nil, fmt.Errorf("getrlimit: %w", err)
	}
	if old.Cur >= uint64(need) {
		return func() {}, nil
	}
	if old.Max < uint64(need) {
		return nil, fmt.Errorf("need %d descriptors, hard limit is %d", need, old.Max)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: uint64(need), Max: old.Max}); err != nil {
		return nil, fmt.Errorf("setrlimit %d: %w", need, err)
	}
	return func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old) }, nil
}

// holdConns dials socket until it holds n connections or deadline passes,
// and returns the connections; with half, every eighth has half a request
// written to it. A failed dial (the daemon's backlog full while it is out
// of descriptors) is counted and retried after a pause.
func holdConns(socket string, n int, deadline time.Time, half bool) (conns []net.Conn, failed int) {
	conns = make([]net.Conn, 0, n)
	for len(conns) < n && time.Now().Before(deadline) {
		c, err := net.DialTimeout("unix", socket, time.Second)
		if err != nil {
			failed++
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if half && len(conns)%8 == 0 {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(`{"op":"show_tunnel"`))
		}
		conns = append(conns, c)
	}
	return conns, failed
}
