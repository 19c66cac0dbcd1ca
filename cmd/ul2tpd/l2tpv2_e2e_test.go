package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// v2Tunnels is "ul2tp -j show tunnel" of d, the L2TPv2 tunnels only.
func (d *daemon) v2Tunnels() []api.TunnelInfo {
	d.e.t.Helper()
	var ts, v2 []api.TunnelInfo
	if err := json.Unmarshal([]byte(d.mustCLI("-j", "show", "tunnel")), &ts); err != nil {
		d.e.t.Fatal(err)
	}
	for _, t := range ts {
		if t.Version == 2 && t.Control != nil {
			v2 = append(v2, t)
		}
	}
	return v2
}

// v2Calls is "ul2tp -j show session" of d, the L2TPv2 calls only.
func (d *daemon) v2Calls() []api.SessionInfo {
	d.e.t.Helper()
	var ss, v2 []api.SessionInfo
	if err := json.Unmarshal([]byte(d.mustCLI("-j", "show", "session")), &ss); err != nil {
		d.e.t.Fatal(err)
	}
	for _, s := range ss {
		if s.Version == 2 && s.Call != nil {
			v2 = append(v2, s)
		}
	}
	return v2
}

// until polls cond every 100 ms for up to 15 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 150 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// upTunnel is d's established L2TPv2 tunnel named name (or any, with
// name ""), with calls established calls.
func upTunnel(d *daemon, name string, calls int) (api.TunnelInfo, bool) {
	for _, t := range d.v2Tunnels() {
		if t.Control.State != "established" || (name != "" && t.Control.Name != name) {
			continue
		}
		n := 0
		for _, c := range d.v2Calls() {
			if c.TunnelID == t.TunnelID && c.Call.State == "established" {
				n++
			}
		}
		if n == calls && t.Sessions == calls {
			return t, true
		}
	}
	return api.TunnelInfo{}, false
}

// TestE2EL2TPv2 runs our LAC (namespace A) against our LNS (B), both
// from config files: a tunnel with a secret and two calls; "del session"
// sends a CDN and "del tunnel" a StopCCN that end them on both sides
// (and the LAC does not redial a deleted tunnel); a LAC tunnel with the
// wrong secret is refused (result 4) and shown so; and when the LNS dies
// the LAC's tunnel goes down (peer lost) and it redials.
func TestE2EL2TPv2(t *testing.T) {
	e := newEnv(t)
	lnsAddr := e.outer4(2)
	timers := "hello_timeout = 500\nretry_timeout = 100\nmax_retries = 3\n"
	lnsFile, lacFile := filepath.Join(e.dir, "lns.toml"), filepath.Join(e.dir, "lac.toml")
	lnsConf := fmt.Sprintf("[lns]\nlisten = \"%s:1701\"\nsecret = \"s3cret\"\nhost_name = \"ul2tp-lns\"\npeers = [\"%s/24\"]\n%s",
		lnsAddr, e.outer4(0), timers)
	lacConf := fmt.Sprintf(`[tunnel.lac1]
version = "l2tpv2"
peer = "%[1]s:1701"
secret = "s3cret"
hide_avps = true
host_name = "ul2tp-lac"
%[2]s
[tunnel.lac1.session.call1]
pseudowire = "ppp"

[tunnel.lac1.session.call2]
pseudowire = "ppp"

[tunnel.bad]
version = "l2tpv2"
peer = "%[1]s:1701"
secret = "wrong"
host_name = "ul2tp-bad"
%[2]s`, lnsAddr, timers)
	for f, text := range map[string]string{lnsFile: lnsConf, lacFile: lacConf} {
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lns := e.startDaemon(e.nsB, "--config", lnsFile)
	lac := e.startDaemon(e.nsA, "--config", lacFile)

	var lt, nt api.TunnelInfo
	until(t, "LAC tunnel up with 2 calls", func() (ok bool) { lt, ok = upTunnel(lac, "lac1", 2); return })
	until(t, "LNS tunnel up with 2 calls", func() (ok bool) { nt, ok = upTunnel(lns, "", 2); return })
	if lt.PeerTunnelID != nt.TunnelID || nt.PeerTunnelID != lt.TunnelID || lt.Control.Role != "lac" ||
		nt.Control.Role != "lns" || nt.Control.PeerHostName != "ul2tp-lac" || lt.Control.PeerHostName != "ul2tp-lns" ||
		nt.Peer != e.outer4(1).String() || nt.PeerPort != 1701 || lt.Encap != "UDP" {
		t.Fatalf("LAC tunnel %+v %+v\nLNS tunnel %+v %+v", lt, lt.Control, nt, nt.Control)
	}
	for _, c := range lac.v2Calls() {
		if c.TunnelID == lt.TunnelID && (c.Call.Kind != "incoming" || c.Call.PPP != "none" || c.PeerTunnelID != nt.TunnelID) {
			t.Errorf("LAC call %+v %+v", c, c.Call)
		}
	}
	if out := lac.mustCLI("show", "tunnel"); !strings.Contains(out, fmt.Sprintf("L2TPv2 lac to %s:1701 host ul2tp-lns: established", lnsAddr)) {
		t.Errorf("show tunnel:\n%s", out)
	}
	if out := lns.mustCLI("show", "session"); !strings.Contains(out, "call incoming established ppp none") {
		t.Errorf("show session:\n%s", out)
	}

	// The wrong secret: refused by the LNS, the LAC shows result 4.
	until(t, "the bad tunnel refused", func() bool {
		for _, t := range lac.v2Tunnels() {
			if t.Control.Name == "bad" && t.Control.LastResultCode == 4 {
				return true
			}
		}
		return false
	})
	if !strings.Contains(lns.log(), "l2tpv2 tunnel down") || !strings.Contains(lns.log(), "result_code=4") {
		t.Errorf("LNS log has no refusal:\n%s", lns.log())
	}

	// del session: a CDN ends the call on both sides.
	var sid uint32
	for _, c := range lac.v2Calls() {
		if c.TunnelID == lt.TunnelID {
			sid = c.SessionID
		}
	}
	lac.mustCLI("del", "session", "tunnel_id", fmt.Sprint(lt.TunnelID), "session_id", fmt.Sprint(sid))
	until(t, "one call left on the LNS", func() bool { _, ok := upTunnel(lns, "", 1); return ok })
	until(t, "one call left on the LAC", func() bool { _, ok := upTunnel(lac, "lac1", 1); return ok })

	// add session with only a tunnel id opens a call on demand (ICRQ).
	lac.mustCLI("add", "session", "tunnel_id", fmt.Sprint(lt.TunnelID), "name", "ondemand")
	until(t, "the call on demand up on the LNS", func() bool { _, ok := upTunnel(lns, "", 2); return ok })
	until(t, "the call on demand up on the LAC", func() bool { _, ok := upTunnel(lac, "lac1", 2); return ok })
	// On the LNS it is an outgoing call (OCRQ/OCRP/OCCN).
	lns.mustCLI("add", "session", "tunnel_id", fmt.Sprint(nt.TunnelID))
	until(t, "the outgoing call up on the LAC", func() bool { _, ok := upTunnel(lac, "lac1", 3); return ok })
	until(t, "the outgoing call up on the LNS", func() bool { _, ok := upTunnel(lns, "", 3); return ok })
	if kinds := callKinds(lns, nt.TunnelID); kinds["outgoing"] != 1 || kinds["incoming"] != 2 {
		t.Errorf("LNS call kinds %v, want 2 incoming and 1 outgoing", kinds)
	}
	if _, stderr, code := lac.cli("add", "session", "tunnel_id", "99999"); code == 0 || !strings.Contains(stderr, "session_id") {
		t.Errorf("add session without session_id on no L2TPv2 tunnel: exit %d %q, want an error naming session_id", code, stderr)
	}

	// del tunnel on the LAC: a StopCCN, gone on both sides, no redial.
	lac.mustCLI("del", "tunnel", "tunnel_id", fmt.Sprint(lt.TunnelID))
	until(t, "the LNS's tunnel gone", func() bool {
		for _, t := range lns.v2Tunnels() {
			if t.TunnelID == nt.TunnelID {
				return false
			}
		}
		return true
	})
	time.Sleep(1500 * time.Millisecond) // past the first redial backoff
	for _, t := range lac.v2Tunnels() {
		if t.Control.Name == "lac1" {
			e.t.Errorf("lac1 still there after del tunnel: %+v %+v", t, t.Control)
		}
	}
	if calls := lac.v2Calls(); len(calls) != 0 {
		t.Errorf("LAC calls after del tunnel: %+v", calls)
	}

	// Peer loss: a fresh LAC daemon brings a tunnel up, the LNS is
	// killed, and the LAC's tunnel goes down (peer lost) and redials.
	lac.stop(true)
	lac2File := filepath.Join(e.dir, "lac2.toml")
	lac2Conf := fmt.Sprintf("[tunnel.lac2]\nversion = \"l2tpv2\"\npeer = \"%s:1701\"\nsecret = \"s3cret\"\n%s\n[tunnel.lac2.session.c]\n", lnsAddr, timers)
	if err := os.WriteFile(lac2File, []byte(lac2Conf), 0o600); err != nil {
		t.Fatal(err)
	}
	lac2 := e.startDaemon(e.nsA, "--config", lac2File)
	until(t, "lac2 up", func() bool { _, ok := upTunnel(lac2, "lac2", 1); return ok })
	if err := lns.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-lns.done
	lns.stop(false)
	until(t, "lac2 down, peer lost, redialling", func() bool {
		for _, t := range lac2.v2Tunnels() {
			if t.Control.Name == "lac2" && t.Control.State != "established" && t.Sessions == 0 {
				return true
			}
		}
		return false
	})
	until(t, "the LAC log says peer-lost", func() bool { return strings.Contains(lac2.log(), "by=peer-lost") })
	if calls := lac2.v2Calls(); len(calls) != 0 {
		t.Errorf("calls after peer loss: %+v", calls)
	}
}

// callKinds counts d's calls on tunnel tid by kind (incoming, outgoing).
func callKinds(d *daemon, tid uint32) map[string]int {
	n := map[string]int{}
	for _, c := range d.v2Calls() {
		if c.TunnelID == tid && c.Call != nil {
			n[c.Call.Kind]++
		}
	}
	return n
}
