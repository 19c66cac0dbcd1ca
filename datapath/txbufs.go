package datapath

import (
	"sync"

	"github.com/ul2tp/ul2tp/datapath/conn"
	"github.com/ul2tp/ul2tp/datapath/offload"
)

// txBufs is the scratch space of one transmit pass: the frames read from
// a TAP queue and the datagrams made of them. A pump holds a txBufs only
// from the moment its TAP has frames until they are sent (see
// tap.Queue.ReadLent); between passes it goes back to its pool, shared by
// every pump of the socket with the same buffer size, so an idle session
// costs no buffers and a busy one the same as before.
type txBufs struct {
	pool  *sync.Pool // where it goes back to
	bufs  [][]byte
	sizes []int
	b     *conn.Batch
	// With offloads, the room for the segments of TSO super-frames (see
	// transmitter).
	hdrs     []byte
	payloads [][]byte
	parts    [][]byte
}

// txPoolKey tells apart buffer sets: with offloads (super-frames), or
// without them, by the frame buffers' size, which follows the TAP's MTU.
type txPoolKey struct {
	vnet bool
	size int
}

// txPools are a socket's pools of transmit buffers.
type txPools struct {
	mu sync.Mutex
	m  map[txPoolKey]*sync.Pool
}

// txPool returns the pool of transmit buffers for TAP queues sending on s:
// with offloads, or without them for frames of up to maxFrame bytes.
func (s *socket) txPool(vnet bool, maxFrame int32) *sync.Pool {
	k := txPoolKey{vnet: vnet, size: frameBufFor(maxFrame)}
	if vnet {
		k.size = superBufSize + Headroom
	}
	s.tx.mu.Lock()
	defer s.tx.mu.Unlock()
	if p := s.tx.m[k]; p != nil {
		return p
	}
	if s.tx.m == nil {
		s.tx.m = make(map[txPoolKey]*sync.Pool)
	}
	p := &sync.Pool{}
	c := s.c
	p.New = func() any { return newTxBufs(p, c, k) }
	s.tx.m[k] = p
	return p
}

// newTxBufs allocates a buffer set: for a TAP without offloads, batchSize
// frames of k.size bytes; with them, offloadBatch super-frames of 64 KiB
// and room for the segments of a batch.
func newTxBufs(p *sync.Pool, c *conn.Conn, k txPoolKey) *txBufs {
	t := &txBufs{pool: p}
	n, msgs := batchSize, batchSize
	if k.vnet {
		n, msgs = offloadBatch, offloadBatch*maxSegs
		t.hdrs = make([]byte, msgs*segHdrRoom)
		t.payloads = make([][]byte, msgs)
	}
	t.b = c.NewBatch(msgs)
	// Room for every segment's header and payload, plus one part per
	// datagram joined into a GSO run.
	t.parts = make([][]byte, 0, 3*msgs)
	t.bufs = make([][]byte, n)
	t.sizes = make([]int, n)
	for i := range t.bufs {
		t.bufs[i] = make([]byte, k.size)
	}
	return t
}

// Lend takes a buffer set from the pool for a TAP read (tap.Lender).
func (x *transmitter) Lend() ([][]byte, []int) {
	x.take()
	return x.bufs, x.sizes
}

// Unlend gives back the buffers of a TAP read that found no frame.
func (x *transmitter) Unlend() { x.giveBack() }

// take makes a buffer set from the pool the transmitter's, unless it has
// one.
func (x *transmitter) take() {
	if x.cur != nil {
		return
	}
	t := x.pool.Get().(*txBufs)
	x.cur = t
	x.bufs, x.sizes, x.b = t.bufs, t.sizes, t.b
	x.hdrs, x.payloads, x.parts = t.hdrs, t.payloads, t.parts[:0]
}

// giveBack returns the transmitter's buffer set to its pool.
func (x *transmitter) giveBack() {
	t := x.cur
	if t == nil {
		return
	}
	t.parts = x.parts[:0] // append may have grown it
	x.cur = nil
	x.bufs, x.sizes, x.b = nil, nil, nil
	x.hdrs, x.payloads, x.parts = nil, nil, nil
	t.pool.Put(t)
}

// vnetOffset is where a frame read with a virtio_net_hdr starts in its
// buffer.
const vnetOffset = Headroom - offload.VnetHdrLen
