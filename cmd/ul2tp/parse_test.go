package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		line    string
		op      string
		check   func(api.Request) bool
		errWant string
	}{
		{"add tunnel tunnel_id 100 peer_tunnel_id 200 encap ip local 10.0.0.1 remote 10.0.0.2", api.OpAddTunnel,
			func(r api.Request) bool {
				return r.Tunnel.TunnelID == 100 && r.Tunnel.PeerTunnelID == 200 && r.Tunnel.Encap == "ip" && r.Tunnel.Remote == "10.0.0.2"
			}, ""},
		{"add tunnel tid 1 ptid 2 remote ::1 udp_sport 5000 udp_dport 6000 udp6_csum_tx off", api.OpAddTunnel,
			func(r api.Request) bool {
				return r.Tunnel.UDPSport == 5000 && r.Tunnel.UDPDport == 6000 && r.Tunnel.UDP6CsumTx != nil && !*r.Tunnel.UDP6CsumTx
			}, ""},
		{"add session name l2tp0 tunnel_id 1 session_id 2 peer_session_id 3 cookie 11223344 peer_cookie 0011223344556677 l2spec_type none seq both reorder_timeout 100", api.OpAddSession,
			func(r api.Request) bool {
				s := r.Session
				return s.Name == "l2tp0" && s.SessionID == 2 && s.Cookie == "11223344" && s.L2SpecType == "none" && s.Seq == "both" && s.ReorderTimeout == 100
			}, ""},
		{"add session tunnel_id 7 name call1", api.OpAddSession, func(r api.Request) bool {
			return r.Session.TunnelID == 7 && r.Session.SessionID == 0 && r.Session.Name == "call1"
		}, ""},
		{"add session tunnel_id 7 session_id 8", "", nil, "peer_session_id: required"},
		{"del tunnel tunnel_id 7", api.OpDelTunnel, func(r api.Request) bool { return r.Tunnel.TunnelID == 7 }, ""},
		{"del session tunnel_id 7 session_id 8", api.OpDelSession, func(r api.Request) bool { return r.Session.SessionID == 8 }, ""},
		{"show tunnel", api.OpShowTunnel, func(r api.Request) bool { return r.Tunnel.TunnelID == 0 }, ""},
		{"list session tunnel_id 3", api.OpShowSession, func(r api.Request) bool { return r.Session.TunnelID == 3 }, ""},
		{"set session tunnel_id 1 session_id 2 seq both reorder_timeout 0 lns_mode on", api.OpSetSession,
			func(r api.Request) bool {
				return r.Set.Seq == "both" && r.Set.ReorderTimeout != nil && *r.Set.ReorderTimeout == 0 && *r.Set.LNSMode
			}, ""},
		{"set session tunnel_id 1 seq both", "", nil, "required"},
		{"set tunnel tunnel_id 1", "", nil, "only sessions"},
		{"reload", api.OpReload, func(r api.Request) bool { return r.Tunnel == nil && r.Session == nil }, ""},
		{"reload now", "", nil, "unexpected argument"},
		{"add tunnel tunnel_id 1 peer_tunnel_id 2", "", nil, "remote: required"},
		{"add tunnel tunnel_id 0 peer_tunnel_id 2 remote 1.2.3.4", "", nil, "invalid tunnel_id"},
		{"add tunnel tunnel_id 1 peer_tunnel_id 2 remote 1.2.3.4 encap gre", "", nil, "invalid encap"},
		{"add tunnel tunnel_id 1 peer_tunnel_id 2 remote 1.2.3.4 udp_sport 70000", "", nil, "invalid udp_sport"},
		{"add tunnel tunnel_id 1 peer_tunnel_id 2 remote 1.2.3.4 udp_csum maybe", "", nil, "invalid udp_csum"},
		{"add tunnel tunnel_id 1 peer_tunnel_id 2 remote", "", nil, "remote: needs a value"},
		{"add tunnel tunnel_id 1 bogus 2", "", nil, `unknown tunnel argument "bogus"`},
		{"add session tunnel_id 1 session_id 2", "", nil, "peer_session_id: required"},
		{"add session tunnel_id 1 session_id 2 peer_session_id 3 l2spec_type odd", "", nil, "invalid l2spec_type"},
		{"add session tunnel_id 1 session_id 2 peer_session_id 3 seq sometimes", "", nil, "invalid seq"},
		{"add session tunnel_id 1 session_id 2 peer_session_id 3 address 02:00:00:0A:0b:0c", api.OpAddSession,
			func(r api.Request) bool { return r.Session.Address == "02:00:00:0a:0b:0c" }, ""},
		{"add session tunnel_id 1 session_id 2 peer_session_id 3 address 02:00", "", nil, "invalid address"},
		{"del session tunnel_id 1", "", nil, "required"},
		{"frob tunnel", "", nil, "unknown command"},
		{"add bridge", "", nil, "unknown object"},
	} {
		req, err := parse(strings.Fields(tc.line))
		if tc.errWant != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errWant) {
				t.Errorf("%q: error %v, want %q", tc.line, err, tc.errWant)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if req.Op != tc.op || !tc.check(req) {
			t.Errorf("%q: got %+v", tc.line, req)
		}
	}
}

// TestParseErrorTexts checks that each error names its word, says what
// is wanted, and has no stray spaces.
func TestParseErrorTexts(t *testing.T) {
	const sess = "add session tunnel_id 1 session_id 2 peer_session_id 3 "
	for _, tc := range []struct {
		line string
		want []string
	}{
		{sess + "mtu 70000", []string{`invalid mtu "70000"`, "68..65471"}},
		{sess + "mtu 20", []string{`invalid mtu "20"`, "68..65471"}},
		{sess + "mtu -1", []string{`invalid mtu "-1"`, "68..65471"}},
		{sess + "mtu big", []string{`invalid mtu "big"`, "68..65471"}},
		{sess + "reorder_timeout soon", []string{"reorder_timeout", "milliseconds"}},
		{sess + "seq sometimes", []string{"seq", "none, send, recv or both"}},
		{sess + "lns_mode maybe", []string{"lns_mode", "on or off"}},
		{sess + "offset 4", []string{"offset", "only 0"}},
		{"add tunnel tunnel_id 1 peer_tunnel_id 2 remote 1.2.3.4 udp_sport 70000", []string{"udp_sport", "0..65535"}},
		{"add tunnel tunnel_id x peer_tunnel_id 2 remote 1.2.3.4", []string{"tunnel_id", "1..4294967295"}},
	} {
		_, err := parse(strings.Fields(tc.line))
		if err == nil {
			t.Errorf("%q: no error", tc.line)
			continue
		}
		e := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(e, w) {
				t.Errorf("%q: error %q does not say %q", tc.line, e, w)
			}
		}
		if strings.TrimSpace(e) != e || strings.Contains(e, "  ") || strings.Contains(e, " :") {
			t.Errorf("%q: error %q has stray spaces", tc.line, e)
		}
	}
}

func TestNoDaemon(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"--socket", t.TempDir() + "/none.sock", "show", "tunnel"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "no ul2tpd answers") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestPrint(t *testing.T) {
	off := false
	var b bytes.Buffer
	printTunnel(&b, api.TunnelInfo{TunnelID: 100, Encap: "UDP", Local: "10.0.0.1", Peer: "10.0.0.2", PeerTunnelID: 200, LocalPort: 1701, PeerPort: 1701, Checksum: &off})
	want := "Tunnel 100, encap UDP\n  From 10.0.0.1 to 10.0.0.2\n  Peer tunnel 200\n  UDP source / dest ports: 1701/1701\n  UDP checksum: disabled\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	printSession(&b, api.SessionInfo{SessionID: 11, TunnelID: 1, PeerSessionID: 22, PeerTunnelID: 2, Interface: "l2t0",
		Address: "02:08:18:d8:c6:ff", L2SpecType: "default", MTU: 1430, State: "up"})
	want = "Session 11 in tunnel 1\n  Peer session 22, tunnel 2\n  interface name: l2t0\n  address 02:08:18:d8:c6:ff\n" +
		"  offset 0, peer offset 0\n  l2spec_type default, mtu 1430\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("add tunnel tunnel_id 1 peer_tunnel_id 2 remote 10.0.0.2 encap ip")
	f.Add("add session tunnel_id 1 session_id 2 peer_session_id 3 cookie 11223344 seq both")
	f.Add("set session tid 1 sid 2 reorder_timeout 5")
	f.Fuzz(func(t *testing.T, line string) {
		_, _ = parse(strings.Fields(line))
	})
}

func TestPrintReload(t *testing.T) {
	var b bytes.Buffer
	printReload(&b, &api.ReloadResult{
		Added:     []api.ReloadItem{{Tunnel: "t1", Session: "s3", TunnelID: 1, SessionID: 3}},
		Removed:   []api.ReloadItem{{Tunnel: "t9", TunnelID: 9}},
		Rebuilt:   []api.ReloadItem{{Tunnel: "t1", Session: "s2", TunnelID: 1, SessionID: 2}},
		Unchanged: 2,
		Failed:    []string{"add session t1/s4 (1/4): busy"},
	})
	want := `reload: 1 added, 1 removed, 1 rebuilt, 0 modified, 2 unchanged, 1 failed
  added session t1/s3 (1/3)
  removed tunnel t9 (9)
  rebuilt session t1/s2 (1/2)
  failed add session t1/s4 (1/4): busy
`
	if b.String() != want {
		t.Errorf("printReload:\n%s\nwant:\n%s", b.String(), want)
	}
}
