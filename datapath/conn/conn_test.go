package conn

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/datapath/internal/captest"
	"golang.org/x/sys/unix"
)

func pair(t testing.TB, addr string) (*Conn, *Conn) {
	t.Helper()
	a, err := Listen(UDP, netip.MustParseAddrPort(addr), Options{})
	if err != nil {
		t.Fatalf("no loopback socket: %v", err)
	}
	b, err := Listen(UDP, netip.MustParseAddrPort(addr), Options{UDP6ZeroCsumRx: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestBatchRoundTrip(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			a, b := pair(t, addr)
			sb := a.NewBatch(4)
			for i := range sb.Msgs {
				sb.Msgs[i].Buf = bytes.Repeat([]byte{byte(i + 1)}, 100+i)
				sb.Msgs[i].Addr = b.LocalAddr()
			}
			if n, err := a.Send(sb, 4); n != 4 || err != nil {
				t.Fatalf("Send = %d, %v", n, err)
			}
			rb := b.NewBatch(8)
			for i := range rb.Msgs {
				rb.Msgs[i].Buf = make([]byte, 64) // the last datagrams do not fit
			}
			got := 0
			for got < 4 {
				n, err := b.Recv(rb)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					m := rb.Msgs[i]
					if m.Addr != a.LocalAddr() || !m.Truncated || m.N != 64 || m.Buf[0] != byte(got+1) {
						t.Fatalf("msg %d: from %v truncated %v len %d first %d", got, m.Addr, m.Truncated, m.N, m.Buf[0])
					}
					got++
				}
			}
		})
	}
}

func TestClose(t *testing.T) {
	a, _ := pair(t, "127.0.0.1:0")
	rb := a.NewBatch(1)
	rb.Msgs[0].Buf = make([]byte, 10)
	done := make(chan error)
	go func() {
		_, err := a.Recv(rb)
		done <- err
	}()
	a.Close()
	if err := <-done; !IsClosed(err) {
		t.Fatalf("Recv after Close: %v", err)
	}
}

// BenchmarkSendRecv moves batches of 32 datagrams over loopback: the
// system calls of both pumps, which must not allocate.
func BenchmarkSendRecv(b *testing.B) {
	a, c := pair(b, "127.0.0.1:0")
	const n = 32
	sb, rb := a.NewBatch(n), c.NewBatch(n)
	for i := 0; i < n; i++ {
		sb.Msgs[i].Buf = make([]byte, 1400)
		sb.Msgs[i].Addr = c.LocalAddr()
		rb.Msgs[i].Buf = make([]byte, 2048)
	}
	b.ReportAllocs()
	b.SetBytes(n * 1400)
	for i := 0; i < b.N; i++ {
		if _, err := a.Send(sb, n); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < n; {
			k, err := c.Recv(rb)
			if err != nil {
				b.Fatal(err)
			}
			got += k
		}
	}
}

func TestGSOGRO(t *testing.T) {
	a, err := Listen(UDP, netip.MustParseAddrPort("127.0.0.1:0"), Options{Offload: true, UDPCsum: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen(UDP, netip.MustParseAddrPort("127.0.0.1:0"), Options{Offload: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !a.GSO() || !b.GRO() {
		skipUnlessCI(t, "kernel without UDP GSO/GRO (gso %v gro %v)", a.GSO(), b.GRO())
	}
	// Five datagrams of 100 bytes and one of 30 in one send.
	payload := make([]byte, 530)
	for i := range payload {
		payload[i] = byte(i / 100)
	}
	sb := a.NewBatch(1)
	sb.Msgs[0] = Msg{Buf: payload, Addr: b.LocalAddr(), GSOSize: 100}
	if n, err := a.Send(sb, 1); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	rb := b.NewBatch(8)
	for i := range rb.Msgs {
		rb.Msgs[i].Buf = make([]byte, 65536)
	}
	var got []byte
	for len(got) < len(payload) {
		n, err := b.Recv(rb)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			m := rb.Msgs[i]
			if m.GSOSize != 0 && m.GSOSize != 100 {
				t.Fatalf("GRO segment size %d, want 100", m.GSOSize)
			}
			if m.GSOSize == 0 && m.N > 100 {
				t.Fatalf("datagram of %d bytes without a segment size", m.N)
			}
			got = append(got, m.Buf[:m.N]...)
		}
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload differs")
	}
	// Without checksums the kernel refuses GSO, so the socket says so.
	c, err := Listen(UDP, netip.MustParseAddrPort("127.0.0.1:0"), Options{Offload: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.GSO() {
		t.Fatal("GSO offered on a socket with IPv4 checksums off")
	}
}

// TestGSORefusedFallsBack makes the kernel refuse a GSO send (more segments
// than it takes in one send) and checks that the socket turns GSO off,
// reports it once, and still sends the run, as single datagrams, and the
// rest of the batch.
func TestGSORefusedFallsBack(t *testing.T) {
	a, err := Listen(UDP, netip.MustParseAddrPort("127.0.0.1:0"), Options{Offload: true, UDPCsum: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !a.GSO() {
		skipUnlessCI(t, "no UDP GSO on this kernel")
	}
	r, err := Listen(UDP, netip.MustParseAddrPort("127.0.0.1:0"), Options{BufBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := a.NewBatch(2)
	// 200 segments of 10 bytes: past UDP_MAX_SEGMENTS (64 or 128).
	const segs = 200
	b.Msgs[0] = Msg{Buf: make([]byte, segs*10), Addr: r.LocalAddr(), GSOSize: 10}
	b.Msgs[1] = Msg{Buf: []byte("after"), Addr: r.LocalAddr()}
	n, err := a.Send(b, 2)
	var refused *ErrGSORefused
	if n != 2 || !errors.As(err, &refused) || a.GSO() || b.Msgs[0].Err != nil {
		t.Fatalf("sent %d, err %v, GSO %v, message error %v: want 2, ErrGSORefused, false, nil", n, err, a.GSO(), b.Msgs[0].Err)
	}
	// A message still marked for GSO is refused again, and sent split,
	// never as one datagram of the whole run.
	if n, err := a.Send(b, 1); n != 1 || err == nil || errors.As(err, &refused) {
		t.Fatalf("GSO message after fallback: sent %d, err %v; want it sent split, with the kernel's error", n, err)
	}
	got := recvSizes(t, r, 2*segs+1)
	want := map[int]int{10: 2 * segs, 5: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received datagrams of sizes %v, want %v", got, want)
	}
}

// recvSizes receives n datagrams on r and counts them by size.
func recvSizes(t *testing.T, r *Conn, n int) map[int]int {
	t.Helper()
	rb := r.NewBatch(16)
	for i := range rb.Msgs {
		rb.Msgs[i].Buf = make([]byte, 65536)
	}
	got := map[int]int{}
	deadline := time.Now().Add(5 * time.Second)
	_ = r.f.SetReadDeadline(deadline)
	for k := 0; k < n; {
		c, err := r.Recv(rb)
		if err != nil {
			t.Fatalf("after %d of %d datagrams (%v): %v", k, n, got, err)
		}
		for _, m := range rb.Msgs[:c] {
			got[m.N]++
		}
		k += c
	}
	return got
}

// TestSendRefusedMarked sends a batch with a datagram too long for UDP in
// the middle: it alone is marked refused, the others go out, and the
// socket still receives (sendmmsg leaves no error pending on it).
func TestSendRefusedMarked(t *testing.T) {
	a, r := pair(t, "127.0.0.1:0")
	b := a.NewBatch(3)
	b.Msgs[0] = Msg{Buf: make([]byte, 100), Addr: r.LocalAddr()}
	b.Msgs[1] = Msg{Buf: make([]byte, 70000), Addr: r.LocalAddr()}
	b.Msgs[2] = Msg{Buf: make([]byte, 200), Addr: r.LocalAddr()}
	n, err := a.Send(b, 3)
	if n != 2 || err != unix.EMSGSIZE || b.Msgs[0].Err != nil || b.Msgs[1].Err != unix.EMSGSIZE || b.Msgs[2].Err != nil {
		t.Fatalf("Send = %d, %v; message errors %v %v %v", n, err, b.Msgs[0].Err, b.Msgs[1].Err, b.Msgs[2].Err)
	}
	if got := recvSizes(t, r, 2); got[100] != 1 || got[200] != 1 {
		t.Fatalf("received %v", got)
	}
	// a itself receives: the EMSGSIZE of message 1 is not its error.
	back := r.NewBatch(1)
	back.Msgs[0] = Msg{Buf: make([]byte, 10), Addr: a.LocalAddr()}
	if n, err := r.Send(back, 1); n != 1 || err != nil {
		t.Fatalf("send back: %d, %v", n, err)
	}
	if got := recvSizes(t, a, 1); got[10] != 1 {
		t.Fatalf("received %v", got)
	}
}

// TestGSOSegmentAbovePathMTU sends a UDP GSO run whose segments exceed
// the device MTU (loopback at 1500 in a network namespace of its own): the
// kernel refuses it, and Send sends the datagrams one by one, which the
// kernel fragments, keeping GSO on.
func TestGSOSegmentAbovePathMTU(t *testing.T) {
	if os.Geteuid() != 0 {
		skipUnlessCI(t, "needs root for a network namespace")
	}
	var a, r *Conn
	inOwnNetns(t, 1500, func() error {
		var err error
		if a, err = Listen(UDP, netip.MustParseAddrPort("127.0.0.1:0"), Options{Offload: true, UDPCsum: true}); err != nil {
			return err
		}
		if r, err = Listen(UDP, netip.MustParseAddrPort("127.0.0.1:0"), Options{BufBytes: 4 << 20}); err != nil {
			a.Close()
			return err
		}
		return nil
	})
	defer a.Close()
	defer r.Close()
	if !a.GSO() {
		skipUnlessCI(t, "no UDP GSO on this kernel")
	}
	b := a.NewBatch(2)
	// Two messages, one of parts that do not line up with the segments.
	b.Msgs[0] = Msg{Parts: [][]byte{make([]byte, 1000), make([]byte, 3000), make([]byte, 1500)}, Addr: r.LocalAddr(), GSOSize: 2000}
	b.Msgs[1] = Msg{Buf: make([]byte, 4000), Addr: r.LocalAddr(), GSOSize: 2000}
	if n, err := a.Send(b, 2); n != 2 || err != nil || !a.GSO() {
		t.Fatalf("Send = %d, %v, GSO %v: want 2, nil, true", n, err, a.GSO())
	}
	if got := recvSizes(t, r, 5); got[2000] != 4 || got[1500] != 1 {
		t.Fatalf("received %v, want 4 of 2000 bytes and 1 of 1500", got)
	}
}

// inOwnNetns runs fn (which opens sockets) on a thread in a new network
// namespace whose loopback is up with the given MTU, and fails the test if
// it cannot. The thread is never handed back: it ends with its goroutine,
// and the namespace with the last socket in it.
func inOwnNetns(t *testing.T, mtu int, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			ifr, err := unix.NewIfreq("lo")
			if err != nil {
				return err
			}
			ifr.SetUint32(uint32(mtu))
			if err := unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr); err != nil {
				return fmt.Errorf("SIOCSIFMTU lo: %w", err)
			}
			ifr.SetUint16(unix.IFF_UP)
			if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
				return fmt.Errorf("SIOCSIFFLAGS lo: %w", err)
			}
			return fn()
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatalf("in a new network namespace: %v", err)
	}
}

// skipUnlessCI skips a test the kernel cannot run, or fails it when CI is
// set: the project's CI machines have UDP GSO and GRO, so a green run there
// means these tests ran.
func skipUnlessCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// TestListenFailureClosesOnce checks that when Listen fails after wrapping
// its socket in an os.File, it closes the descriptor once: a second close
// would close whatever another goroutine had opened on the number since.
func TestListenFailureClosesOnce(t *testing.T) {
	other, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	reused := -1
	syscallConn = func(f *os.File) (syscall.RawConn, error) {
		// Free the socket's number as Listen's own close would, and let
		// "another goroutine" take it before Listen goes on.
		fd := int(f.Fd())
		f.Close()
		if err := unix.Dup3(int(other.Fd()), fd, unix.O_CLOEXEC); err != nil {
			t.Errorf("dup3: %v", err)
		}
		reused = fd
		return nil, errors.New("injected failure")
	}
	defer func() { syscallConn = (*os.File).SyscallConn }()
	if _, err := Listen(UDP, netip.MustParseAddrPort("127.0.0.1:0"), Options{}); err == nil {
		t.Fatal("Listen succeeded despite the injected failure")
	}
	if reused < 0 {
		t.Fatal("the injected failure was not reached")
	}
	defer unix.Close(reused)
	if _, err := unix.FcntlInt(uintptr(reused), unix.F_GETFD, 0); err != nil {
		t.Fatalf("descriptor %d, opened by someone else after Listen freed it, was closed again: %v", reused, err)
	}
}

// TestWithoutCapabilities opens sockets as a daemon without CAP_NET_RAW and
// CAP_NET_ADMIN would: a raw IP socket fails naming CAP_NET_RAW; a UDP
// socket opens, its buffers set with the plain options and marked capped.
func TestWithoutCapabilities(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	captest.Without(t, func() {
		_, err := Listen(IP, lo, Options{})
		if err == nil || !strings.Contains(err.Error(), "operation not permitted (needs CAP_NET_RAW)") {
			t.Errorf("Listen ip without CAP_NET_RAW: %v, want an error naming CAP_NET_RAW", err)
		}
		c, err := Listen(UDP, lo, Options{BufBytes: 4 << 20})
		if err != nil {
			t.Errorf("Listen udp without CAP_NET_ADMIN: %v", err)
			return
		}
		defer c.Close()
		if !c.BufCapped() {
			t.Error("buffers set without CAP_NET_ADMIN: BufCapped false, want true")
		}
	}, unix.CAP_NET_RAW, unix.CAP_NET_ADMIN)
	c, err := Listen(UDP, lo, Options{BufBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.BufCapped() {
		t.Error("buffers set with CAP_NET_ADMIN: BufCapped true, want false")
	}
}

// TestLowPortWithoutBindService binds a UDP socket to a port below
// net.ipv4.ip_unprivileged_port_start without CAP_NET_BIND_SERVICE: the
// error names the capability.
func TestLowPortWithoutBindService(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil || strings.TrimSpace(string(b)) == "0" {
		t.Skipf("every port is unprivileged here (%q, %v)", b, err)
	}
	captest.Without(t, func() {
		c, err := Listen(UDP, netip.MustParseAddrPort("127.0.0.1:1"), Options{})
		if err == nil {
			c.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "permission denied (ports below net.ipv4.ip_unprivileged_port_start need CAP_NET_BIND_SERVICE)") {
			t.Errorf("Listen udp 127.0.0.1:1 without CAP_NET_BIND_SERVICE: %v, want an error naming the capability", err)
		}
	}, unix.CAP_NET_BIND_SERVICE)
}

func TestWriteTo(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			a, b := pair(t, addr)
			if err := a.WriteTo([]byte("control"), b.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			rb := b.NewBatch(1)
			rb.Msgs[0].Buf = make([]byte, 64)
			n, err := b.Recv(rb)
			if err != nil || n != 1 {
				t.Fatalf("Recv = %d, %v", n, err)
			}
			m := rb.Msgs[0]
			if got := string(m.Buf[m.Off:m.N]); got != "control" || m.Addr != a.LocalAddr() {
				t.Fatalf("got %q from %v", got, m.Addr)
			}
			a.Close()
			if err := a.WriteTo([]byte("x"), b.LocalAddr()); !IsClosed(err) {
				t.Fatalf("WriteTo on a closed socket: %v", err)
			}
		})
	}
}
