package datapath

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/datapath/tap"
)

// Backoff between attempts to recreate a session's TAP device.
const (
	recreateFirst = 100 * time.Millisecond
	recreateMax   = 30 * time.Second
)

// lifecycle is a session's pumps and what happens when one fails: a
// transmit pump whose TAP read fails for any reason but the session's own
// close (the device deleted under the daemon, most often) marks the
// session down and starts recovery, which recreates the TAP with the same
// name, MTU, Ethernet address and queues, brings it up and restarts the
// pumps, with backoff while that fails.
type lifecycle struct {
	tapCfg tap.Config // the name is the one the kernel gave, after start

	mu     sync.Mutex // guards closed and the start of a generation of pumps
	closed bool
	done   chan struct{} // closed by close
	wg     sync.WaitGroup

	down       atomic.Bool   // no pumps running: the TAP is being recreated
	recovering atomic.Bool   // a recovery goroutine runs
	restarts   atomic.Uint64 // TAPs recreated
	lastErr    atomic.Pointer[string]
}

// start runs a transmit pump per queue of dev and makes dev the session's
// TAP. Called with life.mu held or before the session is visible.
func (s *Session) start(dev *tap.Device) {
	l := &s.life
	if l.done == nil {
		l.done = make(chan struct{})
	}
	l.tapCfg.Name = dev.Name()
	s.dev.Store(dev)
	s.out.Store(&tapWriter{dev.Queues()[0]})
	l.down.Store(false)
	for _, q := range dev.Queues() {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := s.transmit(q); err != nil {
				s.pumpFailed(dev, err)
			}
		}()
	}
}

// pumpFailed is called by a transmit pump that stopped on err. The first
// failure of a device starts its recovery; the other queues' pumps stop
// when recovery closes the device.
func (s *Session) pumpFailed(dev *tap.Device, err error) {
	l := &s.life
	if l.isClosed() || s.dev.Load() != dev {
		return // closing, or a late report from a device already replaced
	}
	msg := err.Error()
	l.lastErr.Store(&msg)
	if !l.recovering.CompareAndSwap(false, true) {
		return
	}
	l.down.Store(true)
	s.log.Error("session down: TAP read failed; recreating the device",
		"tunnel_id", s.cfg.TunnelID, "session_id", s.cfg.ID, "ifname", dev.Name(), "err", err)
	s.tunnel.sock.events.Publish(event.Event{Kind: event.SessionDown, TunnelID: s.cfg.TunnelID, SessionID: s.cfg.ID,
		Interface: dev.Name(), Detail: msg})
	l.wg.Add(1) // the failing pump still counts, so close cannot be past Wait
	go func() {
		defer l.wg.Done()
		s.recreate(dev)
	}()
}

// recreate closes the failed device and makes a new one until that works
// or the session is closed.
func (s *Session) recreate(old *tap.Device) {
	l := &s.life
	defer l.recovering.Store(false)
	old.Close()
	wait := recreateFirst
	for attempt := 1; ; attempt++ {
		select {
		case <-l.done:
			return
		case <-time.After(wait):
		}
		dev, err := s.newTAP()
		if err == nil {
			l.mu.Lock()
			if l.closed {
				l.mu.Unlock()
				dev.Close()
				return
			}
			l.restarts.Add(1)
			s.start(dev)
			l.mu.Unlock()
			s.log.Info("session up: TAP recreated", "tunnel_id", s.cfg.TunnelID, "session_id", s.cfg.ID,
				"ifname", dev.Name(), "attempts", attempt)
			s.tunnel.sock.events.Publish(event.Event{Kind: event.SessionUp, TunnelID: s.cfg.TunnelID, SessionID: s.cfg.ID,
				Interface: dev.Name(), Detail: fmt.Sprintf("TAP recreated after %d attempts", attempt)})
			return
		}
		msg := err.Error()
		l.lastErr.Store(&msg)
		s.log.Warn("session down: cannot recreate the TAP", "tunnel_id", s.cfg.TunnelID,
			"session_id", s.cfg.ID, "err", err, "retry_in", (2 * wait).String())
		wait = min(2*wait, recreateMax)
	}
}

// newTAP creates the session's TAP again and brings it up.
func (s *Session) newTAP() (*tap.Device, error) {
	dev, err := tap.Create(s.life.tapCfg)
	if err != nil {
		return nil, err
	}
	if err := tap.SetUp(dev.Name()); err != nil {
		dev.Close()
		return nil, err
	}
	return dev, nil
}

func (l *lifecycle) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close stops the session's pumps and any recovery, removes its TAP and
// waits for every goroutine of the session.
func (s *Session) close() {
	if s.v2tx != nil {
		s.closeV2()
	}
	l := &s.life
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		if l.done != nil {
			close(l.done)
		}
	}
	dev := s.dev.Load()
	l.mu.Unlock()
	if dev != nil {
		dev.Close()
	}
	l.wg.Wait()
}

// Health is a session's pump state, for show session.
type Health struct {
	// Up is false while the session's TAP is being recreated.
	Up bool
	// Restarts counts TAP devices recreated after a pump failure.
	Restarts uint64
	// LastError is the last pump or recovery error, "" if none.
	LastError string
}

// Health reports the session's pump state.
func (s *Session) Health() Health {
	h := Health{Up: !s.life.down.Load(), Restarts: s.life.restarts.Load()}
	if e := s.life.lastErr.Load(); e != nil {
		h.LastError = *e
	}
	return h
}
