// Command tunshare measures the two ways an LNS can give its PPP calls to
// the kernel, for docs/performance.md ("PPP: one TUN per call or one
// shared TUN"):
//
//   - per call: a TUN device for each call, made as control/ppp/call
//     makes it (tap.Create, tap.SetPointToPoint4 with the LNS's address
//     and the peer's, tap.SetUp), read by a goroutine of its own;
//   - shared: one TUN with the LNS's address and a /32 route per peer
//     (netlink RTM_NEWROUTE, "ip route add PEER/32 dev TUN"), read by one
//     goroutine that finds the call by the packet's destination address
//     (a map lookup).
//
// For each it measures the setup time of -n calls, the kernel memory it
// takes (the growth of Slab and Percpu in /proc/meminfo: machine-wide,
// so noisy on a shared machine; hence -rounds, alternating, and medians),
// our own RSS and heap, the teardown time, and the rate at which the
// reader side takes packets from the kernel when a UDP flood is spread
// over every peer (received packets per second and our CPU time per
// packet). Then it benchmarks the shared TUN's demux alone.
//
// Every round runs in a network namespace of its own (unshare(2) on a
// locked thread): nothing is left behind, whatever happens. Root only.
//
//	go run ./cmd/tunshare [-n 1000] [-rounds 3] [-flood 200000]   (in bench/)
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ul2tp/ul2tp/datapath/tap"
	"golang.org/x/sys/unix"
)

var (
	local = netip.AddrFrom4([4]byte{10, 97, 0, 1}) // the LNS's address on every call
	port  = 9                                      // where the flood goes (discard)
)

// peer is call i's address: 10.97.1.0 and up.
func peer(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 97, byte(1 + i>>8), byte(i)})
}

func main() {
	n := flag.Int("n", 1000, "calls")
	rounds := flag.Int("rounds", 3, "rounds of each mode, alternating; the report gives medians")
	flood := flag.Int("flood", 200000, "UDP packets of the flood in each round (0: none)")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "tunshare: needs root (network namespaces, TUN devices)")
		os.Exit(1)
	}
	if *n < 1 || *n > 60000 || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "tunshare: want 1 <= -n <= 60000 and -rounds >= 1")
		os.Exit(1)
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(*n)+256 {
		lim.Cur = min(uint64(*n)+256, lim.Max)
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	fmt.Printf("tunshare: %d calls, %d rounds of each mode, flood of %d packets; kernel %s, %d CPUs\n\n",
		*n, *rounds, *flood, kernel(), runtime.NumCPU())
	res := map[string][]result{}
	for r := range *rounds {
		for _, mode := range []string{"per-call", "shared"} {
			x, err := inNewNetns(func() (result, error) { return measure(mode, *n, *flood) })
			if err != nil {
				fmt.Fprintf(os.Stderr, "tunshare: %s, round %d: %v\n", mode, r+1, err)
				os.Exit(1)
			}
			fmt.Printf("round %d %-8s %s\n", r+1, mode, x)
			res[mode] = append(res[mode], x)
		}
	}
	fmt.Println()
	fmt.Println("| mode | setup | per call | kernel Slab | kernel Percpu | kernel per call | our RSS | our heap | teardown | flood received | our CPU per packet | goroutines |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, mode := range []string{"per-call", "shared"} {
		m := median(res[mode])
		fmt.Printf("| %s | %v | %.0f µs | %+.1f MiB | %+.1f MiB | %.1f KiB | %+.1f MiB | %+.1f MiB | %v | %.0f kpps | %.2f µs | %d |\n",
			mode, m.setup.Round(time.Millisecond), float64(m.setup.Microseconds())/float64(*n),
			mib(m.slab), mib(m.percpu), float64(m.slab+m.percpu)/1024/float64(*n),
			mib(m.rss), mib(m.heap), m.teardown.Round(time.Millisecond), m.pps/1000, m.cpuPerPkt*1e6, m.goroutines)
	}
	fmt.Println()
	fmt.Printf("demux of the shared TUN, a map from destination address to call, %d calls:\n", *n)
	demux(*n)
}

// result is one round of one mode. Memory in bytes.
type result struct {
	setup, teardown time.Duration
	slab, percpu    int64
	rss, heap       int64
	pps, cpuPerPkt  float64
	received, sent  int
	goroutines      int
	threads         int // OS threads after the teardown
}

func (r result) String() string {
	return fmt.Sprintf("setup %8v  Slab %+7.1f MiB  Percpu %+6.1f MiB  RSS %+6.1f MiB  heap %+6.1f MiB  teardown %8v  flood %d/%d received, %.0f kpps, %.2f µs CPU/packet",
		r.setup.Round(time.Millisecond), mib(r.slab), mib(r.percpu), mib(r.rss), mib(r.heap), r.teardown.Round(time.Millisecond),
		r.received, r.sent, r.pps/1000, r.cpuPerPkt*1e6) + fmt.Sprintf("  threads after teardown %d", r.threads)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// median takes each figure's median over the rounds.
func median(rs []result) result {
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{
		setup:      time.Duration(med(func(r result) float64 { return float64(r.setup) })),
		teardown:   time.Duration(med(func(r result) float64 { return float64(r.teardown) })),
		slab:       int64(med(func(r result) float64 { return float64(r.slab) })),
		percpu:     int64(med(func(r result) float64 { return float64(r.percpu) })),
		rss:        int64(med(func(r result) float64 { return float64(r.rss) })),
		heap:       int64(med(func(r result) float64 { return float64(r.heap) })),
		pps:        med(func(r result) float64 { return r.pps }),
		cpuPerPkt:  med(func(r result) float64 { return r.cpuPerPkt }),
		goroutines: int(med(func(r result) float64 { return float64(r.goroutines) })),
	}
}

// calls is what a mode set up: the devices, and a reader per device.
type calls struct {
	devs     []*tap.Device
	received atomic.Int64
	wg       sync.WaitGroup
}

// measure sets up n calls in mode, floods them, and tears them down. It
// runs on a thread in a fresh network namespace.
func measure(mode string, n, flood int) (result, error) {
	var r result
	runtime.GC()
	debug.FreeOSMemory()
	slab0, pcpu0 := meminfo("Slab"), meminfo("Percpu")
	rss0, heap0 := rss(), heapInuse()
	g0 := runtime.NumGoroutine()
	c := &calls{}
	start := time.Now()
	var err error
	if mode == "per-call" {
		err = c.perCall(n)
	} else {
		err = c.shared(n)
	}
	r.setup = time.Since(start)
	if err != nil {
		c.close()
		return r, err
	}
	time.Sleep(500 * time.Millisecond) // let RCU-deferred work settle
	r.slab, r.percpu = meminfo("Slab")-slab0, meminfo("Percpu")-pcpu0
	r.rss, r.heap = rss()-rss0, heapInuse()-heap0
	r.goroutines = runtime.NumGoroutine() - g0
	if flood > 0 {
		if err := c.flood(n, flood, &r); err != nil {
			c.close()
			return r, err
		}
	}
	start = time.Now()
	c.close()
	r.teardown = time.Since(start)
	r.threads = int(procField("/proc/self/status", "Threads") >> 10)
	return r, nil
}

// perCall makes a TUN per call, as control/ppp/call does, and a reader
// goroutine for each.
func (c *calls) perCall(n int) error {
	for i := range n {
		d, err := tap.Create(tap.Config{Name: "us%d", TUN: true})
		if err != nil {
			return err
		}
		c.devs = append(c.devs, d)
		if err := tap.SetPointToPoint4(d.Name(), local, peer(i)); err != nil {
			return err
		}
		if err := tap.SetUp(d.Name()); err != nil {
			return err
		}
		c.read(d, nil)
	}
	return nil
}

// shared makes one TUN with the local address and a /32 route per peer,
// and one reader that demultiplexes by destination address.
func (c *calls) shared(n int) error {
	d, err := tap.Create(tap.Config{Name: "us%d", TUN: true})
	if err != nil {
		return err
	}
	c.devs = append(c.devs, d)
	// The shared TUN's own address: point-to-point to the first peer,
	// which also gives it its /32 route.
	if err := tap.SetPointToPoint4(d.Name(), local, peer(0)); err != nil {
		return err
	}
	if err := tap.SetUp(d.Name()); err != nil {
		return err
	}
	idx, err := ifindex(d.Name())
	if err != nil {
		return err
	}
	nl, err := newRouteSocket()
	if err != nil {
		return err
	}
	defer unix.Close(nl)
	byDst := make(map[[4]byte]*call, n)
	byDst[peer(0).As4()] = &call{}
	for i := 1; i < n; i++ {
		if err := addRoute(nl, peer(i), idx); err != nil {
			return err
		}
		byDst[peer(i).As4()] = &call{}
	}
	c.read(d, byDst)
	return nil
}

// call stands for a call's state the demux finds.
type call struct{ packets atomic.Int64 }

// read starts a reader of d; with byDst, the shared TUN's, it looks up
// each packet's call by its destination address.
func (c *calls) read(d *tap.Device, byDst map[[4]byte]*call) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		q := d.Queues()[0]
		bufs := [][]byte{make([]byte, 4+65535)}
		sizes := []int{0}
		for {
			k, err := q.Read(bufs, sizes, 4)
			if err != nil {
				return
			}
			for i := range k {
				p := bufs[i][4 : 4+sizes[i]]
				if len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_UDP {
					continue // not the flood: the kernel's own (IPv6) packets
				}
				if byDst != nil {
					cl := byDst[[4]byte(p[16:20])]
					if cl == nil {
						continue
					}
					cl.packets.Add(1)
				}
				c.received.Add(1)
			}
		}
	}()
}

// close closes every device at once, each on a goroutine of its own, as
// the calls of control/ppp/call do when a daemon stops.
func (c *calls) close() {
	var wg sync.WaitGroup
	for _, d := range c.devs {
		wg.Add(1)
		go func() { defer wg.Done(); d.Close() }()
	}
	wg.Wait()
	c.wg.Wait()
}

// flood sends count UDP datagrams of 64 bytes, one peer after the other,
// from a socket in this namespace, and counts what the readers get: the
// kernel routes each to the peer's TUN (or the shared one). The rate is
// over the time from the first send to the last packet read.
func (c *calls) flood(n, count int, r *result) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("flood socket: %w", err)
	}
	defer unix.Close(fd)
	payload := make([]byte, 64)
	sa := &unix.SockaddrInet4{Port: port}
	var ru0, ru1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	before := c.received.Load()
	start := time.Now()
	sent := 0
	for i := range count {
		sa.Addr = peer(i % n).As4()
		if unix.Sendto(fd, payload, unix.MSG_DONTWAIT, sa) == nil {
			sent++
		}
	}
	// Drained when the count has not moved for 100 ms.
	last, lastAt := c.received.Load(), time.Now()
	for time.Since(lastAt) < 100*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
		if v := c.received.Load(); v != last {
			last, lastAt = v, time.Now()
		}
	}
	el := lastAt.Sub(start)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	r.sent, r.received = sent, int(c.received.Load()-before)
	r.pps = float64(r.received) / el.Seconds()
	cpu := time.Duration(unix.TimevalToNsec(ru1.Utime)-unix.TimevalToNsec(ru0.Utime)) +
		time.Duration(unix.TimevalToNsec(ru1.Stime)-unix.TimevalToNsec(ru0.Stime))
	if r.received > 0 {
		// The process's CPU: the sender's system calls (the same in both
		// modes) and the readers'.
		r.cpuPerPkt = cpu.Seconds() / float64(r.received)
	}
	return nil
}

// ---- the demux alone --------------------------------------------------

// demux benchmarks the shared TUN's per-packet lookup: the destination
// address of an IPv4 header to the call, over n calls, packets to
// random calls.
func demux(n int) {
	byDst := make(map[[4]byte]*call, n)
	byU32 := make(map[uint32]*call, n)
	for i := range n {
		byDst[peer(i).As4()] = &call{}
		byU32[binary.BigEndian.Uint32(peer(i).AsSlice())] = &call{}
	}
	const k = 4096
	pkts := make([][]byte, k)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pkts {
		p := make([]byte, 64)
		p[0] = 0x45
		a := peer(rng.IntN(n)).As4()
		copy(p[16:20], a[:])
		pkts[i] = p
	}
	for _, b := range []struct {
		name string
		fn   func(b *testing.B)
	}{
		{"map[[4]byte]*call", func(b *testing.B) {
			b.ReportAllocs()
			var hit int
			for i := 0; b.Loop(); i++ {
				if byDst[[4]byte(pkts[i&(k-1)][16:20])] != nil {
					hit++
				}
			}
			runtime.KeepAlive(hit)
		}},
		{"map[uint32]*call", func(b *testing.B) {
			b.ReportAllocs()
			var hit int
			for i := 0; b.Loop(); i++ {
				if byU32[binary.BigEndian.Uint32(pkts[i&(k-1)][16:20])] != nil {
					hit++
				}
			}
			runtime.KeepAlive(hit)
		}},
	} {
		r := testing.Benchmark(b.fn)
		fmt.Printf("  %-20s %6.1f ns/op  %d B/op  %d allocs/op\n", b.name, float64(r.NsPerOp()), r.AllocedBytesPerOp(), r.AllocsPerOp())
	}
}

// ---- the system --------------------------------------------------------

// inNewNetns runs fn on a locked thread in a new network namespace. The
// thread is never unlocked, so it ends with the goroutine and the
// namespace with everything in it.
func inNewNetns(fn func() (result, error)) (result, error) {
	type out struct {
		r   result
		err error
	}
	ch := make(chan out, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- out{err: fmt.Errorf("unshare: %w", err)}
			return
		}
		if err := tap.SetUp("lo"); err != nil {
			ch <- out{err: err}
			return
		}
		r, err := fn()
		ch <- out{r, err}
	}()
	o := <-ch
	return o.r, o.err
}

// ifindex is the interface index of name, asked over netlink from this
// thread (so in its namespace; /sys shows the namespace it was mounted in).
func ifindex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}

func newRouteSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("netlink bind: %w", err)
	}
	return fd, nil
}

var seq uint32

// addRoute adds dst/32 via interface idx ("ip route add DST/32 dev IF")
// and waits for the kernel's answer.
func addRoute(fd int, dst netip.Addr, idx int) error {
	seq++
	attr := func(b []byte, typ uint16, val []byte) []byte {
		var h [4]byte
		binary.NativeEndian.PutUint16(h[0:], uint16(4+len(val)))
		binary.NativeEndian.PutUint16(h[2:], typ)
		b = append(b, h[:]...)
		b = append(b, val...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	msg := make([]byte, unix.SizeofNlMsghdr, 64)
	rt := unix.RtMsg{Family: unix.AF_INET, Dst_len: 32, Table: unix.RT_TABLE_MAIN,
		Protocol: unix.RTPROT_STATIC, Scope: unix.RT_SCOPE_LINK, Type: unix.RTN_UNICAST}
	msg = append(msg, (*[unix.SizeofRtMsg]byte)(unsafe.Pointer(&rt))[:]...)
	a := dst.As4()
	msg = attr(msg, unix.RTA_DST, a[:])
	var oif [4]byte
	binary.NativeEndian.PutUint32(oif[:], uint32(idx))
	msg = attr(msg, unix.RTA_OIF, oif[:])
	h := (*unix.NlMsghdr)(unsafe.Pointer(&msg[0]))
	*h = unix.NlMsghdr{Len: uint32(len(msg)), Type: unix.RTM_NEWROUTE,
		Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK | unix.NLM_F_CREATE | unix.NLM_F_EXCL, Seq: seq}
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("route %s: %w", dst, err)
	}
	buf := make([]byte, 4096)
	k, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("route %s: %w", dst, err)
	}
	ms, err := syscall.ParseNetlinkMessage(buf[:k])
	if err != nil || len(ms) == 0 || ms[0].Header.Type != unix.NLMSG_ERROR || len(ms[0].Data) < 4 {
		return fmt.Errorf("route %s: unexpected answer", dst)
	}
	if e := int32(binary.NativeEndian.Uint32(ms[0].Data)); e != 0 {
		return fmt.Errorf("route %s: %w", dst, unix.Errno(-e))
	}
	return nil
}

// meminfo is a /proc/meminfo field in bytes.
func meminfo(field string) int64 {
	return procField("/proc/meminfo", field)
}

// rss is our VmRSS in bytes.
func rss() int64 { return procField("/proc/self/status", "VmRSS") }

func procField(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, val, ok := strings.Cut(line, ":"); ok && name == field {
			f := strings.Fields(val)
			v, _ := strconv.ParseInt(f[0], 10, 64)
			return v << 10
		}
	}
	return 0
}

func heapInuse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
