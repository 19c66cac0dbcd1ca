// Package reorder is the receive side of L2TP data sequencing, with the
// Linux kernel's rules (net/l2tp/l2tp_core.c: l2tp_recv_common,
// l2tp_recv_data_seq, l2tp_recv_queue_skb, l2tp_recv_dequeue,
// l2tp_seq_check_rx_window), written down in docs/sequencing.md with the
// few places where it differs: a bounded queue that skips the gap it waits
// for when full, serial-number order across the wrap of the sequence
// space, and expiry anywhere in the queue.
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
	"cmp"
	"slices"
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
	// Max is the largest sequence number: MaxV2 or MaxV3. It is fixed
	// when the Receiver is made.
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
	// Depth bounds the queue; 0 means DefaultDepth. It is fixed when the
	// Receiver is made.
	Depth int
}

// Reason says why a packet was dropped.
type Reason uint8

const (
	// OutsideWindow: its Ns is behind the expected one (old or duplicate),
	// or already waits in the queue (a duplicate); counted as an error
	// only, as the kernel does.
	OutsideWindow Reason = iota + 1
	// OutOfSequence: not the expected Ns and no reorder timeout.
	OutOfSequence
	// Expired: it waited in the queue longer than the timeout.
	Expired
	// NoSequence: no Ns on a session that requires them.
	NoSequence
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

// Receiver is one session's receive sequencing state. Receive, Configure
// and Flush must not run concurrently with each other (the caller holds a
// lock); SendSeq, NextNs, Idle, Config and Counters are safe for
// concurrent use with everything.
type Receiver[T any] struct {
	// Fixed by New.
	max    uint32 // the largest Ns
	window uint32 // max/2: the forward half of the sequence space
	depth  int    // the queue bound

	cfg atomic.Pointer[Config] // as last configured; Max and Depth as above

	// Guarded by the caller's lock.
	nr          uint32 // next Ns expected
	nrOOS       uint32
	nrOOSCount  int
	reorderSkip bool       // take the next delivered packet's Ns as nr
	synced      bool       // a sequenced packet has set nr: the window applies
	behind      uint32     // Ns of the last packet outside the window
	behindCount int        // consecutive Ns among packets outside the window
	restarts    int        // times the peer was seen to restart its numbering
	resyncs     uint64     // times nr jumped: see Resyncs
	queue       []entry[T] // sequenced entries by distance from nr; room for depth+1

	sendSeq atomic.Bool
	ns      atomic.Uint32

	seqDiscards, oos, errors atomic.Uint64
	// pub is what Idle, Counters and State read without the caller's
	// lock, stored once per Receive: nr in bits 0-31, synced in bit 32,
	// len(queue) from bit 33.
	pub atomic.Uint64
}

// Bits of Receiver.pub.
const (
	pubSynced     = 1 << 32
	pubQueueShift = 33
)

// New makes a Receiver. c.Max (0: MaxV3) and c.Depth (0: DefaultDepth)
// hold for its lifetime.
func New[T any](c Config) *Receiver[T] {
	if c.Max == 0 {
		c.Max = MaxV3
	}
	if c.Depth <= 0 {
		c.Depth = DefaultDepth
	}
	r := &Receiver[T]{
		max:    c.Max,
		window: c.Max / 2,
		depth:  c.Depth,
		queue:  make([]entry[T], 0, c.Depth+1),
	}
	r.reorderSkip = true // the first packet's Ns sets nr
	r.Configure(c)
	return r
}

// Configure changes the configuration (the netlink SESSION_MODIFY
// equivalent). Max and Depth stay as New set them; the queue and the
// expected Ns are kept.
func (r *Receiver[T]) Configure(c Config) {
	c.Max, c.Depth = r.max, r.depth
	r.cfg.Store(&c)
	r.sendSeq.Store(c.SendSeq)
}

// Config returns the configuration, with SendSeq as it is now.
func (r *Receiver[T]) Config() Config {
	c := *r.cfg.Load()
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
	return !r.cfg.Load().RecvSeq && !r.sendSeq.Load() && r.pub.Load()>>pubQueueShift == 0
}

// NextNs returns the Ns for the next packet sent and advances it.
func (r *Receiver[T]) NextNs() uint32 { return (r.ns.Add(1) - 1) & r.max }

// Resyncs counts the times the expected Ns jumped: to a later one, the
// packets in between taken as lost (a run of out-of-sequence packets
// without a reorder timeout, a queue over its bound, an expired wait), or
// anywhere, the peer having restarted its numbering. It must be called
// with the caller's lock, as Receive.
func (r *Receiver[T]) Resyncs() uint64 { return r.resyncs }

// Counters returns the counters.
func (r *Receiver[T]) Counters() Counters {
	return Counters{
		RxSeqDiscards: r.seqDiscards.Load(),
		RxOOSPackets:  r.oos.Load(),
		RxErrors:      r.errors.Load(),
		QueueDepth:    int(r.pub.Load() >> pubQueueShift),
	}
}

// State is a Receiver's sequence numbers now, as the kernel's debugfs
// shows a session's nr and ns.
type State struct {
	// Ns is the Ns of the next packet sent.
	Ns uint32
	// Nr is the Ns expected next; NrValid is false until a sequenced
	// packet has set it (and again after the peer restarted its
	// numbering).
	Nr      uint32
	NrValid bool
	// QueueDepth is how many packets wait in the reorder queue.
	QueueDepth int
}

// State returns the sequence numbers. It is safe for concurrent use with
// everything and takes no lock: Nr is as the last Receive left it.
func (r *Receiver[T]) State() State {
	p := r.pub.Load()
	return State{
		Ns:         r.ns.Load() & r.max,
		Nr:         uint32(p),
		NrValid:    p&pubSynced != 0,
		QueueDepth: int(p >> pubQueueShift),
	}
}

// publish makes nr, synced and the queue's length visible to Idle,
// Counters and State.
func (r *Receiver[T]) publish() {
	p := uint64(r.nr) | uint64(len(r.queue))<<pubQueueShift
	if r.synced {
		p |= pubSynced
	}
	r.pub.Store(p)
}

// Receive takes one packet: hasSeq and ns from its header, now the time
// (any monotonic nanosecond clock). Every packet ends in exactly one of
// h.Deliver, h.Drop, or the queue (after h.Keep); queued packets come out
// through later calls, or through Flush. When Receive returns, the queue
// holds at most Depth packets and none older than its timeout.
func (r *Receiver[T]) Receive(now int64, hasSeq bool, ns uint32, item T, h Handler[T]) {
	if hasSeq && r.peerRestarted(ns&r.max) {
		r.restart(h)
	}
	if why := r.admit(now, hasSeq, ns, item); why != 0 {
		r.drop(item, why, h)
	}
	// Even after a drop: what has expired goes.
	r.dequeue(now, h)
	if len(r.queue) > r.depth {
		r.skip(now, h)
	}
	for i := range r.queue {
		if r.queue[i].fresh {
			r.queue[i].fresh = false
			r.queue[i].item = h.Keep(r.queue[i].item)
		}
	}
	r.publish()
}

// admit queues a packet, or says why it is dropped.
func (r *Receiver[T]) admit(now int64, hasSeq bool, ns uint32, item T) Reason {
	cfg := r.cfg.Load()
	if !r.accept(cfg, hasSeq) {
		return NoSequence
	}
	timeout := int64(cfg.Timeout)
	e := entry[T]{item: item, ns: ns & r.max, hasSeq: hasSeq, fresh: true}
	// Packets queued without a timeout expire after a second, as the
	// kernel's.
	e.expires = now + cmp.Or(timeout, int64(time.Second))
	if !hasSeq {
		// Behind everything queued, as the kernel's.
		r.queue = append(r.queue, e)
		return 0
	}
	switch {
	case r.synced && !r.inWindow(e.ns):
		return OutsideWindow
	case timeout == 0 && !r.acceptNoTimeout(e.ns):
		return OutOfSequence
	case !r.insertSorted(e):
		return OutsideWindow // a duplicate of a queued one
	}
	return 0
}

// accept applies l2tp_recv_common's rules on whether the packet carries
// Ns, turning send_seq on or off after the peer when not in LNS mode. It
// reports false for a packet to drop.
func (r *Receiver[T]) accept(cfg *Config, hasSeq bool) bool {
	if hasSeq {
		// The peer sends sequence numbers: a LAC follows it.
		if !cfg.LNSMode && !r.sendSeq.Load() {
			r.sendSeq.Store(true)
		}
		return true
	}
	if cfg.RecvSeq {
		return false
	}
	if !cfg.LNSMode && r.sendSeq.Load() {
		// The LNS asked us to stop sending sequence numbers.
		r.sendSeq.Store(false)
		return true
	}
	// An LNS sending them is owed them by its LAC.
	return !r.sendSeq.Load()
}

// dist is ns's distance ahead of nr in the sequence space.
func (r *Receiver[T]) dist(ns uint32) uint32 { return (ns - r.nr) & r.max }

// inWindow is l2tp_seq_check_rx_window: ns lies in the half of the
// sequence space ahead of nr (nr included). admit asks only once nr is
// known: a new receiver (a session just created, or a daemon restarted
// while its peer kept numbering) takes any Ns as its first, where the
// kernel checks it against an nr of 0 and drops every packet in the back
// half of the space until the peer's numbering wraps, up to 2^23 of them.
func (r *Receiver[T]) inWindow(ns uint32) bool { return r.dist(ns) < r.window }

// peerRestarted reports whether ns, outside the window, ends a run of
// more than nrOOSCountMax packets with consecutive Ns outside it: the
// peer numbers from somewhere else now (it restarted, and numbers from 0
// again), and waiting for its Ns to reach nr would drop up to 2^23
// packets (the kernel does).
func (r *Receiver[T]) peerRestarted(ns uint32) bool {
	if !r.synced || r.inWindow(ns) {
		return false
	}
	if ns == (r.behind+1)&r.max {
		r.behindCount++
	} else {
		r.behindCount = 0
	}
	r.behind = ns
	return r.behindCount > nrOOSCountMax
}

// restart forgets nr, as for a new receiver, after the peer restarted its
// numbering: the sequenced packets queued wait for Ns that will not come
// and are discarded (rx_seq_discards); the next sequenced packet sets nr.
func (r *Receiver[T]) restart(h Handler[T]) {
	j := 0
	for _, e := range r.queue {
		if !e.hasSeq {
			r.queue[j] = e
			j++
			continue
		}
		r.seqDiscards.Add(1)
		r.errors.Add(1)
		h.Drop(e.item, Expired)
	}
	clear(r.queue[j:])
	r.queue = r.queue[:j]
	r.synced, r.reorderSkip = false, true
	r.behindCount, r.nrOOSCount = 0, 0
	r.restarts++
	r.resyncs++
}

// acceptNoTimeout is the kernel's no-reorder-timeout rule: take the
// expected packet; discard others, unless a run of more than
// nrOOSCountMax consecutive ones says the peer moved on, in which case
// resync to it.
func (r *Receiver[T]) acceptNoTimeout(ns uint32) bool {
	if ns == r.nr {
		return true
	}
	if ns == (r.nrOOS+1)&r.max {
		r.nrOOSCount++
	} else {
		r.nrOOSCount = 0
	}
	r.nrOOS = ns
	if r.nrOOSCount > nrOOSCountMax {
		r.reorderSkip = true
	}
	return r.reorderSkip
}

// insertSorted is l2tp_recv_queue_skb in serial-number order: before the
// first queued sequenced packet further ahead of nr, else at the tail, so
// the order holds across the wrap of the sequence space (the kernel
// compares Ns plainly). Inserting ahead of a queued packet counts
// rx_oos_packets. A packet whose Ns is already queued is refused.
//
// Every queued sequenced packet lies in the window ahead of nr, and nr
// only moves to the head's Ns or past it, so the order stays right as nr
// moves.
func (r *Receiver[T]) insertSorted(e entry[T]) bool {
	d := r.dist(e.ns)
	for i := range r.queue {
		q := &r.queue[i]
		if !q.hasSeq {
			continue
		}
		switch qd := r.dist(q.ns); {
		case qd == d:
			return false
		case qd > d:
			r.queue = slices.Insert(r.queue, i, e)
			r.oos.Add(1)
			return true
		}
	}
	r.queue = append(r.queue, e)
	return true
}

// dequeue is l2tp_recv_dequeue: discard expired packets, then deliver
// from the head while the packets carry the expected Ns or none; after a
// discard the next sequenced packet resyncs nr.
func (r *Receiver[T]) dequeue(now int64, h Handler[T]) {
	r.expire(now, h)
	n := 0
	for ; n < len(r.queue); n++ {
		e := &r.queue[n]
		if !e.hasSeq {
			continue
		}
		if r.reorderSkip {
			if r.synced && e.ns != r.nr {
				r.resyncs++
			}
			r.reorderSkip, r.synced = false, true
			r.nr = e.ns
		}
		if e.ns != r.nr {
			break // later packets wait for this one's predecessors
		}
		r.nr = (r.nr + 1) & r.max
	}
	for i := 0; i < n; i++ {
		h.Deliver(r.queue[i].item)
	}
	r.removeHead(n)
}

// expire discards every queued packet older than its timeout, wherever it
// is: the queue is in Ns order, not arrival order, and the kernel's walk,
// which stops at the first packet out of sequence, would keep expired
// packets behind it.
func (r *Receiver[T]) expire(now int64, h Handler[T]) {
	j := 0
	for i := range r.queue {
		if now <= r.queue[i].expires {
			r.queue[j] = r.queue[i]
			j++
			continue
		}
		r.seqDiscards.Add(1)
		r.errors.Add(1)
		r.reorderSkip = true
		h.Drop(r.queue[i].item, Expired)
	}
	clear(r.queue[j:])
	r.queue = r.queue[:j]
}

// skip is what a queue over its bound does (where the kernel's queue would
// grow until the timeout): the Ns it waits for are taken as lost, counted
// once in rx_seq_discards, nr resyncs to the first queued packet, and what
// is then in sequence is delivered. The head waits for a gap (dequeue
// delivered everything else), so at least one packet goes out.
func (r *Receiver[T]) skip(now int64, h Handler[T]) {
	r.seqDiscards.Add(1)
	r.reorderSkip = true
	r.dequeue(now, h)
}

// removeHead removes the first n queued entries.
func (r *Receiver[T]) removeHead(n int) {
	if n == 0 {
		return
	}
	k := copy(r.queue, r.queue[n:])
	clear(r.queue[k:])
	r.queue = r.queue[:k]
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
	for _, e := range r.queue {
		h.Drop(e.item, Expired)
	}
	r.removeHead(len(r.queue))
	r.publish()
}
