package call

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// ErrPoolEmpty reports that every address of a Pool is in use.
var ErrPoolEmpty = errors.New("address pool exhausted")

// Pool hands out the IPv4 addresses of a range, each to one call at a
// time. It is safe for concurrent use.
type Pool struct {
	first, last netip.Addr
	mu          sync.Mutex
	next        netip.Addr
	used        map[netip.Addr]bool
}

// NewPool returns the pool of first..last, both included.
func NewPool(first, last netip.Addr) (*Pool, error) {
	if !first.Is4() || !last.Is4() || last.Less(first) {
		return nil, fmt.Errorf("pool %s-%s: want an IPv4 range, first to last", first, last)
	}
	return &Pool{first: first, last: last, next: first, used: make(map[netip.Addr]bool)}, nil
}

// ParsePool reads "FIRST-LAST".
func ParsePool(s string) (*Pool, error) {
	for i := range len(s) {
		if s[i] == '-' {
			a, err1 := netip.ParseAddr(s[:i])
			b, err2 := netip.ParseAddr(s[i+1:])
			if err1 != nil || err2 != nil {
				break
			}
			return NewPool(a, b)
		}
	}
	return nil, fmt.Errorf("pool %q: want FIRST-LAST IPv4 addresses", s)
}

// Contains reports whether a is in the pool's range.
func (p *Pool) Contains(a netip.Addr) bool {
	return !a.Less(p.first) && !p.last.Less(a)
}

// Get takes a free address, going round the range so a released address
// is not reused at once.
func (p *Pool) Get() (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.next
	for {
		if !p.used[a] {
			p.used[a] = true
			p.next = p.after(a)
			return a, nil
		}
		if a = p.after(a); a == p.next {
			return netip.Addr{}, ErrPoolEmpty
		}
	}
}

func (p *Pool) after(a netip.Addr) netip.Addr {
	if a == p.last {
		return p.first
	}
	return a.Next()
}

// Put gives an address back.
func (p *Pool) Put(a netip.Addr) {
	p.mu.Lock()
	delete(p.used, a)
	p.mu.Unlock()
}

// InUse is the number of addresses taken.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}
