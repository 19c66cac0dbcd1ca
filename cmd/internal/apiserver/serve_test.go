package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/datapath"
)

// served is a running Serve: done is closed when it returns err.
type served struct {
	done chan struct{}
	err  error
}

// returned reports whether Serve has returned, waiting up to wait.
func (s *served) returned(wait time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(wait):
		return false
	}
}

// serve runs h.Serve on l (or a fresh socket) until the test ends, and
// returns the socket's path and the running Serve.
func serve(t *testing.T, h *Handler, l net.Listener) (string, *served) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if h.Plane == nil {
		p := datapath.New(quiet, datapath.Options{})
		t.Cleanup(func() { p.Close() })
		h.Plane = p
	}
	if h.Log == nil {
		h.Log = quiet
	}
	sock := filepath.Join(t.TempDir(), "d.sock")
	if l == nil {
		var err error
		if l, err = Listen(sock); err != nil {
			t.Fatal(err)
		}
	} else {
		sock = l.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{done: make(chan struct{})}
	go func() {
		s.err = h.Serve(ctx, l)
		close(s.done)
	}()
	t.Cleanup(func() {
		cancel()
		if !s.returned(10 * time.Second) {
			t.Error("Serve still running 10s after its context ended")
		}
	})
	return sock, s
}

// dial connects to sock with a 5 s deadline on everything.
func dial(t *testing.T, sock string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// readResponse reads one response line from c.
func readResponse(t *testing.T, r *bufio.Reader) api.Response {
	t.Helper()
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read response: %v (got %q)", err, line)
	}
	var resp api.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("response %q: %v", line, err)
	}
	return resp
}

// flakyListener fails its first n Accepts with err.
type flakyListener struct {
	net.Listener
	n   atomic.Int32
	err error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.n.Add(-1) >= 0 {
		return nil, l.err
	}
	return l.Listener.Accept()
}

func TestServeRetriesTemporaryAcceptErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		t.Run(errno.Error(), func(t *testing.T) {
			inner, err := Listen(filepath.Join(t.TempDir(), "d.sock"))
			if err != nil {
				t.Fatal(err)
			}
			l := &flakyListener{Listener: inner, err: &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", errno)}}
			l.n.Store(4)
			sock, done := serve(t, &Handler{}, l)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := api.Do(ctx, sock, api.Request{Op: api.OpShowTunnel})
			if done.returned(0) {
				t.Fatalf("Serve returned after %v: %v", errno, done.err)
			}
			if err != nil || resp.Error != "" {
				t.Fatalf("request after %v: %v %+v", errno, err, resp)
			}
		})
	}
}

func TestServeFailsOnPermanentAcceptError(t *testing.T) {
	inner, err := Listen(filepath.Join(t.TempDir(), "d.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyListener{Listener: inner, err: &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EINVAL)}}
	l.n.Store(1)
	_, done := serve(t, &Handler{}, l)
	if !done.returned(5 * time.Second) {
		t.Fatal("Serve still running 5s after EINVAL from accept")
	}
	if done.err == nil || !strings.Contains(done.err.Error(), "accept") {
		t.Fatalf("Serve: %v, want an accept error", done.err)
	}
}

func TestServeCapsConnections(t *testing.T) {
	sock, _ := serve(t, &Handler{MaxConns: 2}, nil)
	held := []net.Conn{dial(t, sock), dial(t, sock)}
	// The held connections are served: each answers a request.
	for _, c := range held {
		if _, err := c.Write([]byte(`{"op":"show_tunnel"}` + "\n")); err != nil {
			t.Fatal(err)
		}
		if r := readResponse(t, bufio.NewReader(c)); r.Error != "" {
			t.Fatalf("held connection: %+v", r)
		}
	}
	over := dial(t, sock)
	r := readResponse(t, bufio.NewReader(over))
	if r.Error != "too many connections" || r.Code != api.CodeFailed {
		t.Fatalf("connection over the cap: %+v", r)
	}
	if n, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection over the cap not closed: read %d, %v", n, err)
	}
	// A client's request over the cap gets the error too, whether the
	// daemon refused before or after the request was written.
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := api.Do(ctx, sock, api.Request{Op: api.OpShowTunnel})
		cancel()
		if err != nil || r.Error != "too many connections" {
			t.Fatalf("request over the cap: %v %+v", err, r)
		}
	}
	// Closing a held connection frees its slot.
	held[0].Close()
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := api.Do(ctx, sock, api.Request{Op: api.OpShowTunnel})
		cancel()
		if err == nil && r.Error == "" {
			break
		}
		if try == 100 {
			t.Fatalf("slot not freed after a held connection closed: %v %+v", err, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeRequestTimeout(t *testing.T) {
	sock, _ := serve(t, &Handler{RequestTimeout: 100 * time.Millisecond, IdleTimeout: 200 * time.Millisecond}, nil)

	// Half a request: answered with an error once the timeout passes,
	// then closed.
	c := dial(t, sock)
	if _, err := c.Write([]byte(`{"op":`)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if resp := readResponse(t, r); !strings.Contains(resp.Error, "request not complete within 100ms") {
		t.Fatalf("half a request: %+v", resp)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("half a request: connection not closed: %v", err)
	}

	// Nothing at all: the same.
	c = dial(t, sock)
	r = bufio.NewReader(c)
	if resp := readResponse(t, r); !strings.Contains(resp.Error, "not complete") {
		t.Fatalf("silent connection: %+v", resp)
	}

	// A served connection left idle is closed.
	c = dial(t, sock)
	r = bufio.NewReader(c)
	if _, err := c.Write([]byte(`{"op":"show_tunnel"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if resp := readResponse(t, r); resp.Error != "" {
		t.Fatal(resp.Error)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection not closed: %v", err)
	}
}

func TestServeOversizedRequest(t *testing.T) {
	sock, _ := serve(t, &Handler{}, nil)

	// A request of exactly maxRequest bytes is read.
	c := dial(t, sock)
	r := bufio.NewReader(c)
	req := `{"op":"show_tunnel"}`
	req += strings.Repeat(" ", maxRequest-len(req))
	if _, err := c.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	if resp := readResponse(t, r); resp.Error != "" {
		t.Fatalf("request of maxRequest bytes: %+v", resp)
	}

	// One byte more is refused with an error naming the limit.
	go func() { _, _ = c.Write([]byte(req + " \n")) }()
	resp := readResponse(t, r)
	if resp.Code != api.CodeInvalid || !strings.Contains(resp.Error, "request") || !strings.Contains(resp.Error, "longer than 65536 bytes") {
		t.Fatalf("oversized request: %+v", resp)
	}
}

// TestErrorTexts walks bad requests: each error names its field and has
// no stray spaces or control characters.
func TestErrorTexts(t *testing.T) {
	h := &Handler{}
	sock, _ := serve(t, h, nil)
	tunnel := func(a api.TunnelArgs) *api.TunnelArgs {
		if a.TunnelID == 0 {
			a.TunnelID = 1
		}
		if a.PeerTunnelID == 0 {
			a.PeerTunnelID = 2
		}
		return &a
	}
	session := func(a api.SessionArgs) *api.SessionArgs {
		a.TunnelID, a.SessionID, a.PeerSessionID = 1, 2, 3
		return &a
	}
	for _, tc := range []struct {
		req   api.Request
		field string
	}{
		{api.Request{Op: "frobnicate"}, "op"},
		{api.Request{}, "op"},
		{api.Request{Op: api.OpAddTunnel}, "tunnel"},
		{api.Request{Op: api.OpDelTunnel}, "tunnel_id"},
		{api.Request{Op: api.OpAddSession}, "session"},
		{api.Request{Op: api.OpDelSession}, "session_id"},
		{api.Request{Op: api.OpSetSession}, "set"},
		{api.Request{Op: api.OpShowTunnel, Tunnel: &api.TunnelArgs{TunnelID: 99}}, "tunnel"},
		{api.Request{Op: api.OpShowSession, Session: &api.SessionArgs{SessionID: 99}}, "session"},
		{api.Request{Op: api.OpAddTunnel, Tunnel: tunnel(api.TunnelArgs{})}, "remote"},
		{api.Request{Op: api.OpAddTunnel, Tunnel: tunnel(api.TunnelArgs{Remote: "nowhere"})}, "remote"},
		{api.Request{Op: api.OpAddTunnel, Tunnel: tunnel(api.TunnelArgs{Remote: "224.0.0.1"})}, "remote"},
		{api.Request{Op: api.OpAddTunnel, Tunnel: tunnel(api.TunnelArgs{Remote: "255.255.255.255"})}, "remote"},
		{api.Request{Op: api.OpAddTunnel, Tunnel: tunnel(api.TunnelArgs{Remote: "ff02::1"})}, "remote"},
		{api.Request{Op: api.OpAddTunnel, Tunnel: tunnel(api.TunnelArgs{Remote: "10.0.0.2", Local: "239.0.0.1"})}, "local"},
		{api.Request{Op: api.OpAddTunnel, Tunnel: tunnel(api.TunnelArgs{Remote: "10.0.0.2", Encap: "gre"})}, "encap"},
		{api.Request{Op: api.OpAddSession, Session: session(api.SessionArgs{Name: "x\x00y"})}, "name"},
		{api.Request{Op: api.OpAddSession, Session: session(api.SessionArgs{Name: "a b"})}, "name"},
		{api.Request{Op: api.OpAddSession, Session: session(api.SessionArgs{Name: " "})}, "name"},
		{api.Request{Op: api.OpAddSession, Session: session(api.SessionArgs{MTU: 70000})}, "mtu"},
		{api.Request{Op: api.OpAddSession, Session: session(api.SessionArgs{Seq: "x y"})}, "seq"},
		{api.Request{Op: api.OpAddSession, Session: session(api.SessionArgs{Cookie: "12 34"})}, "cookie"},
		{api.Request{Op: api.OpSetSession, Set: &api.SetSessionArgs{TunnelID: 1}}, "session_id"},
	} {
		checkErrorText(t, h.Handle(tc.req), tc.field)
	}
	for _, line := range []string{`{"op":`, strings.Repeat("x", maxRequest+1)} {
		c := dial(t, sock)
		go func() { _, _ = c.Write([]byte(line + "\n")) }()
		checkErrorText(t, readResponse(t, bufio.NewReader(c)), "request")
	}
}

func checkErrorText(t *testing.T, resp api.Response, field string) {
	t.Helper()
	e := resp.Error
	switch {
	case e == "":
		t.Errorf("no error, want one naming %s", field)
	case !strings.Contains(e, field):
		t.Errorf("error %q does not name %s", e, field)
	case strings.TrimSpace(e) != e || strings.Contains(e, "  ") || strings.Contains(e, " :"):
		t.Errorf("error %q has stray spaces", e)
	case strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		t.Errorf("error %q has a control character", e)
	}
}

// FuzzReadLine checks that readLine never panics, never returns a line
// longer than maxRequest, and returns a line without its newline.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte(`{"op":"show_tunnel"}`+"\n"), 16)
	f.Add([]byte("no newline"), 16)
	f.Add([]byte("\n\n"), 16)
	f.Fuzz(func(t *testing.T, in []byte, size int) {
		r := bufio.NewReaderSize(strings.NewReader(string(in)), max(16, size%8192))
		for {
			line, err := readLine(r)
			if err != nil {
				return
			}
			if len(line) > maxRequest || strings.Contains(string(line), "\n") {
				t.Fatalf("line of %d bytes, newline inside: %v", len(line), strings.Contains(string(line), "\n"))
			}
		}
	})
}
