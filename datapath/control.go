package datapath

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/ul2tp/ul2tp/datapath/conn"
	"github.com/ul2tp/ul2tp/datapath/event"
)

// The control handoff: a socket opened (or shared) by Listen carries L2TP
// control messages as well as data. Its receive pump copies every datagram
// with the T bit set, from any peer, known or not, into a pooled buffer
// and offers it to the Listener's bounded queue; it never waits for the
// control plane: when the queue is full the message is dropped, counted in
// the socket's ControlQueueDrops, and the control plane's retransmission
// brings it again.

// DefaultControlQueue is the length of a Listener's queue unless
// ListenConfig says otherwise: room for a burst of one message from each
// of 1,000 tunnels and more (a LAC stopping sends every StopCCN at once;
// at 256, most were dropped and the LNS's tunnels waited for peer loss).
// Buffers are pooled, taken only while a message waits.
const DefaultControlQueue = 2048

// ctrlBufSize is the capacity of a pooled control buffer: control messages
// longer than that are rare and get a buffer of their own.
const ctrlBufSize = 2048

// ListenConfig says where a Listener receives control messages.
type ListenConfig struct {
	// Local is the socket's address and port (UDP; IPv4 or IPv6). Port 0
	// picks a free port (see Listener.Local). L2TP's port is 1701
	// (DefaultUDPPort).
	Local netip.AddrPort
	// UDPCsum, UDP6CsumTx and UDP6CsumRx are the socket's checksum
	// options, as TunnelConfig's. L2TPv2 tunnels on the socket take them;
	// L2TPv3 tunnels sharing it must have the same.
	UDPCsum, UDP6CsumTx, UDP6CsumRx bool
	// QueueLen bounds the queue of received control messages; 0 means
	// DefaultControlQueue.
	QueueLen int
}

// ControlPacket is one L2TP control message (T bit set) received on a
// Listener's socket.
type ControlPacket struct {
	// Local is the address of the socket it arrived on, From its sender.
	Local, From netip.AddrPort
	// Data is the whole UDP payload, L2TP header first. It stays valid
	// until Release.
	Data []byte
	buf  *ctrlBuf
	pool *sync.Pool
}

// Release gives the packet's buffer back for the receive pump to reuse.
// Data must not be used after; a second call does nothing.
func (p *ControlPacket) Release() {
	if p.buf != nil && cap(p.buf.b) <= ctrlBufSize {
		p.pool.Put(p.buf)
	}
	p.buf, p.Data = nil, nil
}

// ctrlBuf is a pooled control message buffer.
type ctrlBuf struct{ b []byte }

// controlQueue is a socket's queue of received control messages.
type controlQueue struct {
	local netip.AddrPort
	pool  *sync.Pool

	// mu orders offer against close, so no message is sent on a closed
	// channel. Control messages are few: the lock costs nothing that
	// matters.
	mu     sync.Mutex
	closed bool
	ch     chan ControlPacket
}

func newControlQueue(local netip.AddrPort, n int) *controlQueue {
	if n <= 0 {
		n = DefaultControlQueue
	}
	return &controlQueue{
		local: local,
		pool:  &sync.Pool{New: func() any { return &ctrlBuf{b: make([]byte, 0, ctrlBufSize)} }},
		ch:    make(chan ControlPacket, n),
	}
}

// offer copies pkt into a buffer and queues it, or drops it if the queue
// is full (or closed). It reports whether it was queued.
func (q *controlQueue) offer(pkt []byte, from netip.AddrPort) bool {
	b := q.pool.Get().(*ctrlBuf)
	b.b = append(b.b[:0], pkt...)
	p := ControlPacket{Local: q.local, From: from, Data: b.b, buf: b, pool: q.pool}
	q.mu.Lock()
	ok := false
	if !q.closed {
		select {
		case q.ch <- p:
			ok = true
		default:
		}
	}
	q.mu.Unlock()
	if !ok {
		p.Release()
	}
	return ok
}

// close closes the channel; messages still in it can be read and released.
func (q *controlQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

// control hands a received control message to the socket's queue, if it
// has one, and reports whether it did (or dropped it there).
func (s *socket) control(pkt []byte, from netip.AddrPort) bool {
	q := s.ctrl.Load()
	if q == nil {
		return false
	}
	if q.offer(pkt, from) {
		s.ctrlPackets.Add(1)
	} else {
		s.ctrlDrops.Add(1)
		s.noteDrop(event.ControlQueueFull, 0, 0, from)
	}
	return true
}

// Listener receives the L2TP control messages that arrive on one socket
// and sends control messages from it. The L2TPv2 tunnels on its local
// address and port share the socket for their data.
type Listener struct {
	p    *Plane
	sock *socket
	q    *controlQueue
	once sync.Once
}

// Listen opens the UDP socket on c.Local, or takes the one L2TPv3 tunnels
// already share there, and starts handing the control messages it
// receives to the returned Listener. One Listener per socket: a second
// gives ErrExists.
func (p *Plane) Listen(c ListenConfig) (*Listener, error) {
	local := c.Local
	if !local.IsValid() {
		return nil, &FieldError{"local", nil, "an address is required"}
	}
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	if why := badLocal(local.Addr()); why != "" {
		return nil, &FieldError{"local", local.Addr(), why}
	}
	opts := p.udpOptions(c.UDPCsum, c.UDP6CsumTx, c.UDP6CsumRx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("listen %s: plane closed", local)
	}
	key := sockKey{kind: conn.UDP, local: local}
	s := p.sockets[key]
	switch {
	case s == nil || local.Port() == 0:
		var err error
		if s, err = p.openSocket(key, opts); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
	case s.ctrl.Load() != nil:
		return nil, fmt.Errorf("listen %s: %w", local, ErrExists)
	case s.opts != opts:
		return nil, &FieldError{"udp_csum", c.UDPCsum,
			fmt.Sprintf("checksum options differ from the tunnels sharing udp %s", local)}
	}
	q := newControlQueue(s.c.LocalAddr(), c.QueueLen)
	s.ctrl.Store(q)
	s.refs++
	p.log.Info("listening for L2TP control messages", "local", s.c.LocalAddr().String())
	return &Listener{p: p, sock: s, q: q}, nil
}

// Local is the address and port the Listener's socket is bound to.
func (l *Listener) Local() netip.AddrPort { return l.sock.c.LocalAddr() }

// Packets is the queue of received control messages. Each must be
// released (ControlPacket.Release) once handled. The channel is closed by
// Close (and by the Plane's Close).
func (l *Listener) Packets() <-chan ControlPacket { return l.q.ch }

// Send sends one control message (the whole UDP payload) to to from the
// Listener's socket.
func (l *Listener) Send(to netip.AddrPort, pkt []byte) error {
	if err := l.sock.c.WriteTo(pkt, to); err != nil {
		return fmt.Errorf("send control message from %s to %s: %w", l.Local(), to, err)
	}
	return nil
}

// Stats returns the counters of the Listener's socket.
func (l *Listener) Stats() SocketStats { return l.sock.stats() }

// Close stops the handoff and closes Packets. The socket stays open while
// tunnels use it; L2TPv2 tunnels on it keep their data but no new one can
// be added.
func (l *Listener) Close() error {
	l.once.Do(func() {
		p := l.p
		p.mu.Lock()
		sock := l.detach()
		p.mu.Unlock()
		if sock != nil {
			sock.c.Close()
		}
	})
	return nil
}

// detach takes the Listener off its socket and returns the socket if
// nothing else uses it, to be closed. Called with p.mu held.
func (l *Listener) detach() *socket {
	s := l.sock
	if s.ctrl.Load() != l.q {
		return nil // the Plane closed it
	}
	s.ctrl.Store(nil)
	l.q.close()
	s.refs--
	if s.refs > 0 {
		return nil
	}
	delete(l.p.sockets, s.key)
	return s
}
