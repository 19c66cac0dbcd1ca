package reorder

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// pkt is one packet offered in a test: at time at (ms), with ns, or
// without a sequence number when noSeq.
type pkt struct {
	at    int64
	ns    uint32
	noSeq bool
}

type rec struct {
	delivered []uint32
	dropped   []string
	kept      int
}

func (r *rec) Deliver(id uint32) { r.delivered = append(r.delivered, id) }
func (r *rec) Drop(id uint32, why Reason) {
	r.dropped = append(r.dropped, fmt.Sprintf("%d:%s", id, why))
}
func (r *rec) Keep(id uint32) uint32 { r.kept++; return id }

func seqs(ns ...uint32) []pkt {
	p := make([]pkt, len(ns))
	for i, n := range ns {
		p[i] = pkt{ns: n}
	}
	return p
}

func TestReceive(t *testing.T) {
	ms := int64(time.Millisecond)
	for _, tc := range []struct {
		name      string
		cfg       Config
		nr        uint32 // expected Ns to start from (0: take the first)
		in        []pkt
		delivered []uint32
		c         Counters
	}{
		{"in order", Config{}, 0, seqs(0, 1, 2, 3), []uint32{0, 1, 2, 3}, Counters{}},
		{"first Ns sets nr", Config{}, 0, seqs(500, 501), []uint32{500, 501}, Counters{}},
		{"0,2,1 without timeout", Config{}, 0, seqs(0, 2, 1),
			[]uint32{0, 1}, Counters{RxSeqDiscards: 1, RxErrors: 1}},
		{"0,2,1 with timeout", Config{Timeout: 100 * time.Millisecond}, 0, seqs(0, 2, 1),
			[]uint32{0, 1, 2}, Counters{RxOOSPackets: 1}},
		{"0,3,2,1 with timeout", Config{Timeout: 100 * time.Millisecond}, 0, seqs(0, 3, 2, 1),
			[]uint32{0, 1, 2, 3}, Counters{RxOOSPackets: 2}},
		{"gap waits in the queue", Config{Timeout: 100 * time.Millisecond}, 0, seqs(0, 2, 3),
			[]uint32{0}, Counters{QueueDepth: 2}},
		{"duplicate is outside the window", Config{}, 0, seqs(0, 1, 1, 2),
			[]uint32{0, 1, 2}, Counters{RxErrors: 1}},
		{"old packet is outside the window", Config{Timeout: time.Second}, 0, seqs(10, 11, 12, 5),
			[]uint32{10, 11, 12}, Counters{RxErrors: 1}},
		{"resync after a run of more than 4", Config{}, 0, seqs(0, 10, 11, 12, 13, 14, 15, 16),
			[]uint32{0, 15, 16}, Counters{RxSeqDiscards: 5, RxErrors: 5}},
		{"a broken run does not resync", Config{}, 0, seqs(0, 10, 11, 12, 13, 20, 21, 1),
			[]uint32{0, 1}, Counters{RxSeqDiscards: 6, RxErrors: 6}},
		{"expiry is checked when a packet arrives", Config{Timeout: 100 * time.Millisecond}, 0,
			[]pkt{{0, 0, false}, {0, 2, false}, {50, 3, false}, {200, 5, false}, {210, 6, false}},
			[]uint32{0, 5, 6}, Counters{RxSeqDiscards: 2, RxErrors: 2}},
		{"not yet expired", Config{Timeout: 100 * time.Millisecond}, 0,
			[]pkt{{0, 0, false}, {0, 2, false}, {100, 1, false}},
			[]uint32{0, 1, 2}, Counters{RxOOSPackets: 1}},
		{"recv_seq drops packets without Ns", Config{RecvSeq: true}, 0,
			[]pkt{{ns: 0}, {noSeq: true}, {ns: 1}},
			[]uint32{0, 1}, Counters{RxSeqDiscards: 1, RxErrors: 1}},
		{"without Ns and not required: delivered", Config{}, 0,
			[]pkt{{noSeq: true}, {noSeq: true}}, []uint32{0, 0}, Counters{}},
		{"LNS sending Ns drops packets without", Config{LNSMode: true, SendSeq: true}, 0,
			[]pkt{{noSeq: true}, {ns: 7}}, []uint32{7}, Counters{RxSeqDiscards: 1, RxErrors: 1}},
		{"v3 wrap at 2^24", Config{Max: MaxV3}, 0xfffffe, seqs(0xfffffe, 0xffffff, 0, 1),
			[]uint32{0xfffffe, 0xffffff, 0, 1}, Counters{}},
		{"v2 wrap at 2^16", Config{Max: MaxV2}, 0xfffe, seqs(0xfffe, 0xffff, 0, 1),
			[]uint32{0xfffe, 0xffff, 0, 1}, Counters{}},
		// The kernel orders its queue with a plain comparison and stops at
		// the first packet out of sequence, so reordering across the wrap
		// waits for the timeout and is lost.
		{"v2 reordering across the wrap expires (as the kernel)", Config{Max: MaxV2, Timeout: time.Second}, 0xfffe,
			[]pkt{{0, 0xfffe, false}, {0, 0, false}, {0, 0xffff, false}, {0, 1, false}, {2000, 2, false}},
			[]uint32{0xfffe, 2}, Counters{RxOOSPackets: 2, RxSeqDiscards: 3, RxErrors: 3}},
		{"v2 in-order across the wrap with a timeout", Config{Max: MaxV2, Timeout: time.Second}, 0xfffe, seqs(0xfffe, 0xffff, 1, 0),
			[]uint32{0xfffe, 0xffff, 0, 1}, Counters{RxOOSPackets: 1}},
		{"v2 window edge: last inside", Config{Max: MaxV2, Timeout: time.Second}, 0xfffe, seqs(0xfffe, (0xfffe+0x7ffe+1)&0xffff),
			[]uint32{0xfffe}, Counters{QueueDepth: 1}},
		{"v2 window edge: first outside", Config{Max: MaxV2, Timeout: time.Second}, 0xfffe, seqs(0xfffe, (0xfffe+0x7fff+1)&0xffff),
			[]uint32{0xfffe}, Counters{RxErrors: 1}},
		{"v3 window edge: last inside", Config{Max: MaxV3}, 0, seqs(0, 0x7ffffe),
			[]uint32{0}, Counters{RxSeqDiscards: 1, RxErrors: 1}},
		{"v3 window edge: first outside", Config{Max: MaxV3}, 0, seqs(0, 0x800000),
			[]uint32{0}, Counters{RxErrors: 1}},
		{"first packet is checked against nr 0", Config{Max: MaxV2}, 0, seqs(0x8000, 0x8001),
			nil, Counters{RxErrors: 2}},
		{"queue bound", Config{Timeout: time.Second, Depth: 2}, 0, seqs(0, 5, 6, 7),
			[]uint32{0}, Counters{RxSeqDiscards: 1, RxErrors: 1, QueueDepth: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New[uint32](tc.cfg)
			if tc.nr != 0 {
				r.nr, r.reorderSkip = tc.nr, false
			}
			h := &rec{}
			for _, p := range tc.in {
				r.Receive(p.at*ms, !p.noSeq, p.ns, p.ns, h)
			}
			if !slices.Equal(h.delivered, tc.delivered) {
				t.Errorf("delivered %x, want %x (dropped %v)", h.delivered, tc.delivered, h.dropped)
			}
			if got := r.Counters(); got != tc.c {
				t.Errorf("counters %+v, want %+v", got, tc.c)
			}
			if want := int(r.Counters().QueueDepth); h.kept < want {
				t.Errorf("kept %d, queued %d", h.kept, want)
			}
			total := len(h.delivered) + len(h.dropped) + r.Counters().QueueDepth
			if total != len(tc.in) {
				t.Errorf("%d packets accounted for, %d offered", total, len(tc.in))
			}
		})
	}
}

func TestSendSeqFollowsPeer(t *testing.T) {
	h := &rec{}
	r := New[uint32](Config{})
	if r.SendSeq() {
		t.Fatal("sending Ns before configured or asked")
	}
	r.Receive(0, true, 0, 0, h)
	if !r.SendSeq() {
		t.Fatal("LAC did not start sending Ns when the peer did")
	}
	r.Receive(0, false, 0, 0, h)
	if r.SendSeq() {
		t.Fatal("LAC did not stop sending Ns when the peer stopped")
	}
	lns := New[uint32](Config{LNSMode: true})
	lns.Receive(0, true, 0, 0, h)
	if lns.SendSeq() {
		t.Fatal("LNS followed the peer")
	}
	if got := []uint32{r.NextNs(), r.NextNs()}; got[0] != 0 || got[1] != 1 {
		t.Fatalf("NextNs %v", got)
	}
	v2 := New[uint32](Config{Max: MaxV2})
	v2.ns.Store(0xffff)
	if a, b := v2.NextNs(), v2.NextNs(); a != 0xffff || b != 0 {
		t.Fatalf("v2 NextNs wraps to %#x, %#x", a, b)
	}
}

func TestFlushAndKeep(t *testing.T) {
	h := &rec{}
	r := New[uint32](Config{Timeout: time.Second})
	r.Receive(0, true, 0, 0, h)
	r.Receive(0, true, 2, 2, h)
	r.Receive(0, true, 3, 3, h)
	if h.kept != 2 {
		t.Fatalf("kept %d, want 2", h.kept)
	}
	r.Flush(h)
	if len(h.dropped) != 2 || r.Counters().QueueDepth != 0 {
		t.Fatalf("flush dropped %v", h.dropped)
	}
}

type nop struct{}

func (nop) Deliver(int)      {}
func (nop) Drop(int, Reason) {}
func (nop) Keep(i int) int   { return i }

func BenchmarkInOrder(b *testing.B) {
	r := New[int](Config{RecvSeq: true, SendSeq: true})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Receive(int64(i), true, uint32(i)&MaxV3, i, nop{})
	}
}

func BenchmarkReordered(b *testing.B) {
	r := New[int](Config{Timeout: time.Second})
	b.ReportAllocs()
	for i := 0; i < b.N; i += 2 {
		// Pairs swapped: 1,0,3,2,...
		r.Receive(int64(i), true, uint32(i+1)&MaxV3, i, nop{})
		r.Receive(int64(i), true, uint32(i)&MaxV3, i, nop{})
	}
}
