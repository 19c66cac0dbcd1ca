package api

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/datapath"
)

func TestArgsErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		args  any
		field string
	}{
		{&TunnelArgs{TunnelID: 1, PeerTunnelID: 2}, "remote"},
		{&TunnelArgs{TunnelID: 1, PeerTunnelID: 2, Remote: "10.0.0.300"}, "remote"},
		{&TunnelArgs{TunnelID: 1, PeerTunnelID: 2, Remote: "10.0.0.2", Local: "::1"}, "local"},
		{&TunnelArgs{TunnelID: 1, PeerTunnelID: 2, Remote: "10.0.0.2", Encap: "gre"}, "encap"},
		{&TunnelArgs{TunnelID: 0, PeerTunnelID: 2, Remote: "10.0.0.2"}, "tunnel_id"},
		{&TunnelArgs{TunnelID: 1, Remote: "10.0.0.2"}, "peer_tunnel_id"},
		{&SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Cookie: "xyz"}, "cookie"},
		{&SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, PeerCookie: "123"}, "peer_cookie"},
		{&SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, L2SpecType: "odd"}, "l2spec_type"},
		{&SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Seq: "always"}, "seq"},
		{&SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Name: "a-name-far-too-long"}, "name"},
		{&SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, MTU: 20}, "mtu"},
		{&SessionArgs{TunnelID: 1, SessionID: 0, PeerSessionID: 3}, "session_id"},
		{&SetSessionArgs{TunnelID: 1, SessionID: 2, Seq: "x"}, "seq"},
	} {
		var err error
		switch a := tc.args.(type) {
		case *TunnelArgs:
			_, err = a.Config()
		case *SessionArgs:
			_, err = a.Config()
		case *SetSessionArgs:
			_, err = a.Modify()
		}
		resp := ErrorResponse(err)
		if err == nil || resp.Code != CodeInvalid || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: error %v (code %q), want one naming %s", tc.args, err, resp.Code, tc.field)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := (&TunnelArgs{TunnelID: 1, PeerTunnelID: 2, Remote: "fd00::2"}).Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.UDPSport != 1701 || c.UDPDport != 1701 || !c.UDPCsum || !c.UDP6CsumTx || !c.UDP6CsumRx {
		t.Fatalf("defaults %+v", c)
	}
	s, err := (&SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3}).Config()
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "l2tpeth%d" || s.L2Spec.String() != "default" || s.SendSeq || s.RecvSeq {
		t.Fatalf("defaults %+v", s)
	}
}

// TestServe runs the socket protocol end to end with tunnels only (sessions
// need root for their TAPs; the netns tests cover them).
func TestServe(t *testing.T) {
	p := datapath.New(slog.New(slog.NewTextHandler(io.Discard, nil)), datapath.Options{})
	defer p.Close()
	h := &Handler{Plane: p, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Serve(ctx, l) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "another ul2tpd") {
		t.Fatalf("second Listen: %v", err)
	}
	do := func(req Request) Response {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := Do(c, sock, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	add := Request{Op: OpAddTunnel, Tunnel: &TunnelArgs{TunnelID: 7, PeerTunnelID: 8, Local: "127.0.0.1", Remote: "127.0.0.2", UDPSport: 47011, UDPDport: 47012}}
	if r := do(add); r.Error != "" {
		t.Fatalf("add: %s", r.Error)
	}
	if r := do(add); r.Code != CodeExists {
		t.Fatalf("duplicate add: %+v", r)
	}
	r := do(Request{Op: OpShowTunnel, Stats: true})
	if len(r.Tunnels) != 1 || r.Tunnels[0].TunnelID != 7 || r.Tunnels[0].PeerPort != 47012 || r.Tunnels[0].Stats == nil ||
		r.Tunnels[0].Checksum == nil || !*r.Tunnels[0].Checksum {
		t.Fatalf("show: %+v", r)
	}
	if r := do(Request{Op: OpAddSession, Session: &SessionArgs{TunnelID: 9, SessionID: 1, PeerSessionID: 2}}); r.Code != CodeNotFound {
		t.Fatalf("session in a missing tunnel: %+v", r)
	}
	if r := do(Request{Op: OpDelTunnel, Tunnel: &TunnelArgs{TunnelID: 7}}); r.Error != "" {
		t.Fatalf("del: %s", r.Error)
	}
	if r := do(Request{Op: OpDelTunnel, Tunnel: &TunnelArgs{TunnelID: 7}}); r.Code != CodeNotFound {
		t.Fatalf("del again: %+v", r)
	}
	if r := do(Request{Op: "frobnicate"}); r.Code != CodeInvalid || !strings.Contains(r.Error, "op") {
		t.Fatalf("unknown op: %+v", r)
	}
}
