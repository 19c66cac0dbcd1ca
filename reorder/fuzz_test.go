package reorder

import (
	"testing"
	"time"
)

// FuzzReceive feeds a Receiver a stream decoded from the fuzz input: a
// configuration, then operations on a sender's Ns (in order, lost, held
// back and released later, duplicated, far off), packets without Ns, clock
// steps and reconfigurations. It checks what must hold whatever arrives:
//
//   - every packet is delivered or dropped at most once, and after Flush
//     exactly once;
//   - each sequenced packet delivered lies ahead of the previous one, in
//     the forward half of the sequence space (nr only moves forward), and
//     one that is not the next Ns follows a counted discard or skip,
//     unless the receiver took the peer to have restarted its numbering
//     (a run of consecutive Ns behind the window) since the previous one;
//   - packets without Ns are delivered in arrival order;
//   - after each Receive the queue holds at most Depth packets, each kept
//     (h.Keep) and none older than its timeout, sequenced ones in
//     serial-number order from nr without duplicates.
func FuzzReceive(f *testing.F) {
	// Config bytes: flags (1 timeout, 2 L2TPv2, 4 lns_mode, 8 recv_seq,
	// 16 send_seq, 32 start near the wrap), depth, timeout (ms), start
	// offset. Then op, arg pairs (see fuzzOp).
	f.Add([]byte{1, 0, 100, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 100, 0, 0, 0, 1, 0, 10, 100, 5, 1, 0, 0})          // loss, burst past 64
	f.Add([]byte{1 | 2 | 32, 4, 50, 3, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0})     // swap across the v2 wrap
	f.Add([]byte{32, 0, 0, 5, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})  // no timeout, v3 wrap
	f.Add([]byte{1, 3, 20, 0, 2, 0, 2, 0, 0, 0, 5, 30, 4, 0, 3, 1, 0, 0}) // expiry behind a waiting head
	f.Add([]byte{1 | 8, 2, 10, 0, 4, 0, 9, 0, 0, 0, 9, 1, 8, 2, 6, 7, 7, 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		fz := newFuzzRun(t, data[:4])
		// Bounded work per input, however long it grows.
		for i := 4; i+1 < len(data) && len(fz.pkts) < fuzzMaxPackets; i += 2 {
			fz.op(data[i], data[i+1])
		}
		fz.r.Flush(fz)
		for id, f := range fz.fate {
			if f == 0 {
				t.Fatalf("packet %d (%+v) neither delivered nor dropped after Flush", id, fz.pkts[id])
			}
		}
	})
}

// fuzzMaxPackets bounds the packets one FuzzReceive input sends.
const fuzzMaxPackets = 4096

type fuzzPkt struct {
	ns     uint32
	hasSeq bool
}

// fuzzRun is one FuzzReceive input's state, and the Handler checking the
// Receiver's decisions.
type fuzzRun struct {
	t        *testing.T
	r        *Receiver[int]
	cfg      Config
	now      int64
	s        uint32   // the sender's next Ns
	held     []uint32 // Ns held back for later
	pkts     []fuzzPkt
	fate     []uint8 // 0 pending, 1 delivered, 2 dropped
	kept     []bool
	last     uint32 // Ns of the last sequenced packet delivered
	seqs     int    // sequenced packets delivered
	noSeq    int    // id of the last packet without Ns delivered, +1
	restarts int    // r.restarts at the last sequenced packet delivered
}

func newFuzzRun(t *testing.T, b []byte) *fuzzRun {
	fz := &fuzzRun{t: t}
	fz.cfg = fuzzConfig(b[0], b[2])
	if b[0]&2 != 0 {
		fz.cfg.Max = MaxV2
	} else {
		fz.cfg.Max = MaxV3
	}
	fz.cfg.Depth = int(b[1] % 17) // 0: DefaultDepth
	fz.r = New[int](fz.cfg)
	if b[0]&32 != 0 {
		// Start synced a few Ns before the wrap.
		fz.s = (fz.cfg.Max - uint32(b[3]%16)) & fz.cfg.Max
		fz.r.nr, fz.r.reorderSkip, fz.r.synced = fz.s, false, true
	} else {
		fz.s = uint32(b[3])
	}
	return fz
}

// fuzzConfig decodes the reconfigurable options.
func fuzzConfig(flags, timeout byte) Config {
	c := Config{LNSMode: flags&4 != 0, RecvSeq: flags&8 != 0, SendSeq: flags&16 != 0}
	if flags&1 != 0 {
		c.Timeout = time.Duration(timeout%250+1) * time.Millisecond
	}
	return c
}

// op runs one operation.
func (fz *fuzzRun) op(op, arg byte) {
	switch op % 11 {
	case 0: // the next Ns
		fz.send(true, fz.s)
		fz.s++
	case 1: // lost
		fz.s += uint32(arg%8) + 1
	case 2: // held back
		if len(fz.held) < 8 {
			fz.held = append(fz.held, fz.s)
		} else {
			fz.send(true, fz.s)
		}
		fz.s++
	case 3: // a held one arrives
		if n := len(fz.held); n > 0 {
			k := int(arg) % n
			ns := fz.held[k]
			fz.held = append(fz.held[:k], fz.held[k+1:]...)
			fz.send(true, ns)
		}
	case 4:
		fz.send(false, 0)
	case 5: // time passes
		d := int64(arg) * int64(time.Millisecond)
		if arg >= 200 {
			d = 2 * int64(time.Second)
		}
		fz.now += d
	case 6: // near the stream, behind or ahead
		fz.send(true, fz.s-128+uint32(arg))
	case 7: // anywhere
		fz.send(true, uint32(arg)*0x9e3779b1)
	case 8: // a duplicate
		fz.send(true, fz.s-1-uint32(arg%4))
	case 9: // set session
		c := fuzzConfig(arg, arg*7)
		fz.r.Configure(c)
	case 10: // a burst in order
		for i := 0; i <= int(arg%128); i++ {
			fz.send(true, fz.s)
			fz.s++
		}
	}
	fz.s &= fz.r.max
}

func (fz *fuzzRun) send(hasSeq bool, ns uint32) {
	id := len(fz.pkts)
	fz.pkts = append(fz.pkts, fuzzPkt{ns & fz.r.max, hasSeq})
	fz.fate = append(fz.fate, 0)
	fz.kept = append(fz.kept, false)
	fz.r.Receive(fz.now, hasSeq, ns, id, fz)
	fz.check()
}

// check checks the queue after a Receive.
func (fz *fuzzRun) check() {
	r, t := fz.r, fz.t
	if len(r.queue) > r.depth || r.Counters().QueueDepth != len(r.queue) {
		t.Fatalf("queue holds %d (depth counter %d), bound %d", len(r.queue), r.Counters().QueueDepth, r.depth)
	}
	if st := r.State(); st.Nr != r.nr || st.NrValid != r.synced || st.QueueDepth != len(r.queue) {
		t.Fatalf("State %+v, want nr %#x synced %v queue %d", st, r.nr, r.synced, len(r.queue))
	}
	prev := int64(-1)
	for _, e := range r.queue {
		if e.expires < fz.now {
			t.Fatalf("Ns %d (seq %v) held past its timeout: expired %d, now %d", e.ns, e.hasSeq, e.expires, fz.now)
		}
		if !fz.kept[e.item] || fz.fate[e.item] != 0 {
			t.Fatalf("queued packet %d kept %v fate %d", e.item, fz.kept[e.item], fz.fate[e.item])
		}
		if !e.hasSeq {
			continue
		}
		d := int64(r.dist(e.ns))
		if d <= prev || d >= int64(r.window) {
			t.Fatalf("queued Ns %#x at distance %d from nr %#x after %d (window %d)", e.ns, d, r.nr, prev, r.window)
		}
		prev = d
	}
}

func (fz *fuzzRun) Deliver(id int) {
	fz.settle(id, 1)
	p := fz.pkts[id]
	if !p.hasSeq {
		if id < fz.noSeq {
			fz.t.Fatalf("packet %d without Ns delivered after packet %d", id, fz.noSeq-1)
		}
		fz.noSeq = id + 1
		return
	}
	if fz.seqs > 0 && fz.r.restarts == fz.restarts {
		d := (p.ns - fz.last) & fz.r.max
		if d == 0 || d > fz.r.window {
			fz.t.Fatalf("Ns %#x delivered after %#x: not ahead of it", p.ns, fz.last)
		}
		if d != 1 && fz.r.Counters().RxSeqDiscards == 0 {
			fz.t.Fatalf("Ns %#x delivered after %#x with nothing discarded or skipped", p.ns, fz.last)
		}
	}
	fz.last = p.ns
	fz.seqs++
	fz.restarts = fz.r.restarts
}

func (fz *fuzzRun) Drop(id int, _ Reason) { fz.settle(id, 2) }

func (fz *fuzzRun) Keep(id int) int {
	if fz.kept[id] {
		fz.t.Fatalf("packet %d kept twice", id)
	}
	fz.kept[id] = true
	return id
}

func (fz *fuzzRun) settle(id int, fate uint8) {
	if id < 0 || id >= len(fz.fate) {
		fz.t.Fatalf("unknown packet %d", id)
	}
	if fz.fate[id] != 0 {
		fz.t.Fatalf("packet %d (%+v) delivered or dropped twice (fate %d then %d)", id, fz.pkts[id], fz.fate[id], fate)
	}
	fz.fate[id] = fate
}
