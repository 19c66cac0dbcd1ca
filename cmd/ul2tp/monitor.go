package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// monitor runs "ul2tp monitor [-j]": it prints the daemon's events, one
// line each (a JSON object with -j), until interrupted (exit 0) or the
// daemon goes away (exit 1).
func monitor(o options, args []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		switch strings.TrimLeft(a, "-") {
		case "j", "json":
			o.json = true
		case "all", "l2tp":
			// ip monitor's words for "everything": there is only L2TP.
		default:
			fmt.Fprintf(stderr, "ul2tp: monitor: unknown argument %q\n", a)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := api.Monitor(ctx, o.socket, func(e api.Event) error {
		if o.json {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\n", b)
			return err
		}
		_, err := fmt.Fprintln(stdout, formatEvent(e))
		return err
	})
	if err != nil {
		fmt.Fprintln(stderr, "ul2tp:", err)
		return 1
	}
	return 0
}

// formatEvent writes an event as one line, in the manner of ip monitor:
//
//	added session 1 in tunnel 1 l2tpeth0: peer_session_id 1 mtu 1446
//	drop cookie-mismatch tunnel 1 session 1 interface l2tpeth0 (16 more suppressed)
func formatEvent(e api.Event) string {
	var b strings.Builder
	where := func() {
		if e.TunnelID != 0 {
			fmt.Fprintf(&b, " tunnel %d", e.TunnelID)
		}
		if e.SessionID != 0 {
			fmt.Fprintf(&b, " session %d", e.SessionID)
		}
		if e.Interface != "" {
			fmt.Fprintf(&b, " interface %s", e.Interface)
		}
	}
	session := func(verb, state string) {
		fmt.Fprintf(&b, "%ssession %d in tunnel %d", verb, e.SessionID, e.TunnelID)
		if e.Interface != "" {
			fmt.Fprintf(&b, " %s", e.Interface)
		}
		b.WriteString(state)
	}
	switch e.Event {
	case "tunnel_added":
		fmt.Fprintf(&b, "added tunnel %d", e.TunnelID)
	case "tunnel_deleted":
		fmt.Fprintf(&b, "deleted tunnel %d", e.TunnelID)
	case "session_added":
		session("added ", "")
	case "session_modified":
		session("modified ", "")
	case "session_deleted":
		session("deleted ", "")
	case "session_down":
		session("", " down")
	case "session_up":
		session("", " up")
	case "drop", "seq":
		fmt.Fprintf(&b, "%s %s", e.Event, e.Reason)
		where()
	case "lost":
		fmt.Fprintf(&b, "lost %d events: this monitor read too slowly", e.Count)
		return b.String()
	case "ppp-phase":
		b.WriteString("ppp")
		where()
		fmt.Fprintf(&b, " %s -> %s", e.FromPhase, e.Phase)
		if e.User != "" {
			fmt.Fprintf(&b, " user %q", e.User)
		}
	case "ppp-auth-failed":
		b.WriteString("ppp auth failed")
		where()
		fmt.Fprintf(&b, " user %q method %s role %s reason %s", e.User, e.Method, e.Role, e.Reason)
	case "ppp-down":
		b.WriteString("ppp down")
		where()
		if e.User != "" {
			fmt.Fprintf(&b, " user %q", e.User)
		}
		fmt.Fprintf(&b, " reason %s", e.Reason)
	default:
		b.WriteString(e.Event)
		where()
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	if e.Count > 1 {
		fmt.Fprintf(&b, " (%d more suppressed)", e.Count-1)
	}
	return b.String()
}
