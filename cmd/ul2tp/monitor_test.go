package main

import (
	"testing"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

func TestFormatEvent(t *testing.T) {
	for _, tc := range []struct {
		e    api.Event
		want string
	}{
		{api.Event{Event: "tunnel_added", TunnelID: 1, Detail: "udp local 10.0.0.1:1701 remote 10.0.0.2:1701"},
			"added tunnel 1: udp local 10.0.0.1:1701 remote 10.0.0.2:1701"},
		{api.Event{Event: "session_added", TunnelID: 1, SessionID: 2, Interface: "l2tpeth0"},
			"added session 2 in tunnel 1 l2tpeth0"},
		{api.Event{Event: "session_down", TunnelID: 1, SessionID: 2, Interface: "l2tpeth0", Detail: "read: EBADFD"},
			"session 2 in tunnel 1 l2tpeth0 down: read: EBADFD"},
		{api.Event{Event: "drop", Reason: "cookie-mismatch", TunnelID: 1, SessionID: 1, Interface: "l2tpeth0", Count: 18},
			"drop cookie-mismatch tunnel 1 session 1 interface l2tpeth0 (17 more suppressed)"},
		{api.Event{Event: "drop", Reason: "unmatched-peer", Count: 1, Detail: "from 10.0.0.9:1701"},
			"drop unmatched-peer: from 10.0.0.9:1701"},
		{api.Event{Event: "lost", Count: 5}, "lost 5 events: this monitor read too slowly"},
		{api.Event{Event: "ppp-phase", TunnelID: 1, SessionID: 2, Interface: "ppp0", FromPhase: "authenticate", Phase: "network", User: "alice"},
			`ppp tunnel 1 session 2 interface ppp0 authenticate -> network user "alice"`},
		{api.Event{Event: "ppp-auth-failed", TunnelID: 1, SessionID: 2, Interface: "ppp0", User: "alice", Method: "chap",
			Role: "authenticator", Reason: "bad-credentials", Detail: `auth: wrong user name or password: CHAP user "alice"`},
			`ppp auth failed tunnel 1 session 2 interface ppp0 user "alice" method chap role authenticator reason bad-credentials: auth: wrong user name or password: CHAP user "alice"`},
		{api.Event{Event: "ppp-down", TunnelID: 1, SessionID: 2, Interface: "ppp0", Reason: "echo-timeout", Detail: "LCP: no reply to echo requests"},
			"ppp down tunnel 1 session 2 interface ppp0 reason echo-timeout: LCP: no reply to echo requests"},
	} {
		if got := formatEvent(tc.e); got != tc.want {
			t.Errorf("formatEvent(%+v)\n = %q\nwant %q", tc.e, got, tc.want)
		}
	}
}
