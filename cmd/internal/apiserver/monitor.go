package apiserver

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/datapath/event"
)

// monitor answers a monitor request on c, then streams the plane's events
// to it, one api.Event per line, until
// the client closes the connection, ctx ends, or a write takes longer than
// writeTimeout (a client that stopped reading: its connection is closed).
// The connection has no read deadline meanwhile. Events come through a
// bounded buffer: when the client falls behind, what does not fit is
// dropped and counted, and it gets a "lost" event with the count once it
// catches up; the datapath never waits for it.
func (h *Handler) monitor(ctx context.Context, c net.Conn, r *bufio.Reader, writeTimeout time.Duration) {
	// Subscribed before the answer: the client sees every event from
	// then on.
	sub := h.Plane.Events().Subscribe(event.DefaultBuffer)
	defer sub.Close()
	if !h.respond(c, api.Response{}, writeTimeout) {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = c.SetReadDeadline(time.Time{})
	go func() {
		// Whatever the client sends is ignored; its closing the
		// connection (or serveConn's) ends the stream.
		defer cancel()
		_, _ = io.Copy(io.Discard, r)
	}()
	for {
		e, ok := sub.Next(ctx)
		if !ok {
			return
		}
		b, err := api.Marshal(EventInfo(e))
		if err != nil {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.Write(b); err != nil {
			if !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				h.Log.Info("monitor client dropped", "err", err)
			}
			return
		}
	}
}

// EventInfo converts an event to its wire form.
func EventInfo(e event.Event) api.Event {
	ae := api.Event{
		Time:      e.Time,
		Event:     e.Kind.String(),
		TunnelID:  e.TunnelID,
		SessionID: e.SessionID,
		Interface: e.Interface,
		Reason:    e.Reason.String(),
		Count:     e.Count,
		Detail:    e.Detail,
	}
	if p := e.PPP; p != nil {
		ae.Reason, ae.Phase, ae.FromPhase, ae.User, ae.Method, ae.Role = p.Reason, p.Phase, p.From, p.User, p.Method, p.Role
	}
	return ae
}
