package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// pppCall is d's L2TPv2 call named name (LAC) or of user (LNS).
func pppCall(d *daemon, match func(c *api.CallInfo) bool) (api.SessionInfo, bool) {
	for _, s := range d.v2Calls() {
		if match(s.Call) {
			return s, true
		}
	}
	return api.SessionInfo{}, false
}

// TestE2EPPP runs PPP on L2TPv2 calls between our LAC (namespace A) and
// our LNS (B), once per authentication method the LNS requires: a call
// with the right password comes up on a TUN at each end with an address
// from the pool (or the user's fixed one from chap-secrets) and IPv6
// link-local addresses from IPv6CP, and ping and TCP cross it over IPv4
// and IPv6; a call with a wrong password ends with a CDN that says why.
func TestE2EPPP(t *testing.T) {
	for _, method := range []string{"pap", "chap", "mschap-v2"} {
		t.Run(method, func(t *testing.T) { testE2EPPP(t, method) })
	}
}

func testE2EPPP(t *testing.T, method string) {
	e := newEnv(t)
	lnsAddr := e.outer4(2)
	secrets := filepath.Join(e.dir, "chap-secrets")
	if err := os.WriteFile(secrets, []byte(`# client server secret addresses
alice * "alice pass" *
bob   lns  bobpass   10.99.0.5
`), 0o600); err != nil {
		t.Fatal(err)
	}
	timers := "hello_timeout = 1000\nretry_timeout = 200\nmax_retries = 3\n"
	lnsConf := fmt.Sprintf(`[lns]
listen = "%s:1701"
%s
ppp_auth = %q
ppp_name = "lns"
chap_secrets = %q
local_ip = "10.99.0.1"
pool = "10.99.0.10-10.99.0.250"
dns = ["10.99.0.1"]
`, lnsAddr, timers, method, secrets)
	lacConf := fmt.Sprintf(`[tunnel.lac1]
version = "l2tpv2"
peer = "%s:1701"
%s
[tunnel.lac1.session.alice]
pseudowire = "ppp"
user = "alice"
password = "alice pass"

[tunnel.lac1.session.bob]
pseudowire = "ppp"
user = "bob"
password = "bobpass"

[tunnel.lac1.session.carol]
pseudowire = "ppp"
user = "alice"
password = "alice pass"
ipv6 = false
lcp_echo_interval = 1

[tunnel.lac1.session.mallory]
pseudowire = "ppp"
user = "alice"
password = "wrong"
`, lnsAddr, timers)
	lnsFile, lacFile := e.writeFile("lns.toml", lnsConf), e.writeFile("lac.toml", lacConf)
	lns := e.startDaemon(e.nsB, "--config", lnsFile)
	lac := e.startDaemon(e.nsA, "--config", lacFile)

	named := func(name string) func(c *api.CallInfo) bool {
		return func(c *api.CallInfo) bool { return c.Name == name }
	}
	var alice, bob api.SessionInfo
	until(t, "alice's and bob's PPP links open", func() bool {
		var ok1, ok2 bool
		alice, ok1 = pppCall(lac, named("alice"))
		bob, ok2 = pppCall(lac, named("bob"))
		return ok1 && ok2 && alice.Call.PPP == "open" && bob.Call.PPP == "open" &&
			alice.Call.PPPLocal != "" && bob.Call.PPPLocal != ""
	})
	if a, err := netip.ParseAddr(alice.Call.PPPLocal); err != nil || a.Less(netip.MustParseAddr("10.99.0.10")) ||
		netip.MustParseAddr("10.99.0.250").Less(a) || alice.Call.PPPPeer != "10.99.0.1" || alice.Call.PPPUser != "alice" ||
		!strings.HasPrefix(alice.Interface, "ppp") {
		t.Errorf("alice's call %+v %+v: want a pool address, peer 10.99.0.1, a ppp TUN", alice, alice.Call)
	}
	if bob.Call.PPPLocal != "10.99.0.5" {
		t.Errorf("bob's call %+v: want his fixed address 10.99.0.5", bob.Call)
	}
	until(t, "the LNS's calls open", func() bool {
		s, ok := pppCall(lns, func(c *api.CallInfo) bool { return c.PPPPeer == alice.Call.PPPLocal })
		return ok && s.Call.PPP == "open" && s.Call.PPPUser == "alice" && s.Call.PPPLocal == "10.99.0.1"
	})
	e.ping(e.nsA, "10.99.0.1")
	e.ping(e.nsB, "10.99.0.5") // the LNS reaches bob
	e.tcpTransfer(e.nsA, e.nsB, netip.MustParseAddr("10.99.0.1"), 2<<20)
	if out := lac.mustCLI("show", "session"); !strings.Contains(out, "ppp open") || !strings.Contains(out, `user "alice"`) {
		t.Errorf("show session:\n%s", out)
	}

	// IPv6: IPv6CP gave each end of alice's call a link-local address
	// (ours the LNS's peer, and the other way round); ping and TCP cross
	// it both ways.
	var lnsAlice api.SessionInfo
	until(t, "IPv6CP open on alice's call at both ends", func() bool {
		var ok bool
		alice, _ = pppCall(lac, named("alice"))
		lnsAlice, ok = pppCall(lns, func(c *api.CallInfo) bool { return c.PPPPeer == alice.Call.PPPLocal && c.PPP == "open" })
		return ok && alice.Call.PPPLocal6 != "" && lnsAlice.Call.PPPLocal6 != ""
	})
	local6, err1 := netip.ParseAddr(alice.Call.PPPLocal6)
	peer6, err2 := netip.ParseAddr(alice.Call.PPPPeer6)
	if err1 != nil || err2 != nil || !local6.IsLinkLocalUnicast() || !peer6.IsLinkLocalUnicast() || local6 == peer6 ||
		lnsAlice.Call.PPPLocal6 != alice.Call.PPPPeer6 || lnsAlice.Call.PPPPeer6 != alice.Call.PPPLocal6 {
		t.Fatalf("IPv6 link-local addresses: LAC %q peer %q, LNS %q peer %q", alice.Call.PPPLocal6, alice.Call.PPPPeer6,
			lnsAlice.Call.PPPLocal6, lnsAlice.Call.PPPPeer6)
	}
	lacIf, lnsIf := alice.Interface, lnsAlice.Interface
	e.ping(e.nsA, peer6.String()+"%"+lacIf)
	e.ping(e.nsB, local6.String()+"%"+lnsIf)
	e.tcpTransferVia(e.nsA, e.nsB, peer6.WithZone(lnsIf), peer6.WithZone(lacIf), 2<<20)
	e.tcpTransferVia(e.nsB, e.nsA, local6.WithZone(lacIf), local6.WithZone(lnsIf), 2<<20)
	if out := lac.mustCLI("show", "session"); !strings.Contains(out, "ppp inet6 local "+local6.String()+" peer "+peer6.String()) {
		t.Errorf("show session has no IPv6 addresses:\n%s", out)
	}
	// carol's call turned IPv6 off: IPv4 only at both ends (it sends LCP
	// echoes every second too, which the LNS answers).
	var carol api.SessionInfo
	until(t, "carol's PPP link open", func() bool {
		var ok bool
		carol, ok = pppCall(lac, named("carol"))
		return ok && carol.Call.PPP == "open" && carol.Call.PPPLocal != ""
	})
	var lnsCarol api.SessionInfo
	until(t, "carol's call open at the LNS", func() bool {
		var ok bool
		lnsCarol, ok = pppCall(lns, func(c *api.CallInfo) bool { return c.PPPPeer == carol.Call.PPPLocal })
		return ok && lnsCarol.Call.PPP == "open"
	})
	if carol.Call.PPPLocal6 != "" || lnsCarol.Call.PPPLocal6 != "" {
		t.Errorf("carol's call with ipv6 = false: LAC %+v, LNS %+v", carol.Call, lnsCarol.Call)
	}
	// The TUN has IPv6CP's link-local address only, not one of the kernel's.
	if out := e.ip("-n", e.nsA, "-6", "-o", "addr", "show", "dev", lacIf); strings.Count(out, "inet6") != 1 ||
		!strings.Contains(out, local6.String()) {
		t.Errorf("IPv6 addresses of %s:\n%s", lacIf, out)
	}

	// The wrong password: the call ends with a CDN that says why, and
	// waits to be placed again, its last failure shown.
	until(t, "mallory's call waiting to redial", func() bool {
		s, ok := pppCall(lac, named("mallory"))
		return ok && s.Call.State == "waiting" && strings.Contains(s.Call.LastFailure, "authentication failed")
	})
	until(t, "the LAC logs the failure", func() bool {
		return strings.Contains(lac.log(), "authentication failed")
	})
	if log := lns.log(); !strings.Contains(log, "ppp: authentication failed") && !strings.Contains(log, "auth: wrong user name or password") {
		t.Errorf("LNS log has no authentication failure:\n%s", log)
	}
	// Stopping removes the TUNs.
	lac.stop(true)
	lns.stop(true)
	for _, ns := range []string{e.nsA, e.nsB} {
		if out := e.ip("-n", ns, "-o", "link", "show"); strings.Contains(out, "ppp") {
			t.Errorf("TUN devices left in %s:\n%s", ns, out)
		}
	}
}
