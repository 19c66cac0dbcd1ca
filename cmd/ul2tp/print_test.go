package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// TestPrintDetails checks the dump's lines under show -d: the socket
// addresses of a tunnel, and a session's sequencing state with "-" for an
// nr no sequenced packet has set yet.
func TestPrintDetails(t *testing.T) {
	var b bytes.Buffer
	printTunnel(&b, api.TunnelInfo{TunnelID: 1, Encap: "UDP", Local: "10.0.0.1", Peer: "10.0.0.2", PeerTunnelID: 2,
		LocalPort: 1701, PeerPort: 1702, Sessions: 3,
		Details: &api.TunnelDetails{Version: 3, LocalAddress: "10.0.0.1:1701", PeerAddress: "10.0.0.2:1702"}})
	want := "Tunnel 1, encap UDP\n  From 10.0.0.1 to 10.0.0.2\n  Peer tunnel 2\n  UDP source / dest ports: 1701/1702\n" +
		"  L2TPv3 from 10.0.0.1:1701 to 10.0.0.2:1702, 3 sessions\n"
	if got := b.String(); got != want {
		t.Errorf("tunnel:\n%s\nwant:\n%s", got, want)
	}
	for _, tc := range []struct {
		d    api.SessionDetails
		want string
	}{
		{api.SessionDetails{SendSeq: true, RecvSeq: true, ReorderTimeout: 100, Ns: 7, Nr: 12, NrValid: true, ReorderQueueLength: 1},
			"  seq: send_seq on recv_seq on lns_mode off reorder_timeout 100\n  nr 12 ns 7 reorder_queue 1\n"},
		{api.SessionDetails{LNSMode: true},
			"  seq: send_seq off recv_seq off lns_mode on reorder_timeout 0\n  nr - ns 0 reorder_queue 0\n"},
	} {
		b.Reset()
		printSessionDetails(&b, &tc.d)
		if got := b.String(); got != tc.want {
			t.Errorf("session %+v:\n%s\nwant:\n%s", tc.d, got, tc.want)
		}
	}
}

// TestPrintPPPCall: a PPP call shows its phase, user, addresses, TUN,
// last failure and dropped control frames.
func TestPrintPPPCall(t *testing.T) {
	var b strings.Builder
	printSession(&b, api.SessionInfo{SessionID: 2, TunnelID: 1, Interface: "ppp0", Version: 2,
		Call: &api.CallInfo{State: "established", Kind: "incoming", PPP: "terminate", PPPUser: "alice",
			PPPLocal: "10.99.0.10", PPPPeer: "10.99.0.1", PPPInterface: "ppp0",
			PPPFailure: "LCP: no reply to echo requests", PPPDropped: 4}})
	for _, want := range []string{"  call incoming established ppp terminate\n",
		`  ppp interface ppp0 user "alice" local 10.99.0.10 peer 10.99.0.1` + "\n",
		"  ppp failure: LCP: no reply to echo requests\n", "  ppp control frames dropped 4\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show session lacks %q:\n%s", want, b.String())
		}
	}
}

// TestPrintPPPCallIPv6Echo checks a PPP call's lines: the IPv6 link-local
// addresses once IPv6CP is open, and unanswered LCP echoes when there are.
func TestPrintPPPCallIPv6Echo(t *testing.T) {
	var b bytes.Buffer
	c := &api.CallInfo{State: "established", Kind: "incoming", PPP: "open", PPPUser: "alice", PPPInterface: "ppp0",
		PPPLocal: "10.9.0.10", PPPPeer: "10.9.0.1", PPPLocal6: "fe80::1", PPPPeer6: "fe80::2", PPPEchoMissed: 2}
	printSession(&b, api.SessionInfo{TunnelID: 1, SessionID: 2, Version: 2, Call: c})
	for _, want := range []string{
		"  ppp interface ppp0 user \"alice\" local 10.9.0.10 peer 10.9.0.1\n",
		"  ppp inet6 local fe80::1 peer fe80::2\n",
		"  ppp lcp echo missed 2\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output:\n%s\nwant the line %q", b.String(), want)
		}
	}
	b.Reset()
	c.PPPLocal6, c.PPPPeer6, c.PPPEchoMissed = "", "", 0
	printSession(&b, api.SessionInfo{TunnelID: 1, SessionID: 2, Version: 2, Call: c})
	if strings.Contains(b.String(), "inet6") || strings.Contains(b.String(), "echo") {
		t.Errorf("IPv4-only call without echo loss:\n%s", b.String())
	}
}
