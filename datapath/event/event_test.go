package event

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var l Limiter
	sec := int64(time.Second)
	steps := []struct {
		now   int64
		ok    bool
		count uint64
	}{
		{0, true, 1}, // the first occurrence always makes an event, even at time 0
		{1, false, 0},
		{sec / 2, false, 0},
		{sec - 1, false, 0},
		{sec + 1, true, 4}, // the three suppressed and this one
		{sec + 2, false, 0},
		{5 * sec, true, 2},
		{7 * sec, true, 1},
	}
	for i, st := range steps {
		count, ok := l.Allow(st.now)
		if ok != st.ok || count != st.count {
			t.Errorf("step %d: Allow(%d) = %d, %v; want %d, %v", i, st.now, count, ok, st.count, st.ok)
		}
	}
}

// TestLimiterConcurrent checks that concurrent callers lose no
// occurrence: the counts of the events let through, plus the pending
// ones, add up to the calls.
func TestLimiterConcurrent(t *testing.T) {
	var l Limiter
	var mu sync.Mutex
	var total uint64
	var wg sync.WaitGroup
	const workers, calls = 4, 10000
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				// Time moves a second every 1000 calls per worker.
				if n, ok := l.Allow(int64(i/1000+1)*int64(time.Second) + int64(w)); ok {
					mu.Lock()
					total += n
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if got := total + l.pending.Load(); got != workers*calls {
		t.Fatalf("counted %d occurrences, want %d", got, workers*calls)
	}
}

func TestHubDelivers(t *testing.T) {
	h := NewHub(nil)
	a, b := h.Subscribe(4), h.Subscribe(4)
	defer a.Close()
	defer b.Close()
	h.Publish(Event{Kind: SessionAdded, TunnelID: 1, SessionID: 2, Interface: "l2tpeth0"})
	for _, s := range []*Subscriber{a, b} {
		e, ok := s.Next(context.Background())
		if !ok || e.Kind != SessionAdded || e.TunnelID != 1 || e.SessionID != 2 || e.Interface != "l2tpeth0" {
			t.Fatalf("Next = %+v, %v", e, ok)
		}
		if e.Time.IsZero() {
			t.Error("event without a time")
		}
	}
}

// TestHubSlowSubscriber checks that a subscriber that does not read
// neither blocks the publisher nor the other subscribers, loses what does
// not fit its buffer, counted, and is told how many once it reads.
func TestHubSlowSubscriber(t *testing.T) {
	h := NewHub(nil)
	slow, fast := h.Subscribe(4), h.Subscribe(100)
	defer slow.Close()
	defer fast.Close()
	for i := range 10 { // returns: Publish never blocks on the slow one
		h.Publish(Event{Kind: Drop, Reason: CookieMismatch, Count: uint64(i + 1)})
	}
	if got := h.Dropped(); got != 6 {
		t.Errorf("Dropped() = %d, want 6", got)
	}
	ctx := context.Background()
	for i := range 10 {
		e, _ := fast.Next(ctx)
		if e.Count != uint64(i+1) {
			t.Fatalf("fast subscriber event %d: count %d", i, e.Count)
		}
	}
	// The slow one gets the four that fitted; once its buffer is down to
	// half, it is told of the six it lost, then gets the rest.
	var got []Event
	for range 5 {
		e, ok := slow.Next(ctx)
		if !ok {
			t.Fatal("Next failed")
		}
		got = append(got, e)
	}
	want := []struct {
		kind  Kind
		count uint64
	}{{Drop, 1}, {Drop, 2}, {Lost, 6}, {Drop, 3}, {Drop, 4}}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].Count != w.count {
			t.Errorf("slow subscriber event %d: %v count %d, want %v count %d", i, got[i].Kind, got[i].Count, w.kind, w.count)
		}
	}
	// Nothing more is pending: Next waits until its context ends.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if e, ok := slow.Next(cctx); ok {
		t.Errorf("Next after everything = %+v, want none", e)
	}
}

func TestHubClose(t *testing.T) {
	h := NewHub(nil)
	s := h.Subscribe(1)
	if h.Subscribers() != 1 {
		t.Errorf("Subscribers() = %d, want 1", h.Subscribers())
	}
	s.Close()
	if h.Subscribers() != 0 {
		t.Errorf("Subscribers() after Close = %d, want 0", h.Subscribers())
	}
	h.Publish(Event{Kind: TunnelAdded})
	h.Publish(Event{Kind: TunnelAdded})
	if h.Dropped() != 0 {
		t.Errorf("a closed subscriber counted %d dropped events", h.Dropped())
	}
	var nilHub *Hub
	nilHub.Publish(Event{Kind: TunnelAdded}) // no panic
}

// TestHubConcurrent publishes from several goroutines while subscribers
// come and go (for -race).
func TestHubConcurrent(t *testing.T) {
	h := NewHub(nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Publish(Event{Kind: Drop, Count: uint64(i)})
			}
		}()
	}
	for range 20 {
		s := h.Subscribe(8)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		s.Next(ctx)
		cancel()
		s.Close()
	}
	wg.Wait()
}

func TestNames(t *testing.T) {
	for k := TunnelAdded; k < numKinds; k++ {
		if k.String() == "unknown" {
			t.Errorf("kind %d has no name", k)
		}
	}
	for r := CookieMismatch; r < NumReasons; r++ {
		if r.String() == "unknown" {
			t.Errorf("reason %d has no name", r)
		}
	}
}

// BenchmarkSuppressed is the per-packet cost of a drop whose event is
// suppressed: no allocation.
func BenchmarkSuppressed(b *testing.B) {
	h := NewHub(nil)
	s := h.Subscribe(1)
	defer s.Close()
	var l Limiter
	now := int64(time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if n, ok := l.Allow(now); ok {
			h.Publish(Event{Kind: Drop, Reason: CookieMismatch, Count: n})
		}
	}
}
