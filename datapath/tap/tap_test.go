package tap

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/ul2tp/ul2tp/datapath/internal/captest"
	"golang.org/x/sys/unix"
)

// requireTAP skips t (fails it with CI set) unless it may create TAP devices.
func requireTAP(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root to create TAP devices"
	} else if _, err := os.Stat("/dev/net/tun"); err != nil {
		why = "needs /dev/net/tun: " + err.Error()
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// inNetns runs f on a thread in a network namespace of its own, so the
// devices f makes never appear on the host. The thread is not unlocked, so
// it exits with the goroutine and the namespace goes with it.
func inNetns(t *testing.T, f func() error) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestOffloadVnetLE checks that a device with a virtio_net_hdr reads it
// little-endian, the order package offload writes, whatever the host's order.
func TestOffloadVnetLE(t *testing.T) {
	requireTAP(t)
	inNetns(t, func() error {
		d, err := Create(Config{Name: "ul2tptest%d", Queues: 2, Offload: true})
		if err != nil {
			return err
		}
		defer d.Close()
		for i, q := range d.Queues() {
			var le int32
			var e unix.Errno
			err := q.rc.Control(func(fd uintptr) {
				_, _, e = unix.Syscall(unix.SYS_IOCTL, fd, unix.TUNGETVNETLE, uintptr(unsafe.Pointer(&le)))
			})
			if err != nil || e != 0 {
				t.Errorf("queue %d: TUNGETVNETLE: %v %v", i, err, e)
				continue
			}
			if le != 1 {
				t.Errorf("queue %d: TUNGETVNETLE = %d, want 1 (virtio_net_hdr little-endian)", i, le)
			}
		}
		return nil
	})
}

// countingLender lends one buffer and counts lends and returns.
type countingLender struct {
	buf            [][]byte
	sizes          []int
	lent, returned atomic.Int32
}

func (l *countingLender) Lend() ([][]byte, []int) { l.lent.Add(1); return l.buf, l.sizes }
func (l *countingLender) Unlend()                 { l.returned.Add(1) }

// TestReadLentHoldsNoBuffersWhileWaiting checks that ReadLent gives its
// buffers back while the device has no frame, and keeps them lent when it
// returns one.
func TestReadLentHoldsNoBuffersWhileWaiting(t *testing.T) {
	requireTAP(t)
	inNetns(t, func() error {
		d, err := Create(Config{Name: "ul2tptest%d"})
		if err != nil {
			return err
		}
		defer d.Close()
		// No IPv6 on the device: its MLD reports and router solicitations
		// would be read before the test's frame.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+d.Name()+"/disable_ipv6", []byte("1"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := SetUp(d.Name()); err != nil {
			return err
		}
		l := &countingLender{buf: [][]byte{make([]byte, 2048)}, sizes: make([]int, 1)}
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			n, err := d.Queues()[0].ReadLent(l, 10)
			done <- result{n, err}
		}()
		for i := 0; l.lent.Load() == 0 || l.lent.Load() != l.returned.Load(); i++ {
			if i == 1000 {
				return fmt.Errorf("reader never waited with its buffers given back: lent %d, returned %d",
					l.lent.Load(), l.returned.Load())
			}
			time.Sleep(time.Millisecond)
		}
		frame := append(bytes.Repeat([]byte{0xff}, 6), bytes.Repeat([]byte{0x02}, 54)...)
		if err := sendFrame(d.Name(), frame); err != nil {
			return err
		}
		r := <-done
		if r.err != nil || r.n != 1 {
			return fmt.Errorf("ReadLent = %d, %v; want 1 frame", r.n, r.err)
		}
		if got := l.lent.Load() - l.returned.Load(); got != 1 {
			return fmt.Errorf("%d buffer sets held after a read with a frame, want 1", got)
		}
		if !bytes.Equal(l.buf[0][10:10+l.sizes[0]], frame) {
			return fmt.Errorf("read %x, want %x", l.buf[0][10:10+l.sizes[0]], frame)
		}
		return nil
	})
}

// sendFrame makes the kernel send frame out of the interface, so its TAP
// reads it.
func sendFrame(ifname string, frame []byte) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6})
}

// TestMAC checks that Create gives the device Config.MAC, that SetMAC
// changes it and MAC reads it back, and that the kernel's refusal of a
// multicast address comes back as an error.
func TestMAC(t *testing.T) {
	requireTAP(t)
	want := net.HardwareAddr{0x02, 0x12, 0x34, 0x56, 0x78, 0x9a}
	inNetns(t, func() error {
		d, err := Create(Config{Name: "ul2tptest%d", MAC: want})
		if err != nil {
			return err
		}
		defer d.Close()
		got, err := MAC(d.Name())
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("after Create: address %v, want %v", got, want)
		}
		next := net.HardwareAddr{0x06, 0, 0, 0, 0, 1}
		if err := SetMAC(d.Name(), next); err != nil {
			return err
		}
		if got, err := MAC(d.Name()); err != nil || !bytes.Equal(got, next) {
			t.Errorf("after SetMAC: address %v (%v), want %v", got, err, next)
		}
		if err := SetMAC(d.Name(), net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}); err == nil {
			t.Errorf("SetMAC accepted a multicast address")
		}
		return nil
	})
}

// TestErrorHints checks that a refusal for want of a capability or of
// access to /dev/net/tun says what is missing, and that other errors are
// left alone; errors.Is still finds the errno.
func TestErrorHints(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
		is   error
	}{
		{capHint(unix.EPERM, "CAP_NET_ADMIN"), "operation not permitted (needs CAP_NET_ADMIN)", unix.EPERM},
		{capHint(fmt.Errorf("x: %w", unix.EPERM), "CAP_NET_ADMIN"), "x: operation not permitted (needs CAP_NET_ADMIN)", unix.EPERM},
		{capHint(unix.EBUSY, "CAP_NET_ADMIN"), unix.EBUSY.Error(), unix.EBUSY},
		{accessHint(unix.EACCES), "permission denied (the daemon's user needs read and write access to it; distributions ship it mode 0666)", unix.EACCES},
		{accessHint(unix.ENOENT), "no such file or directory (no device node: in a container, give it the device with docker run --device /dev/net/tun)", unix.ENOENT},
		{accessHint(unix.EPERM), "operation not permitted (the device cgroup refuses it: in a container, give it the device with docker run --device /dev/net/tun)", unix.EPERM},
		{accessHint(unix.ENODEV), "no such device (the kernel has no TUN driver: modprobe tun)", unix.ENODEV},
		{accessHint(unix.EIO), unix.EIO.Error(), unix.EIO},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, tc.is) {
			t.Errorf("%q: errors.Is(%v) false", tc.err, tc.is)
		}
	}
}

// TestWithoutNetAdmin creates a TAP and sets an MTU as a daemon without
// CAP_NET_ADMIN would: each fails with an error naming the capability.
func TestWithoutNetAdmin(t *testing.T) {
	requireTAP(t)
	captest.Without(t, func() {
		d, err := Create(Config{Name: "ul2tpcap%d"})
		if err == nil {
			d.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "create TAP ul2tpcap%d: operation not permitted (needs CAP_NET_ADMIN)") {
			t.Errorf("Create without CAP_NET_ADMIN: %v, want an error naming CAP_NET_ADMIN", err)
		}
		err = SetMTU("lo", 65000)
		if err == nil || !strings.Contains(err.Error(), "(needs CAP_NET_ADMIN)") {
			t.Errorf("SetMTU without CAP_NET_ADMIN: %v, want an error naming CAP_NET_ADMIN", err)
		}
		err = CanCreate()
		if err == nil || !strings.Contains(err.Error(), "create TUN/TAP devices: operation not permitted (needs CAP_NET_ADMIN") {
			t.Errorf("CanCreate without CAP_NET_ADMIN: %v, want an error naming CAP_NET_ADMIN", err)
		}
	}, unix.CAP_NET_ADMIN)
}

// TestCanCreate: a process that creates TAPs (the tests' root) is told it
// can.
func TestCanCreate(t *testing.T) {
	requireTAP(t)
	if err := CanCreate(); err != nil {
		t.Errorf("CanCreate as root: %v", err)
	}
}

// TestTUNPointToPoint makes a TUN device with a point-to-point IPv4
// address: a datagram to the peer address comes out of it as a bare IPv4
// packet (no Ethernet header, no packet information).
func TestTUNPointToPoint(t *testing.T) {
	requireTAP(t)
	inNetns(t, func() error {
		d, err := Create(Config{Name: "tpp%d", TUN: true, MTU: 1400})
		if err != nil {
			return err
		}
		defer d.Close()
		local, peer := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
		p, err := helloThroughTUN(d, local, peer, 0)
		if err != nil {
			return err
		}
		if p[0]>>4 != 4 || !bytes.Equal(p[12:16], local.AsSlice()) || !bytes.Equal(p[16:20], peer.AsSlice()) || !bytes.HasSuffix(p, []byte("hello")) {
			return fmt.Errorf("packet % x: want IPv4 %s -> %s with the datagram", p, local, peer)
		}
		if _, err := Create(Config{Name: "x%d", TUN: true, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}); err == nil {
			return errors.New("a TUN with a MAC was created")
		}
		return nil
	})
}

// helloThroughTUN gives TUN d the IPv4 point-to-point addresses local and
// peer, brings it up, sends a "hello" datagram to peer and returns the
// first IPv4 packet read from d (the kernel's own IPv6 packets skipped),
// with the skip bytes before it (the virtio_net_hdr of a TUN with one).
func helloThroughTUN(d *Device, local, peer netip.Addr, skip int) ([]byte, error) {
	if err := SetPointToPoint4(d.Name(), local, peer); err != nil {
		return nil, err
	}
	if err := SetUp(d.Name()); err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: peer.AsSlice(), Port: 9})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		return nil, err
	}
	bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
	var p []byte
	for range 10 {
		n, err := d.Queues()[0].Read(bufs, sizes, 4)
		if err != nil || n != 1 {
			return nil, fmt.Errorf("read %d packets: %v", n, err)
		}
		if p = bufs[0][4 : 4+sizes[0]]; len(p) > skip && p[skip]>>4 == 4 {
			break
		}
	}
	return p, nil
}

// TestTUNOffload makes a TUN device with a virtio_net_hdr and offloads: a
// datagram to the peer address comes out of it behind the header, as a
// bare IPv4 packet, with its UDP checksum left to us (NEEDS_CSUM, counted
// from the IP header); a packet written behind a header goes in.
func TestTUNOffload(t *testing.T) {
	requireTAP(t)
	inNetns(t, func() error {
		d, err := Create(Config{Name: "tof%d", TUN: true, MTU: 1400, Offload: true})
		if err != nil {
			return err
		}
		defer d.Close()
		if !d.VnetHdr() || !d.Offloads() {
			return fmt.Errorf("vnet header %v, offloads %v: want both", d.VnetHdr(), d.Offloads())
		}
		local, peer := netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2")
		b, err := helloThroughTUN(d, local, peer, 10)
		if err != nil {
			return err
		}
		if len(b) < 10+28 {
			return fmt.Errorf("read % x: too short", b)
		}
		vh, p := b[:10], b[10:]
		if p[0]>>4 != 4 || !bytes.Equal(p[16:20], peer.AsSlice()) || !bytes.HasSuffix(p, []byte("hello")) {
			return fmt.Errorf("packet % x: want IPv4 to %s with the datagram", p, peer)
		}
		// flags NEEDS_CSUM, no GSO, csum_start 20 (the UDP header), offset 6.
		if vh[0]&1 == 0 || vh[1] != 0 || vh[6] != 20 || vh[7] != 0 || vh[8] != 6 {
			return fmt.Errorf("virtio_net_hdr % x: want NEEDS_CSUM at 20+6", vh)
		}
		return nil
	})
}

// TestTUNPointToPoint6 gives a TUN device PPP's kind of IPv6 link-local
// address, with the kernel's own turned off: the interface has exactly
// that link-local address, and a datagram to the peer's comes out of the
// TUN as a bare IPv6 packet from ours.
func TestTUNPointToPoint6(t *testing.T) {
	requireTAP(t)
	inNetns(t, func() error {
		d, err := Create(Config{Name: "tp6%d", TUN: true, MTU: 1400})
		if err != nil {
			return err
		}
		defer d.Close()
		local, peer := netip.MustParseAddr("fe80::1:2:3:4"), netip.MustParseAddr("fe80::5:6:7:8")
		if err := SetNoLinkLocal(d.Name()); err != nil {
			return err
		}
		if err := SetPointToPoint6(d.Name(), local, peer); err != nil {
			return err
		}
		if err := SetPointToPoint6(d.Name(), local, peer); err != nil {
			return fmt.Errorf("setting the same address again: %w", err)
		}
		if err := SetUp(d.Name()); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(d.Name())
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		if len(addrs) != 1 || !strings.HasPrefix(addrs[0].String(), local.String()+"/") {
			return fmt.Errorf("addresses %v: want only %s", addrs, local)
		}
		c, err := net.DialUDP("udp6", nil, &net.UDPAddr{IP: peer.AsSlice(), Port: 9, Zone: d.Name()})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			return err
		}
		bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
		var p []byte
		for range 10 { // skip anything else the kernel sends (MLD)
			n, err := d.Queues()[0].Read(bufs, sizes, 4)
			if err != nil || n != 1 {
				return fmt.Errorf("read %d packets: %v", n, err)
			}
			if p = bufs[0][4 : 4+sizes[0]]; len(p) >= 40 && p[0]>>4 == 6 && p[6] == unix.IPPROTO_UDP {
				break
			}
		}
		l, r := local.As16(), peer.As16()
		if len(p) < 40 || p[0]>>4 != 6 || !bytes.Equal(p[8:24], l[:]) || !bytes.Equal(p[24:40], r[:]) || !bytes.HasSuffix(p, []byte("hello")) {
			return fmt.Errorf("packet % x: want IPv6 %s -> %s with the datagram", p, local, peer)
		}
		if err := SetPointToPoint6(d.Name(), netip.MustParseAddr("10.0.0.1"), peer); err == nil {
			return errors.New("an IPv4 address was taken as IPv6")
		}
		if err := SetPointToPoint6("nosuch0", local, peer); err == nil || !strings.Contains(err.Error(), "nosuch0") {
			return fmt.Errorf("missing interface: %v", err)
		}
		return nil
	})
}
