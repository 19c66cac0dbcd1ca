package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// hookScript writes a script that records its arguments ($0.args, one a
// line), its environment ($0.env, sorted), whether its interface exists
// ($0.iface) and appends its name to trace.
func hookScript(t *testing.T, dir, name, trace string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	body := fmt.Sprintf(`#!/bin/sh
for a in "$@"; do printf '%%s\n' "$a"; done > "$0.args"
env | sort > "$0.env"
if ip link show dev "$1" >/dev/null 2>&1; then echo present; else echo absent; fi > "$0.iface"
echo %s >> %s
echo "hook %s ran"
`, name, trace, name)
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// lines reads a file's lines; nil if it does not exist.
func lines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// envMap reads a script's recorded environment.
func envMap(path string) map[string]string {
	m := map[string]string{}
	for _, kv := range lines(path) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// pppdLL writes a link-local address as pppd gives it to ipv6-up: fe80::
// and the interface identifier's four groups in full.
func pppdLL(t *testing.T, s string) string {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("link-local address %q: %v", s, err)
	}
	b := a.As16()
	return fmt.Sprintf("fe80::%04x:%04x:%04x:%04x", binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:]),
		binary.BigEndian.Uint16(b[12:]), binary.BigEndian.Uint16(b[14:]))
}

// TestE2EPPPHooks: our LNS (B) and LAC (A) run ip-up and ip-down, and
// ipv6-up and ipv6-down, with pppd's arguments and environment; the LAC's call also gets a default
// route through its TUN, a host route to the LNS through the veth, and
// the LNS's DNS servers in a resolv.conf, all undone when it stops. A
// second LAC call with a wrong password is placed again and again, with
// growing waits, its last failure shown, while the good call stays up.
func TestE2EPPPHooks(t *testing.T) {
	e := newEnv(t)
	lnsAddr := e.outer4(2)
	secrets := filepath.Join(e.dir, "chap-secrets")
	if err := os.WriteFile(secrets, []byte("alice * \"alice pass\" *\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lnsTrace, lacTrace := filepath.Join(e.dir, "lns.trace"), filepath.Join(e.dir, "lac.trace")
	lnsUp, lnsDown := hookScript(t, e.dir, "lns-ip-up", lnsTrace), hookScript(t, e.dir, "lns-ip-down", lnsTrace)
	lacUp, lacDown := hookScript(t, e.dir, "lac-ip-up", lacTrace), hookScript(t, e.dir, "lac-ip-down", lacTrace)
	lns6Trace, lac6Trace := filepath.Join(e.dir, "lns6.trace"), filepath.Join(e.dir, "lac6.trace")
	lnsUp6, lnsDown6 := hookScript(t, e.dir, "lns-ipv6-up", lns6Trace), hookScript(t, e.dir, "lns-ipv6-down", lns6Trace)
	lacUp6, lacDown6 := hookScript(t, e.dir, "lac-ipv6-up", lac6Trace), hookScript(t, e.dir, "lac-ipv6-down", lac6Trace)
	resolv := filepath.Join(e.dir, "resolv.conf")
	const oldResolv = "nameserver 192.0.2.1\n"
	if err := os.WriteFile(resolv, []byte(oldResolv), 0o644); err != nil {
		t.Fatal(err)
	}
	timers := "hello_timeout = 1000\nretry_timeout = 200\nmax_retries = 3\n"
	lnsConf := fmt.Sprintf(`[lns]
listen = "%s:1701"
%s
ppp_auth = "chap"
ppp_name = "lns"
chap_secrets = %q
local_ip = "10.99.0.1"
pool = "10.99.0.10-10.99.0.250"
dns = ["10.99.0.53", "10.99.0.54"]
tun_name = "uhs%%d"
ip_up = %q
ip_down = %q
ipv6_up = %q
ipv6_down = %q
ipparam = "lns-param"
`, lnsAddr, timers, secrets, lnsUp, lnsDown, lnsUp6, lnsDown6)
	lacConf := fmt.Sprintf(`[tunnel.lac1]
version = "l2tpv2"
peer = "%s:1701"
tun_name = "uh%%d"
%s
[tunnel.lac1.session.alice]
pseudowire = "ppp"
user = "alice"
password = "alice pass"
ip_up = %q
ip_down = %q
ipv6_up = %q
ipv6_down = %q
default_route = true
resolv_conf = %q

[tunnel.lac1.session.mallory]
pseudowire = "ppp"
user = "alice"
password = "wrong"
`, lnsAddr, timers, lacUp, lacDown, lacUp6, lacDown6, resolv)
	lnsFile, lacFile := e.writeFile("lns.toml", lnsConf), e.writeFile("lac.toml", lacConf)
	lns := e.startDaemon(e.nsB, "--config", lnsFile)
	lac := e.startDaemon(e.nsA, "--config", lacFile)
	named := func(name string) func(c *api.CallInfo) bool {
		return func(c *api.CallInfo) bool { return c.Name == name }
	}

	var alice api.SessionInfo
	until(t, "alice's PPP link open and both ends' ip-up and ipv6-up scripts run", func() bool {
		var ok bool
		alice, ok = pppCall(lac, named("alice"))
		return ok && alice.Call.PPP == "open" && len(lines(lacTrace)) == 1 && len(lines(lnsTrace)) == 1 &&
			len(lines(lac6Trace)) == 1 && len(lines(lns6Trace)) == 1
	})
	local, iface := alice.Call.PPPLocal, alice.Call.PPPInterface
	lnsCall, ok := pppCall(lns, func(c *api.CallInfo) bool { return c.PPPUser == "alice" && c.PPP == "open" })
	if !ok {
		t.Fatal("no open call at the LNS")
	}
	lnsIface := lnsCall.Call.PPPInterface
	if !strings.HasPrefix(iface, "uh") || !strings.HasPrefix(lnsIface, "uhs") {
		t.Errorf("TUNs %q (LAC) and %q (LNS): want tun_name's uh and uhs", iface, lnsIface)
	}

	// pppd's arguments: interface tty speed local remote ipparam.
	if got, want := lines(lacUp+".args"), []string{iface, "/dev/net/tun", "0", local, "10.99.0.1", ""}; !slices.Equal(got, want) {
		t.Errorf("LAC ip-up args %q, want %q", got, want)
	}
	if got, want := lines(lnsUp+".args"), []string{lnsIface, "/dev/net/tun", "0", "10.99.0.1", local, "lns-param"}; !slices.Equal(got, want) {
		t.Errorf("LNS ip-up args %q, want %q", got, want)
	}
	// pppd's environment, and nothing of the daemon's.
	lacEnv, lnsEnv := envMap(lacUp+".env"), envMap(lnsUp+".env")
	for k, v := range map[string]string{"IFNAME": iface, "IPLOCAL": local, "IPREMOTE": "10.99.0.1", "DEVICE": "/dev/net/tun",
		"SPEED": "0", "DNS1": "10.99.0.53", "DNS2": "10.99.0.54", "USEPEERDNS": "1", "ORIG_UID": "0", "PPPLOGNAME": "root"} {
		if lacEnv[k] != v {
			t.Errorf("LAC ip-up %s=%q, want %q (env %v)", k, lacEnv[k], v, lacEnv)
		}
	}
	if _, ok := lacEnv["PEERNAME"]; ok {
		t.Errorf("LAC ip-up has PEERNAME: the LNS did not authenticate itself")
	}
	for k, v := range map[string]string{"IFNAME": lnsIface, "IPLOCAL": "10.99.0.1", "IPREMOTE": local, "PEERNAME": "alice"} {
		if lnsEnv[k] != v {
			t.Errorf("LNS ip-up %s=%q, want %q (env %v)", k, lnsEnv[k], v, lnsEnv)
		}
	}
	for _, env := range []map[string]string{lacEnv, lnsEnv} {
		for _, k := range []string{"HOME", "CI", "GOPATH", "TERM"} {
			if v, ok := env[k]; ok {
				t.Errorf("ip-up got the daemon's %s=%q: the environment is pppd's only", k, v)
			}
		}
	}
	if l := lines(lacUp + ".iface"); !slices.Equal(l, []string{"present"}) {
		t.Errorf("LAC's TUN during ip-up: %q", l)
	}
	until(t, "the LAC logs ip-up's output", func() bool { return strings.Contains(lac.log(), "hook lac-ip-up ran") })

	// ipv6-up: pppd's arguments with the link-local addresses IPv6CP
	// agreed (as pppd writes them), LLLOCAL and LLREMOTE for IPLOCAL and
	// IPREMOTE.
	if alice.Call.PPPLocal6 == "" || alice.Call.PPPPeer6 == "" || lnsCall.Call.PPPLocal6 != alice.Call.PPPPeer6 {
		t.Fatalf("IPv6 link-local addresses: LAC %q %q, LNS %q %q", alice.Call.PPPLocal6, alice.Call.PPPPeer6,
			lnsCall.Call.PPPLocal6, lnsCall.Call.PPPPeer6)
	}
	lacLL, lnsLL := pppdLL(t, alice.Call.PPPLocal6), pppdLL(t, alice.Call.PPPPeer6)
	if got, want := lines(lacUp6+".args"), []string{iface, "/dev/net/tun", "0", lacLL, lnsLL, ""}; !slices.Equal(got, want) {
		t.Errorf("LAC ipv6-up args %q, want %q", got, want)
	}
	if got, want := lines(lnsUp6+".args"), []string{lnsIface, "/dev/net/tun", "0", lnsLL, lacLL, "lns-param"}; !slices.Equal(got, want) {
		t.Errorf("LNS ipv6-up args %q, want %q", got, want)
	}
	lacEnv6, lnsEnv6 := envMap(lacUp6+".env"), envMap(lnsUp6+".env")
	for _, c := range []struct {
		who  string
		env  map[string]string
		want map[string]string
	}{
		{"LAC", lacEnv6, map[string]string{"IFNAME": iface, "LLLOCAL": lacLL, "LLREMOTE": lnsLL, "DEVICE": "/dev/net/tun",
			"SPEED": "0", "ORIG_UID": "0", "PPPLOGNAME": "root"}},
		{"LNS", lnsEnv6, map[string]string{"IFNAME": lnsIface, "LLLOCAL": lnsLL, "LLREMOTE": lacLL, "PEERNAME": "alice"}},
	} {
		for k, v := range c.want {
			if c.env[k] != v {
				t.Errorf("%s ipv6-up %s=%q, want %q (env %v)", c.who, k, c.env[k], v, c.env)
			}
		}
		for _, k := range []string{"IPLOCAL", "IPREMOTE", "HOME", "CI", "GOPATH", "TERM"} {
			if v, ok := c.env[k]; ok {
				t.Errorf("%s ipv6-up got %s=%q", c.who, k, v)
			}
		}
	}
	for _, p := range []string{lacUp6, lnsUp6} {
		if l := lines(p + ".iface"); !slices.Equal(l, []string{"present"}) {
			t.Errorf("%s: the TUN during ipv6-up: %q, want present", filepath.Base(p), l)
		}
	}

	// The LAC's routes and resolv.conf while the call is up.
	routes := e.ip("-n", e.nsA, "-4", "route", "show")
	veth := fmt.Sprintf("u2t%da", e.n)
	defRoute := regexp.MustCompile(`(?m)^default dev ` + iface + `\b`)
	hostRoute := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(lnsAddr.String()) + ` dev ` + veth + `\b`)
	if !defRoute.MatchString(routes) || !hostRoute.MatchString(routes) {
		t.Errorf("LAC routes: want default dev %s and %s dev %s:\n%s", iface, lnsAddr, veth, routes)
	}
	if b, _ := os.ReadFile(resolv); string(b) != "nameserver 10.99.0.53\nnameserver 10.99.0.54\n" {
		t.Errorf("resolv.conf during the call: %q", b)
	}
	// Through the default route (no route to 10.99.0.0/24 but the TUN's).
	e.ping(e.nsA, "10.99.0.1")

	// mallory's wrong password: placed again and again, each wait longer,
	// the last failure shown while the call waits.
	redial := regexp.MustCompile(`"l2tpv2 lac call redial".*call=mallory in=(\S+) failures=(\d+)`)
	var waits []time.Duration
	deadline := time.Now().Add(60 * time.Second)
	for len(waits) < 3 && time.Now().Before(deadline) {
		waits = waits[:0]
		for _, m := range redial.FindAllStringSubmatch(lac.log(), -1) {
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatalf("redial wait %q: %v", m[1], err)
			}
			waits = append(waits, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(waits) < 3 {
		t.Fatalf("mallory's call placed again %d times in 60 s, want 3:\n%s", len(waits), lac.log())
	}
	for i := 1; i < len(waits) && i < 5; i++ { // up to the 60 s cap
		if waits[i] <= waits[i-1] {
			t.Errorf("redial waits %v: not growing", waits)
		}
	}
	until(t, "mallory's call shown waiting with its failure", func() bool {
		s, ok := pppCall(lac, named("mallory"))
		return ok && s.Call.State == "waiting" && s.SessionID == 0 && s.Call.Failures >= 3 &&
			strings.Contains(s.Call.LastFailure, "authentication failed") && s.Call.PPP == "dead"
	})
	if out := lac.mustCLI("show", "session"); !strings.Contains(out, "call incoming waiting") || !strings.Contains(out, "last failure (") {
		t.Errorf("show session has no waiting call with its last failure:\n%s", out)
	}
	if n := strings.Count(lns.log(), "authentication failed"); n < 3 {
		t.Errorf("LNS logged %d authentication failures, want 3 or more", n)
	}
	// The LNS's good call was not disturbed.
	if s, ok := pppCall(lns, func(c *api.CallInfo) bool { return c.PPPUser == "alice" && c.PPP == "open" }); !ok ||
		s.SessionID != lnsCall.SessionID || s.Call.PPPInterface != lnsIface {
		t.Errorf("LNS's alice call now %+v, was %+v", s, lnsCall)
	}
	e.ping(e.nsB, local)

	// The LAC stops: ip-down ran at both ends after ip-up, with the
	// interface still there; routes and resolv.conf are undone.
	lac.stop(true)
	until(t, "the LNS's ip-down and ipv6-down", func() bool { return len(lines(lnsTrace)) == 2 && len(lines(lns6Trace)) == 2 })
	for _, c := range []struct{ trace, up, down string }{{lacTrace, "lac-ip-up", "lac-ip-down"}, {lnsTrace, "lns-ip-up", "lns-ip-down"},
		{lac6Trace, "lac-ipv6-up", "lac-ipv6-down"}, {lns6Trace, "lns-ipv6-up", "lns-ipv6-down"}} {
		if got := lines(c.trace); !slices.Equal(got, []string{c.up, c.down}) {
			t.Errorf("hooks ran %q, want %s then %s", got, c.up, c.down)
		}
	}
	for _, c := range [][2]string{{lacUp, lacDown}, {lnsUp, lnsDown}, {lacUp6, lacDown6}, {lnsUp6, lnsDown6}} {
		if got, want := lines(c[1]+".args"), lines(c[0]+".args"); !slices.Equal(got, want) {
			t.Errorf("%s args %q, want %s's %q", filepath.Base(c[1]), got, filepath.Base(c[0]), want)
		}
	}
	if env := envMap(lacDown6 + ".env"); env["LLLOCAL"] != lacLL || env["LLREMOTE"] != lnsLL {
		t.Errorf("LAC ipv6-down env %v: want LLLOCAL=%s LLREMOTE=%s", env, lacLL, lnsLL)
	}
	for _, p := range []string{lacDown, lnsDown, lacDown6, lnsDown6} {
		if l := lines(p + ".iface"); !slices.Equal(l, []string{"present"}) {
			t.Errorf("%s: the TUN during ip-down: %q, want present", filepath.Base(p), l)
		}
		env := envMap(p + ".env")
		for _, k := range []string{"CONNECT_TIME", "BYTES_SENT", "BYTES_RCVD"} {
			if _, err := strconv.ParseUint(env[k], 10, 64); err != nil {
				t.Errorf("%s: %s=%q", filepath.Base(p), k, env[k])
			}
		}
		if env["BYTES_SENT"] == "0" || env["BYTES_RCVD"] == "0" {
			t.Errorf("%s: no bytes counted after pings: %v", filepath.Base(p), env)
		}
	}
	routes = e.ip("-n", e.nsA, "-4", "route", "show")
	if defRoute.MatchString(routes) || hostRoute.MatchString(routes) || strings.Contains(routes, "default") {
		t.Errorf("LAC routes left after it stopped:\n%s", routes)
	}
	if !strings.Contains(routes, fmt.Sprintf("10.210.%d.0/24 dev %s", e.n, veth)) {
		t.Errorf("the veth's own route is gone:\n%s", routes)
	}
	if b, _ := os.ReadFile(resolv); string(b) != oldResolv {
		t.Errorf("resolv.conf after the call: %q, want it restored to %q", b, oldResolv)
	}
	lns.stop(true)
	for _, ns := range []string{e.nsA, e.nsB} {
		if out := e.ip("-n", ns, "-o", "link", "show"); strings.Contains(out, " uh") {
			t.Errorf("TUN devices left in %s:\n%s", ns, out)
		}
	}
}
