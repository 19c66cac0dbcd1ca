// Package reorder is the receive side of L2TP data sequencing, with the
// Linux kernel's rules (net/l2tp/l2tp_core.c: l2tp_recv_common,
// l2tp_recv_data_seq, l2tp_recv_queue_skb, l2tp_recv_dequeue,
// l2tp_seq_check_rx_window), written down in docs/sequencing.md.
//
// A Receiver is a state machine fed one packet at a time with its sequence
// number (or none) and the current time; it says which packets to deliver,
// in order, and which to drop, and keeps the counters. It does no I/O, owns
// no buffers and allocates nothing per packet: queued packets are held as
// caller-chosen handles in a fixed-size queue. It also tracks whether the
// session sends sequence numbers, since the kernel turns that on and off
// following the peer unless the session is in LNS mode.
package reorder

import (
	"sync/atomic"
	"time"
)

// Sequence number spaces.
const (
	MaxV2 = 0xffff   // L2TPv2 Ns: 16 bits
	MaxV3 = 0xffffff // L2TPv3 default L2-specific sublayer: 24 bits
)

// nrOOSCountMax is the kernel's nr_oos_count_max: after more than this many
// consecutive out-of-sequence packets in a row the receiver resyncs.
const nrOOSCountMax = 4

// DefaultDepth bounds the reorder queue (the kernel's is unbounded; ours
// drops beyond it, counted as a sequence discard).
const DefaultDepth = 64

// Config is a session's sequencing configuration.
type Config struct {
	// Max is the largest sequence number: MaxV2 or MaxV3.
	Max uint32
	// RecvSeq drops packets without sequence numbers.
	RecvSeq bool
	// SendSeq starts the session sending sequence numbers.
	SendSeq bool
	// LNSMode keeps SendSeq as configured instead of following the peer.
	LNSMode bool
	// Timeout is the reorder timeout; 0 discards out-of-sequence packets
	// instead of queueing them. Packets queued without a timeout, as
	// the kernel does, expire after a second.
	Timeout time.Duration
	// Depth bounds the queue; 0 means DefaultDepth.
	Depth int
}

// Reason says why a packet was dropped.
type Reason uint8

const (
	// OutsideWindow: its Ns is behind the expected one (old or duplicate);
	// counted as an error only, as the kernel does.
	OutsideWindow Reason = iota + 1
	// OutOfSequence: not the expected Ns and no reorder timeout.
	OutOfSequence
	// Expired: it waited in the queue longer than the timeout.
	Expired
	// NoSequence: no Ns on a session that requires them.
	NoSequence
	// QueueFull: the reorder queue was full.
	QueueFull
)

func (r Reason) String() string {
	switch r {
	case OutsideWindow:
		return "outside window"
	case OutOfSequence:
		return "out of sequence"
	case Expired:
		return "expired"
	case NoSequence:
		return "no sequence number"
	case QueueFull:
		return "queue full"
	}
	return "unknown"
}

// Handler receives a Receiver's decisions about packets of type T.
type Handler[T any] interface {
	// Deliver passes a packet on, in sequence order.
	Deliver(T)
	// Drop discards a packet.
	Drop(T, Reason)
	// Keep is called when a packet must wait in the queue beyond the
	// current Receive call; it returns the handle to keep (a copy of the
	// data if the caller's buffer is about to be reused).
	Keep(T) T
}

type entry[T any] struct {
	item    T
	ns      uint32
	hasSeq  bool
	expires int64
	fresh   bool // added by the current Receive call
}

// Counters are a Receiver's counters, named as the kernel's.
type Counters struct {
	RxSeqDiscards uint64 `json:"rx_seq_discards"`
	RxOOSPackets  uint64 `json:"rx_oos_packets"`
	RxErrors      uint64 `json:"rx_errors"`
	QueueDepth    int    `json:"reorder_queue_depth"`
}

// Receiver is one session's receive sequencing state. It is not safe for
// concurrent use, except SendSeq, NextNs and Counters.
type Receiver[T any] struct {
	cfg     Config
	timeout int64
	window  uint32

	nr          uint32 // next Ns expected
	nrOOS       uint32
	nrOOSCount  int
	reorderSkip bool // take the next packet's Ns as nr

	queue []entry[T] // ordered as the kernel's reorder_q

	sendSeq atomic.Bool
	recvSeq atomic.Bool // cfg.RecvSeq, for Idle
	ns      atomic.Uint32

	seqDiscards, oos, errors atomic.Uint64
	depth                    atomic.Int32
}

// New makes a Receiver.
func New[T any](c Config) *Receiver[T] {
	if c.Max == 0 {
		c.Max = MaxV3
	}
	if c.Depth <= 0 {
		c.Depth = DefaultDepth
	}
	r := &Receiver[T]{queue: make([]entry[T], 0, c.Depth)}
	r.reorderSkip = true // the first packet's Ns sets nr
	r.Configure(c)
	return r
}

// Configure changes the configuration (the netlink SESSION_MODIFY
// equivalent). The queue and the expected Ns are kept.
func (r *Receiver[T]) Configure(c Config) {
	if c.Max == 0 {
		c.Max = r.cfg.Max
	}
	if c.Depth <= 0 {
		c.Depth = cap(r.queue)
	}
	r.cfg = c
	r.window = c.Max / 2
	r.timeout = int64(c.Timeout)
	r.sendSeq.Store(c.SendSeq)
	r.recvSeq.Store(c.RecvSeq)
}

// Config returns the configuration, with SendSeq as it is now.
func (r *Receiver[T]) Config() Config {
	c := r.cfg
	c.SendSeq = r.sendSeq.Load()
	return c
}

// SendSeq reports whether packets sent now carry sequence numbers.
func (r *Receiver[T]) SendSeq() bool { return r.sendSeq.Load() }

// Idle reports, without the caller's lock, that the receiver has nothing
// to do with a packet that carries no Ns: sequence numbers are neither
// required nor sent, and nothing waits in the queue. Such a packet may go
// straight through instead of through Receive.
func (r *Receiver[T]) Idle() bool {
	return !r.recvSeq.Load() && !r.sendSeq.Load() && r.depth.Load() == 0
}

// NextNs returns the Ns for the next packet sent and advances it.
func (r *Receiver[T]) NextNs() uint32 { return (r.ns.Add(1) - 1) & r.cfg.Max }

// Counters returns the counters.
func (r *Receiver[T]) Counters() Counters {
	return Counters{
		RxSeqDiscards: r.seqDiscards.Load(),
		RxOOSPackets:  r.oos.Load(),
		RxErrors:      r.errors.Load(),
		QueueDepth:    int(r.depth.Load()),
	}
}

// Receive takes one packet: hasSeq and ns from its header, now the time
// (any monotonic nanosecond clock). Every packet ends in exactly one of
// h.Deliver, h.Drop, or the queue (after h.Keep); queued packets come out
// through later calls, or through Flush.
func (r *Receiver[T]) Receive(now int64, hasSeq bool, ns uint32, item T, h Handler[T]) {
	if hasSeq {
		// The peer sends sequence numbers: a LAC follows it.
		if !r.cfg.LNSMode && !r.sendSeq.Load() {
			r.sendSeq.Store(true)
		}
	} else {
		if r.cfg.RecvSeq {
			r.drop(item, NoSequence, h)
			return
		}
		if !r.cfg.LNSMode && r.sendSeq.Load() {
			// The LNS asked us to stop sending sequence numbers.
			r.sendSeq.Store(false)
		} else if r.sendSeq.Load() {
			// An LNS sending them is owed them by its LAC.
			r.drop(item, NoSequence, h)
			return
		}
	}
	timeout := r.timeout
	if timeout == 0 {
		timeout = int64(time.Second)
	}
	e := entry[T]{item: item, ns: ns & r.cfg.Max, hasSeq: hasSeq, expires: now + timeout, fresh: true}
	if hasSeq {
		if !r.inWindow(e.ns) {
			r.drop(item, OutsideWindow, h)
			return
		}
		if r.timeout != 0 {
			if !r.insertSorted(e) {
				r.drop(item, QueueFull, h)
				return
			}
		} else if !r.acceptNoTimeout(e) {
			r.drop(item, OutOfSequence, h)
			return
		}
	} else if !r.push(e) {
		r.drop(item, QueueFull, h)
		return
	}
	r.dequeue(now, h)
	for i := range r.queue {
		if r.queue[i].fresh {
			r.queue[i].fresh = false
			r.queue[i].item = h.Keep(r.queue[i].item)
		}
	}
	r.depth.Store(int32(len(r.queue)))
}

// inWindow is l2tp_seq_check_rx_window: ns lies in the half of the
// sequence space ahead of nr (nr included).
func (r *Receiver[T]) inWindow(ns uint32) bool {
	var d uint32
	if ns >= r.nr {
		d = ns - r.nr
	} else {
		d = r.cfg.Max + 1 - (r.nr - ns)
	}
	return d < r.window
}

// acceptNoTimeout is the kernel's no-reorder-timeout rule: queue the
// expected packet; discard others, unless a run of more than
// nrOOSCountMax consecutive ones says the peer moved on, in which case
// resync to it.
func (r *Receiver[T]) acceptNoTimeout(e entry[T]) bool {
	if e.ns == r.nr {
		return r.push(e)
	}
	next := (r.nrOOS + 1) & r.cfg.Max
	if e.ns == next {
		r.nrOOSCount++
	} else {
		r.nrOOSCount = 0
	}
	r.nrOOS = e.ns
	if r.nrOOSCount > nrOOSCountMax {
		r.reorderSkip = true
	}
	if !r.reorderSkip {
		return false
	}
	return r.push(e)
}

func (r *Receiver[T]) push(e entry[T]) bool {
	if len(r.queue) == cap(r.queue) {
		return false
	}
	r.queue = append(r.queue, e)
	return true
}

// insertSorted is l2tp_recv_queue_skb: before the first queued packet with
// a larger Ns (a plain comparison, as the kernel's), else at the tail.
// Inserting ahead of a queued packet counts rx_oos_packets.
func (r *Receiver[T]) insertSorted(e entry[T]) bool {
	if len(r.queue) == cap(r.queue) {
		return false
	}
	for i := range r.queue {
		if r.queue[i].ns > e.ns {
			r.queue = append(r.queue, entry[T]{})
			copy(r.queue[i+1:], r.queue[i:])
			r.queue[i] = e
			r.oos.Add(1)
			return true
		}
	}
	r.queue = append(r.queue, e)
	return true
}

// dequeue is l2tp_recv_dequeue: walk the queue from the head, discarding
// expired packets (after which the next sequenced packet resyncs nr) and
// delivering packets while they carry the expected Ns or none.
func (r *Receiver[T]) dequeue(now int64, h Handler[T]) {
	i := 0
	for i < len(r.queue) {
		e := &r.queue[i]
		if now > e.expires {
			r.seqDiscards.Add(1)
			r.errors.Add(1)
			r.reorderSkip = true
			item := e.item
			r.remove(i)
			h.Drop(item, Expired)
			continue
		}
		if e.hasSeq {
			if r.reorderSkip {
				r.reorderSkip = false
				r.nr = e.ns
			}
			if e.ns != r.nr {
				return // the kernel stops here: later entries wait
			}
			r.nr = (r.nr + 1) & r.cfg.Max
		}
		item := e.item
		r.remove(i)
		h.Deliver(item)
	}
}

func (r *Receiver[T]) remove(i int) {
	copy(r.queue[i:], r.queue[i+1:])
	var zero entry[T]
	r.queue[len(r.queue)-1] = zero
	r.queue = r.queue[:len(r.queue)-1]
}

func (r *Receiver[T]) drop(item T, why Reason, h Handler[T]) {
	if why != OutsideWindow {
		r.seqDiscards.Add(1)
	}
	r.errors.Add(1)
	h.Drop(item, why)
}

// Flush drops every queued packet (when the session goes away).
func (r *Receiver[T]) Flush(h Handler[T]) {
	for len(r.queue) > 0 {
		item := r.queue[0].item
		r.remove(0)
		h.Drop(item, Expired)
	}
	r.depth.Store(0)
}
