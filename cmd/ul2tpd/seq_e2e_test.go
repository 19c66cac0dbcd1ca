package main

// End-to-end tests of data sequencing (docs/sequencing.md): a numbered UDP
// stream from A to B through a relay that reorders, drops, duplicates and
// delays the tunnel's datagrams on a fixed schedule, with the delivered
// order and B's counters checked against what the kernel's rules predict;
// TCP through 1 % reordering; and "ul2tp set session" at runtime, with a
// LAC following its peer. Helpers are in impair_test.go.
//
//	go test ./cmd/ul2tpd -run 'Seq|Impair' -v -count=1

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/ul2tpd/internal/impair"
	"github.com/ul2tp/ul2tp/reorder"
)

// seqPlan is what the relay does to A's stream of n numbered datagrams
// (direction A->B, indices = stream numbers) and how the sender paces it.
type seqPlan struct {
	n      int
	sched  impair.Schedule
	pause  map[int]time.Duration // extra pause after sending i
	pace   time.Duration         // between datagrams
	lost   []int                 // predicted: never delivered
	counts seqCounts             // predicted: B's counters (deltas)
}

// Pacing and pauses. A pause after a gap must outlast the reorder timeout
// (200 ms) by a clear margin, so what waits behind the gap expires.
const (
	seqPace  = time.Millisecond
	seqPause = 350 * time.Millisecond
)

// planWithTimeout is test 1's plan, for "seq both reorder_timeout 200" on
// both ends. With a timeout, B queues what comes early:
//
//   - swaps of k and k+1 for k%100 == 7 (7, 107, 207): k+1 waits, k is
//     inserted ahead of it: one rx_oos_packets each, both delivered;
//   - 150 held until 151..153 have gone: inserted ahead: one rx_oos_packets;
//   - 180..182 reversed (182, 181, 180): two insertions ahead: two;
//   - 70 delayed 30 ms, with the sender pausing 60 ms after 75: 71..75
//     pass it and wait (well within the timeout): inserted ahead: one;
//   - 60 and 230 duplicated: the copies are behind the window: rx_errors;
//   - 50 dropped, then the sender pauses after 53: 51..53 wait for 50 in
//     the queue, and when 54 arrives 350 ms later they have expired: three
//     rx_seq_discards (and rx_errors), and 54 resyncs. The kernel has no
//     timer: they are discarded, not delivered;
//   - 250 and 251 dropped, pause after 254: 252..254 expire likewise.
func planWithTimeout() seqPlan {
	return seqPlan{
		n: 300,
		sched: impair.Combine(
			impair.Every(100, 7, impair.Swap),
			impair.At(map[int]impair.Action{
				50:  {Op: impair.Drop},
				60:  {Op: impair.Dup},
				70:  {Op: impair.Delay, D: 30 * time.Millisecond},
				150: {Op: impair.Hold, N: 3},
				180: {Op: impair.Hold, N: 2},
				181: {Op: impair.Hold, N: 1},
				230: {Op: impair.Dup},
				250: {Op: impair.Drop},
				251: {Op: impair.Drop},
			})),
		pause: map[int]time.Duration{53: seqPause, 75: 60 * time.Millisecond, 254: seqPause},
		pace:  seqPace,
		lost:  []int{50, 51, 52, 53, 250, 251, 252, 253, 254},
		counts: seqCounts{
			RxPackets:     300 - 9,
			RxOOSPackets:  3 + 1 + 2 + 1,
			RxSeqDiscards: 3 + 3,
			RxErrors:      3 + 3 + 2,
		},
	}
}

// planNoTimeout is test 2's plan, for "seq both" without a reorder
// timeout. B delivers only the Ns it expects and discards anything else,
// resyncing after a run of more than 4 consecutive out-of-sequence Ns:
//
//   - a swap of k and k+1 (k = 7, 107, 207): k+1 is discarded; k is
//     delivered; then B expects k+1, which is gone, so k+2..k+5 are
//     discarded too (the run k+1..k+5 counts 0..4) and k+6 resyncs: five
//     rx_seq_discards per swap, not one;
//   - 150..159 dropped (a run of 10): 160..164 are discarded and 165, the
//     6th, resyncs: five more;
//   - 60 duplicated: the copy is behind the window: rx_errors only.
func planNoTimeout() seqPlan {
	lost := []int{8, 9, 10, 11, 12, 108, 109, 110, 111, 112, 208, 209, 210, 211, 212}
	for i := 150; i < 165; i++ {
		lost = append(lost, i)
	}
	drops := map[int]impair.Action{60: {Op: impair.Dup}}
	for i := 150; i < 160; i++ {
		drops[i] = impair.Action{Op: impair.Drop}
	}
	return seqPlan{
		n:     300,
		sched: impair.Combine(impair.Every(100, 7, impair.Swap), impair.At(drops)),
		pace:  seqPace,
		lost:  lost,
		counts: seqCounts{
			RxPackets:     300 - 10 - 20,
			RxSeqDiscards: 3*5 + 5,
			RxErrors:      3*5 + 5 + 1,
		},
	}
}

// delivered is the plan's predicted delivery: every stream number not
// lost, in order.
func (p seqPlan) delivered() []int {
	var d []int
	for i := 0; i < p.n; i++ {
		if !slices.Contains(p.lost, i) {
			d = append(d, i)
		}
	}
	return d
}

// relayOrder is the order in which the relay forwards the stream under
// the plan, with the times the sender's pacing gives. A Delay is modelled
// as holding the datagram while 5 later ones pass (see planWithTimeout).
func (p seqPlan) relayOrder() []seqArrival {
	var out []seqArrival
	type heldDgram struct{ stream, left int }
	var held []heldDgram
	var now time.Duration
	send := func(s int) {
		out = append(out, seqArrival{now, s})
		for j := range held {
			held[j].left--
		}
		for {
			k := slices.IndexFunc(held, func(h heldDgram) bool { return h.left <= 0 })
			if k < 0 {
				return
			}
			s := held[k].stream
			held = slices.Delete(held, k, k+1)
			out = append(out, seqArrival{now, s})
			for j := range held {
				held[j].left--
			}
		}
	}
	for i := 0; i < p.n; i++ {
		switch a := p.sched(i); a.Op {
		case impair.Drop:
		case impair.Dup:
			send(i)
			send(i)
		case impair.Hold:
			held = append(held, heldDgram{i, a.N})
		case impair.Delay:
			held = append(held, heldDgram{i, 5})
		default:
			send(i)
		}
		now += p.pace + p.pause[i]
	}
	return out
}

type seqArrival struct {
	at     time.Duration
	stream int
}

func streams(as []seqArrival) []int {
	s := make([]int, len(as))
	for i, a := range as {
		s[i] = a.stream
	}
	return s
}

// model runs the plan's relay order through package reorder (the
// kernel's rules as a state machine) with the given timeout, one warm-up
// packet first as in the test, and returns what it delivers and counts.
// It checks the hand-made predictions above.
func (p seqPlan) model(timeout time.Duration) ([]int, seqCounts) {
	r := reorder.New[int](reorder.Config{RecvSeq: true, SendSeq: true, Timeout: timeout})
	h := &modelHandler{}
	r.Receive(0, true, 0, -1, h) // the warm-up datagram, Ns 0
	for _, a := range p.relayOrder() {
		r.Receive(int64(time.Second+a.at), true, uint32(a.stream+1), a.stream, h)
	}
	c := r.Counters()
	return h.delivered, seqCounts{uint64(len(h.delivered)), c.RxSeqDiscards, c.RxOOSPackets, c.RxErrors, c.QueueDepth}
}

type modelHandler struct{ delivered []int }

func (h *modelHandler) Deliver(s int) {
	if s >= 0 {
		h.delivered = append(h.delivered, s)
	}
}
func (h *modelHandler) Drop(int, reorder.Reason) {}
func (h *modelHandler) Keep(s int) int           { return s }

// TestSeqPredictions checks the plans' predictions against package
// reorder: no root needed.
func TestSeqPredictions(t *testing.T) {
	for _, c := range []struct {
		name    string
		p       seqPlan
		timeout time.Duration
	}{
		{"reorder_timeout 200", planWithTimeout(), 200 * time.Millisecond},
		{"no reorder_timeout", planNoTimeout(), 0},
	} {
		got, counts := c.p.model(c.timeout)
		if want := c.p.delivered(); !slices.Equal(got, want) {
			t.Errorf("%s: model delivers %v,\nprediction %v", c.name, got, want)
		}
		if counts != c.p.counts {
			t.Errorf("%s: model counts %+v, prediction %+v", c.name, counts, c.p.counts)
		}
	}
}

// runSeqPlan sends the plan's stream from A to B through the relay and
// checks the relay saw exactly the stream, B delivered exactly the
// predicted numbers in order, and B's counters moved as predicted.
func runSeqPlan(t *testing.T, seqWords []string, p seqPlan) {
	// Held datagrams wait for their successors however slow the sender.
	re := newRelayEnv(t, relayOpts{sessionA: seqWords, sessionB: seqWords, maxHold: 5 * time.Second})
	rx := listenStream(t, re.nsB, re.innerB)
	tx := dialStream(t, re.nsA, re.innerA, re.innerB)
	for _, x := range []struct {
		d        *daemon
		tid, sid uint32
	}{{re.a, tidA, sidA}, {re.b, tidB, sidB}} {
		s := x.d.seqSession(x.tid, x.sid)
		if !s.SendSeq || !s.RecvSeq {
			t.Fatalf("%s: show session after add with %v: send_seq %v recv_seq %v", x.d.ns, seqWords, s.SendSeq, s.RecvSeq)
		}
	}
	warmUp(t, tx, rx)
	// From here the relay numbers A's datagrams from 0: the stream's.
	re.schedule(impair.AtoB, p.sched)
	re.schedule(impair.BtoA, nil)
	b0 := countsOf(re.b.seqSession(tidB, sidB).Stats)
	a0 := re.a.seqSession(tidA, sidA).Stats.TxPackets
	if b0.RxSeqDiscards != 0 || b0.RxOOSPackets != 0 || b0.RxErrors != 0 || b0.QueueDepth != 0 {
		t.Fatalf("B's counters after the warm-up: %+v", b0)
	}

	start := time.Now()
	for i := 0; i < p.n; i++ {
		if _, err := tx.Write(streamDatagram(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		time.Sleep(p.pace + p.pause[i])
	}
	want := p.delivered()
	last := want[len(want)-1]
	if !rx.waitFor(5*time.Second, func(got []int, _ int) bool { return slices.Contains(got, last) }) {
		t.Errorf("last datagram %d not delivered within 5 s", last)
	}
	time.Sleep(100 * time.Millisecond) // anything late (it must not come)
	t.Logf("%d datagrams sent in %v", p.n, time.Since(start).Round(time.Millisecond))

	// The relay saw the stream and nothing else: index i is datagram i
	// with Ns following on.
	obs := re.observed(impair.AtoB)
	ok := len(obs) == p.n
	for i := 0; ok && i < len(obs); i++ {
		ok = obs[i].i == i && obs[i].stream == i && obs[i].ns == (obs[0].ns+i)&0xffffff && obs[0].ns >= 0
	}
	if !ok {
		t.Errorf("relay A->B saw %d datagrams, want the %d of the stream with consecutive Ns: %v", len(obs), p.n, obs)
	}
	if back := re.observed(impair.BtoA); len(back) != 0 {
		t.Errorf("relay B->A saw %d datagrams, want none: %v", len(back), back)
	}
	st := re.relay.Stats(impair.AtoB)
	t.Logf("relay A->B: %+v", st)
	// The relay forwarded what the plan says (a delay is timed: a machine
	// stalled for tens of milliseconds could move it).
	if fw, plan := re.forwarded(impair.AtoB), streams(p.relayOrder()); !slices.Equal(fw, plan) {
		t.Errorf("relay forwarded (%d):\n%v\nplanned (%d):\n%v", len(fw), fw, len(plan), plan)
	}

	got, _, other := rx.snapshot()
	if !slices.Equal(got, want) {
		t.Errorf("B delivered (%d):\n%v\nwant (%d):\n%v", len(got), got, len(want), want)
	}
	if other != 0 {
		t.Errorf("B received %d unexpected datagrams", other)
	}
	b1 := countsOf(re.b.seqSession(tidB, sidB).Stats)
	if d := b1.minus(b0); d != p.counts {
		t.Errorf("B's counters moved by %+v, want %+v (before %+v, after %+v)", d, p.counts, b0, b1)
	} else {
		t.Logf("B's counters moved by %+v, as predicted", d)
	}
	if tx := re.a.seqSession(tidA, sidA).Stats.TxPackets - a0; tx != uint64(p.n) {
		t.Errorf("A's tx_packets moved by %d, want %d", tx, p.n)
	}
	if !re.a.alive() || !re.b.alive() {
		t.Fatalf("a daemon died: A alive %v, B alive %v", re.a.alive(), re.b.alive())
	}
}

// TestSeqImpairReorderTimeout: "seq both reorder_timeout 200" on both ends;
// swaps, a hold, a reversed triple and a delay are put back in order;
// duplicates are refused; what waits behind a loss expires when a packet
// comes after the timeout (see planWithTimeout).
func TestSeqImpairReorderTimeout(t *testing.T) {
	runSeqPlan(t, []string{"seq", "both", "reorder_timeout", "200"}, planWithTimeout())
}

// TestSeqImpairNoTimeout: "seq both" without a timeout: out-of-sequence
// packets are discarded until a run of more than 4 resyncs (see
// planNoTimeout).
func TestSeqImpairNoTimeout(t *testing.T) {
	runSeqPlan(t, []string{"seq", "both"}, planNoTimeout())
}

// TestSeqImpairTCP moves 64 MB over TCP, checked by SHA-256, through the
// relay: without sequencing, with "seq both reorder_timeout 50", and with
// both under 1 % of datagrams swapped with their successor each way
// (seeded), and without sequencing under the same reordering. It logs the
// throughputs (not asserted) and checks that the reordering B saw was
// repaired: rx_oos_packets equals the swaps the relay made.
func TestSeqImpairTCP(t *testing.T) {
	requireE2E(t)
	const size = 64 << 20
	seqWords := []string{"seq", "both", "reorder_timeout", "50"}
	type run struct {
		name    string
		words   []string
		reorder bool
		flags   []string
	}
	runs := []run{
		{"plain", nil, false, nil},
		{"seq", seqWords, false, nil},
		{"seq+1%reorder", seqWords, true, nil},
		{"1%reorder-noseq", nil, true, nil},
		{"seq+1%reorder/no-offload", seqWords, true, []string{"--no-offload"}},
	}
	results := make([]string, 0, len(runs))
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			re := newRelayEnv(t, relayOpts{sessionA: r.words, sessionB: r.words, flags: r.flags})
			if r.reorder {
				re.schedule(impair.AtoB, impair.Random(0x5eed01, 0.01, impair.Swap))
				re.schedule(impair.BtoA, impair.Random(0x5eed02, 0.01, impair.Swap))
			}
			ofo0, _ := tcpExt(t, re.nsB, "TCPOFOQueue")
			fr0, _ := tcpExt(t, re.nsA, "TCPFastRetrans")
			_, txd0, _ := devDrops(t, re.nsA, impTAP)
			rxd0, _, _ := devDrops(t, re.nsB, impTAP)
			netA0, netB0 := netCounters(t, re.nsA), netCounters(t, re.nsB)
			b0 := countsOf(re.b.seqSession(tidB, sidB).Stats)
			a0 := countsOf(re.a.seqSession(tidA, sidA).Stats)
			start := time.Now()
			re.tcpTransfer(re.nsA, re.nsB, re.innerB, size)
			el := time.Since(start)
			if t.Failed() {
				return
			}
			mbps := float64(size) * 8 / el.Seconds() / 1e6
			ofo1, ofoOK := tcpExt(t, re.nsB, "TCPOFOQueue")
			fr1, _ := tcpExt(t, re.nsA, "TCPFastRetrans")
			_, txd1, txdOK := devDrops(t, re.nsA, impTAP)
			rxd1, _, _ := devDrops(t, re.nsB, impTAP)
			netA1, netB1 := netCounters(t, re.nsA), netCounters(t, re.nsB)
			bs, as := re.b.seqSession(tidB, sidB), re.a.seqSession(tidA, sidA)
			db, da := countsOf(bs.Stats).minus(b0), countsOf(as.Stats).minus(a0)
			sab, sba := re.relay.Stats(impair.AtoB), re.relay.Stats(impair.BtoA)
			res := fmt.Sprintf("%-16s %6.0f Mbit/s (%v): relay swaps A->B %d of %d, B->A %d of %d; "+
				"B rx_oos %d seq_discards %d errors %d; A rx_oos %d seq_discards %d; B TCPOFOQueue +%d, A TCPFastRetrans +%d, A TAP tx_dropped +%d (%v), B TAP rx_dropped +%d",
				r.name, mbps, el.Round(time.Millisecond), sab.Overtaken, sab.Received, sba.Overtaken, sba.Received,
				db.RxOOSPackets, db.RxSeqDiscards, db.RxErrors, da.RxOOSPackets, da.RxSeqDiscards, ofo1-ofo0, fr1-fr0, txd1-txd0, txdOK, rxd1-rxd0)
			t.Log(res)
			results = append(results, res)
			if sab.Dropped+sab.SendErrors+sba.Dropped+sba.SendErrors != 0 {
				t.Errorf("relay lost datagrams: A->B %+v, B->A %+v", sab, sba)
			}
			if r.words == nil {
				if db.RxOOSPackets+db.RxSeqDiscards+da.RxOOSPackets+da.RxSeqDiscards != 0 || bs.SendSeq || as.SendSeq {
					t.Errorf("sequencing counters without sequencing: A %+v (send_seq %v), B %+v (send_seq %v)", da, as.SendSeq, db, bs.SendSeq)
				}
				return
			}
			if !r.reorder {
				if db.RxOOSPackets+db.RxSeqDiscards+da.RxOOSPackets+da.RxSeqDiscards != 0 {
					t.Errorf("reordering counted without any: A %+v, B %+v", da, db)
				}
				return
			}
			if sab.Overtaken == 0 || sba.Overtaken == 0 {
				t.Fatalf("the relay swapped nothing: A->B %+v, B->A %+v", sab, sba)
			}
			// Every swap makes the later datagram wait for the earlier, which
			// is then inserted ahead of it: one rx_oos_packets each. The veths
			// may reorder a little themselves (a sender moving between CPUs),
			// which adds some; a datagram lost on the way (counted in
			// rx_seq_discards when its wait expires) can take at most one
			// swap's count with it.
			for _, x := range []struct {
				who  string
				d    seqCounts
				want uint64
			}{{"B", db, sab.Overtaken}, {"A", da, sba.Overtaken}} {
				low := x.want - min(x.want, x.d.RxSeqDiscards)
				if x.d.RxOOSPackets < low || x.d.RxOOSPackets > x.want+x.want/10+2 {
					t.Errorf("%s: rx_oos_packets %d, want %d (the relay's swaps towards it) less at most %d rx_seq_discards",
						x.who, x.d.RxOOSPackets, x.want, x.d.RxSeqDiscards)
				}
			}
			// Reordering put right reaches B's TCP in order. Its out-of-order
			// queue is not quite unused even without any reordering (a few,
			// up to some tens on a loaded machine: see the other runs), but
			// far below the swaps, each of which costs an out-of-order
			// segment without sequencing (and some fast retransmits).
			// Segments lost outside ul2tpd leave holes that later segments
			// queue behind just as reordered ones do: frames A's TAP had
			// no room for (its queue is full while A's daemon is stalled,
			// as a race-built one under load can be) and segments B's TCP
			// dropped itself (receive queue or memory full while the
			// receiving test process is slow).
			var lost []string
			if txd1 > txd0 {
				lost = append(lost, fmt.Sprintf("A's TAP tx_dropped +%d", txd1-txd0))
			}
			if rxd1 > rxd0 {
				lost = append(lost, fmt.Sprintf("B's TAP rx_dropped +%d", rxd1-rxd0))
			}
			for _, k := range []string{"TcpExt:TCPRcvQDrop", "TcpExt:TCPBacklogDrop", "TcpExt:TCPZeroWindowDrop",
				"TcpExt:TCPOFODrop", "TcpExt:PruneCalled", "TcpExt:RcvPruned", "Ip:InDiscards", "TcpExt:TCPMinTTLDrop"} {
				if netB1[k] > netB0[k] {
					lost = append(lost, fmt.Sprintf("B %s +%d", k, netB1[k]-netB0[k]))
				}
			}
			ofo := ofo1 - ofo0
			if ofoOK && ofo > max(8, sab.Overtaken/2) {
				t.Logf("A's counters that moved: %s", strings.Join(counterDeltas(netA0, netA1), ", "))
				t.Logf("B's counters that moved: %s", strings.Join(counterDeltas(netB0, netB1), ", "))
			}
			if len(lost) > 0 {
				t.Logf("segments lost outside ul2tpd (%s): B's out-of-order queue is not checked", strings.Join(lost, ", "))
				return
			}
			// The check guards the coalescer of the offload path. Without
			// offloads every frame is written as it is delivered (the
			// order is checked frame by frame in datapath's
			// TestDeliverSequenced); there B's TCP has been seen, once in
			// tens of runs on a loaded machine, to queue hundreds of
			// segments behind a hole that none of the counters above
			// explains, so that run is logged for comparison only.
			if slices.Contains(r.flags, "--no-offload") {
				if ofoOK && ofo > max(8, sab.Overtaken/2) {
					t.Logf("without offloads B's TCP queued %d segments out of order (A %d fast retransmits): not checked", ofo, fr1-fr0)
				}
				return
			}
			if ofoOK && db.RxSeqDiscards == 0 && ofo > max(8, sab.Overtaken/2) {
				t.Errorf("BUG (datapath/seq.go seqHandler.Deliver): B's TCP queued %d segments out of order and A made %d fast "+
					"retransmits, although ul2tpd put all %d swaps back in order without discards and nothing was lost "+
					"on the way: with TAP offloads, a frame released from the reorder queue is written to the TAP at "+
					"once, ahead of the earlier frames still pending in the coalescer (compare the --no-offload run)", ofo, fr1-fr0, db.RxOOSPackets)
			}
		})
	}
	t.Logf("TCP %d MB A->B through the relay:\n%s", size>>20, strings.Join(results, "\n"))
}

// TestSeqSetSession changes sequencing at runtime with "ul2tp set
// session" and checks "show session" and the traffic: a LAC (not
// lns_mode) starts sending Ns when its peer does and stops when it stops;
// an LNS keeps its own setting, and a session with recv_seq drops what
// comes without Ns. Here A and B talk directly over newEnv's veth.
func TestSeqSetSession(t *testing.T) {
	e := newEnv(t)
	a := e.startDaemon(e.nsA)
	b := e.startDaemon(e.nsB)
	const tap = "seq0"
	innerA := netip.AddrFrom4([4]byte{10, 223, byte(e.n), 1})
	innerB := netip.AddrFrom4([4]byte{10, 223, byte(e.n), 2})
	a.mustCLI("add", "tunnel", "tunnel_id", fmt.Sprint(tidA), "peer_tunnel_id", fmt.Sprint(tidB), "encap", "udp",
		"local", e.outer4(1).String(), "remote", e.outer4(2).String(), "udp_sport", "1701", "udp_dport", "1701")
	b.mustCLI("add", "tunnel", "tunnel_id", fmt.Sprint(tidB), "peer_tunnel_id", fmt.Sprint(tidA), "encap", "udp",
		"local", e.outer4(2).String(), "remote", e.outer4(1).String(), "udp_sport", "1701", "udp_dport", "1701")
	a.mustCLI("add", "session", "name", tap, "tunnel_id", fmt.Sprint(tidA), "session_id", fmt.Sprint(sidA),
		"peer_session_id", fmt.Sprint(sidB), "l2spec_type", "default", "seq", "none")
	b.mustCLI("add", "session", "name", tap, "tunnel_id", fmt.Sprint(tidB), "session_id", fmt.Sprint(sidB),
		"peer_session_id", fmt.Sprint(sidA), "l2spec_type", "default")
	a.taps, b.taps = []string{tap}, []string{tap}
	quietTAPs(e, a, b, tap, innerA, innerB)
	rxA, rxB := listenStream(t, e.nsA, innerA), listenStream(t, e.nsB, innerB)
	txA, txB := dialStream(t, e.nsA, innerA, innerB), dialStream(t, e.nsB, innerB, innerA)

	sessA := func() seqSessionJSON { return a.seqSession(tidA, sidA) }
	sessB := func() seqSessionJSON { return b.seqSession(tidB, sidB) }
	type state struct{ send, recv, lns bool }
	check := func(step, who string, s seqSessionJSON, want state, timeout uint64) {
		t.Helper()
		if s.SendSeq != want.send || s.RecvSeq != want.recv || s.LNSMode != want.lns || s.ReorderTimeout != timeout {
			t.Errorf("%s: %s: send_seq %v recv_seq %v lns_mode %v reorder_timeout %d; want %v %v %v %d",
				step, who, s.SendSeq, s.RecvSeq, s.LNSMode, s.ReorderTimeout, want.send, want.recv, want.lns, timeout)
		}
	}
	// one sends datagram k from c and checks whether r gets it.
	k := 0
	one := func(step string, c *net.UDPConn, r *streamRecv, delivered bool) {
		t.Helper()
		k++
		n := k
		if _, err := c.Write(streamDatagram(n)); err != nil {
			t.Fatalf("%s: send: %v", step, err)
		}
		limit := 3 * time.Second
		if !delivered {
			limit = 300 * time.Millisecond
		}
		got := r.waitFor(limit, func(got []int, _ int) bool { return slices.Contains(got, n) })
		if got != delivered {
			t.Errorf("%s: datagram %d delivered %v, want %v", step, n, got, delivered)
		}
	}
	// rx reads a session's receive counters.
	rx := func(s seqSessionJSON) seqCounts { return countsOf(s.Stats) }
	// dump checks show -d's ns (next sent) and nr (next expected, "-"
	// as nr_valid false until a sequenced packet sets it).
	dump := func(step, who string, s seqSessionJSON, ns, nr uint32, nrValid bool) {
		t.Helper()
		if d := s.Details; d.Ns != ns || d.Nr != nr || d.NrValid != nrValid || d.ReorderQueueLength != 0 {
			t.Errorf("%s: %s: ns %d nr %d nr_valid %v reorder_queue_length %d; want %d %d %v 0",
				step, who, d.Ns, d.Nr, d.NrValid, d.ReorderQueueLength, ns, nr, nrValid)
		}
	}

	check("after add", "A", sessA(), state{}, 0)
	check("after add", "B", sessB(), state{}, 0)
	var tuns []struct {
		Details struct {
			Version      int    `json:"version"`
			LocalAddress string `json:"local_address"`
			PeerAddress  string `json:"peer_address"`
		} `json:"details"`
	}
	out := a.mustCLI("-j", "-d", "show", "tunnel")
	if err := json.Unmarshal([]byte(out), &tuns); err != nil || len(tuns) != 1 {
		t.Fatalf("ul2tp -j -d show tunnel: %v\n%s", err, out)
	}
	if d, local, peer := tuns[0].Details, e.outer4(1).String()+":1701", e.outer4(2).String()+":1701"; d.Version != 3 || d.LocalAddress != local || d.PeerAddress != peer {
		t.Errorf("show -d tunnel: details %+v, want version 3, local_address %s, peer_address %s", d, local, peer)
	}
	one("no sequencing", txA, rxB, true)
	one("no sequencing", txB, rxA, true)
	dump("no sequencing", "A", sessA(), 0, 0, false)

	// A: seq both, with a timeout. B is told nothing.
	a.mustCLI("set", "session", "tunnel_id", fmt.Sprint(tidA), "session_id", fmt.Sprint(sidA), "seq", "both", "reorder_timeout", "100")
	check("A set seq both", "A", sessA(), state{send: true, recv: true}, 100)
	check("A set seq both", "B", sessB(), state{}, 0)
	out = a.mustCLI("show", "session", "tunnel_id", fmt.Sprint(tidA), "session_id", fmt.Sprint(sidA))
	for _, w := range []string{"  reorder timeout: 100\n", "  sequence numbering: send recv\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("show session after set: no %q in:\n%s", w, out)
		}
	}
	// B receives Ns and, as a LAC, starts sending them; A, which now
	// requires them, takes B's answer.
	a0 := rx(sessA())
	one("A sends Ns", txA, rxB, true)
	check("B received Ns", "B", sessB(), state{send: true}, 0)
	one("B follows", txB, rxA, true)
	if d := rx(sessA()).minus(a0); d != (seqCounts{RxPackets: 1}) {
		t.Errorf("A's counters after B followed: %+v, want one packet received and nothing dropped", d)
	}
	// Each sent Ns 0 and expects Ns 1 next.
	dump("B follows", "A", sessA(), 1, 1, true)
	dump("B follows", "B", sessB(), 1, 1, true)
	one("A sends Ns 1", txA, rxB, true)
	dump("A sent Ns 1", "A", sessA(), 2, 1, true)
	dump("A sent Ns 1", "B", sessB(), 1, 2, true)
	out = a.mustCLI("-d", "show", "session", "tunnel_id", fmt.Sprint(tidA), "session_id", fmt.Sprint(sidA))
	for _, w := range []string{"  seq: send_seq on recv_seq on lns_mode off reorder_timeout 100\n", "  nr 1 ns 2 reorder_queue 0\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("show -d session: no %q in:\n%s", w, out)
		}
	}

	// B becomes an LNS not sending Ns: it keeps to that although A sends
	// them, and A (recv_seq) drops what B sends.
	b.mustCLI("set", "session", "tunnel_id", fmt.Sprint(tidB), "session_id", fmt.Sprint(sidB), "seq", "none", "lns_mode", "on")
	check("B set lns_mode on seq none", "B", sessB(), state{lns: true}, 0)
	if out := b.mustCLI("show", "session"); !strings.Contains(out, "  lns mode\n") || strings.Contains(out, "sequence numbering") {
		t.Errorf("show session of an LNS without seq:\n%s", out)
	}
	one("LNS receives Ns", txA, rxB, true)
	check("LNS received Ns", "B", sessB(), state{lns: true}, 0)
	a0 = rx(sessA())
	one("LNS sends no Ns to recv_seq", txB, rxA, false)
	if d := rx(sessA()).minus(a0); d != (seqCounts{RxSeqDiscards: 1, RxErrors: 1}) {
		t.Errorf("A's counters after a packet without Ns: %+v, want one rx_seq_discards and rx_errors", d)
	}

	// A stops (seq none); B, LAC again, sends Ns: A follows and sends
	// them; then B stops and A, following, stops too.
	a.mustCLI("set", "session", "tunnel_id", fmt.Sprint(tidA), "session_id", fmt.Sprint(sidA), "seq", "none", "reorder_timeout", "0")
	check("A set seq none", "A", sessA(), state{}, 0)
	b.mustCLI("set", "session", "tunnel_id", fmt.Sprint(tidB), "session_id", fmt.Sprint(sidB), "seq", "send", "lns_mode", "off")
	check("B set seq send lns_mode off", "B", sessB(), state{send: true}, 0)
	one("B sends Ns", txB, rxA, true)
	check("A received Ns", "A", sessA(), state{send: true}, 0)
	one("A follows", txA, rxB, true)
	b.mustCLI("set", "session", "tunnel_id", fmt.Sprint(tidB), "session_id", fmt.Sprint(sidB), "seq", "none")
	check("B set seq none", "B", sessB(), state{}, 0)
	one("B sends no Ns", txB, rxA, true)
	check("A received no Ns", "A", sessA(), state{}, 0)
	b0 := rx(sessB())
	one("A stopped too", txA, rxB, true)
	if d := rx(sessB()).minus(b0); d != (seqCounts{RxPackets: 1}) {
		t.Errorf("B's counters: %+v, want one packet received", d)
	}
	check("end", "B", sessB(), state{}, 0)

	// Bad set commands.
	a.cliFails([]string{"not found"}, "set", "session", "tunnel_id", fmt.Sprint(tidA), "session_id", "999", "seq", "both")
	a.cliFails([]string{"seq"}, "set", "session", "tunnel_id", fmt.Sprint(tidA), "session_id", fmt.Sprint(sidA), "seq", "sometimes")
	a.cliFails([]string{"tunnel_id"}, "set", "session", "session_id", fmt.Sprint(sidA), "seq", "both")
	check("after bad sets", "A", sessA(), state{}, 0)
	_, _, other := rxB.snapshot()
	_, _, otherA := rxA.snapshot()
	if other+otherA != 0 {
		t.Errorf("unexpected datagrams: %d at B, %d at A", other, otherA)
	}
}

// TestSeqImpairFullQueue: "seq both reorder_timeout 10000" on both ends;
// the relay drops the first datagram of a stream of 100 sent back to back,
// well inside the timeout. B's queue fills behind the loss; the full queue
// gives up on the lost datagram (one rx_seq_discards) and delivers the
// rest in order, and the session goes on carrying traffic: a ping answers
// long before the timeout. (ul2tpd once refused every packet while its
// queue was full, and nothing got through until the timeout.)
func TestSeqImpairFullQueue(t *testing.T) {
	const n = 100 // more than reorder.DefaultDepth after the loss
	words := []string{"seq", "both", "reorder_timeout", "10000"}
	re := newRelayEnv(t, relayOpts{sessionA: words, sessionB: words})
	rx := listenStream(t, re.nsB, re.innerB)
	tx := dialStream(t, re.nsA, re.innerA, re.innerB)
	warmUp(t, tx, rx)
	re.schedule(impair.AtoB, impair.At(map[int]impair.Action{0: {Op: impair.Drop}}))
	b0 := countsOf(re.b.seqSession(tidB, sidB).Stats)
	for i := 0; i < n; i++ {
		if _, err := tx.Write(streamDatagram(i)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	var want []int
	for i := 1; i < n; i++ {
		want = append(want, i)
	}
	// Bounded well below the 10 s timeout.
	if !rx.waitFor(3*time.Second, func(got []int, _ int) bool { return len(got) >= len(want) }) {
		got, _, _ := rx.snapshot()
		t.Fatalf("B delivered %d of the %d datagrams after the loss within 3 s (reorder timeout 10 s): %v",
			len(got), len(want), got)
	}
	if got, _, _ := rx.snapshot(); !slices.Equal(got, want) {
		t.Errorf("B delivered %v, want %v", got, want)
	}
	if st := re.relay.Stats(impair.AtoB); st.Dropped != 1 || st.Received < n {
		t.Errorf("relay A->B: %+v, want %d received and one dropped", st, n)
	}
	d := countsOf(re.b.seqSession(tidB, sidB).Stats).minus(b0)
	if want := (seqCounts{RxPackets: n - 1, RxSeqDiscards: 1}); d != want {
		t.Errorf("B's counters moved by %+v, want %+v (the skipped datagram)", d, want)
	}
	// The session carries traffic on, each way (ping waits 2 s a try).
	re.ping(re.nsA, re.innerB.String())
}
