// Package apiserver is ul2tpd's side of package api: it checks requests,
// applies them to a datapath.Plane, and serves the control socket.
package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/control/engine"
	"github.com/ul2tp/ul2tp/datapath"
)

// maxRequest bounds one request line.
const maxRequest = 64 << 10

// Handler applies requests to a datapath.Plane.
type Handler struct {
	Plane *datapath.Plane
	Log   *slog.Logger
	// MaxConns caps the connections Serve serves at once, RequestTimeout
	// bounds reading one request and IdleTimeout the wait for the next;
	// zero means DefaultMaxConns, DefaultRequestTimeout and
	// DefaultIdleTimeout.
	MaxConns       int
	RequestTimeout time.Duration
	IdleTimeout    time.Duration
	// Reload makes the plane match the daemon's configuration file again
	// (package reload); nil when it was started without one.
	Reload func() (*api.ReloadResult, error)
	// L2TPv2 runs the L2TPv2 control connections, nil if none: their
	// tunnels and calls are shown from it, and deleted through it
	// (StopCCN, CDN).
	L2TPv2 *engine.Engine

	// reloading is held by a reload, and shared by other requests, so a
	// reload sees and changes the plane with no request between.
	reloading sync.RWMutex
}

// ErrNoConfig answers a reload of a daemon started without --config.
var ErrNoConfig = errors.New("ul2tpd was started without --config: nothing to reload")

// Handle runs one request. Requests run concurrently, except a reload,
// which runs alone.
func (h *Handler) Handle(req api.Request) api.Response {
	if req.Op == api.OpReload {
		h.reloading.Lock()
		defer h.reloading.Unlock()
		return h.reload()
	}
	h.reloading.RLock()
	defer h.reloading.RUnlock()
	return h.handle(req)
}

// reload answers a reload request.
func (h *Handler) reload() api.Response {
	if h.Reload == nil {
		return api.Response{Error: ErrNoConfig.Error(), Code: api.CodeFailed}
	}
	res, err := h.Reload()
	var resp api.Response
	if err != nil {
		resp = ErrorResponse(err)
	}
	resp.Reload = res
	return resp
}

// handle runs one request other than a reload.
func (h *Handler) handle(req api.Request) api.Response {
	switch req.Op {
	case api.OpAddTunnel:
		if req.Tunnel == nil {
			return invalid("tunnel", "missing")
		}
		cfg, err := TunnelConfig(req.Tunnel)
		if err != nil {
			return ErrorResponse(err)
		}
		if _, err := h.Plane.AddTunnel(cfg); err != nil {
			return ErrorResponse(err)
		}
		return api.Response{}
	case api.OpDelTunnel:
		if req.Tunnel == nil || req.Tunnel.TunnelID == 0 {
			return invalid("tunnel_id", "missing")
		}
		if h.v2Tunnel(req.Tunnel.TunnelID) {
			return h.delTunnelV2(req.Tunnel.TunnelID)
		}
		if err := h.Plane.DelTunnel(req.Tunnel.TunnelID); err != nil {
			return ErrorResponse(err)
		}
		return api.Response{}
	case api.OpShowTunnel:
		var id uint32
		if req.Tunnel != nil {
			id = req.Tunnel.TunnelID
		}
		var resp api.Response
		for _, t := range h.Plane.Tunnels() {
			if (id != 0 && t.Config().ID != id) || isV2(t) {
				continue
			}
			n := len(h.Plane.Sessions(t.Config().ID))
			ti := TunnelInfo(t, n, req.Stats)
			if req.Details {
				ti.Details = TunnelDetails(t)
			}
			resp.Tunnels = append(resp.Tunnels, ti)
		}
		resp.Tunnels = append(resp.Tunnels, h.tunnelsV2(id, req.Stats, req.Details)...)
		if id != 0 && len(resp.Tunnels) == 0 {
			return ErrorResponse(fmt.Errorf("tunnel %d: %w", id, datapath.ErrNotFound))
		}
		return resp
	case api.OpAddSession:
		if req.Session == nil {
			return invalid("session", "missing")
		}
		if h.v2Tunnel(req.Session.TunnelID) {
			return h.addSessionV2(req.Session)
		}
		if req.Session.SessionID == 0 || req.Session.PeerSessionID == 0 {
			return invalid("session_id/peer_session_id", "required (only an L2TPv2 tunnel opens a call without them)")
		}
		cfg, err := SessionConfig(req.Session)
		if err != nil {
			return ErrorResponse(err)
		}
		if _, err := h.Plane.AddSession(cfg); err != nil {
			return ErrorResponse(err)
		}
		return api.Response{}
	case api.OpDelSession:
		if req.Session == nil || req.Session.TunnelID == 0 || req.Session.SessionID == 0 {
			return invalid("tunnel_id/session_id", "missing")
		}
		if h.v2Tunnel(req.Session.TunnelID) {
			return h.delSessionV2(req.Session.TunnelID, req.Session.SessionID)
		}
		if err := h.Plane.DelSession(req.Session.TunnelID, req.Session.SessionID); err != nil {
			return ErrorResponse(err)
		}
		return api.Response{}
	case api.OpSetSession:
		if req.Set == nil {
			return invalid("set", "missing")
		}
		m, err := SessionModify(req.Set)
		if err != nil {
			return ErrorResponse(err)
		}
		if err := h.Plane.ModifySession(req.Set.TunnelID, req.Set.SessionID, m); err != nil {
			return ErrorResponse(err)
		}
		return api.Response{}
	case api.OpShowSession:
		var tid, sid uint32
		if req.Session != nil {
			tid, sid = req.Session.TunnelID, req.Session.SessionID
		}
		var resp api.Response
		for _, s := range h.Plane.Sessions(tid) {
			c := s.Config()
			if (sid != 0 && c.ID != sid) || c.Payload != nil {
				continue
			}
			var ptid uint32
			if t := h.Plane.Tunnel(c.TunnelID); t != nil {
				ptid = t.Config().PeerID
			}
			si := SessionInfo(s, ptid, req.Stats)
			if req.Details {
				si.Details = SessionDetails(s)
			}
			resp.Sessions = append(resp.Sessions, si)
		}
		resp.Sessions = append(resp.Sessions, h.sessionsV2(tid, sid, req.Stats)...)
		if sid != 0 && len(resp.Sessions) == 0 {
			return ErrorResponse(fmt.Errorf("session %d: %w", sid, datapath.ErrNotFound))
		}
		return resp
	case api.OpMonitor:
		// The stream itself is served by serveConn (monitor.go).
		if h.Plane.Events() == nil {
			return ErrorResponse(errors.New("monitor: the daemon publishes no events"))
		}
		return api.Response{}
	}
	if req.Op == "" {
		return invalid("op", "missing")
	}
	return ErrorResponse(&datapath.FieldError{Field: "op", Value: req.Op, Reason: "unknown"})
}

func invalid(field, reason string) api.Response {
	return ErrorResponse(&datapath.FieldError{Field: field, Value: "", Reason: reason})
}

// Listen opens the daemon's socket at path with mode 0600, creating its
// directory. A stale socket file nobody answers on is replaced.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("socket %s: another ul2tpd is listening", path)
	}
	_ = os.Remove(path)
	old := umask(0o177)
	l, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return l, nil
}

// Defaults of the control socket's limits; Handler's fields override them.
const (
	// DefaultMaxConns caps the connections served at once.
	DefaultMaxConns = 256
	// DefaultRequestTimeout bounds reading one request line: the first
	// on a new connection from its accept, a later one from its first
	// byte.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a connection with no request started for
	// this long after its last response.
	DefaultIdleTimeout = 60 * time.Second
)

// Serve answers requests on l until ctx ends. Temporary accept errors
// (out of descriptors or memory, a connection aborted before it was
// accepted) are retried with backoff; other accept errors end it.
//
// At most MaxConns connections are served at once: one over the cap is
// answered with a "too many connections" error line and closed, so a
// client never waits on a daemon that will not read it.
func (h *Handler) Serve(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	slots := make(chan struct{}, positive(h.MaxConns, DefaultMaxConns))
	var retry acceptBackoff
	var refused logLimiter
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("accept: %w", err)
			}
			retry.fail(h.Log, err)
			if !sleep(ctx, retry.delay) {
				return nil
			}
			continue
		}
		retry.ok()
		select {
		case slots <- struct{}{}:
		default:
			refused.log(h.Log, "control socket: connection refused: too many connections", "max_conns", cap(slots))
			refuse(c)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			h.serveConn(ctx, c)
		}()
	}
}

// refuse answers a connection over the cap with one error line and closes
// it. The connection is new, so its send buffer is empty and the write
// does not block; the deadline makes sure of it.
func refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	b, err := api.Marshal(api.Response{Error: "too many connections", Code: api.CodeFailed})
	if err == nil {
		_, _ = c.Write(b)
	}
}

// temporary reports whether an accept error may go away by itself.
func temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN, syscall.EPROTO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// logLimiter logs a recurring event at most once per logEvery, with the
// number of times it was not logged since.
type logLimiter struct {
	last       time.Time
	suppressed int
}

const logEvery = 5 * time.Second

func (l *logLimiter) log(log *slog.Logger, msg string, args ...any) {
	now := time.Now()
	if now.Sub(l.last) < logEvery {
		l.suppressed++
		return
	}
	log.Warn(msg, append(args, "times_not_logged", l.suppressed)...)
	l.last, l.suppressed = now, 0
}

// acceptBackoff paces retries of a failing accept: 5 ms doubling to 1 s,
// logged at most once per logEvery.
type acceptBackoff struct {
	delay time.Duration
	logLimiter
}

func (b *acceptBackoff) fail(log *slog.Logger, err error) {
	if b.delay == 0 {
		b.delay = 5 * time.Millisecond
	} else {
		b.delay = min(2*b.delay, time.Second)
	}
	b.log(log, "control socket: accept failed; retrying", "err", err, "retry_in", b.delay)
}

func (b *acceptBackoff) ok() { b.delay = 0 }

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func positive[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// errRequestTooLong says a request line exceeds maxRequest.
var errRequestTooLong = &datapath.FieldError{Field: "request", Value: "", Reason: fmt.Sprintf("line longer than %d bytes", maxRequest)}

// serveConn answers the requests on c, one line each, until the client
// closes it, breaks the protocol, is too slow, or ctx ends.
func (h *Handler) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	reqTimeout := positive(h.RequestTimeout, DefaultRequestTimeout)
	idle := positive(h.IdleTimeout, DefaultIdleTimeout)
	r := bufio.NewReaderSize(c, 4096)
	// The first request is due within reqTimeout of the accept.
	_ = c.SetReadDeadline(time.Now().Add(reqTimeout))
	for first := true; ; first = false {
		if !first {
			// Wait up to idle for the next request to start, then up to
			// reqTimeout for the rest of it.
			_ = c.SetReadDeadline(time.Now().Add(idle))
			if _, err := r.Peek(1); err != nil {
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(reqTimeout))
		}
		line, err := readLine(r)
		var resp api.Response
		var op string
		switch {
		case errors.Is(err, errRequestTooLong):
			resp = ErrorResponse(err)
		case errors.Is(err, os.ErrDeadlineExceeded):
			resp = ErrorResponse(fmt.Errorf("request not complete within %v", reqTimeout))
		case err != nil:
			return
		default:
			resp, op = h.handleLine(line)
		}
		if op == api.OpMonitor && resp.Error == "" {
			h.monitor(ctx, c, r, reqTimeout)
			return
		}
		if !h.respond(c, resp, reqTimeout) || err != nil {
			return
		}
	}
}

// handleLine decodes and runs one request line, and returns its op too.
func (h *Handler) handleLine(line []byte) (api.Response, string) {
	var req api.Request
	var resp api.Response
	if err := json.Unmarshal(line, &req); err != nil {
		resp = invalid("request", "not JSON: "+err.Error())
	} else {
		resp = h.Handle(req)
	}
	if resp.Error != "" {
		h.Log.Info("request failed", "op", req.Op, "err", resp.Error)
	}
	return resp, req.Op
}

// respond writes resp as one line, giving a client that does not read
// timeout to take it, and reports whether it went.
func (h *Handler) respond(c net.Conn, resp api.Response, timeout time.Duration) bool {
	b, err := api.Marshal(resp)
	if err != nil {
		return false
	}
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	_, err = c.Write(b)
	return err == nil
}

// readLine reads one line of at most maxRequest bytes, without its
// newline (which the last line before end of input may lack). A longer
// line is errRequestTooLong.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > maxRequest+1 || (len(line)+len(frag) == maxRequest+1 && frag[len(frag)-1] != '\n') {
			return nil, errRequestTooLong
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}
