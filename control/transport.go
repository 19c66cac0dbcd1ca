package control

import (
	"errors"
	"fmt"
	"time"
)

// Transport errors.
var (
	ErrPeerLost    = errors.New("control: peer lost (retransmission gave up)")
	ErrOutOfWindow = errors.New("control: Ns out of receive window")
	ErrQueueFull   = errors.New("control: send queue full")
)

// Defaults of TransportConfig.
const (
	DefaultRetryTimeout    = time.Second     // RFC 2661 section 5.8: first retransmission after 1 s
	DefaultMaxRetryTimeout = 8 * time.Second // backoff cap
	DefaultMaxRetries      = 5
	DefaultMaxQueue        = 64
)

// TransportConfig sets up a Transport. Zero fields take the defaults.
type TransportConfig struct {
	Version         uint8         // V2 or V3: the header of the ZLBs it sends
	RecvWindow      uint16        // our Receive Window Size (as advertised to the peer); default DefaultWindow
	PeerWindow      uint16        // peer's Receive Window Size until SetPeerWindow; default DefaultWindow
	RetryTimeout    time.Duration // first retransmission timeout
	MaxRetryTimeout time.Duration // the timeout doubles per retransmission up to this
	MaxRetries      int           // retransmissions of one message before ErrPeerLost
	AckDelay        time.Duration // how long an ack waits for a message to ride on; default RetryTimeout/4
	MaxQueue        int           // messages sent or waiting for the window
}

func (c *TransportConfig) setDefaults() {
	if c.Version == 0 {
		c.Version = V2
	}
	if c.RecvWindow == 0 {
		c.RecvWindow = DefaultWindow
	}
	if c.PeerWindow == 0 {
		c.PeerWindow = DefaultWindow
	}
	if c.RetryTimeout <= 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.MaxRetryTimeout < c.RetryTimeout {
		c.MaxRetryTimeout = max(DefaultMaxRetryTimeout, c.RetryTimeout)
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.AckDelay <= 0 {
		c.AckDelay = c.RetryTimeout / 4
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMaxQueue
	}
}

// Output is what a Transport call asks of its caller: packets to transmit
// now, in order, and received messages to hand to the state machine, in
// Ns order. The slices are valid until the next call on the Transport;
// Transmit entries belong to the Transport and must not be modified.
type Output struct {
	Transmit [][]byte
	Deliver  [][]byte
}

// TransportStats counts events since the Transport was made.
type TransportStats struct {
	Sent        uint64 // messages transmitted the first time
	Retransmits uint64
	ZLBs        uint64 // ZLB acks sent
	Delivered   uint64
	Duplicates  uint64 // received again, re-acked
	OutOfOrder  uint64 // held until the gap before them filled
	OutOfWindow uint64 // dropped: Ns too far ahead
	BadAcks     uint64 // Nr acknowledging messages never sent, ignored
}

// TransportState is a snapshot for display.
type TransportState struct {
	Ns, Nr     uint16 // next Ns to transmit; next Ns expected from the peer
	Unacked    int    // transmitted, not yet acknowledged
	Queued     int    // waiting for the window
	CWND       int
	SSTHRESH   int
	PeerWindow uint16
}

type pending struct {
	msg      []byte
	sent     bool
	retries  int
	timeout  time.Duration
	deadline time.Time
}

// Transport is the reliable delivery of control messages over one
// control connection (RFC 2661 section 5.8, RFC 3931 section 4.2), the
// same for both versions: sequence numbers Ns/Nr with 16-bit serial
// arithmetic, retransmission with exponential backoff, the peer's
// receive window and the slow start and congestion avoidance of RFC 2661
// Appendix A, ZLB acknowledgements delayed so that they can ride on a
// message, duplicates re-acked, and in-order delivery with out-of-order
// messages held within our receive window.
//
// It is a pure state machine: Send, Receive and Tick take the current
// time and return an Output; Deadline says when Tick is next due. It is
// not safe for concurrent use.
type Transport struct {
	cfg        TransportConfig
	peerID     uint32
	peerWindow int

	nextNs   uint16 // Ns the next Send gets
	una      uint16 // Ns of queue[0]
	queue    []pending
	cwnd     int
	ssthresh int
	caAcks   int // acks counted in congestion avoidance

	nr     uint16 // next Ns expected
	held   map[uint16][]byte
	ackDue bool
	ackAt  time.Time

	lost  bool
	zlb   [HeaderLen]byte
	out   Output
	stats TransportStats
}

// NewTransport returns a Transport with no message sent or received.
func NewTransport(cfg TransportConfig) *Transport {
	cfg.setDefaults()
	t := &Transport{cfg: cfg, cwnd: 1, held: make(map[uint16][]byte)}
	t.SetPeerWindow(cfg.PeerWindow)
	return t
}

// SetPeerID sets the tunnel id (v2) or control connection id (v3) the
// peer assigned, which the ZLBs carry. Until then they carry 0.
func (t *Transport) SetPeerID(id uint32) { t.peerID = id }

// SetPeerWindow sets the peer's Receive Window Size, from its SCCRQ or
// SCCRP; 0 means the default. It also sets SSTHRESH (Appendix A).
func (t *Transport) SetPeerWindow(w uint16) {
	if w == 0 {
		w = DefaultWindow
	}
	t.peerWindow = int(w)
	t.ssthresh = int(w)
	t.cwnd = min(t.cwnd, t.peerWindow)
}

// Stats returns the counters.
func (t *Transport) Stats() TransportStats { return t.stats }

// State returns a snapshot of the sequence and window state.
func (t *Transport) State() TransportState {
	s := t.sentCount()
	return TransportState{
		Ns: t.una + uint16(s), Nr: t.nr, Unacked: s, Queued: len(t.queue) - s,
		CWND: t.cwnd, SSTHRESH: t.ssthresh, PeerWindow: uint16(t.peerWindow),
	}
}

// Lost reports whether retransmission has given up.
func (t *Transport) Lost() bool { return t.lost }

func (t *Transport) reset() {
	clear(t.out.Transmit)
	clear(t.out.Deliver)
	t.out.Transmit, t.out.Deliver = t.out.Transmit[:0], t.out.Deliver[:0]
}

// Send queues a built control message (header and AVPs; Ns and Nr are
// filled in here) and transmits it when the window allows. The Transport
// keeps msg until the peer acknowledges it: the caller must not reuse it.
func (t *Transport) Send(msg []byte, now time.Time) (Output, error) {
	t.reset()
	if t.lost {
		return t.out, ErrPeerLost
	}
	if len(msg) <= HeaderLen {
		return t.out, fmt.Errorf("send: %d-byte message: %w", len(msg), ErrLength)
	}
	if len(t.queue) >= t.cfg.MaxQueue {
		return t.out, ErrQueueFull
	}
	SetNsNr(msg, t.nextNs, t.nr)
	t.nextNs++
	t.queue = append(t.queue, pending{msg: msg, timeout: t.cfg.RetryTimeout})
	t.transmitReady(now)
	return t.out, nil
}

// Receive handles a control message from the peer: its Nr acknowledges
// our messages; a ZLB stops there. A message with the expected Ns is
// delivered with any held ones that follow it; a duplicate is re-acked
// at once; one ahead within our window is held (copied); one beyond is
// dropped with ErrOutOfWindow. A malformed header is an error from
// ParseHeader. Delivered messages are views into pkt or held copies.
func (t *Transport) Receive(pkt []byte, now time.Time) (Output, error) {
	t.reset()
	if t.lost {
		return t.out, ErrPeerLost
	}
	h, err := ParseHeader(pkt)
	if err != nil {
		return t.out, err
	}
	t.ack(h.Nr)
	if h.Length == HeaderLen {
		t.transmitReady(now)
		return t.out, nil
	}
	msg := pkt[:h.Length]
	switch d := seqDiff(h.Ns, t.nr); {
	case d == 0:
		t.deliver(msg)
		for {
			m, ok := t.held[t.nr]
			if !ok {
				break
			}
			delete(t.held, t.nr)
			t.deliver(m)
		}
		if !t.ackDue {
			t.ackDue, t.ackAt = true, now.Add(t.cfg.AckDelay)
		}
	case d < 0:
		t.stats.Duplicates++
		t.ackDue, t.ackAt = true, now
	case d < int(t.cfg.RecvWindow):
		if _, ok := t.held[h.Ns]; !ok {
			t.held[h.Ns] = append([]byte(nil), msg...)
			t.stats.OutOfOrder++
		}
	default:
		t.stats.OutOfWindow++
		err = fmt.Errorf("receive: Ns %d, expected %d, window %d: %w", h.Ns, t.nr, t.cfg.RecvWindow, ErrOutOfWindow)
	}
	t.transmitReady(now)
	t.flushAck(now)
	return t.out, err
}

// Tick retransmits the messages whose timeout passed and sends a delayed
// ack that found nothing to ride on. It returns ErrPeerLost, once and for
// every call after, when a message went unacknowledged MaxRetries times.
func (t *Transport) Tick(now time.Time) (Output, error) {
	t.reset()
	if t.lost {
		return t.out, ErrPeerLost
	}
	backedOff := false
	for i := range t.queue {
		p := &t.queue[i]
		if !p.sent || now.Before(p.deadline) {
			continue
		}
		if p.retries >= t.cfg.MaxRetries {
			t.lost = true
			t.reset()
			return t.out, ErrPeerLost
		}
		p.retries++
		p.timeout = min(2*p.timeout, t.cfg.MaxRetryTimeout)
		p.deadline = now.Add(p.timeout)
		SetNsNr(p.msg, t.una+uint16(i), t.nr)
		t.out.Transmit = append(t.out.Transmit, p.msg)
		t.ackDue = false
		t.stats.Retransmits++
		if !backedOff {
			// Appendix A: a retransmission halves SSTHRESH and
			// restarts slow start.
			t.ssthresh = max(t.cwnd/2, 1)
			t.cwnd = 1
			t.caAcks = 0
			backedOff = true
		}
	}
	t.transmitReady(now)
	t.flushAck(now)
	return t.out, nil
}

// Deadline returns when Tick is next due, and false when no timer runs.
func (t *Transport) Deadline() (time.Time, bool) {
	var d time.Time
	ok := false
	if t.lost {
		return d, false
	}
	if t.ackDue {
		d, ok = t.ackAt, true
	}
	for i := range t.queue {
		p := &t.queue[i]
		if !p.sent {
			break
		}
		if !ok || p.deadline.Before(d) {
			d, ok = p.deadline, true
		}
	}
	return d, ok
}

func (t *Transport) deliver(m []byte) {
	t.out.Deliver = append(t.out.Deliver, m)
	t.nr++
	t.stats.Delivered++
}

func (t *Transport) sentCount() int {
	n := 0
	for n < len(t.queue) && t.queue[n].sent {
		n++
	}
	return n
}

// ack removes the messages that nr acknowledges and grows the congestion
// window per Appendix A: by one per ack below SSTHRESH, by one per window
// of acks above it, never past the peer's window.
func (t *Transport) ack(nr uint16) {
	n := seqDiff(nr, t.una)
	if n <= 0 {
		return
	}
	if n > t.sentCount() {
		t.stats.BadAcks++
		return
	}
	for range n {
		if t.cwnd < t.ssthresh {
			t.cwnd++
		} else if t.caAcks++; t.caAcks >= t.cwnd {
			t.cwnd++
			t.caAcks = 0
		}
	}
	t.cwnd = min(t.cwnd, t.peerWindow)
	clear(t.queue[:n])
	t.queue = t.queue[:copy(t.queue, t.queue[n:])]
	t.una = nr
}

// transmitReady sends the queued messages the window now admits; each
// carries the current Nr, which acknowledges for us.
func (t *Transport) transmitReady(now time.Time) {
	win := min(t.cwnd, t.peerWindow)
	for i := 0; i < len(t.queue) && i < win; i++ {
		p := &t.queue[i]
		if p.sent {
			continue
		}
		SetNsNr(p.msg, t.una+uint16(i), t.nr)
		p.sent = true
		p.deadline = now.Add(p.timeout)
		t.out.Transmit = append(t.out.Transmit, p.msg)
		t.ackDue = false
		t.stats.Sent++
	}
}

// flushAck sends a ZLB when an ack is due and nothing carried it.
func (t *Transport) flushAck(now time.Time) {
	if !t.ackDue || now.Before(t.ackAt) {
		return
	}
	t.ackDue = false
	ns := t.una + uint16(t.sentCount())
	t.out.Transmit = append(t.out.Transmit, AppendZLB(t.zlb[:], t.cfg.Version, t.peerID, ns, t.nr))
	t.stats.ZLBs++
}

// seqDiff is a-b in 16-bit serial arithmetic: negative when a is before b.
func seqDiff(a, b uint16) int { return int(int16(a - b)) }
