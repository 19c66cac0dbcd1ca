package main

// End-to-end tests of sizes: session MTUs above the path's, TCP with a
// small MSS, and jumbo frames without offloads. Helpers are in
// e2e_helpers_test.go.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mtuPair is a tunnel between the env's two daemons, one session "mtu0" in
// it with the given session words (on both ends), and inner addresses
// 10.213.N.1 (A) and .2 (B) on the TAPs.
type mtuPair struct {
	e            *env
	a, b         *daemon
	innerA       netip.Addr
	innerB       netip.Addr
	tidA, tidB   uint32
	sidA, sidB   uint32
	sessionWords []string
}

// newMTUPair starts a daemon in each namespace with flags, and a
// pseudowire between them over family ("v4" or "v6") with encapsulation
// enc (tunnel words extra added to both tunnels).
func newMTUPair(t *testing.T, e *env, enc, family string, flags, extra, sessionWords []string) *mtuPair {
	t.Helper()
	p := &mtuPair{e: e, tidA: 1, tidB: 2, sidA: 11, sidB: 22, sessionWords: sessionWords}
	p.a = e.startDaemon(e.nsA, flags...)
	p.b = e.startDaemon(e.nsB, flags...)
	la, lb := e.outer4(1), e.outer4(2)
	if family == "v6" {
		la, lb = e.outer6(1), e.outer6(2)
	}
	tunnel := func(d *daemon, tid, ptid uint32, local, remote netip.Addr) {
		w := []string{"add", "tunnel", "tunnel_id", fmt.Sprint(tid), "peer_tunnel_id", fmt.Sprint(ptid),
			"encap", enc, "local", local.String(), "remote", remote.String()}
		d.mustCLI(append(w, extra...)...)
	}
	tunnel(p.a, p.tidA, p.tidB, la, lb)
	tunnel(p.b, p.tidB, p.tidA, lb, la)
	session := func(d *daemon, tid, sid, psid uint32) {
		w := []string{"add", "session", "name", "mtu0", "tunnel_id", fmt.Sprint(tid),
			"session_id", fmt.Sprint(sid), "peer_session_id", fmt.Sprint(psid)}
		d.mustCLI(append(w, sessionWords...)...)
	}
	session(p.a, p.tidA, p.sidA, p.sidB)
	session(p.b, p.tidB, p.sidB, p.sidA)
	p.innerA = netip.AddrFrom4([4]byte{10, 213, byte(e.n), 1})
	p.innerB = netip.AddrFrom4([4]byte{10, 213, byte(e.n), 2})
	p.a.upTAP("mtu0", p.innerA.String()+"/24")
	p.b.upTAP("mtu0", p.innerB.String()+"/24")
	e.ping(e.nsA, p.innerB.String())
	return p
}

// stats returns the session counters of A and B.
func (p *mtuPair) stats() (a, b statsJSON) {
	return *p.a.session(p.tidA, p.sidA).Stats, *p.b.session(p.tidB, p.sidB).Stats
}

// iperfResult is what iperf3 -J reports at the end of a TCP test.
type iperfResult struct {
	End struct {
		SumReceived struct {
			Bytes         uint64  `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperf runs an iperf3 TCP test of secs seconds from a client in nsA to a
// server on dst in nsB (from the server to the client with reverse, -R), with extra
// client arguments, and returns the bytes the receiver got and its rate in
// bit/s. A transfer that stalls ends at the time limit with what arrived
// (maybe nothing); the caller judges the amount.
func (e *env) iperf(dst netip.Addr, secs int, reverse bool, args ...string) (uint64, float64) {
	t := e.t
	t.Helper()
	if _, err := exec.LookPath("iperf3"); err != nil {
		t.Fatalf("needs iperf3 in $PATH (apt-get install iperf3): %v", err)
	}
	port := fmt.Sprint(5201 + e.n%100)
	srv := exec.Command("ip", "netns", "exec", e.nsB, "iperf3", "-s", "-1", "-B", dst.String(), "-p", port)
	srvLog := filepath.Join(e.dir, fmt.Sprintf("iperf3-server-%d.log", time.Now().UnixNano()))
	if out, err := os.Create(srvLog); err == nil {
		srv.Stdout, srv.Stderr = out, out
		defer out.Close()
	}
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatalf("start iperf3 server in %s: %v", e.nsB, err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Wait(); close(done) }()
	defer func() {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = srv.Process.Kill() // ip netns exec execs: this is iperf3's PID
			<-done
		}
	}()
	cargs := []string{"netns", "exec", e.nsA, "iperf3", "-c", dst.String(), "-p", port, "-J",
		"-t", fmt.Sprint(secs), "--connect-timeout", "3000"}
	if reverse {
		cargs = append(cargs, "-R")
	}
	cargs = append(cargs, args...)
	var out string
	var err error
	for try := 0; try < 20; try++ { // the server may not listen yet
		out, err = runCmd(time.Duration(secs+20)*time.Second, "ip", cargs...)
		if !strings.Contains(out, "Connection refused") { // iperf3 -J exits 0 then
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var r iperfResult
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		t.Logf("iperf3 %s: %v (%v)\n%s", strings.Join(args, " "), err, jerr, out)
		return 0, 0
	}
	if r.Error != "" || err != nil {
		slog, _ := os.ReadFile(srvLog)
		t.Logf("iperf3 %s: %v: %s\nserver: %s", strings.Join(args, " "), err, r.Error, slog)
	}
	s := r.End.SumReceived
	dir := "A->B"
	if reverse {
		dir = "B->A"
	}
	t.Logf("iperf3 TCP %s %s: %d bytes, %.0f Mbit/s", dir, strings.Join(args, " "), s.Bytes, s.BitsPerSecond/1e6)
	return s.Bytes, s.BitsPerSecond
}

// TestE2EPathMTU runs TCP both ways through sessions whose MTU is the
// path's default, equal to the underlay's (so every full-size frame needs
// IP fragmentation outside) and far above it (9000 over a 1500-byte veth),
// as the kernel's l2tp_eth allows: the outer packets are fragmented, and
// TCP must move data, not stall.
func TestE2EPathMTU(t *testing.T) {
	for _, c := range []struct {
		name        string
		enc, family string
		tunnelWords []string
		mtu         string // "" for the default
	}{
		{"udp4-default", "udp", "v4", []string{"udp_csum", "on"}, ""},
		{"udp4-1500", "udp", "v4", []string{"udp_csum", "on"}, "1500"},
		{"udp4-9000", "udp", "v4", []string{"udp_csum", "on"}, "9000"},
		{"udp6-9000", "udp", "v6", nil, "9000"},
		{"udp4-nocsum-9000", "udp", "v4", []string{"udp_csum", "off"}, "9000"},
		{"ip4-9000", "ip", "v4", nil, "9000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			var sw []string
			if c.mtu != "" {
				sw = []string{"mtu", c.mtu}
			}
			p := newMTUPair(t, e, c.enc, c.family, nil, c.tunnelWords, sw)
			const floor = 1 << 20 // a stalled connection moves a few segments at most
			for _, reverse := range []bool{false, true} {
				if n, _ := e.iperf(p.innerB, 2, reverse); n < floor {
					t.Errorf("mtu %q reverse %v: TCP moved %d bytes in 2 s, want at least %d", c.mtu, reverse, n, floor)
				}
			}
			sa, sb := p.stats()
			for _, st := range []statsJSON{sa, sb} {
				if st.TxPackets == 0 || st.RxPackets == 0 {
					t.Errorf("counters %+v", st)
				}
			}
		})
	}
}

// TestE2ESmallMSS runs TCP both ways with a small MSS (-M 536): a 64 KiB
// TSO super-frame then holds over a hundred segments, which must all go
// out; the rate must be of the same order as with the default MSS.
func TestE2ESmallMSS(t *testing.T) {
	e := newEnv(t)
	p := newMTUPair(t, e, "udp", "v4", nil, []string{"udp_csum", "on"}, nil)
	for _, reverse := range []bool{false, true} {
		_, full := e.iperf(p.innerB, 2, reverse)
		n, small := e.iperf(p.innerB, 2, reverse, "-M", "536")
		if full == 0 || small < full/10 || n < 1<<20 {
			t.Errorf("reverse %v: MSS 536 moved %d bytes at %.0f Mbit/s, default MSS %.0f Mbit/s: want at least a tenth",
				reverse, n, small/1e6, full/1e6)
		}
	}
	sa, sb := p.stats()
	for _, st := range []statsJSON{sa, sb} {
		if st.TxErrors != 0 {
			t.Errorf("tx_errors in %+v", st)
		}
	}
}

// TestE2EJumboNoOffload pings with 18000-byte payloads through sessions
// of MTU 20000 on daemons without offloads, whose frames are each read,
// sent and received whole.
func TestE2EJumboNoOffload(t *testing.T) {
	e := newEnv(t)
	p := newMTUPair(t, e, "udp", "v4", []string{"--no-offload"}, []string{"udp_csum", "on"}, []string{"mtu", "20000"})
	out, err := runCmd(20*time.Second, "ip", "netns", "exec", e.nsA, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2",
		"-M", "do", "-s", "18000", p.innerB.String())
	if err != nil {
		t.Errorf("ping -s 18000 through MTU 20000: %v\n%s", err, out)
	}
	sa, sb := p.stats()
	for _, st := range []statsJSON{sa, sb} {
		if st.TxErrors != 0 || st.RxErrors != 0 {
			t.Errorf("errors in %+v", st)
		}
		if st.TxBytes < 3*18000 || st.RxBytes < 3*18000 {
			t.Errorf("tx_bytes %d rx_bytes %d, want at least %d", st.TxBytes, st.RxBytes, 3*18000)
		}
	}
}
