package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/event"
)

// eventPlane makes a plane that publishes to a new hub.
func eventPlane(t *testing.T) (*datapath.Plane, *event.Hub) {
	t.Helper()
	hub := event.NewHub(nil)
	p := datapath.New(slog.New(slog.NewTextHandler(io.Discard, nil)), datapath.Options{Events: hub})
	t.Cleanup(func() { p.Close() })
	return p, hub
}

// TestMonitor checks the stream: the answer, then each event as a line,
// on a connection the idle timeout does not close.
func TestMonitor(t *testing.T) {
	p, hub := eventPlane(t)
	sock, _ := serve(t, &Handler{Plane: p, RequestTimeout: time.Second, IdleTimeout: 50 * time.Millisecond}, nil)
	c := dial(t, sock)
	if _, err := c.Write([]byte(`{"op":"monitor"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if resp := readResponse(t, r); resp.Error != "" {
		t.Fatalf("monitor: %+v", resp)
	}
	time.Sleep(150 * time.Millisecond) // past the idle timeout: still open
	hub.Publish(event.Event{Kind: event.Drop, TunnelID: 1, SessionID: 2, Interface: "l2tpeth0",
		Reason: event.CookieMismatch, Count: 17})
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read event: %v", err)
	}
	var e api.Event
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("event %q: %v", line, err)
	}
	if e.Event != "drop" || e.Reason != "cookie-mismatch" || e.Count != 17 || e.TunnelID != 1 || e.SessionID != 2 ||
		e.Interface != "l2tpeth0" || e.Time.IsZero() {
		t.Fatalf("event %q", line)
	}
}

func TestMonitorWithoutEvents(t *testing.T) {
	sock, _ := serve(t, &Handler{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := api.Monitor(ctx, sock, func(api.Event) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "publishes no events") {
		t.Fatalf("Monitor = %v", err)
	}
}

// TestMonitorStuckClient: a client that asks for events and never reads
// them neither blocks the publisher nor the daemon: its events are
// dropped and counted, its connection closed once a write times out, and
// other clients are served all along.
func TestMonitorStuckClient(t *testing.T) {
	p, hub := eventPlane(t)
	sock, _ := serve(t, &Handler{Plane: p, RequestTimeout: 200 * time.Millisecond}, nil)
	c := dial(t, sock)
	if _, err := c.Write([]byte(`{"op":"monitor"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if resp := readResponse(t, r); resp.Error != "" {
		t.Fatalf("monitor: %+v", resp)
	}
	detail := strings.Repeat("x", 1000)
	const n = 10000 // 10 MB of events: far more than the socket holds
	for i := range n {
		hub.Publish(event.Event{Kind: event.Drop, Reason: event.SeqDiscard, Count: uint64(i), Detail: detail})
	}
	if hub.Dropped() == 0 {
		t.Fatal("no events dropped for a client that does not read")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if resp, err := api.Do(ctx, sock, api.Request{Op: api.OpShowTunnel}); err != nil || resp.Error != "" {
		t.Fatalf("show tunnel beside a stuck monitor: %v %+v", err, resp)
	}
	// The stuck client's connection ends once a write has waited for it
	// RequestTimeout: its subscription goes, and reading it now finds
	// what was written, then the end.
	for try := 0; hub.Subscribers() != 0; try++ {
		if try == 500 {
			t.Fatal("stuck monitor still subscribed after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatalf("stuck monitor connection not closed: %v", err)
	}
}

// TestEventInfoPPP: a PPP event's fields go to their own JSON keys, and
// its reason to "reason".
func TestEventInfoPPP(t *testing.T) {
	e := EventInfo(event.Event{Kind: event.PPPAuthFailed, TunnelID: 1, SessionID: 2, Interface: "ppp0", Detail: "wrong",
		PPP: &event.PPP{Phase: "authenticate", User: "alice", Method: "chap", Role: "authenticator", Reason: "bad-credentials"}})
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"event":"ppp-auth-failed"`, `"reason":"bad-credentials"`, `"user":"alice"`,
		`"method":"chap"`, `"role":"authenticator"`, `"phase":"authenticate"`, `"interface":"ppp0"`, `"detail":"wrong"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if b, _ := json.Marshal(EventInfo(event.Event{Kind: event.CallUp, TunnelID: 1})); strings.Contains(string(b), "phase") {
		t.Errorf("a call-up event has PPP keys: %s", b)
	}
	e = EventInfo(event.Event{Kind: event.PPPPhase, PPP: &event.PPP{Phase: "open", From: "network"}})
	if e.Event != "ppp-phase" || e.Phase != "open" || e.FromPhase != "network" {
		t.Errorf("ppp-phase %+v", e)
	}
}
