// Package apiserver is ul2tpd's side of package api: it checks requests,
// applies them to a datapath.Plane, and serves the control socket.
package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/datapath"
)

// maxRequest bounds one request line.
const maxRequest = 64 << 10

// Handler applies requests to a datapath.Plane.
type Handler struct {
	Plane *datapath.Plane
	Log   *slog.Logger
}

// Handle runs one request.
func (h *Handler) Handle(req api.Request) api.Response {
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
			if id != 0 && t.Config().ID != id {
				continue
			}
			n := len(h.Plane.Sessions(t.Config().ID))
			resp.Tunnels = append(resp.Tunnels, TunnelInfo(t, n, req.Stats))
		}
		if id != 0 && len(resp.Tunnels) == 0 {
			return ErrorResponse(fmt.Errorf("tunnel %d: %w", id, datapath.ErrNotFound))
		}
		return resp
	case api.OpAddSession:
		if req.Session == nil {
			return invalid("session", "missing")
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
			if sid != 0 && c.ID != sid {
				continue
			}
			var ptid uint32
			if t := h.Plane.Tunnel(c.TunnelID); t != nil {
				ptid = t.Config().PeerID
			}
			resp.Sessions = append(resp.Sessions, SessionInfo(s, ptid, req.Stats))
		}
		if sid != 0 && len(resp.Sessions) == 0 {
			return ErrorResponse(fmt.Errorf("session %d: %w", sid, datapath.ErrNotFound))
		}
		return resp
	}
	return invalid("op", fmt.Sprintf("%q unknown", req.Op))
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

// Serve answers requests on l until ctx ends.
func (h *Handler) Serve(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.serveConn(ctx, c)
		}()
	}
}

func (h *Handler) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), maxRequest)
	for sc.Scan() {
		var req api.Request
		var resp api.Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp = invalid("request", "not JSON: "+err.Error())
		} else {
			resp = h.Handle(req)
		}
		if resp.Error != "" {
			h.Log.Info("request failed", "op", req.Op, "err", resp.Error)
		}
		b, err := api.Marshal(resp)
		if err != nil {
			return
		}
		if _, err := c.Write(b); err != nil {
			return
		}
	}
}
