package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kill9 kills the daemon with SIGKILL, by PID, and waits for it: it
// cleans nothing up, so its socket file stays behind and its TAPs go only
// because their file descriptors close. stop then has nothing to do.
func (d *daemon) kill9() {
	d.e.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		d.e.t.Fatalf("SIGKILL ul2tpd (pid %d): %v", d.cmd.Process.Pid, err)
	}
	<-d.done
	d.stopOnce.Do(func() {})
}

// neighbour returns the link-layer address of ns's neighbour entry for
// addr on dev, nil if it has none.
func (e *env) neighbour(ns, dev, addr string) net.HardwareAddr {
	e.t.Helper()
	out := e.ip("-j", "-n", ns, "neigh", "show", addr, "dev", dev)
	var ents []struct {
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &ents); err != nil {
		e.t.Fatalf("ip -j neigh show %s dev %s: %v\n%s", addr, dev, err, out)
	}
	if len(ents) == 0 || ents[0].LLAddr == "" {
		return nil
	}
	mac, err := net.ParseMAC(ents[0].LLAddr)
	if err != nil {
		e.t.Fatal(err)
	}
	return mac
}

// TestE2ERestartKeepsMAC kills daemon A with SIGKILL and starts it again
// with the same tunnel and session: the TAP it makes has the address the
// old one had, so B's neighbour entry for A's inner address, left as it
// was, still leads to A and a ping from B answers at once (one echo, 2 s
// deadline). With a new random address B's frames would go to a MAC
// nobody has until the entry aged out, tens of seconds later.
func TestE2ERestartKeepsMAC(t *testing.T) {
	p := newPseudowire(t, "mac0", nil, nil)
	e, a := p.e, p.a
	macA := e.macOf(e.nsA, "mac0")
	if got := a.session(1, 11).Address; got != macA.String() {
		t.Errorf("show session address %q, the TAP has %v", got, macA)
	}
	if macA[0]&0x03 != 0x02 {
		t.Errorf("derived address %v: want locally administered unicast", macA)
	}
	if got := e.macOf(e.nsB, "mac0"); got.String() == macA.String() {
		t.Errorf("both ends have address %v", got)
	}
	if got := e.neighbour(e.nsB, "mac0", p.innerA); got.String() != macA.String() {
		t.Fatalf("B's neighbour entry for %s: %v, want A's %v", p.innerA, got, macA)
	}

	a = p.restartA(nil)
	if got := e.macOf(e.nsA, "mac0"); got.String() != macA.String() {
		t.Errorf("after restart A's TAP has address %v, before %v", got, macA)
	}
	a.upTAP("mac0", p.innerA+"/24")
	if got := e.neighbour(e.nsB, "mac0", p.innerA); got.String() != macA.String() {
		t.Fatalf("B's neighbour entry for %s changed to %v before the ping", p.innerA, got)
	}
	out, err := runCmd(10*time.Second, "ip", "netns", "exec", e.nsB, "ping", "-n", "-c", "1", "-w", "2", p.innerA)
	if err != nil {
		t.Errorf("ping %s from B right after A's restart: %v\n%s", p.innerA, err, out)
	}
	if got := e.neighbour(e.nsB, "mac0", p.innerA); got.String() != macA.String() {
		t.Errorf("B's neighbour entry for %s: %v, want %v", p.innerA, got, macA)
	}
}

// restartA kills daemon A with SIGKILL, waits for its TAP to go, and
// starts it again with the pseudowire's tunnel and session (with
// sessionWords), the TAP not yet up.
func (p *pseudowire) restartA(sessionWords []string) *daemon {
	e, t := p.e, p.e.t
	t.Helper()
	p.a.kill9()
	for i := 0; e.linkExists(e.nsA, p.name); i++ {
		if i == 100 {
			t.Fatal("A's TAP still there 5s after SIGKILL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a := e.startDaemon(e.nsA)
	p.a = a
	la, lb := e.outer4(1).String(), e.outer4(2).String()
	a.mustCLI("add", "tunnel", "tunnel_id", "1", "peer_tunnel_id", "2", "local", la, "remote", lb)
	a.mustCLI(append([]string{"add", "session", "name", p.name, "tunnel_id", "1", "session_id", "11",
		"peer_session_id", "22"}, sessionWords...)...)
	a.taps = append(a.taps, p.name)
	return a
}

// TestE2ERestartSeq restarts daemon A (SIGKILL) on a pseudowire with
// sequence numbers both ways, after A sent B 3000 sequenced packets: the
// new A numbers from 0 again, 3000 behind B's nr, and B must resync to it
// (rule 2 of docs/sequencing.md) rather than drop A's next 3000 packets;
// A must take B's Ns, which went on counting, as its first. Pings from B
// answer again within a bounded number of tries.
func TestE2ERestartSeq(t *testing.T) {
	words := []string{"seq", "both"}
	p := newPseudowire(t, "seq0", nil, words)
	e := p.e
	e.udpBurst(e.nsA, e.nsB, netip.MustParseAddr(p.innerB), 3000, 64)
	before := p.b.session(2, 22).Stats
	a := p.restartA(words)
	a.upTAP(p.name, p.innerA+"/24")
	var out string
	var err error
	for try := 0; try < 10; try++ {
		out, err = runCmd(10*time.Second, "ip", "netns", "exec", e.nsB, "ping", "-n", "-c", "1", "-w", "1", p.innerA)
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("ping %s from B after A's restart: no answer in 10 tries: %v\n%s", p.innerA, err, out)
	}
	e.ping(e.nsA, p.innerB)
	after := p.b.session(2, 22).Stats
	t.Logf("B after A's restart: rx_errors +%d, rx_seq_discards +%d", after.RxErrors-before.RxErrors,
		after.RxSeqDiscards-before.RxSeqDiscards)
	if sa := a.session(1, 11).Stats; sa.RxErrors != 0 {
		t.Errorf("restarted A: rx_errors %d, want 0 (it takes B's Ns as its first)", sa.RxErrors)
	}
}

// TestE2EAddress gives a session an explicit address: it is on the link
// (ip -j link show), in show session (JSON and text), and on the TAP the
// daemon recreates after the device is deleted under it. Bad addresses
// are refused with an error naming the field.
func TestE2EAddress(t *testing.T) {
	e := newEnv(t)
	a := e.startDaemon(e.nsA)
	const mac = "02:00:5e:10:20:30"
	a.mustCLI("add", "tunnel", "tunnel_id", "1", "peer_tunnel_id", "2", "local", e.outer4(1).String(), "remote", e.outer4(2).String())
	a.mustCLI("add", "session", "name", "adr0", "tunnel_id", "1", "session_id", "11", "peer_session_id", "22",
		"address", strings.ToUpper(mac))
	a.taps = append(a.taps, "adr0")
	if got := e.macOf(e.nsA, "adr0"); got.String() != mac {
		t.Errorf("ip link: address %v, want %s", got, mac)
	}
	if got := a.session(1, 11).Address; got != mac {
		t.Errorf("show session -j: address %q, want %s", got, mac)
	}
	if out := a.mustCLI("show", "session"); !strings.Contains(out, "  interface name: adr0\n  address "+mac+"\n") {
		t.Errorf("show session does not show the address:\n%s", out)
	}
	for _, bad := range []string{"01:00:5e:00:00:01", "00:00:00:00:00:00", "02:00:00:00:00"} {
		a.cliFails([]string{"address"}, "add", "session", "name", "adr1", "tunnel_id", "1", "session_id", "12",
			"peer_session_id", "23", "address", bad)
	}
	// Raw API request: the daemon checks too.
	if resp := rawRequest(t, a, `{"op":"add_session","session":{"tunnel_id":1,"session_id":13,"peer_session_id":24,"address":"33:33:00:00:00:01"}}`); !strings.Contains(resp, "address") || !strings.Contains(resp, `"code":"invalid"`) {
		t.Errorf("add_session with a multicast address: %s", resp)
	}

	e.ip("-n", e.nsA, "link", "del", "adr0")
	a.waitSession(1, 11, 10*time.Second, "recreated", func(s sessionJSON) bool { return s.State == "up" && s.PumpRestarts == 1 })
	if got := e.macOf(e.nsA, "adr0"); got.String() != mac {
		t.Errorf("recreated TAP: address %v, want %s", got, mac)
	}
}

// rawRequest sends one JSON line to the daemon's socket and returns the
// answer line.
func rawRequest(t *testing.T, d *daemon, req string) string {
	t.Helper()
	c, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, req); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}
