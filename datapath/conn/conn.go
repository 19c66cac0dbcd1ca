// Package conn is the datapath's socket layer: UDP and raw IP-protocol-115
// sockets for IPv4 and IPv6, read and written in batches with recvmmsg(2)
// and sendmmsg(2) on buffers the caller owns, so no call allocates.
//
// It knows nothing of L2TP headers; datapath demultiplexes what it reads.
package conn

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kind says what a socket carries.
type Kind uint8

const (
	UDP Kind = iota // L2TP over UDP
	IP              // L2TPv3 over IP protocol 115
)

func (k Kind) String() string {
	if k == IP {
		return "ip"
	}
	return "udp"
}

// Options tune a socket.
type Options struct {
	// UDPCsum enables IPv4 UDP checksums on transmit (the kernel's udp_csum;
	// off by default as for kernel L2TP tunnels).
	UDPCsum bool
	// UDP6ZeroCsumTx sends IPv6 UDP datagrams with a zero checksum
	// (udp6_csum_tx off). UDP6ZeroCsumRx accepts them (udp6_csum_rx off).
	UDP6ZeroCsumTx, UDP6ZeroCsumRx bool
	// Reuse sets SO_REUSEPORT, for several queues on one address.
	Reuse bool
	// BufBytes sets SO_RCVBUF and SO_SNDBUF when non-zero: with the FORCE
	// variants, which need CAP_NET_ADMIN; without it, with the plain ones,
	// which the kernel caps at net.core.rmem_max and wmem_max (see
	// Conn.BufCapped).
	BufBytes int
	// Offload asks for UDP GSO (UDP_SEGMENT) and GRO (UDP_GRO) where the
	// kernel has them. GSO also needs UDP checksums on: the kernel refuses
	// segmentation offload on a socket with SO_NO_CHECK.
	Offload bool
}

// Conn is one datagram socket.
type Conn struct {
	closed atomic.Bool
	f      *os.File
	rc     syscall.RawConn
	kind   Kind
	v6     bool
	local  netip.AddrPort
	gso    atomic.Bool // UDP_SEGMENT usable; cleared if the kernel refuses a GSO send
	gro    bool        // UDP_GRO on
	capped bool        // buffers set without FORCE: capped by the sysctls
}

// Listen opens a socket of kind on local (for IP, the port is ignored; an
// unspecified address listens on every address of the family).
func Listen(kind Kind, local netip.AddrPort, o Options) (*Conn, error) {
	v6 := local.Addr().Is6() && !local.Addr().Is4In6()
	family, typ, proto := unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDP
	if v6 {
		family = unix.AF_INET6
	}
	if kind == IP {
		typ, proto = unix.SOCK_RAW, 115
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		if kind == IP && errors.Is(err, unix.EPERM) {
			// Raw sockets are for CAP_NET_RAW only.
			return nil, fmt.Errorf("socket %s %s: %w (needs CAP_NET_RAW)", kind, local, err)
		}
		return nil, fmt.Errorf("socket %s %s: %w", kind, local, err)
	}
	// Until os.NewFile takes it, fd is closed here; after, only by f.
	c := &Conn{kind: kind, v6: v6, local: local}
	if err := c.setup(fd, o); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c.f = os.NewFile(uintptr(fd), fmt.Sprintf("%s:%s", kind, c.local))
	if c.rc, err = syscallConn(c.f); err != nil {
		c.f.Close()
		return nil, fmt.Errorf("%s %s: %w", kind, c.local, err)
	}
	return c, nil
}

// syscallConn is (*os.File).SyscallConn; tests replace it to fail.
var syscallConn = (*os.File).SyscallConn

// setup sets the socket options o asks for on fd and binds it to c.local,
// filling in c.local's port and c's offload state. It leaves fd open.
func (c *Conn) setup(fd int, o Options) error {
	so := sockopts{fd: fd, kind: c.kind, local: c.local}
	if o.Reuse {
		so.set(unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, "SO_REUSEPORT")
	}
	c.capped = so.buffers(o.BufBytes)
	so.fragment(c.v6)
	if c.kind == UDP {
		so.checksums(c.v6, o)
	}
	if so.err != nil {
		return so.err
	}
	gso, gro := so.offloads(c.v6, o)
	if err := unix.Bind(fd, sockaddr(c.local, c.kind)); err != nil {
		if c.kind == UDP && errors.Is(err, unix.EACCES) {
			// Ports below net.ipv4.ip_unprivileged_port_start (1024 by
			// default) are for CAP_NET_BIND_SERVICE only.
			return fmt.Errorf("bind %s %s: %w (ports below net.ipv4.ip_unprivileged_port_start need CAP_NET_BIND_SERVICE)", c.kind, c.local, err)
		}
		return fmt.Errorf("bind %s %s: %w", c.kind, c.local, err)
	}
	if c.kind == UDP && c.local.Port() == 0 {
		if got, err := unix.Getsockname(fd); err == nil {
			c.local = fromSockaddr(got)
		}
	}
	c.gro = gro
	c.gso.Store(gso)
	return nil
}

// sockopts sets the options of a socket being set up, keeping the first
// error.
type sockopts struct {
	fd    int
	kind  Kind
	local netip.AddrPort
	err   error
}

// set sets one integer option; what names it in the error.
func (so *sockopts) set(level, name, v int, what string) {
	if so.err != nil {
		return
	}
	if err := unix.SetsockoptInt(so.fd, level, name, v); err != nil {
		so.err = fmt.Errorf("%s on %s %s: %w", what, so.kind, so.local, err)
	}
}

// buffers sets SO_RCVBUF and SO_SNDBUF to n bytes when n is not zero: the
// FORCE variants, past the sysctl limits, where the process may (it has
// CAP_NET_ADMIN), else the plain ones. It reports whether it fell back to
// a plain one, whose size the kernel caps at net.core.rmem_max/wmem_max.
func (so *sockopts) buffers(n int) (capped bool) {
	if n <= 0 {
		return false
	}
	for _, o := range [...]struct{ force, plain int }{
		{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF},
		{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF},
	} {
		if unix.SetsockoptInt(so.fd, unix.SOL_SOCKET, o.force, n) != nil {
			_ = unix.SetsockoptInt(so.fd, unix.SOL_SOCKET, o.plain, n)
			capped = true
		}
	}
	return capped
}

// fragment lets the kernel fragment oversized outer packets, as kernel
// L2TP does (it sets ignore_df), rather than refuse them with EMSGSIZE;
// and keeps an IPv6 UDP socket to IPv6.
func (so *sockopts) fragment(v6 bool) {
	if !v6 {
		so.set(unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT, "IP_MTU_DISCOVER")
		return
	}
	so.set(unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DONT, "IPV6_MTU_DISCOVER")
	if so.kind == UDP {
		// Raw sockets refuse IPV6_V6ONLY; they never see IPv4.
		so.set(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1, "IPV6_V6ONLY")
	}
}

// checksums sets a UDP socket's checksum options: IPv4 checksums off
// (SO_NO_CHECK) unless asked for, IPv6 zero checksums sent or accepted.
func (so *sockopts) checksums(v6 bool, o Options) {
	if !v6 && !o.UDPCsum {
		so.set(unix.SOL_SOCKET, unix.SO_NO_CHECK, 1, "SO_NO_CHECK")
	}
	if v6 && o.UDP6ZeroCsumTx {
		so.set(unix.IPPROTO_UDP, unix.UDP_NO_CHECK6_TX, 1, "UDP_NO_CHECK6_TX")
	}
	if v6 && o.UDP6ZeroCsumRx {
		so.set(unix.IPPROTO_UDP, unix.UDP_NO_CHECK6_RX, 1, "UDP_NO_CHECK6_RX")
	}
}

// offloads finds out whether a UDP socket may use GSO (the kernel has
// UDP_SEGMENT and the socket sends checksums, without which the kernel
// refuses it) and turns GRO on where the kernel has it.
func (so *sockopts) offloads(v6 bool, o Options) (gso, gro bool) {
	if so.kind != UDP || !o.Offload {
		return false, false
	}
	csumTx := (!v6 && o.UDPCsum) || (v6 && !o.UDP6ZeroCsumTx)
	if _, err := unix.GetsockoptInt(so.fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT); err == nil && csumTx {
		gso = true
	}
	gro = unix.SetsockoptInt(so.fd, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	return gso, gro
}

// BufCapped reports whether the socket's buffers were asked for without
// the FORCE options, which need CAP_NET_ADMIN: the kernel then caps them at
// net.core.rmem_max and wmem_max, which may be below Options.BufBytes.
func (c *Conn) BufCapped() bool { return c.capped }

// LocalAddr is the bound address; for UDP the port is the one bound.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// GSO reports whether Send may be given Msgs with GSOSize set. It turns
// false for good when the kernel refuses a GSO send (see Send).
func (c *Conn) GSO() bool { return c.gso.Load() }

// GRO reports whether Recv may return coalesced datagrams (GSOSize set).
func (c *Conn) GRO() bool { return c.gro }

// Kind is what the socket carries.
func (c *Conn) Kind() Kind { return c.kind }

// WriteTo sends one datagram to to with sendto(2), waiting while the
// socket's send buffer is full. It is for the odd datagram (an L2TP
// control message); the pumps send in batches.
func (c *Conn) WriteTo(b []byte, to netip.AddrPort) error {
	sa := sockaddr(to, c.kind)
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, sa)
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	if err != nil {
		return c.closedErr(err)
	}
	return serr
}

// Close closes the socket and wakes any goroutine blocked in Recv or Send
// with an error for which IsClosed is true.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.f.Close()
}

// ErrClosed is returned by Recv and Send on a closed socket.
var ErrClosed = errors.New("socket closed")

// IsClosed reports whether err says a socket or device was closed.
func IsClosed(err error) bool { return errors.Is(err, ErrClosed) || errors.Is(err, os.ErrClosed) }

// closedErr turns the poller's error for a closed file into ErrClosed.
func (c *Conn) closedErr(err error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	return err
}

// PathMTU asks the routing table for the MTU toward remote (IP_MTU on a
// connected probe socket). It returns 1500 when there is no answer.
func PathMTU(remote netip.Addr) int {
	family, level, name := unix.AF_INET, unix.IPPROTO_IP, unix.IP_MTU
	if remote.Is6() && !remote.Is4In6() {
		family, level, name = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_MTU
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 1500
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sockaddr(netip.AddrPortFrom(remote, 1701), UDP)); err != nil {
		return 1500
	}
	mtu, err := unix.GetsockoptInt(fd, level, name)
	if err != nil || mtu < 576 {
		return 1500
	}
	return mtu
}

func sockaddr(ap netip.AddrPort, kind Kind) unix.Sockaddr {
	port := int(ap.Port())
	if kind == IP {
		port = 0
	}
	a := ap.Addr()
	if a.Is6() && !a.Is4In6() {
		sa := &unix.SockaddrInet6{Port: port, Addr: a.As16()}
		return sa
	}
	return &unix.SockaddrInet4{Port: port, Addr: a.Unmap().As4()}
}

func fromSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// rawAddr is storage for an IPv4 or IPv6 socket address, in the form the
// kernel reads and writes.
type rawAddr struct {
	b [unix.SizeofSockaddrInet6]byte
}

func (r *rawAddr) set(ap netip.AddrPort, kind Kind) uint32 {
	port := ap.Port()
	if kind == IP {
		port = 0
	}
	a := ap.Addr()
	if a.Is6() && !a.Is4In6() {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.b[0]))
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return unix.SizeofSockaddrInet6
	}
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.b[0]))
	*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	return unix.SizeofSockaddrInet4
}

func (r *rawAddr) get() netip.AddrPort {
	fam := *(*uint16)(unsafe.Pointer(&r.b[0]))
	switch fam {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.b[0]))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.b[0]))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}
