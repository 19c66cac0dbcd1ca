// Package impair is a UDP relay that reorders, delays, drops and duplicates
// datagrams on a repeatable schedule: netem for hosts without it, for the
// end-to-end tests of L2TP data sequencing.
//
// A Relay owns two UDP sockets, one facing A and one facing B. Datagrams
// that arrive on A's socket from A's address go out of B's socket to B's
// address, and the other way round; datagrams from anyone else are counted
// and ignored. So each end sees the relay's address and port as its peer.
//
// Each direction numbers its datagrams from 0 (again after each
// SetSchedule) and asks its Schedule, a pure function of that index, what
// to do with each one.
package impair

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Op is what happens to one datagram.
type Op uint8

const (
	// Pass forwards the datagram now.
	Pass Op = iota
	// Drop discards it.
	Drop
	// Dup forwards it twice, back to back.
	Dup
	// Hold forwards it once N later datagrams of the same direction have
	// been forwarded (Hold 1 swaps it with the next). A held datagram that
	// is still waiting after Config.MaxHold goes out anyway.
	Hold
	// Delay forwards it after D, from a timer.
	Delay
)

func (o Op) String() string {
	switch o {
	case Pass:
		return "pass"
	case Drop:
		return "drop"
	case Dup:
		return "dup"
	case Hold:
		return "hold"
	case Delay:
		return "delay"
	}
	return "unknown"
}

// Action is a schedule's decision about one datagram.
type Action struct {
	Op Op
	N  int           // for Hold: how many later datagrams go first (at least 1)
	D  time.Duration // for Delay
}

// Schedule decides, from a datagram's index in its direction, what happens
// to it. It must be a pure function of the index (so a run is repeatable)
// and safe for concurrent use.
type Schedule func(i int) Action

// Swap holds a datagram until the next one has gone: the two change places.
var Swap = Action{Op: Hold, N: 1}

// At applies the actions of m to their indices and passes the others.
func At(m map[int]Action) Schedule {
	c := make(map[int]Action, len(m))
	for k, v := range m {
		c[k] = v
	}
	return func(i int) Action { return c[i] }
}

// Every applies a to each index i with i%period == offset.
func Every(period, offset int, a Action) Schedule {
	return func(i int) Action {
		if period > 0 && i%period == offset {
			return a
		}
		return Action{}
	}
}

// Random applies a to a fraction p of the indices, chosen by a hash of
// seed and the index: the same seed picks the same indices.
func Random(seed uint64, p float64, a Action) Schedule {
	return func(i int) Action {
		if float64(mix(seed^uint64(i)*0x9e3779b97f4a7c15)>>11)/(1<<53) < p {
			return a
		}
		return Action{}
	}
}

// mix is splitmix64's finalizer.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Combine asks each schedule in turn and takes the first action that is
// not Pass.
func Combine(ss ...Schedule) Schedule {
	return func(i int) Action {
		for _, s := range ss {
			if s == nil {
				continue
			}
			if a := s(i); a.Op != Pass {
				return a
			}
		}
		return Action{}
	}
}

// Dir is a direction through the relay.
type Dir int

const (
	AtoB Dir = iota // from A's address, out towards B
	BtoA
)

func (d Dir) String() string {
	if d == AtoB {
		return "A->B"
	}
	return "B->A"
}

// Stats are one direction's counters.
type Stats struct {
	Received   uint64 // datagrams from the expected peer
	Forwarded  uint64 // datagrams sent, duplicates included
	Dropped    uint64
	Duplicated uint64
	Held       uint64 // datagrams held back by Hold
	Overtaken  uint64 // held datagrams released after later ones went out
	HoldExpiry uint64 // held datagrams released by MaxHold
	Delayed    uint64
	Foreign    uint64 // datagrams from another address, ignored
	SendErrors uint64
}

// Config configures a Relay.
type Config struct {
	// A and B are the sockets facing A and B. The relay owns them from
	// Start on and closes them in Close.
	A, B *net.UDPConn
	// PeerA and PeerB are A's and B's addresses.
	PeerA, PeerB netip.AddrPort
	// MaxHold bounds how long a held datagram waits for its successors;
	// 0 means 100 ms.
	MaxHold time.Duration
	// Observe, if set, is called from the relay's goroutines with each
	// datagram received from a peer, its direction and its index, before
	// its action is taken. It must not keep b.
	Observe func(d Dir, i int, b []byte)
	// Sent, if set, is called with each datagram the relay has forwarded
	// in direction d, from the relay's goroutines or timers. It must not
	// keep b.
	Sent func(d Dir, b []byte)
}

// Relay forwards datagrams between A and B through its schedules.
type Relay struct {
	cfg    Config
	pipes  [2]*pipe
	wg     sync.WaitGroup
	closed atomic.Bool

	mu     sync.Mutex
	timers map[*time.Timer]struct{}
}

type schedState struct {
	s   Schedule
	gen uint64
}

// pipe is one direction.
type pipe struct {
	r        *Relay
	dir      Dir
	in, out  *net.UDPConn
	from, to netip.AddrPort

	sched atomic.Pointer[schedState]

	// Used by the pipe's goroutine only.
	gen  uint64
	i    int
	held []held

	st struct {
		received, forwarded, dropped, duplicated, held, overtaken,
		holdExpiry, delayed, foreign, sendErrors atomic.Uint64
	}
}

type held struct {
	b     []byte
	left  int
	since time.Time
}

var gens atomic.Uint64

// Start starts a relay; its schedules pass everything until SetSchedule.
func Start(c Config) *Relay {
	if c.MaxHold <= 0 {
		c.MaxHold = 100 * time.Millisecond
	}
	r := &Relay{cfg: c, timers: map[*time.Timer]struct{}{}}
	r.pipes[AtoB] = &pipe{r: r, dir: AtoB, in: c.A, out: c.B, from: c.PeerA, to: c.PeerB}
	r.pipes[BtoA] = &pipe{r: r, dir: BtoA, in: c.B, out: c.A, from: c.PeerB, to: c.PeerA}
	for _, p := range r.pipes {
		p.sched.Store(&schedState{})
		r.wg.Add(1)
		go p.run()
	}
	return r
}

// SetSchedule gives direction d a new schedule (nil: pass everything) and
// restarts its numbering at 0 with the next datagram.
func (r *Relay) SetSchedule(d Dir, s Schedule) {
	r.pipes[d].sched.Store(&schedState{s: s, gen: gens.Add(1)})
}

// Stats returns direction d's counters.
func (r *Relay) Stats(d Dir) Stats {
	p := &r.pipes[d].st
	return Stats{
		Received: p.received.Load(), Forwarded: p.forwarded.Load(), Dropped: p.dropped.Load(),
		Duplicated: p.duplicated.Load(), Held: p.held.Load(), Overtaken: p.overtaken.Load(),
		HoldExpiry: p.holdExpiry.Load(), Delayed: p.delayed.Load(), Foreign: p.foreign.Load(),
		SendErrors: p.sendErrors.Load(),
	}
}

// Close stops the relay: pending delays are cancelled, held datagrams are
// dropped, both sockets are closed. It waits for the relay's goroutines.
func (r *Relay) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.mu.Lock()
	for tm := range r.timers {
		tm.Stop()
	}
	r.timers = nil
	r.mu.Unlock()
	err := errors.Join(r.cfg.A.Close(), r.cfg.B.Close())
	r.wg.Wait()
	return err
}

func (p *pipe) run() {
	defer p.r.wg.Done()
	buf := make([]byte, 65536)
	maxHold := p.r.cfg.MaxHold
	for {
		dl := time.Time{}
		if len(p.held) > 0 {
			dl = p.held[0].since.Add(maxHold)
		}
		_ = p.in.SetReadDeadline(dl)
		n, from, err := p.in.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.r.closed.Load() {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
				p.expire(time.Now())
				continue
			}
			// Transient (ICMP errors reported on the socket): go on.
			continue
		}
		if from != p.from && netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != p.from {
			p.st.foreign.Add(1)
			continue
		}
		p.st.received.Add(1)
		st := p.sched.Load()
		if st.gen != p.gen {
			p.gen, p.i = st.gen, 0
		}
		i := p.i
		p.i++
		b := buf[:n]
		if f := p.r.cfg.Observe; f != nil {
			f(p.dir, i, b)
		}
		a := Action{}
		if st.s != nil {
			a = st.s(i)
		}
		switch a.Op {
		case Drop:
			p.st.dropped.Add(1)
		case Dup:
			p.st.duplicated.Add(1)
			p.send(b)
			p.send(b)
		case Hold:
			p.st.held.Add(1)
			p.held = append(p.held, held{b: append([]byte(nil), b...), left: max(a.N, 1), since: time.Now()})
		case Delay:
			p.st.delayed.Add(1)
			p.delay(append([]byte(nil), b...), a.D)
		default:
			p.send(b)
		}
		p.expire(time.Now())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// send forwards b, then releases the held datagrams it was the last to
// wait for (each release counting as a forwarded datagram for the others).
func (p *pipe) send(b []byte) {
	p.write(b)
	for j := range p.held {
		p.held[j].left--
	}
	for {
		k := -1
		for j := range p.held {
			if p.held[j].left <= 0 {
				k = j
				break
			}
		}
		if k < 0 {
			return
		}
		h := p.held[k]
		p.held = append(p.held[:k], p.held[k+1:]...)
		p.st.overtaken.Add(1)
		p.write(h.b)
		for j := range p.held {
			p.held[j].left--
		}
	}
}

// expire releases held datagrams older than MaxHold, oldest first.
func (p *pipe) expire(now time.Time) {
	for len(p.held) > 0 && now.Sub(p.held[0].since) >= p.r.cfg.MaxHold {
		h := p.held[0]
		p.held = p.held[1:]
		p.st.holdExpiry.Add(1)
		p.write(h.b)
	}
}

func (p *pipe) write(b []byte) {
	if _, err := p.out.WriteToUDPAddrPort(b, p.to); err != nil {
		p.st.sendErrors.Add(1)
		return
	}
	p.st.forwarded.Add(1)
	if f := p.r.cfg.Sent; f != nil {
		f(p.dir, b)
	}
}

func (p *pipe) delay(b []byte, d time.Duration) {
	r := p.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timers == nil {
		return // closed
	}
	var tm *time.Timer
	tm = time.AfterFunc(d, func() {
		r.mu.Lock()
		if r.timers == nil {
			r.mu.Unlock()
			return
		}
		delete(r.timers, tm)
		r.mu.Unlock()
		p.write(b)
	})
	r.timers[tm] = struct{}{}
}
