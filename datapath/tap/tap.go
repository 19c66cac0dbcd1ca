// Package tap opens Linux TAP devices through /dev/net/tun and moves
// Ethernet frames in and out of them in batches, on the caller's buffers.
//
// It opens the device itself with golang.org/x/sys/unix rather than through
// github.com/songgao/water because the datapath needs IFF_MULTI_QUEUE (one
// file descriptor per queue) and, later, IFF_VNET_HDR, which water lacks.
// It knows nothing of L2TP.
package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Config says how to create a device.
type Config struct {
	// Name is the interface name; a "%d" in it lets the kernel pick the
	// number (as "l2tpeth%d").
	Name string
	// Queues is the number of queues (file descriptors) to open; more than
	// one needs IFF_MULTI_QUEUE. 0 means 1.
	Queues int
	// MTU is set on the interface when non-zero.
	MTU int
	// Offload opens the device with IFF_VNET_HDR and asks for checksum
	// and TCP segmentation offload (TUNSETOFFLOAD): every frame read or
	// written then starts with a virtio_net_hdr, and reads may return TCP
	// super-frames of up to 64 KiB. If the kernel refuses the offloads the
	// device still has the header, without them (see Device.Offloads).
	// The header's fields are little-endian (TUNSETVNETLE) on every host;
	// Create fails on a big-endian host whose kernel refuses that.
	Offload bool
	// MAC is the device's Ethernet address, set before the device is up;
	// nil leaves the kernel's random one.
	MAC net.HardwareAddr
	// TUN makes a layer 3 device (IFF_TUN, "ppp%d"-like): reads and
	// writes carry bare IP packets, with no Ethernet header and no packet
	// information prefix (with Offload, behind the virtio_net_hdr, whose
	// offsets then count from the IP header). It takes no MAC.
	TUN bool
}

// Offload flags for TUNSETOFFLOAD (linux/if_tun.h).
const (
	tunFCsum   = 0x01
	tunFTSO4   = 0x02
	tunFTSO6   = 0x04
	tunFTSOECN = 0x08
)

// Device is a TAP interface with one or more queues.
type Device struct {
	name     string
	queues   []*Queue
	vnet     bool
	offloads bool
}

// Queue is one file descriptor of a device. Each queue is read by one
// goroutine; writes may come from several.
type Queue struct {
	closed  atomic.Bool
	f       *os.File
	rc      syscall.RawConn
	bufs    [][]byte
	sizes   []int
	off     int
	n       int
	err     error
	readF   func(fd uintptr) bool
	wmu     sync.Mutex // guards werr and iovs: several goroutines may write
	iovs    []unix.Iovec
	writevF func(fd uintptr) bool
	werr    error
	// lender and readLentF serve ReadLent.
	lender    Lender
	readLentF func(fd uintptr) bool
}

type ifreqFlags struct {
	name  [unix.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// Create makes the device and opens its queues. The device disappears when
// every queue is closed.
func Create(c Config) (*Device, error) {
	if c.Queues < 1 {
		c.Queues = 1
	}
	if len(c.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("interface name %q: longer than %d bytes", c.Name, unix.IFNAMSIZ-1)
	}
	if c.TUN && c.MAC != nil {
		return nil, fmt.Errorf("TUN %s: no MAC on a layer 3 device", c.Name)
	}
	kind := "TAP"
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if c.TUN {
		kind = "TUN"
		flags = unix.IFF_TUN | unix.IFF_NO_PI
	}
	if c.Queues > 1 {
		flags |= unix.IFF_MULTI_QUEUE
	}
	if c.Offload {
		flags |= unix.IFF_VNET_HDR
	}
	d := &Device{name: c.Name, vnet: c.Offload}
	for i := 0; i < c.Queues; i++ {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("open /dev/net/tun: %w", accessHint(err))
		}
		var req ifreqFlags
		copy(req.name[:], d.name)
		req.flags = flags
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); e != 0 {
			unix.Close(fd)
			d.Close()
			if e == unix.EBUSY {
				return nil, fmt.Errorf("interface %q: exists", c.Name)
			}
			return nil, fmt.Errorf("create %s %s: %w", kind, c.Name, capHint(e, "CAP_NET_ADMIN"))
		}
		d.name = unix.ByteSliceToString(req.name[:])
		if c.Offload && i == 0 {
			if err := setVnetLE(fd); err != nil {
				unix.Close(fd)
				d.Close()
				return nil, fmt.Errorf("tap %s: %w", d.name, err)
			}
			off := uintptr(tunFCsum | tunFTSO4 | tunFTSO6 | tunFTSOECN)
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETOFFLOAD, off)
			d.offloads = e == 0
		}
		f := os.NewFile(uintptr(fd), "tap:"+d.name)
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			d.Close()
			return nil, fmt.Errorf("tap %s: %w", d.name, err)
		}
		q := &Queue{f: f, rc: rc}
		q.readF = q.read
		q.writevF = q.writev
		q.iovs = make([]unix.Iovec, 0, 72)
		d.queues = append(d.queues, q)
	}
	if c.MAC != nil {
		if err := SetMAC(d.name, c.MAC); err != nil {
			d.Close()
			return nil, err
		}
	}
	if c.MTU > 0 {
		if err := SetMTU(d.name, c.MTU); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// errHint is an error with a hint of how to mend it appended to its text;
// errors.Is and errors.As still see the error underneath.
type errHint struct {
	err  error
	hint string
}

func (e *errHint) Error() string { return e.err.Error() + " (" + e.hint + ")" }
func (e *errHint) Unwrap() error { return e.err }

// capHint names the capability an operation needs when err is EPERM, the
// kernel's answer to a process without it.
func capHint(err error, capability string) error {
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	return &errHint{err, "needs " + capability}
}

// accessHint says what a process needs when opening /dev/net/tun fails:
// with EACCES the node's mode, not a capability, decides; with ENOENT there
// is no node (a container not given the device); with EPERM the device
// cgroup refuses it (a container given a node but not the device); with
// ENODEV the kernel has no TUN driver.
func accessHint(err error) error {
	switch {
	case errors.Is(err, unix.EACCES):
		return &errHint{err, "the daemon's user needs read and write access to it; distributions ship it mode 0666"}
	case errors.Is(err, unix.ENOENT):
		return &errHint{err, "no device node: in a container, give it the device with docker run --device /dev/net/tun"}
	case errors.Is(err, unix.EPERM):
		return &errHint{err, "the device cgroup refuses it: in a container, give it the device with docker run --device /dev/net/tun"}
	case errors.Is(err, unix.ENODEV):
		return &errHint{err, "the kernel has no TUN driver: modprobe tun"}
	}
	return err
}

// CanCreate reports, without creating a device, why this process could
// not create TUN or TAP devices: /dev/net/tun does not open for reading
// and writing, or CAP_NET_ADMIN, which TUNSETIFF needs for a new device,
// is not in its effective set. It returns nil when both are there.
func CanCreate() error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/net/tun: %w", accessHint(err))
	}
	unix.Close(fd)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3: two 32-bit halves
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	if data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) == 0 {
		return fmt.Errorf("create TUN/TAP devices: %w", &errHint{unix.EPERM, "needs CAP_NET_ADMIN; in a container, docker run --cap-add NET_ADMIN"})
	}
	return nil
}

// setVnetLE makes the kernel read and write the device's virtio_net_hdr
// fields little-endian (TUNSETVNETLE), the order package offload encodes.
// Without it a TAP uses the host's order, which differs on big-endian hosts.
// A kernel that refuses the call still uses little-endian on a
// little-endian host, so the refusal matters only on a big-endian one.
func setVnetLE(fd int) error {
	one := int32(1)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETVNETLE, uintptr(unsafe.Pointer(&one)))
	if e == 0 || nativeLittleEndian() {
		return nil
	}
	return fmt.Errorf("TUNSETVNETLE: %w (a big-endian host needs it for offloads; run without them)", e)
}

// nativeLittleEndian reports whether the host stores integers little-endian.
func nativeLittleEndian() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 1
}

// Name is the interface name the kernel gave the device.
func (d *Device) Name() string { return d.name }

// VnetHdr reports whether frames carry a virtio_net_hdr.
func (d *Device) VnetHdr() bool { return d.vnet }

// Offloads reports whether the kernel took checksum and TSO offloads, so
// reads may return super-frames with partial checksums.
func (d *Device) Offloads() bool { return d.offloads }

// Queues returns the device's queues.
func (d *Device) Queues() []*Queue { return d.queues }

// Close closes every queue, which removes the device.
func (d *Device) Close() error {
	var errs []error
	for _, q := range d.queues {
		q.closed.Store(true)
		errs = append(errs, q.f.Close())
	}
	return errors.Join(errs...)
}

// Read blocks until at least one frame is ready, then reads up to len(bufs)
// frames without blocking again. Frame i is written at bufs[i][offset:] and
// its length stored in sizes[i]; offset leaves headroom for a header.
func (q *Queue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	q.bufs, q.sizes, q.off, q.n, q.err = bufs, sizes, offset, 0, nil
	err := q.rc.Read(q.readF)
	q.bufs, q.sizes = nil, nil
	if err != nil {
		return 0, q.closedErr(err)
	}
	if q.n == 0 && q.err != nil {
		return 0, q.err
	}
	return q.n, nil
}

// read and writev use RawSyscall, as conn's batch calls do: the TAP is
// non-blocking, so the call never sleeps.
func (q *Queue) read(fd uintptr) bool {
	for q.n < len(q.bufs) {
		b := q.bufs[q.n][q.off:]
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
		if e == unix.EAGAIN {
			return q.n > 0
		}
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			q.err = e
			return true
		}
		q.sizes[q.n] = int(r)
		q.n++
	}
	return true
}

// Write writes one Ethernet frame, waiting if the device's queue is full.
func (q *Queue) Write(frame []byte) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.iovs = appendIovec(q.iovs[:0], frame)
	return q.flush()
}

// WriteParts writes one frame given as pieces, with writev(2): on a device
// with a virtio_net_hdr, parts[0] is the header.
func (q *Queue) WriteParts(parts [][]byte) error {
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.iovs = q.iovs[:0]
	for _, p := range parts {
		q.iovs = appendIovec(q.iovs, p)
	}
	return q.flush()
}

func appendIovec(iovs []unix.Iovec, p []byte) []unix.Iovec {
	if len(p) == 0 {
		return iovs
	}
	var v unix.Iovec
	v.Base = unsafe.SliceData(p)
	v.SetLen(len(p))
	return append(iovs, v)
}

// flush writes q.iovs as one frame. Called with wmu held.
func (q *Queue) flush() error {
	q.werr = nil
	if err := q.rc.Write(q.writevF); err != nil {
		return q.closedErr(err)
	}
	return q.werr
}

func (q *Queue) writev(fd uintptr) bool {
	_, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(unsafe.SliceData(q.iovs))), uintptr(len(q.iovs)))
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	if e != 0 {
		q.werr = e
	}
	return true
}

// Lender lends a read its buffers only once the device has frames, so a
// queue waiting for frames holds none (see Queue.ReadLent).
type Lender interface {
	// Lend returns the buffers to read frames into and the slice for
	// their lengths, at least as long.
	Lend() (bufs [][]byte, sizes []int)
	// Unlend takes back the buffers of a read that found no frame.
	Unlend()
}

// ReadLent is Read on buffers lent by l: it borrows them each time the
// device may have a frame and gives them back when it has none, so many
// idle queues can share a few buffers. When it returns frames, the caller
// holds the lent buffers until it gives them back to l itself.
func (q *Queue) ReadLent(l Lender, offset int) (int, error) {
	if q.readLentF == nil {
		q.readLentF = q.readLent
	}
	q.lender, q.off, q.n, q.err = l, offset, 0, nil
	err := q.rc.Read(q.readLentF)
	q.lender, q.bufs, q.sizes = nil, nil, nil
	if err != nil {
		return 0, q.closedErr(err)
	}
	if q.n == 0 && q.err != nil {
		return 0, q.err
	}
	return q.n, nil
}

// readLent borrows buffers and reads; with no frame ready it gives them
// back before the poller waits.
func (q *Queue) readLent(fd uintptr) bool {
	q.bufs, q.sizes = q.lender.Lend()
	if q.read(fd) {
		return true
	}
	q.lender.Unlend()
	q.bufs, q.sizes = nil, nil
	return false
}

// ErrClosed is returned by Read and Write on a closed queue.
var ErrClosed = os.ErrClosed

func (q *Queue) closedErr(err error) error {
	if q.closed.Load() {
		return ErrClosed
	}
	return err
}
