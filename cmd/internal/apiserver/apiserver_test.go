package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/encap"
	"github.com/ul2tp/ul2tp/reorder"
)

func TestArgsErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		args  any
		field string
	}{
		{&api.TunnelArgs{TunnelID: 1, PeerTunnelID: 2}, "remote"},
		{&api.TunnelArgs{TunnelID: 1, PeerTunnelID: 2, Remote: "10.0.0.300"}, "remote"},
		{&api.TunnelArgs{TunnelID: 1, PeerTunnelID: 2, Remote: "10.0.0.2", Local: "::1"}, "local"},
		{&api.TunnelArgs{TunnelID: 1, PeerTunnelID: 2, Remote: "10.0.0.2", Encap: "gre"}, "encap"},
		{&api.TunnelArgs{TunnelID: 0, PeerTunnelID: 2, Remote: "10.0.0.2"}, "tunnel_id"},
		{&api.TunnelArgs{TunnelID: 1, Remote: "10.0.0.2"}, "peer_tunnel_id"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Cookie: "xyz"}, "cookie"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, PeerCookie: "123"}, "peer_cookie"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, L2SpecType: "odd"}, "l2spec_type"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Seq: "always"}, "seq"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Name: "a-name-far-too-long"}, "name"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, MTU: 20}, "mtu"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 0, PeerSessionID: 3}, "session_id"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Address: "02:00:00:00:01"}, "address"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Address: "01:00:5e:00:00:01"}, "address"},
		{&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Address: "00:00:00:00:00:00"}, "address"},
		{&api.SetSessionArgs{TunnelID: 1, SessionID: 2, Seq: "x"}, "seq"},
	} {
		var err error
		switch a := tc.args.(type) {
		case *api.TunnelArgs:
			_, err = TunnelConfig(a)
		case *api.SessionArgs:
			_, err = SessionConfig(a)
		case *api.SetSessionArgs:
			_, err = SessionModify(a)
		}
		resp := ErrorResponse(err)
		if err == nil || resp.Code != api.CodeInvalid || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: error %v (code %q), want one naming %s", tc.args, err, resp.Code, tc.field)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := TunnelConfig(&api.TunnelArgs{TunnelID: 1, PeerTunnelID: 2, Remote: "fd00::2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.UDPSport != 1701 || c.UDPDport != 1701 || !c.UDPCsum || !c.UDP6CsumTx || !c.UDP6CsumRx {
		t.Fatalf("defaults %+v", c)
	}
	s, err := SessionConfig(&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "l2tpeth%d" || s.L2Spec.String() != "default" || s.SendSeq || s.RecvSeq || s.Address != nil {
		t.Fatalf("defaults %+v", s)
	}
	s, err = SessionConfig(&api.SessionArgs{TunnelID: 1, SessionID: 2, PeerSessionID: 3, Address: "02:AA:bb:00:00:01"})
	if err != nil || s.Address.String() != "02:aa:bb:00:00:01" {
		t.Fatalf("address 02:AA:bb:00:00:01: %v, %v", s.Address, err)
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
	do := func(req api.Request) api.Response {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := api.Do(c, sock, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	add := api.Request{Op: api.OpAddTunnel, Tunnel: &api.TunnelArgs{TunnelID: 7, PeerTunnelID: 8, Local: "127.0.0.1", Remote: "127.0.0.2", UDPSport: 47011, UDPDport: 47012}}
	if r := do(add); r.Error != "" {
		t.Fatalf("add: %s", r.Error)
	}
	if r := do(add); r.Code != api.CodeExists {
		t.Fatalf("duplicate add: %+v", r)
	}
	r := do(api.Request{Op: api.OpShowTunnel, Stats: true})
	if len(r.Tunnels) != 1 || r.Tunnels[0].TunnelID != 7 || r.Tunnels[0].PeerPort != 47012 || r.Tunnels[0].Stats == nil ||
		r.Tunnels[0].Checksum == nil || !*r.Tunnels[0].Checksum {
		t.Fatalf("show: %+v", r)
	}
	if r := do(api.Request{Op: api.OpAddSession, Session: &api.SessionArgs{TunnelID: 9, SessionID: 1, PeerSessionID: 2}}); r.Code != api.CodeNotFound {
		t.Fatalf("session in a missing tunnel: %+v", r)
	}
	if r := do(api.Request{Op: api.OpDelTunnel, Tunnel: &api.TunnelArgs{TunnelID: 7}}); r.Error != "" {
		t.Fatalf("del: %s", r.Error)
	}
	if r := do(api.Request{Op: api.OpDelTunnel, Tunnel: &api.TunnelArgs{TunnelID: 7}}); r.Code != api.CodeNotFound {
		t.Fatalf("del again: %+v", r)
	}
	if r := do(api.Request{Op: "frobnicate"}); r.Code != api.CodeInvalid || !strings.Contains(r.Error, "op") {
		t.Fatalf("unknown op: %+v", r)
	}
}

// TestStatsOf checks that every datapath counter reaches the API, by name,
// with its value.
func TestStatsOf(t *testing.T) {
	var in datapath.Stats
	v := reflect.ValueOf(&in).Elem()
	for i := range v.NumField() {
		setNumber(v.Field(i), i+1)
	}
	out := reflect.ValueOf(statsOf(in))
	if out.NumField() != v.NumField() {
		t.Fatalf("api.Stats has %d fields, datapath.Stats %d", out.NumField(), v.NumField())
	}
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		f := out.FieldByName(name)
		if !f.IsValid() || number(f) != i+1 {
			t.Errorf("%s: api.Stats has %v, want %d", name, f, i+1)
		}
	}
}

// TestStatsKeys pins the counters' JSON keys to iproute2's.
func TestStatsKeys(t *testing.T) {
	b, err := json.Marshal(api.Stats{ReorderQueueDepth: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tx_packets", "tx_bytes", "tx_errors", "rx_packets", "rx_bytes", "rx_errors",
		"rx_seq_discards", "rx_oos_packets", "rx_cookie_discards", "rx_invalid", "reorder_queue_depth"} {
		if !strings.Contains(string(b), `"`+k+`":`) {
			t.Errorf("%s missing from %s", k, b)
		}
	}
}

func setNumber(v reflect.Value, n int) {
	if v.CanUint() {
		v.SetUint(uint64(n))
	} else {
		v.SetInt(int64(n))
	}
}

func number(v reflect.Value) int {
	if v.CanUint() {
		return int(v.Uint())
	}
	return int(v.Int())
}

// TestReload checks the reload request: refused without a configuration
// file, run shared when there is one, and its result and error passed on.
func TestReload(t *testing.T) {
	p := datapath.New(slog.New(slog.NewTextHandler(io.Discard, nil)), datapath.Options{})
	defer p.Close()
	h := &Handler{Plane: p, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	resp := h.Handle(api.Request{Op: api.OpReload})
	if !strings.Contains(resp.Error, "started without --config") || resp.Reload != nil {
		t.Fatalf("reload without a file: %+v", resp)
	}
	var shared bool
	h.Reload = func() (*api.ReloadResult, error) {
		// No other request may hold the handler while a reload runs.
		if shared = h.reloading.TryRLock(); shared {
			h.reloading.RUnlock()
		}
		return &api.ReloadResult{Unchanged: 3, Failed: []string{"add tunnel t (1): address in use"}}, errors.New("reload: 1 of 1 changes failed")
	}
	resp = h.Handle(api.Request{Op: api.OpReload})
	if shared {
		t.Error("a request could run during a reload")
	}
	if resp.Error != "reload: 1 of 1 changes failed" || resp.Reload == nil || resp.Reload.Unchanged != 3 {
		t.Errorf("reload: %+v", resp)
	}
	if resp := h.Handle(api.Request{Op: api.OpShowTunnel}); resp.Error != "" {
		t.Errorf("show after a reload: %v", resp.Error)
	}
}

// TestTunnelDetails checks the dump's socket addresses: the port the
// kernel chose for udp_sport 0, the peer's address and port over UDP, the
// addresses alone over IP.
func TestTunnelDetails(t *testing.T) {
	p := datapath.New(slog.New(slog.NewTextHandler(io.Discard, nil)), datapath.Options{})
	defer p.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	tun, err := p.AddTunnel(datapath.TunnelConfig{ID: 1, PeerID: 2, Encap: encap.EncapUDP, Local: lo,
		Remote: netip.MustParseAddr("127.0.0.2"), UDPDport: 1701, UDPCsum: true})
	if err != nil {
		t.Fatal(err)
	}
	d := TunnelDetails(tun)
	local, err := netip.ParseAddrPort(d.LocalAddress)
	if err != nil || local.Addr() != lo || local.Port() == 0 {
		t.Errorf("local_address %q, want 127.0.0.1 and the port the kernel chose", d.LocalAddress)
	}
	if d.Version != 3 || d.PeerAddress != "127.0.0.2:1701" {
		t.Errorf("details %+v, want version 3, peer_address 127.0.0.2:1701", d)
	}
	if got, want := addrPortString(encap.EncapIP, netip.MustParseAddrPort("[2001:db8::1]:0")), "2001:db8::1"; got != want {
		t.Errorf("over IP: %q, want %q", got, want)
	}
}

// TestSessionDetails checks that the dump carries the sequencing options
// as they are now and the receiver's state, under snake_case keys.
func TestSessionDetails(t *testing.T) {
	c := datapath.SessionConfig{SendSeq: true, LNSMode: true, ReorderTimeout: 250 * time.Millisecond}
	d := sessionDetails(c, reorder.State{Ns: 5, Nr: 9, NrValid: true, QueueDepth: 2})
	want := api.SessionDetails{SendSeq: true, LNSMode: true, ReorderTimeout: 250, Ns: 5, Nr: 9, NrValid: true, ReorderQueueLength: 2}
	if *d != want {
		t.Errorf("details %+v, want %+v", *d, want)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"send_seq":true,"recv_seq":false,"lns_mode":true,"reorder_timeout":250,"ns":5,"nr":9,"nr_valid":true,"reorder_queue_length":2}`; got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
}
