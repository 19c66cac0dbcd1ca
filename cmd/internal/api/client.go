package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// ErrNoDaemon says nothing listens on the socket.
var ErrNoDaemon = errors.New("no ul2tpd answers")

// Do sends one request to the daemon at socket and returns its response.
func Do(ctx context.Context, socket string, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return Response{}, fmt.Errorf("%w on %s (start it with: ul2tpd --socket %s)", ErrNoDaemon, socket, socket)
		}
		return Response{}, fmt.Errorf("connect to ul2tpd at %s: %w", socket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	b, err := Marshal(req)
	if err != nil {
		return Response{}, err
	}
	_, werr := c.Write(b)
	// A daemon that refuses the connection (too many) answers before it
	// reads and closes it: its answer is there even if the write failed.
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		if werr != nil {
			return Response{}, fmt.Errorf("send to ul2tpd at %s: %w", socket, werr)
		}
		return Response{}, fmt.Errorf("read from ul2tpd at %s: %w", socket, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("decode ul2tpd response: %w", err)
	}
	return resp, nil
}

// Monitor asks the daemon at socket for its events and calls fn with each
// until ctx ends (nil), the daemon closes the stream, or fn fails.
func Monitor(ctx context.Context, socket string, fn func(Event) error) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w on %s (start it with: ul2tpd --socket %s)", ErrNoDaemon, socket, socket)
		}
		return fmt.Errorf("connect to ul2tpd at %s: %w", socket, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	b, err := Marshal(Request{Op: OpMonitor})
	if err != nil {
		return err
	}
	_, werr := c.Write(b)
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if werr != nil {
			return fmt.Errorf("send to ul2tpd at %s: %w", socket, werr)
		}
		return fmt.Errorf("read from ul2tpd at %s: %w", socket, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("decode ul2tpd response: %w", err)
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("event stream from ul2tpd at %s ended: %w", socket, err)
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("decode ul2tpd event: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
