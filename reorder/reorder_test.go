package reorder

import (
	"fmt"
	"slices"
	"sync"
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

// ms is a millisecond on the tests' clock.
const ms = int64(time.Millisecond)

func TestReceive(t *testing.T) {
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
		// The queue is ordered by distance from nr (serial-number
		// arithmetic), so reordering across the wrap is put right; the
		// kernel's plain comparison would hold 0 and 1 until they expire.
		{"v2 reordering across the wrap", Config{Max: MaxV2, Timeout: time.Second}, 0xfffe,
			[]pkt{{0, 0xfffe, false}, {0, 0, false}, {0, 0xffff, false}, {0, 1, false}, {2000, 2, false}},
			[]uint32{0xfffe, 0xffff, 0, 1, 2}, Counters{RxOOSPackets: 1}},
		{"v3 reordering across the wrap", Config{Max: MaxV3, Timeout: time.Second}, 0xfffffd,
			seqs(0xfffffd, 1, 0, 0xffffff, 0xfffffe, 2),
			[]uint32{0xfffffd, 0xfffffe, 0xffffff, 0, 1, 2}, Counters{RxOOSPackets: 3}},
		{"v2 queue straddling the wrap", Config{Max: MaxV2, Timeout: time.Second}, 0xfffd,
			seqs(0xfffd, 2, 0xffff, 0, 1, 0xfffe),
			[]uint32{0xfffd, 0xfffe, 0xffff, 0, 1, 2}, Counters{RxOOSPackets: 4}},
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
		// A full queue takes 1..4 as lost and delivers what waits.
		{"queue bound", Config{Timeout: time.Second, Depth: 2}, 0, seqs(0, 5, 6, 7),
			[]uint32{0, 5, 6, 7}, Counters{RxSeqDiscards: 1}},
		{"queue bound with a second gap", Config{Timeout: time.Second, Depth: 2}, 0, seqs(0, 5, 7, 8),
			[]uint32{0, 5}, Counters{RxSeqDiscards: 1, QueueDepth: 2}},
		{"duplicate of a queued packet", Config{Timeout: time.Second}, 0, seqs(0, 2, 2, 1),
			[]uint32{0, 1, 2}, Counters{RxOOSPackets: 1, RxErrors: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New[uint32](tc.cfg)
			if tc.nr != 0 {
				r.nr, r.reorderSkip, r.synced = tc.nr, false, true
			}
			h := feed(t, r, tc.in, tc.delivered, tc.c)
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

// TestFullQueueSkipsLoss: one packet lost, then more packets than the
// queue holds, all inside the timeout. The full queue gives up on the lost
// one (one rx_seq_discards) and delivers what waits behind it; the packets
// after that flow through in order, long before the timeout.
func TestFullQueueSkipsLoss(t *testing.T) {
	r := New[uint32](Config{Timeout: time.Second})
	h := &rec{}
	want := []uint32{0}
	r.Receive(0, true, 0, 0, h)
	// 1 is lost.
	for ns := uint32(2); ns < 2+DefaultDepth+40; ns++ {
		r.Receive(int64(ns), true, ns, ns, h)
		want = append(want, ns)
	}
	if !slices.Equal(h.delivered, want) {
		t.Fatalf("delivered %v,\nwant %v (dropped %v)", h.delivered, want, h.dropped)
	}
	c := r.Counters()
	if c != (Counters{RxSeqDiscards: 1}) {
		t.Errorf("counters %+v, want one rx_seq_discards for the skipped Ns", c)
	}
	if len(h.dropped) != 0 {
		t.Errorf("dropped %v", h.dropped)
	}
}

// TestFullQueueDeliversGapFiller: a full queue that gets a packet from
// inside its gap (not the expected one) skips to it: it goes out first,
// then what was queued.
func TestFullQueueDeliversGapFiller(t *testing.T) {
	r := New[uint32](Config{Timeout: time.Second, Depth: 4})
	h := &rec{}
	r.Receive(0, true, 0, 0, h)
	for _, ns := range []uint32{5, 6, 7, 8, 3} { // 1, 2 and 4 missing
		r.Receive(0, true, ns, ns, h)
	}
	if want := []uint32{0, 3}; !slices.Equal(h.delivered, want) {
		t.Fatalf("delivered %v, want %v (dropped %v)", h.delivered, want, h.dropped)
	}
	r.Receive(0, true, 4, 4, h)
	if want := []uint32{0, 3, 4, 5, 6, 7, 8}; !slices.Equal(h.delivered, want) {
		t.Fatalf("delivered %v, want %v (dropped %v)", h.delivered, want, h.dropped)
	}
	if c := r.Counters(); c != (Counters{RxSeqDiscards: 1, RxOOSPackets: 2}) {
		t.Errorf("counters %+v", c)
	}
}

// TestExpiryBehindWaitingHead: a queued packet that has expired is
// discarded even when the packet at the head of the queue has not (it came
// later with a smaller Ns): nothing is held past its timeout.
func TestExpiryBehindWaitingHead(t *testing.T) {
	r := New[uint32](Config{Timeout: 100 * time.Millisecond})
	h := &rec{}
	r.Receive(0, true, 0, 0, h)
	r.Receive(0, true, 3, 3, h)     // waits for 1, 2
	r.Receive(50*ms, true, 2, 2, h) // inserted ahead of 3, waits for 1
	r.Receive(120*ms, true, 5, 5, h)
	// 3 expired: discarded, and the gap before 2 is given up: 2 resyncs;
	// 5 waits for 4.
	if want := []uint32{0, 2}; !slices.Equal(h.delivered, want) {
		t.Fatalf("delivered %v, want %v (dropped %v)", h.delivered, want, h.dropped)
	}
	if want := []string{"3:expired"}; !slices.Equal(h.dropped, want) {
		t.Errorf("dropped %v, want %v", h.dropped, want)
	}
	for _, e := range r.queue {
		if e.expires < 120*ms {
			t.Errorf("Ns %d held past its timeout", e.ns)
		}
	}
}

// TestConcurrentConfigure runs Configure (under the caller's lock, as
// datapath.Plane.ModifySession) against the calls documented as safe
// without it; go test -race checks it.
func TestConcurrentConfigure(t *testing.T) {
	const n = 2000
	var mu sync.Mutex
	r := New[int](Config{Max: MaxV2, Timeout: time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			mu.Lock()
			r.Configure(Config{Timeout: time.Duration(i%2) * time.Millisecond, LNSMode: i%3 == 0, RecvSeq: i%5 == 0})
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			mu.Lock()
			r.Receive(int64(i), i%7 != 0, uint32(i), i, nop{})
			mu.Unlock()
		}
	}()
	ns := make([]uint32, 0, n)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			ns = append(ns, r.NextNs())
			if c := r.Config(); c.Max != MaxV2 {
				t.Errorf("Config().Max %#x, want %#x", c.Max, MaxV2)
			}
			_, _, _ = r.SendSeq(), r.Idle(), r.Counters()
		}
	}()
	wg.Wait()
	for i, v := range ns {
		if v != uint32(i)&MaxV2 {
			t.Fatalf("NextNs %d is %d", i, v)
		}
	}
}

// BenchmarkLoss loses one packet in 100 with a timeout: the queue fills
// behind each loss and the full queue skips it.
func BenchmarkLoss(b *testing.B) {
	r := New[int](Config{Timeout: time.Second})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%100 != 50 {
			r.Receive(int64(i), true, uint32(i)&MaxV3, i, nop{})
		}
	}
}

// TestFirstNsAnywhere checks that a new receiver takes its first Ns from
// anywhere in the sequence space, the back half of nr 0 included: a
// daemon restarted while its peer kept numbering (send_seq) resyncs to the
// peer at once instead of dropping up to 2^23 packets until the peer's
// numbering wraps, as the kernel would.
func TestFirstNsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		in        []pkt
		delivered []uint32
		c         Counters
	}{
		{"v2 back half", Config{Max: MaxV2}, seqs(0x8000, 0x8001), []uint32{0x8000, 0x8001}, Counters{}},
		{"v3 back half", Config{Max: MaxV3, RecvSeq: true}, seqs(0xabcdef, 0xabcdf0, 0xabcdf1),
			[]uint32{0xabcdef, 0xabcdf0, 0xabcdf1}, Counters{}},
		{"v3 last Ns", Config{}, seqs(0xffffff, 0, 1), []uint32{0xffffff, 0, 1}, Counters{}},
		{"v3 back half with a timeout", Config{Timeout: 100 * time.Millisecond}, seqs(0x900000, 0x900002, 0x900001),
			[]uint32{0x900000, 0x900001, 0x900002}, Counters{RxOOSPackets: 1}},
		// Once nr is set the window holds: an old packet is dropped.
		{"then the window holds", Config{}, seqs(0xc00000, 0xc00001, 0xa00000, 0xc00002),
			[]uint32{0xc00000, 0xc00001, 0xc00002}, Counters{RxErrors: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New[uint32](tc.cfg)
			feed(t, r, tc.in, tc.delivered, tc.c)
		})
	}
}

// TestPeerRestarted checks that a receiver whose peer starts numbering
// again from 0 (a daemon restarted while this end kept its nr) resyncs
// after a run of more than 4 packets with consecutive Ns behind the
// window, as it does for a run ahead of nr, instead of dropping every
// packet until the peer's Ns reaches nr.
func TestPeerRestarted(t *testing.T) {
	before := seqs(995, 996, 997, 998, 999) // nr is 1000 after these
	for _, tc := range []struct {
		name      string
		cfg       Config
		in        []pkt
		delivered []uint32
		c         Counters
	}{
		{"numbering from 0 again", Config{}, seqs(0, 1, 2, 3, 4, 5, 6, 7),
			[]uint32{5, 6, 7}, Counters{RxErrors: 5}},
		{"with a timeout, queued packets go", Config{Timeout: time.Second}, seqs(1001, 0, 1, 2, 3, 4, 5, 6),
			[]uint32{5, 6}, Counters{RxSeqDiscards: 1, RxErrors: 6}},
		{"old packets out of order do not resync", Config{}, seqs(10, 20, 30, 40, 50, 60, 1000),
			[]uint32{1000}, Counters{RxErrors: 6}},
		{"a run of 5 does not resync", Config{}, seqs(0, 1, 2, 3, 4, 1000),
			[]uint32{1000}, Counters{RxErrors: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New[uint32](tc.cfg)
			feed(t, r, append(slices.Clone(before), tc.in...),
				append([]uint32{995, 996, 997, 998, 999}, tc.delivered...), tc.c)
		})
	}
}

// feed gives r the packets in (each packet's Ns is also its handle) and
// checks which it delivered, in order, and the counters after. It returns
// the handler's record.
func feed(t *testing.T, r *Receiver[uint32], in []pkt, delivered []uint32, c Counters) *rec {
	t.Helper()
	h := &rec{}
	for _, p := range in {
		r.Receive(p.at*ms, !p.noSeq, p.ns, p.ns, h)
	}
	if !slices.Equal(h.delivered, delivered) {
		t.Errorf("delivered %x, want %x (dropped %v)", h.delivered, delivered, h.dropped)
	}
	if got := r.Counters(); got != c {
		t.Errorf("counters %+v, want %+v", got, c)
	}
	return h
}

// TestResyncs checks that Resyncs counts each jump of the expected Ns,
// and nothing else.
func TestResyncs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		in   []pkt
		want uint64
	}{
		{"in order", Config{}, seqs(0, 1, 2, 3), 0},
		{"first packet anywhere", Config{}, seqs(500, 501), 0},
		{"reordered within the timeout", Config{Timeout: time.Second}, seqs(0, 2, 1, 3), 0},
		{"a run ahead without a timeout", Config{}, seqs(0, 10, 11, 12, 13, 14, 15, 16), 1},
		{"a run of 5 does not", Config{}, seqs(0, 10, 11, 12, 13, 14), 0},
		{"an expired wait", Config{Timeout: 100 * time.Millisecond}, []pkt{{ns: 0}, {ns: 2}, {at: 200, ns: 3}}, 1},
		{"the peer restarted", Config{}, seqs(995, 996, 997, 998, 999, 0, 1, 2, 3, 4, 5), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New[uint32](tc.cfg)
			h := &rec{}
			for _, p := range tc.in {
				r.Receive(p.at*ms, !p.noSeq, p.ns, p.ns, h)
			}
			if got := r.Resyncs(); got != tc.want {
				t.Errorf("Resyncs() = %d, want %d (delivered %v, dropped %v)", got, tc.want, h.delivered, h.dropped)
			}
		})
	}
	// A queue over its bound skips the lost Ns.
	r := New[uint32](Config{Timeout: time.Second, Depth: 4})
	h := &rec{}
	for _, ns := range []uint32{0, 2, 3, 4, 5, 6} {
		r.Receive(0, true, ns, ns, h)
	}
	if r.Resyncs() != 1 {
		t.Errorf("full queue: Resyncs() = %d, want 1", r.Resyncs())
	}
}

// TestState checks the sequence numbers State shows as packets are sent
// and received: Nr is invalid until a sequenced packet sets it, follows
// the delivered packets, and waits at a gap while later ones queue.
func TestState(t *testing.T) {
	h := &rec{}
	r := New[uint32](Config{Timeout: time.Second, SendSeq: true})
	if got, want := r.State(), (State{}); got != want {
		t.Errorf("new: %+v, want %+v", got, want)
	}
	r.NextNs()
	r.NextNs()
	r.Receive(0, true, 7, 7, h)
	if got, want := r.State(), (State{Ns: 2, Nr: 8, NrValid: true}); got != want {
		t.Errorf("after 2 sent, Ns 7 received: %+v, want %+v", got, want)
	}
	r.Receive(0, true, 9, 9, h)
	r.Receive(0, true, 10, 10, h)
	if got, want := r.State(), (State{Ns: 2, Nr: 8, NrValid: true, QueueDepth: 2}); got != want {
		t.Errorf("Ns 8 missing: %+v, want %+v", got, want)
	}
	r.Receive(0, true, 8, 8, h)
	if got, want := r.State(), (State{Ns: 2, Nr: 11, NrValid: true}); got != want {
		t.Errorf("gap filled: %+v, want %+v", got, want)
	}
	r.ns.Store(MaxV3 + 1)
	if got := r.State().Ns; got != 0 {
		t.Errorf("Ns after the wrap = %d, want 0", got)
	}
}
