package datapath

import (
	"runtime/debug"
	"sync"
	"time"
)

// closeParallel is how many sessions a plane closes at once: most of a
// close is the kernel unregistering the TAP, which waits for RCU grace
// periods that concurrent closes share. Each close in progress holds an
// OS thread.
const closeParallel = 128

// freeDelay is how long after the last delete the memory of deleted
// sessions goes back to the OS.
const freeDelay = time.Second

// releaseLater returns the memory of deleted sessions to the OS (a
// garbage collection, then debug.FreeOSMemory) freeDelay after the last of
// a run of deletes, rather than whenever the runtime's scavenger gets to
// it. Called with p.mu held.
func (p *Plane) releaseLater() {
	if p.free == nil {
		p.free = time.AfterFunc(freeDelay, debug.FreeOSMemory)
		return
	}
	p.free.Reset(freeDelay)
}

// closeSessions closes sessions, up to closeParallel of the plane's at
// once, and returns when every one is closed.
func (p *Plane) closeSessions(sessions []*Session) {
	if p.closing == nil || len(sessions) == 1 { // a Plane made without New, in tests
		for _, s := range sessions {
			s.close()
		}
		return
	}
	var wg sync.WaitGroup
	for _, s := range sessions {
		p.closing <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.close()
			<-p.closing
		}()
	}
	wg.Wait()
}
