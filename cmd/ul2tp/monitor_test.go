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
	} {
		if got := formatEvent(tc.e); got != tc.want {
			t.Errorf("formatEvent(%+v)\n = %q\nwant %q", tc.e, got, tc.want)
		}
	}
}
