package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/apiserver"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
	"github.com/ul2tp/ul2tp/encap"
)

const goL2TPStatic = `
[tunnel.t1]
local = "127.0.0.1:5000"
peer = "127.0.0.1:5001"
version = "l2tpv3"
encap = "udp"
tid = 412
ptid = 8192
hello_timeout = 250

[tunnel.t1.session.s1]
sid = 42
psid = 50
pseudowire = "eth"
seqnum = true
cookie = [ 0x34, 0x04, 0xa9, 0xbe ]
peer_cookie = [ 0x80, 0x12, 0xff, 0x5b, 0x01, 0x02, 0x03, 0x04 ]
interface_name = "l2tpeth0"
l2spec_type = "default"
reorder_timeout = 1500

[tunnel.t2]
local = "[::1]"
peer = "::2"
encap = "ip"
tid = 1
ptid = 2
udp6_csum_tx = false

[tunnel.t2.session.a]
sid = 7
psid = 8
mtu = 1400
address = "02:00:00:00:07:08"
`

func TestParseGoL2TP(t *testing.T) {
	f, err := Parse(goL2TPStatic)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tunnels) != 2 {
		t.Fatalf("%d tunnels", len(f.Tunnels))
	}
	t1 := f.Tunnels[0]
	if t1.Name != "t1" || t1.Args.TunnelID != 412 || t1.Args.PeerTunnelID != 8192 || t1.Args.Local != "127.0.0.1" ||
		t1.Args.UDPSport != 5000 || t1.Args.Remote != "127.0.0.1" || t1.Args.UDPDport != 5001 || t1.Args.Encap != "udp" {
		t.Fatalf("t1 = %+v", t1.Args)
	}
	s := t1.Sessions[0].Args
	if s.TunnelID != 412 || s.SessionID != 42 || s.PeerSessionID != 50 || s.Seq != "both" || s.Cookie != "3404a9be" ||
		s.PeerCookie != "8012ff5b01020304" || s.Name != "l2tpeth0" || s.L2SpecType != "default" || s.ReorderTimeout != 1500 {
		t.Fatalf("s1 = %+v", s)
	}
	t2 := f.Tunnels[1]
	if t2.Args.Local != "::1" || t2.Args.Remote != "::2" || t2.Args.UDP6CsumTx == nil || *t2.Args.UDP6CsumTx || t2.Sessions[0].Args.MTU != 1400 ||
		t2.Sessions[0].Args.Address != "02:00:00:00:07:08" {
		t.Fatalf("t2 = %+v", t2)
	}
}

func TestParseErrors(t *testing.T) {
	base := "[tunnel.t]\npeer = \"10.0.0.2\"\ntid = 1\nptid = 2\n"
	for _, tc := range []struct{ text, want string }{
		{base + "bogus = 1\n", "unknown key tunnel.t.bogus"},
		{"[tunnel.t]\npeer = \"10.0.0.2\"\ntid = 0\nptid = 2\n", "tid 0"},
		{"[tunnel.t]\ntid = 1\nptid = 2\n", "peer: required"},
		{"[tunnel.t]\npeer = \"example.com:1701\"\ntid = 1\nptid = 2\n", "host names are not resolved"},
		{base + "encap = \"gre\"\n", "invalid encap"},
		{base + "version = \"l2tpv2\"\n", "config:3: tunnel \"t\": tid: L2TPv2 tunnel ids are assigned by the daemon"},
		{"[tunnel.t]\nversion = \"l2tpv2\"\npeer = \"10.0.0.2\"\nhide_avps = true\n", "config:4: tunnel \"t\": hide_avps: needs a secret"},
		{"[tunnel.t]\nversion = \"l2tpv2\"\npeer = \"10.0.0.2\"\n[tunnel.t.session.c]\npseudowire = \"eth\"\n", "config:5: tunnel \"t\" session \"c\": pseudowire"},
		{"[lns]\nlisten = \"10.0.0.1:1701\"\npeers = [\"nope\"]\n", "config:3: lns: peers \"nope\""},
		{"[lns]\nmax_pending = -1\n", "config:2: lns: max_pending -1"},
		{"[lns]\nbogus = 1\n", "unknown key lns.bogus"},
		{base + "[tunnel.t.session.s]\nsid = 1\npsid = 2\ncookie = [1, 2, 3]\n", "cookie: 3 bytes"},
		{base + "[tunnel.t.session.s]\nsid = 1\npsid = 2\npseudowire = \"ppp\"\n", "pseudowire"},
		{base + "[tunnel.t.session.s]\nsid = 1\npsid = 2\nl2spec_type = \"x\"\n", "l2spec_type"},
		{base + "[tunnel.t.session.s]\nsid = 1\npsid = 0\n", "psid 0"},
		{base + "[tunnel.t.session.s]\nsid = 1\npsid = 2\naddress = \"33:33:00:00:00:01\"\n", "invalid address"},
		{"[tunnel.t\n", "toml"},
	} {
		_, err := Parse(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tc.text, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(goL2TPStatic)
	f.Add("[tunnel.t]\npeer = \"10.0.0.2\"\ntid = 1\nptid = 2\n[tunnel.t.session.s]\nsid = 1\npsid = 2\ncookie = [1,2,3,4]\n")
	f.Add("[lns]\nlocal_ip = \"10.9.0.1\"\npool = \"10.9.0.10-10.9.0.20\"\nipv6_local_id = \"::1\"\nlcp_echo_interval = 10\n" +
		"[tunnel.l]\nversion = \"l2tpv2\"\npeer = \"10.9.0.1\"\n[tunnel.l.session.c]\nuser = \"u\"\nipv6 = false\nlcp_echo_failure = 2\n")
	f.Fuzz(func(t *testing.T, text string) {
		file, err := Parse(text)
		if err != nil {
			return
		}
		// Whatever parses also converts into a checked configuration.
		for _, tn := range file.Tunnels {
			if _, err := apiserver.TunnelConfig(&tn.Args); err != nil {
				t.Fatalf("tunnel %s parsed but does not convert: %v", tn.Name, err)
			}
			for _, s := range tn.Sessions {
				if _, err := apiserver.SessionConfig(&s.Args); err != nil {
					t.Fatalf("session %s parsed but does not convert: %v", s.Name, err)
				}
			}
		}
	})
}

// TestL2SpecDefault checks that a session without l2spec_type gets go-l2tp's
// default, no sublayer, unlike the CLI (iproute2's default sublayer).
func TestL2SpecDefault(t *testing.T) {
	base := "[tunnel.t]\npeer = \"10.0.0.2\"\ntid = 1\nptid = 2\n[tunnel.t.session.s]\nsid = 1\npsid = 2\n"
	for _, tc := range []struct {
		key  string
		want encap.L2Spec
	}{
		{"", encap.L2SpecNone},
		{"l2spec_type = \"none\"\n", encap.L2SpecNone},
		{"l2spec_type = \"default\"\n", encap.L2SpecDefault},
	} {
		f, err := Parse(base + tc.key)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.key, err)
		}
		c, err := apiserver.SessionConfig(&f.Tunnels[0].Sessions[0].Args)
		if err != nil {
			t.Fatalf("%q: %v", tc.key, err)
		}
		if c.L2Spec != tc.want {
			t.Errorf("%q: l2spec %v, want %v", tc.key, c.L2Spec, tc.want)
		}
	}
}

// TestErrorsNameLineAndKey checks that each mistake names the line and
// key it is on, and for a duplicate the line of the first.
func TestErrorsNameLineAndKey(t *testing.T) {
	const two = `[tunnel.t1]
peer = "10.0.0.2"
tid = 1
ptid = 2

[tunnel.t1.session.s1]
sid = 5
psid = 6
interface_name = "l2tpa"

[tunnel.t1.session.s2]
psid = 7
sid = 5
`
	for _, tc := range []struct{ name, text, want string }{
		{"duplicate sid", two,
			`config:13: tunnel "t1" session "s2": sid 5 duplicates session "s1" (line 7)`},
		{"duplicate tid", "[tunnel.b]\npeer = \"10.0.0.2\"\ntid = 1\nptid = 2\n[tunnel.a]\npeer = \"10.0.0.3\"\nptid = 2\ntid = 1\n",
			`config:8: tunnel "a": tid 1 duplicates tunnel "b" (line 3)`},
		{"duplicate interface_name", "[tunnel.a]\npeer = \"10.0.0.2\"\ntid = 1\nptid = 2\n[tunnel.a.session.x]\nsid = 1\npsid = 1\ninterface_name = \"e0\"\n" +
			"[tunnel.b]\npeer = \"10.0.0.3\"\ntid = 2\nptid = 2\n[tunnel.b.session.y]\nsid = 1\npsid = 1\ninterface_name = \"e0\"\n",
			`config:16: tunnel "b" session "y": interface_name "e0" duplicates tunnel "a" session "x" (line 8)`},
		{"bad cookie", strings.Replace(two, "psid = 7\n", "psid = 7\ncookie = [1, 2, 3]\n", 1),
			`config:13: tunnel "t1" session "s2": cookie: 3 bytes, want 4 or 8`},
		{"bad seq", strings.Replace(two, "psid = 6\n", "psid = 6\nseq = \"sometimes\"\n", 1),
			`config:9: tunnel "t1" session "s1": invalid seq "sometimes"`},
		{"seq without the sublayer", strings.Replace(two, "psid = 6\n", "psid = 6\nseqnum = true\n", 1),
			`config:9: tunnel "t1" session "s1": invalid seq "both": needs l2spec_type default`},
		{"bad peer", strings.Replace(two, `peer = "10.0.0.2"`, `peer = "nowhere"`, 1),
			`config:2: tunnel "t1": peer "nowhere": not an IP address`},
		{"missing peer", strings.Replace(two, "peer = \"10.0.0.2\"\n", "", 1),
			`config:1: tunnel "t1": peer: required`},
		{"unknown key", strings.Replace(two, "ptid = 2\n", "ptid = 2\n  \"bogus\" = 1\n", 1),
			`config:5: unknown key tunnel.t1.bogus`},
		{"toml syntax", "[tunnel.t1]\npeer = \"10.0.0.2\"\ntid = = 1\n", `config:3: toml: `},
	} {
		_, err := Parse(tc.text)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want error starting %q", tc.name, err, tc.want)
		}
	}
}

// TestLoadErrorNamesFile checks that Load's errors name the file.
func TestLoadErrorNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ul2tp.toml")
	if err := os.WriteFile(path, []byte("[tunnel.t1]\npeer = \"10.0.0.2\"\ntid = 0\nptid = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + `:3: tunnel "t1": tid 0: must be 1..4294967295`; err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %q", err, want)
	}
	if _, err := Load(filepath.Join(dir, "absent.toml")); err == nil || !strings.Contains(err.Error(), "absent.toml") {
		t.Errorf("Load of a missing file = %v, want an error naming it", err)
	}
}

func TestKeyLines(t *testing.T) {
	text := "# c\n[tunnel.\"t 1\"]\npeer = \"x\" # tid = 9\ns = \"\"\"\ntid = 3\n\"\"\"\n tid=4\n[ tunnel . \"t 1\" . session.a ]\nsid.x = 1\n"
	pos := keyLines(text)
	for _, tc := range []struct {
		key  []string
		want int
	}{
		{[]string{"tunnel", "t 1"}, 2},
		{[]string{"tunnel", "t 1", "peer"}, 3},
		{[]string{"tunnel", "t 1", "tid"}, 7},
		{[]string{"tunnel", "t 1", "session", "a"}, 8},
		{[]string{"tunnel", "t 1", "session", "a", "sid", "x"}, 9},
		{[]string{"tunnel", "t 1", "session", "a", "psid"}, 8},
		{[]string{"other"}, 0},
	} {
		if got := pos.lineOf(tc.key...); got != tc.want {
			t.Errorf("lineOf(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

// FuzzKeyLines checks that the key position scanner takes any text and
// gives lines inside it.
func FuzzKeyLines(f *testing.F) {
	f.Add(goL2TPStatic)
	f.Add("[a.\"b\\\"c\"]\nx.'y' = \"\"\"\nz = 1\n\"\"\"\n[[t]]\n")
	f.Fuzz(func(t *testing.T, text string) {
		n := strings.Count(text, "\n") + 1
		for k, line := range keyLines(text) {
			if line < 1 || line > n {
				t.Fatalf("key %s at line %d of %d", k, line, n)
			}
		}
	})
}

const l2tpv2File = `
[lns]
listen = "10.203.0.2:1701"
secret = "s3cret"
hide_avps = true
host_name = "ul2tp-lns"
peers = ["10.203.0.0/24", "192.0.2.7"]
peer_host_names = ["lac"]
hello_timeout = 5000
retry_timeout = 250
max_retries = 3
window_size = 8
max_tunnels = 10
max_calls = 20
max_pending = 4

[tunnel.lac1]
version = "l2tpv2"
peer = "10.203.0.2"
secret = "s3cret"
host_name = "ul2tp-lac"
redial = false

[tunnel.lac1.session.call2]
pseudowire = "ppp"

[tunnel.lac1.session.call1]

[tunnel.t3]
peer = "10.0.0.2"
tid = 1
ptid = 2
`

func TestParseL2TPv2(t *testing.T) {
	f, err := Parse(l2tpv2File)
	if err != nil {
		t.Fatal(err)
	}
	if f.LNS == nil || len(f.LACs) != 1 || len(f.Tunnels) != 1 {
		t.Fatalf("lns %v, %d lacs, %d tunnels", f.LNS, len(f.LACs), len(f.Tunnels))
	}
	l := f.LNS.Config
	if l.Listen.String() != "10.203.0.2:1701" || l.Secret != "s3cret" || !l.HideAVPs || l.HostName != "ul2tp-lns" ||
		len(l.Peers) != 2 || l.Peers[1].String() != "192.0.2.7/32" || l.PeerHostNames[0] != "lac" ||
		l.HelloInterval != 5*time.Second || l.RetryTimeout != 250*time.Millisecond || l.MaxRetries != 3 ||
		l.Window != 8 || l.MaxTunnels != 10 || l.MaxCalls != 20 || l.MaxPending != 4 || f.LNS.Line != 2 {
		t.Errorf("lns %+v", f.LNS)
	}
	c := f.LACs[0]
	if c.Name != "lac1" || c.Config.Peer.String() != "10.203.0.2:1701" || c.Config.HostName != "ul2tp-lac" ||
		!c.Config.NoRedial || len(c.Config.Calls) != 2 || c.Config.Calls[0] != "call1" || c.Line != 17 {
		t.Errorf("lac %+v", c)
	}
	if err := SameL2TPv2(f, f); err != nil {
		t.Error(err)
	}
	g, _ := Parse(strings.Replace(l2tpv2File, "max_pending = 4", "max_pending = 5", 1))
	if err := SameL2TPv2(f, g); err == nil || !strings.Contains(err.Error(), "restart ul2tpd") {
		t.Errorf("changed [lns]: %v", err)
	}
}

// TestParsePPPOptions reads the PPP keys [lns] and a LAC's call share:
// IPv6 on by default, LCP keepalives every 30 seconds ended after 4
// misses unless set otherwise.
func TestParsePPPOptions(t *testing.T) {
	const lns = "[lns]\nlocal_ip = \"10.9.0.1\"\npool = \"10.9.0.10-10.9.0.20\"\n"
	const lac = "[tunnel.l]\nversion = \"l2tpv2\"\npeer = \"10.9.0.1\"\n[tunnel.l.session.c]\nuser = \"u\"\npassword = \"p\"\n"
	f, err := Parse(lns + lac)
	if err != nil {
		t.Fatal(err)
	}
	want := pppcall.Options{EchoInterval: 30 * time.Second, EchoFailures: 4, MTU: 1400, MRU: 1400}
	if o := f.LNS.Config.PPP.Options; o != want {
		t.Errorf("lns defaults %+v, want %+v", o, want)
	}
	if o := f.LACs[0].Config.PPP["c"].Options; o != want {
		t.Errorf("lac call defaults %+v, want %+v", o, want)
	}
	f, err = Parse(lns + "ipv6_local_id = \"::1:2:3:4\"\nlcp_echo_interval = 10\nlcp_echo_failure = 2\nmtu = 1460\nmru = 1500\n" +
		lac + "ipv6 = false\nlcp_echo_interval = 0\nmtu = 1462\nmru = 1300\n")
	if err != nil {
		t.Fatal(err)
	}
	want = pppcall.Options{IPv6ID: [8]byte{0, 1, 0, 2, 0, 3, 0, 4}, EchoInterval: 10 * time.Second, EchoFailures: 2, MTU: 1460, MRU: 1500}
	if o := f.LNS.Config.PPP.Options; o != want {
		t.Errorf("lns %+v, want %+v", o, want)
	}
	want = pppcall.Options{NoIPv6: true, EchoFailures: 4, MTU: 1462, MRU: 1300}
	if o := f.LACs[0].Config.PPP["c"].Options; o != want {
		t.Errorf("lac call %+v, want %+v", o, want)
	}
	g, err := Parse(lns + "lcp_echo_interval = 11\n" + lac)
	if err != nil {
		t.Fatal(err)
	}
	if err := SameL2TPv2(f, g); err == nil {
		t.Error("a changed lcp_echo_interval is the same L2TPv2 settings")
	}
	for _, tc := range []struct{ text, want string }{
		{lns + "ipv6_local_id = \"fe80::1\"\n", "ipv6_local_id \"fe80::1\": want a non-zero interface identifier"},
		{lns + "ipv6_local_id = \"::\"\n", "ipv6_local_id \"::\""},
		{lns + "ipv6_local_id = \"10.0.0.1\"\n", "ipv6_local_id \"10.0.0.1\""},
		{lns + "ipv6 = false\nipv6_local_id = \"::1\"\n", "ipv6_local_id: set with ipv6 = false"},
		{lns + "lcp_echo_interval = -1\n", "lcp_echo_interval -1: want 0..3600"},
		{lns + "lcp_echo_failure = 0\n", "lcp_echo_failure 0: want 1..100"},
		{"[lns]\nlcp_echo_interval = 5\n", "lcp_echo_interval: PPP runs only with local_ip and pool"},
		{lac + "lcp_echo_failure = 101\n", "lcp_echo_failure 101"},
		{lns + "mtu = 100\n", "mtu 100: want 128..65535 bytes"},
		{lac + "mru = 70000\n", "mru 70000: want 128..65535 bytes"},
		{"[tunnel.l]\nversion = \"l2tpv2\"\npeer = \"10.9.0.1\"\n[tunnel.l.session.c]\nipv6 = false\n",
			"ipv6: PPP runs on a call only with user and password"},
	} {
		if _, err := Parse(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.text, err, tc.want)
		}
	}
}

// TestParsePPPHooks reads ip_up, ip_down, ipv6_up, ipv6_down, ipparam
// and hook_timeout in [lns] and a LAC call, with the call's default_route and resolv_conf,
// and refuses them where they cannot work.
func TestParsePPPHooks(t *testing.T) {
	dir := t.TempDir()
	up, down, plain := filepath.Join(dir, "ip-up"), filepath.Join(dir, "ip-down"), filepath.Join(dir, "plain")
	up6, down6 := filepath.Join(dir, "ipv6-up"), filepath.Join(dir, "ipv6-down")
	for p, mode := range map[string]os.FileMode{up: 0o755, down: 0o700, plain: 0o644, up6: 0o755, down6: 0o750} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	resolv := filepath.Join(dir, "resolv.conf")
	text := fmt.Sprintf(`[lns]
listen = "10.203.0.2:1701"
local_ip = "10.99.0.1"
pool = "10.99.0.10-10.99.0.20"
ip_up = %q
ip_down = %q
ipv6_up = %q
ipv6_down = %q
ipparam = "lns"

[tunnel.lac1]
version = "l2tpv2"
peer = "10.203.0.2"

[tunnel.lac1.session.home]
user = "alice"
password = "pw"
ip_up = %q
ipv6_down = %q
hook_timeout = 5000
default_route = true
resolv_conf = %q

[tunnel.lac1.session.bare]
user = "bob"
password = "pw"
`, up, down, up6, down6, up, down6, resolv)
	f, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if h := f.LNS.Config.PPP.Hooks; h == nil || h.IPUp != up || h.IPDown != down || h.IPv6Up != up6 || h.IPv6Down != down6 ||
		h.IPParam != "lns" || h.DefaultRoute {
		t.Errorf("lns hooks %+v", h)
	}
	ppp := f.LACs[0].Config.PPP
	if h := ppp["home"].Hooks; h == nil || h.IPUp != up || h.IPDown != "" || h.IPv6Up != "" || h.IPv6Down != down6 || h.Timeout != 5*time.Second ||
		!h.DefaultRoute || h.ResolvConf != resolv {
		t.Errorf("lac call hooks %+v", h)
	}
	if ppp["bare"].Hooks != nil {
		t.Errorf("a call without hook keys has hooks %+v", ppp["bare"].Hooks)
	}
	g, err := Parse(strings.Replace(text, `ipparam = "lns"`, `ipparam = "x"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := SameL2TPv2(f, g); err == nil {
		t.Error("a changed ipparam is not a change of the L2TPv2 settings")
	}
	g, err = Parse(strings.Replace(text, "ipv6_up = \""+up6+"\"\n", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := SameL2TPv2(f, g); err == nil {
		t.Error("a removed ipv6_up is not a change of the L2TPv2 settings")
	}
	for _, bad := range []struct{ from, to, key string }{
		{"ip_up = \"" + up + "\"\nip_down", "ip_up = \"ip-up\"\nip_down", "ip_up"},
		{"ip_down = \"" + down, "ip_down = \"" + plain, "ip_down"},
		{"ip_down = \"" + down, "ip_down = \"" + dir + "/none", "ip_down"},
		{"ipv6_up = \"" + up6, "ipv6_up = \"ipv6-up", "ipv6_up"},
		{"ipv6_up = \"" + up6, "ipv6_up = \"" + dir, "ipv6_up"},
		{"ipv6_down = \"" + down6 + "\"\nipparam", "ipv6_down = \"" + plain + "\"\nipparam", "ipv6_down"},
		{"ipv6_down = \"" + down6 + "\"\nhook_timeout", "ipv6_down = \"" + dir + "/none\"\nhook_timeout", "ipv6_down"},
		{"user = \"bob\"\npassword = \"pw\"", "ipv6_up = \"" + up6 + "\"", "ipv6_up"},
		{"hook_timeout = 5000", "hook_timeout = -1", "hook_timeout"},
		{"resolv_conf = \"" + resolv, "resolv_conf = \"" + dir + "/no/resolv.conf", "resolv_conf"},
		{"user = \"bob\"\npassword = \"pw\"", "default_route = true", "default_route"},
		{"local_ip = \"10.99.0.1\"\npool = \"10.99.0.10-10.99.0.20\"\n", "", "ip_up"},
	} {
		_, err := Parse(strings.Replace(text, bad.from, bad.to, 1))
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%q -> %q: %v, want an error naming %s", bad.from, bad.to, err, bad.key)
		}
	}
}
