package engine

import (
	"container/heap"
	"time"
)

// timed is an entry of the engine's timer heap: a tunnel's Deadline, a
// LAC's redial or a LAC call's. Each tunnel, LAC and LAC call embeds one;
// index is its place in the heap, -1 when it is not in it.
type timed struct {
	at    time.Time
	index int
	tn    *tun // one of tn, l and lc is set
	l     *lac
	lc    *lacCall
}

// timers is a min-heap of deadlines (container/heap), so that running
// the due timers and rescheduling a tunnel after a packet cost
// O(log n) with n tunnels, not a scan of them all.
type timers []*timed

func (h timers) Len() int           { return len(h) }
func (h timers) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timers) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *timers) Push(x any) {
	t := x.(*timed)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timers) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// set puts t in the heap at at, or takes it out when on is false.
func (h *timers) set(t *timed, at time.Time, on bool) {
	switch {
	case !on:
		if t.index >= 0 {
			heap.Remove(h, t.index)
		}
	case t.index >= 0:
		if !t.at.Equal(at) {
			t.at = at
			heap.Fix(h, t.index)
		}
	default:
		t.at = at
		heap.Push(h, t)
	}
}

// next is the earliest deadline.
func (h timers) next() (time.Time, bool) {
	if len(h) == 0 {
		return time.Time{}, false
	}
	return h[0].at, true
}

// due pops the entries due at now into buf.
func (h *timers) due(now time.Time, buf []*timed) []*timed {
	for len(*h) > 0 && !(*h)[0].at.After(now) {
		buf = append(buf, heap.Pop(h).(*timed))
	}
	return buf
}

// schedule puts a tunnel in the timer heap at its Deadline.
func (e *Engine) schedule(tn *tun) {
	at, ok := tn.t.Deadline()
	e.timers.set(&tn.timer, at, ok && !tn.t.Done())
}

// scheduleRedial puts a LAC in the timer heap at its redial.
func (e *Engine) scheduleRedial(l *lac) {
	e.timers.set(&l.timer, l.redialAt, !l.redialAt.IsZero())
}
