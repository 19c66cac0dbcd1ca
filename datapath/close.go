package datapath

import "sync"

// closeParallel is how many sessions closeSessions closes at once: most of
// a close is the kernel unregistering the TAP, which waits for RCU grace
// periods that concurrent closes share.
const closeParallel = 32

// closeSessions closes sessions, closeParallel at a time, and returns when
// every one is closed.
func closeSessions(sessions []*Session) {
	if len(sessions) == 1 {
		sessions[0].close()
		return
	}
	next := make(chan *Session)
	var wg sync.WaitGroup
	for range min(closeParallel, len(sessions)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				s.close()
			}
		}()
	}
	for _, s := range sessions {
		next <- s
	}
	close(next)
	wg.Wait()
}
