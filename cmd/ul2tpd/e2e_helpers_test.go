package main

// Helpers of the end-to-end tests in e2e_test.go: building the binaries,
// network namespaces joined by a veth pair, daemons, the ul2tp CLI, ping,
// counters, and running code inside a namespace from the test process.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nsPrefix starts the name of every namespace these tests make, so that
// TestMain can find (and remove) any left behind.
var nsPrefix = fmt.Sprintf("ul2tpt-%d-", os.Getpid())

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	// Every test removes its namespaces; anything left is a bug in the
	// tests' cleanup. Remove it and say so.
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), nsPrefix) {
				fmt.Fprintf(os.Stderr, "e2e: namespace %s left behind; removing it\n", e.Name())
				_ = exec.Command("ip", "netns", "del", e.Name()).Run()
				code = 1
			}
		}
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// requireE2E skips t unless the end-to-end tests can run, and returns the
// directory holding freshly built ul2tpd and ul2tp. With CI set in the
// environment a test that cannot run fails instead: a green CI run means
// the end-to-end tests ran.
func requireE2E(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	cannot := t.Skipf
	if os.Getenv("CI") != "" {
		cannot = t.Fatalf
	}
	if os.Geteuid() != 0 {
		cannot("needs root: network namespaces, veth pairs and TAP devices")
	}
	for _, c := range []string{"ip", "ping", "iperf3"} {
		if _, err := exec.LookPath(c); err != nil {
			cannot("needs %s in $PATH (make deps installs iproute2, iputils-ping, iperf3): %v", c, err)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		cannot("needs /dev/net/tun: %v", err)
	}
	buildOnce.Do(build)
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binDir
}

func build() {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		buildErr = fmt.Errorf("go env GOMOD: %v", err)
		return
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		buildErr = errors.New("go env GOMOD: not in a module")
		return
	}
	dir, err := os.MkdirTemp("", "ul2tp-e2e-bin-")
	if err != nil {
		buildErr = err
		return
	}
	binDir = dir
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	env := append(os.Environ(), "CGO_ENABLED=0")
	if os.Getenv("E2E_RACE") != "" {
		// The daemons run with the race detector: a race in a pump fails
		// the test that stops the daemon.
		args = append(args, "-race")
		env = append(os.Environ(), "CGO_ENABLED=1")
	}
	cmd := exec.Command(goBin, append(args, "./cmd/ul2tpd", "./cmd/ul2tp")...)
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build: %v\n%s", err, out)
	}
}

// envCounter numbers environments: namespace names and the N of 10.210.N.0/24.
var envCounter atomic.Int32

// env is two namespaces, A and B, joined by a veth pair:
// A has 10.210.N.1/24 and fd00:210:N::1/64, B .2 and ::2.
type env struct {
	t       *testing.T
	bin     string
	dir     string
	n       int
	nsA     string
	nsB     string
	mu      sync.Mutex
	daemons []*daemon
}

func newEnv(t *testing.T) *env {
	t.Helper()
	bin := requireE2E(t)
	n := int(envCounter.Add(1))
	e := &env{
		t: t, bin: bin, dir: t.TempDir(), n: n,
		nsA: fmt.Sprintf("%s%d-a", nsPrefix, n),
		nsB: fmt.Sprintf("%s%d-b", nsPrefix, n),
	}
	// One cleanup, registered first so it runs last: stop the daemons
	// (checking how they exit), then remove the namespaces.
	t.Cleanup(e.cleanup)
	vA, vB := fmt.Sprintf("u2t%da", n), fmt.Sprintf("u2t%db", n)
	for _, args := range [][]string{
		{"netns", "add", e.nsA},
		{"netns", "add", e.nsB},
		{"link", "add", vA, "netns", e.nsA, "type", "veth", "peer", "name", vB, "netns", e.nsB},
		{"-n", e.nsA, "link", "set", "lo", "up"},
		{"-n", e.nsB, "link", "set", "lo", "up"},
		{"-n", e.nsA, "addr", "add", e.outer4(1).String() + "/24", "dev", vA},
		{"-n", e.nsB, "addr", "add", e.outer4(2).String() + "/24", "dev", vB},
		{"-n", e.nsA, "addr", "add", e.outer6(1).String() + "/64", "dev", vA, "nodad"},
		{"-n", e.nsB, "addr", "add", e.outer6(2).String() + "/64", "dev", vB, "nodad"},
		{"-n", e.nsA, "link", "set", vA, "up"},
		{"-n", e.nsB, "link", "set", vB, "up"},
	} {
		e.ip(args...)
	}
	return e
}

// outer4 is 10.210.N.host, outer6 fd00:210:N::host.
func (e *env) outer4(host byte) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 210, byte(e.n), host})
}

func (e *env) outer6(host int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd00:210:%d::%d", e.n, host))
}

// ip runs ip(8) and fails the test if it fails.
func (e *env) ip(args ...string) string {
	e.t.Helper()
	out, err := runCmd(10*time.Second, "ip", args...)
	if err != nil {
		e.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// linkExists reports whether ns has an interface called name.
func (e *env) linkExists(ns, name string) bool {
	_, err := runCmd(10*time.Second, "ip", "-n", ns, "link", "show", "dev", name)
	return err == nil
}

func (e *env) cleanup() {
	t := e.t
	e.mu.Lock()
	ds := e.daemons
	e.mu.Unlock()
	for _, d := range ds {
		d.stop(true)
	}
	for _, ns := range []string{e.nsA, e.nsB} {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue // never made: the test stopped before
		}
		if out, err := runCmd(10*time.Second, "ip", "netns", "del", ns); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	}
}

// run runs a command with a time limit and returns its combined output.
func runCmd(limit time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%v (timed out after %v)", err, limit)
	}
	return string(out), err
}

// daemon is one ul2tpd running in a namespace.
type daemon struct {
	e      *env
	ns     string
	socket string
	logf   string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	// taps are the interfaces the daemon must remove when it stops.
	taps []string

	stopOnce sync.Once
}

// startDaemon starts ul2tpd in ns and waits for its socket to answer.
func (e *env) startDaemon(ns string, args ...string) *daemon {
	e.t.Helper()
	return e.startDaemonAs(ns, nil, args...)
}

// startDaemonAs is startDaemon running ul2tpd as u says (an unprivileged
// user, see priv_e2e_test.go), or as root when u is nil.
func (e *env) startDaemonAs(ns string, u *unprivileged, args ...string) *daemon {
	t := e.t
	t.Helper()
	d := &daemon{
		e: e, ns: ns,
		socket: filepath.Join(e.dir, filepath.Base(ns)+".sock"),
		logf:   filepath.Join(e.dir, filepath.Base(ns)+".log"),
		done:   make(chan struct{}),
	}
	argv := []string{"netns", "exec", ns, filepath.Join(e.bin, "ul2tpd")}
	if u != nil {
		d.socket = filepath.Join(u.runDir, filepath.Base(ns)+".sock")
		argv = append([]string{"netns", "exec", ns}, u.command()...)
	}
	logf, err := os.Create(d.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// ip netns exec execs the command without forking, so the PID is
	// ul2tpd's and signals reach it.
	d.cmd = exec.Command("ip", append(append(argv, "--socket", d.socket, "--log-level", "debug"), args...)...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if u != nil {
		d.cmd.Dir = u.dir
	}
	// Should the test binary die, so does the daemon (and removes its TAPs).
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start ul2tpd in %s: %v", ns, err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	e.mu.Lock()
	e.daemons = append(e.daemons, d)
	e.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			break
		}
		select {
		case <-d.done:
			t.Fatalf("ul2tpd in %s exited at start (%v):\n%s", ns, d.cmd.ProcessState, d.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ul2tpd in %s: socket %s not answering after 10s:\n%s", ns, d.socket, d.log())
		}
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", d.cmd.Process.Pid)); err == nil && filepath.Base(exe) != "ul2tpd" {
		t.Fatalf("PID %d is %s, not ul2tpd: ip netns exec forked", d.cmd.Process.Pid, exe)
	}
	return d
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logf)
	return string(b)
}

// alive reports whether the process is still running.
func (d *daemon) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the daemon to exit, then checks that it
// exited 0, removed its socket and every TAP device it made.
func (d *daemon) stop(check bool) {
	d.stopOnce.Do(func() {
		t := d.e.t
		if !d.alive() {
			if check {
				t.Errorf("ul2tpd in %s had exited before it was stopped (%v):\n%s", d.ns, d.cmd.ProcessState, d.log())
			}
			return
		}
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM ul2tpd (pid %d): %v", d.cmd.Process.Pid, err)
		}
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Errorf("ul2tpd in %s (pid %d) still running 10s after SIGTERM; killing it:\n%s", d.ns, d.cmd.Process.Pid, d.log())
			_ = d.cmd.Process.Kill()
			<-d.done
			return
		}
		if !check {
			return
		}
		if strings.Contains(d.log(), "WARNING: DATA RACE") {
			t.Errorf("ul2tpd in %s (built with -race) found a data race:\n%s", d.ns, d.log())
		}
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("ul2tpd in %s exited with %v after SIGTERM, want 0:\n%s", d.ns, d.cmd.ProcessState, d.log())
		}
		for _, name := range d.taps {
			if d.e.linkExists(d.ns, name) {
				t.Errorf("ul2tpd in %s exited but left interface %s", d.ns, name)
			}
		}
		if _, err := os.Stat(d.socket); err == nil {
			t.Errorf("ul2tpd in %s exited but left its socket %s", d.ns, d.socket)
		}
		if t.Failed() {
			t.Logf("log of ul2tpd in %s:\n%s", d.ns, d.log())
		}
	})
}

// cli runs ul2tp against the daemon. The control socket is a path, so the
// client needs no namespace.
func (d *daemon) cli(args ...string) (stdout, stderr string, code int) {
	return runCLI(d.e.bin, append([]string{"--socket", d.socket}, args...)...)
}

func runCLI(bin string, args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "ul2tp"), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			e.WriteString("\n(timed out)")
		}
	}
	return o.String(), e.String(), code
}

// mustCLI runs ul2tp and fails the test unless it succeeds.
func (d *daemon) mustCLI(args ...string) string {
	d.e.t.Helper()
	out, errOut, code := d.cli(args...)
	if code != 0 {
		d.e.t.Fatalf("ul2tp %s (in %s): exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), d.ns, code, errOut, out)
	}
	if errOut != "" {
		d.e.t.Errorf("ul2tp %s: succeeded but wrote to stderr: %s", strings.Join(args, " "), errOut)
	}
	return out
}

// cliFails runs ul2tp, expects a non-zero exit and stderr naming each of
// want, and returns stderr.
func (d *daemon) cliFails(want []string, args ...string) string {
	d.e.t.Helper()
	out, errOut, code := d.cli(args...)
	if code == 0 {
		d.e.t.Errorf("ul2tp %s: exit 0, want failure (stdout %q)", strings.Join(args, " "), out)
		return errOut
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			d.e.t.Errorf("ul2tp %s: exit %d, stderr %q does not contain %q", strings.Join(args, " "), code, errOut, w)
		}
	}
	return errOut
}

// JSON shapes of "ul2tp -j [-s] show ...", written from iproute2's keys
// rather than taken from package api, so that renaming a key breaks the test.
// statsJSON is the counters object of "ul2tp -j -s": package api's, whose
// keys TestStatsKeys in cmd/internal/apiserver pins to iproute2's.
type statsJSON = api.Stats

type sessionJSON struct {
	SessionID     uint32     `json:"session_id"`
	TunnelID      uint32     `json:"tunnel_id"`
	PeerSessionID uint32     `json:"peer_session_id"`
	PeerTunnelID  uint32     `json:"peer_tunnel_id"`
	Interface     string     `json:"interface"`
	Cookie        string     `json:"cookie"`
	PeerCookie    string     `json:"peer_cookie"`
	L2SpecType    string     `json:"l2spec_type"`
	SendSeq       bool       `json:"send_seq"`
	RecvSeq       bool       `json:"recv_seq"`
	MTU           int        `json:"mtu"`
	Address       string     `json:"address"`
	State         string     `json:"state"`
	PumpRestarts  uint64     `json:"pump_restarts"`
	LastError     string     `json:"last_error"`
	Stats         *statsJSON `json:"stats"`
}

type tunnelJSON struct {
	TunnelID     uint32     `json:"tunnel_id"`
	Encap        string     `json:"encap"`
	Local        string     `json:"local"`
	Peer         string     `json:"peer"`
	PeerTunnelID uint32     `json:"peer_tunnel"`
	LocalPort    uint16     `json:"local_port"`
	PeerPort     uint16     `json:"peer_port"`
	Sessions     int        `json:"sessions"`
	Stats        *statsJSON `json:"stats"`
	Socket       *struct {
		Unmatched uint64 `json:"unmatched"`
	} `json:"socket"`
}

// sessions runs "ul2tp -j -s show session [words]".
func (d *daemon) sessions(words ...string) []sessionJSON {
	d.e.t.Helper()
	out := d.mustCLI(append([]string{"-j", "-s", "show", "session"}, words...)...)
	var ss []sessionJSON
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		d.e.t.Fatalf("ul2tp -j -s show session: %v\n%s", err, out)
	}
	for _, s := range ss {
		if s.Stats == nil {
			d.e.t.Fatalf("ul2tp -j -s show session: no stats in %s", out)
		}
	}
	return ss
}

// session returns the one session with tunnel tid and session sid.
func (d *daemon) session(tid, sid uint32) sessionJSON {
	d.e.t.Helper()
	ss := d.sessions("tunnel_id", fmt.Sprint(tid), "session_id", fmt.Sprint(sid))
	if len(ss) != 1 || ss[0].TunnelID != tid || ss[0].SessionID != sid {
		d.e.t.Fatalf("show session tunnel_id %d session_id %d: got %+v", tid, sid, ss)
	}
	return ss[0]
}

// tunnels runs "ul2tp -j -s show tunnel [words]".
func (d *daemon) tunnels(words ...string) []tunnelJSON {
	d.e.t.Helper()
	out := d.mustCLI(append([]string{"-j", "-s", "show", "tunnel"}, words...)...)
	var ts []tunnelJSON
	if err := json.Unmarshal([]byte(out), &ts); err != nil {
		d.e.t.Fatalf("ul2tp -j -s show tunnel: %v\n%s", err, out)
	}
	for _, tn := range ts {
		if tn.Stats == nil {
			d.e.t.Fatalf("ul2tp -j -s show tunnel: no stats in %s", out)
		}
	}
	return ts
}

func (d *daemon) tunnel(tid uint32) tunnelJSON {
	d.e.t.Helper()
	ts := d.tunnels("tunnel_id", fmt.Sprint(tid))
	if len(ts) != 1 || ts[0].TunnelID != tid {
		d.e.t.Fatalf("show tunnel tunnel_id %d: got %+v", tid, ts)
	}
	return ts[0]
}

// upTAP gives a daemon's TAP an address and brings it up.
func (d *daemon) upTAP(name, cidr string) {
	d.e.t.Helper()
	d.e.ip("-n", d.ns, "addr", "add", cidr, "dev", name)
	d.e.ip("-n", d.ns, "link", "set", name, "up")
}

// ping pings dst from ns through whatever route leads there, retrying once
// (the first echo can be lost to ARP), and fails the test if no reply comes.
func (e *env) ping(ns, dst string) {
	e.t.Helper()
	var out string
	var err error
	for try := 0; try < 2; try++ {
		out, err = runCmd(20*time.Second, "ip", "netns", "exec", ns, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", dst)
		if err == nil {
			return
		}
	}
	e.t.Errorf("ping %s from %s: %v\n%s", dst, ns, err, out)
}

// macOf reads an interface's MAC address in ns.
func (e *env) macOf(ns, name string) net.HardwareAddr {
	e.t.Helper()
	out := e.ip("-j", "-n", ns, "link", "show", "dev", name)
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		e.t.Fatalf("ip -j link show %s: %v\n%s", name, err, out)
	}
	mac, err := net.ParseMAC(links[0].Address)
	if err != nil {
		e.t.Fatal(err)
	}
	return mac
}

// inNetns runs fn on an OS thread that has joined the network namespace
// ns, so sockets fn opens belong to ns (and stay there afterwards). The
// thread returns to the original namespace before it is released; if it
// cannot, it stays locked and dies with its goroutine.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			errc <- fmt.Errorf("setns back from %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// tcpTransfer sends size pseudo-random bytes over TCP from nsFrom to
// dst:port in nsTo and checks that the receiver got exactly them (length
// and SHA-256).
func (e *env) tcpTransfer(nsFrom, nsTo string, dst netip.Addr, size int) {
	e.t.Helper()
	e.tcpTransferVia(nsFrom, nsTo, dst, dst, size)
}

// tcpTransferVia is tcpTransfer with the receiver listening on listen and
// the sender dialling dial: the same link-local address with each end's
// own interface as its zone.
func (e *env) tcpTransferVia(nsFrom, nsTo string, listen, dial netip.Addr, size int) {
	t := e.t
	t.Helper()
	ln := listenIn(t, nsTo, func() (*net.TCPListener, error) {
		return net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(listen, 0)))
	})
	defer ln.Close()
	deadline := time.Now().Add(90 * time.Second)
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	recvd := make(chan result, 1)
	go func() {
		_ = ln.SetDeadline(deadline)
		c, err := ln.Accept()
		if err != nil {
			recvd <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		r.n, r.err = n, err
		copy(r.sum[:], h.Sum(nil))
		recvd <- r
	}()
	var c net.Conn
	if err := inNetns(nsFrom, func() error {
		var err error
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err = d.Dial("tcp", netip.AddrPortFrom(dial, ln.Addr().(*net.TCPAddr).AddrPort().Port()).String())
		return err
	}); err != nil {
		t.Fatalf("dial %s from %s: %v", dial, nsFrom, err)
	}
	start := time.Now()
	_ = c.SetDeadline(deadline)
	rng := rand.New(rand.NewChaCha8([32]byte{'u', 'l', '2', 't', 'p'}))
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var sent int
	var sendErr error
	for sent < size && sendErr == nil {
		b := buf[:min(len(buf), size-sent)]
		for i := 0; i+8 <= len(b); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		h.Write(b)
		var n int
		n, sendErr = c.Write(b)
		sent += n
	}
	if sendErr == nil {
		sendErr = c.(*net.TCPConn).CloseWrite()
	}
	r := <-recvd
	c.Close()
	el := time.Since(start)
	if sendErr != nil {
		t.Fatalf("send after %d bytes: %v", sent, sendErr)
	}
	if r.err != nil {
		t.Fatalf("receive after %d bytes: %v", r.n, r.err)
	}
	if r.n != int64(size) {
		t.Fatalf("received %d bytes, sent %d", r.n, size)
	}
	if want := h.Sum(nil); !bytes.Equal(r.sum[:], want) {
		t.Fatalf("SHA-256 of received data %x, of sent data %x", r.sum, want)
	}
	t.Logf("TCP %d MB %s -> %s in %v (%.0f Mbit/s)", size>>20, nsFrom, nsTo, el.Round(time.Millisecond),
		float64(size)*8/el.Seconds()/1e6)
}

// udpBurst sends count datagrams of size bytes (size >= 8), numbered, from
// nsFrom to dst in nsTo as fast as the socket takes them, in bursts of at
// most 256 (below the TAP's 1000-frame queue), and checks that every one
// arrives once, unchanged: small equal-size frames are what the transmit
// pump joins into UDP GSO runs and the receive pump splits again.
func (e *env) udpBurst(nsFrom, nsTo string, dst netip.Addr, count, size int) {
	t := e.t
	t.Helper()
	ln := listenIn(t, nsTo, func() (*net.UDPConn, error) {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 0)))
	})
	defer ln.Close()
	_ = ln.SetReadBuffer(4 << 20)
	var c *net.UDPConn
	if err := inNetns(nsFrom, func() error {
		var err error
		c, err = net.DialUDP("udp", nil, ln.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatalf("dial from %s: %v", nsFrom, err)
	}
	defer c.Close()
	payload := func(i int) []byte {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(i*7 + j)
		}
		b[0], b[1], b[2], b[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		return b
	}
	seen := make([]bool, count)
	got := 0
	buf := make([]byte, 2048)
	for start := 0; start < count; start += 256 {
		end := min(start+256, count)
		for i := start; i < end; i++ {
			if _, err := c.Write(payload(i)); err != nil {
				t.Fatalf("udp send %d: %v", i, err)
			}
		}
		_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		for got < end {
			n, err := ln.Read(buf)
			if err != nil {
				t.Fatalf("udp burst %s -> %s: %d of %d datagrams arrived: %v", nsFrom, nsTo, got, end, err)
			}
			i := int(buf[0])<<24 | int(buf[1])<<16 | int(buf[2])<<8 | int(buf[3])
			if n != size || i < 0 || i >= count || !bytes.Equal(buf[:n], payload(i)) || seen[i] {
				t.Fatalf("udp burst: datagram %d (%d bytes) corrupt or repeated", i, n)
			}
			seen[i] = true
			got++
		}
	}
}

// listenIn runs listen in network namespace ns and returns what it opened,
// failing the test if it cannot.
func listenIn[T any](t *testing.T, ns string, listen func() (T, error)) T {
	t.Helper()
	var v T
	if err := inNetns(ns, func() (err error) {
		v, err = listen()
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	return v
}

// skipOrFail skips t for a missing tool, or fails it with CI set: CI
// installs every tool the tests use (.ci/deps).
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// writeFile writes text to name in the test's directory (mode 0600, as
// secrets want) and returns its path.
func (e *env) writeFile(name, text string) string {
	e.t.Helper()
	f := filepath.Join(e.dir, name)
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return f
}
