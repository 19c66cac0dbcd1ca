package tap

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

type ifreqInt struct {
	name [unix.IFNAMSIZ]byte
	val  int32
	_    [20]byte
}

func ifIoctl(name string, req uintptr, val int32) (int32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var r ifreqInt
	copy(r.name[:], name)
	r.val = val
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&r))); e != 0 {
		return 0, e
	}
	return r.val, nil
}

// SetMTU sets an interface's MTU.
func SetMTU(name string, mtu int) error {
	if _, err := ifIoctl(name, unix.SIOCSIFMTU, int32(mtu)); err != nil {
		return fmt.Errorf("set mtu %d on %s: %w", mtu, name, capHint(err, "CAP_NET_ADMIN"))
	}
	return nil
}

// MTU reads an interface's MTU.
func MTU(name string) (int, error) {
	v, err := ifIoctl(name, unix.SIOCGIFMTU, 0)
	if err != nil {
		return 0, fmt.Errorf("mtu of %s: %w", name, err)
	}
	return int(v), nil
}

// SetUp brings an interface up (IFF_UP), as "ip link set NAME up".
func SetUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	defer unix.Close(fd)
	var r ifreqFlags
	copy(r.name[:], name)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&r))); e != 0 {
		return fmt.Errorf("flags of %s: %w", name, e)
	}
	r.flags |= unix.IFF_UP
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&r))); e != 0 {
		return fmt.Errorf("set %s up: %w", name, capHint(e, "CAP_NET_ADMIN"))
	}
	return nil
}

// ifreqHwaddr is struct ifreq with a struct sockaddr, as SIOCSIFHWADDR
// and SIOCGIFHWADDR use it.
type ifreqHwaddr struct {
	name   [unix.IFNAMSIZ]byte
	family uint16
	data   [14]byte
	_      [8]byte
}

// SetMAC sets an Ethernet interface's hardware address, as
// "ip link set dev NAME address MAC". The kernel refuses a multicast or
// all-zero address (EADDRNOTAVAIL).
func SetMAC(name string, mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("set address %v on %s: not a 6-byte Ethernet address", mac, name)
	}
	var r ifreqHwaddr
	copy(r.name[:], name)
	r.family = unix.ARPHRD_ETHER
	copy(r.data[:], mac)
	if err := hwaddrIoctl(unix.SIOCSIFHWADDR, &r); err != nil {
		return fmt.Errorf("set address %v on %s: %w", mac, name, capHint(err, "CAP_NET_ADMIN"))
	}
	return nil
}

// MAC reads an interface's hardware address.
func MAC(name string) (net.HardwareAddr, error) {
	var r ifreqHwaddr
	copy(r.name[:], name)
	if err := hwaddrIoctl(unix.SIOCGIFHWADDR, &r); err != nil {
		return nil, fmt.Errorf("address of %s: %w", name, err)
	}
	return net.HardwareAddr(bytes.Clone(r.data[:6])), nil
}

func hwaddrIoctl(req uintptr, r *ifreqHwaddr) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(r))); e != 0 {
		return e
	}
	return nil
}

// ifreqAddr4 is struct ifreq with a struct sockaddr_in, as SIOCSIFADDR,
// SIOCSIFDSTADDR and SIOCSIFNETMASK use it.
type ifreqAddr4 struct {
	name   [unix.IFNAMSIZ]byte
	family uint16
	port   uint16
	addr   [4]byte
	_      [8]byte
	_      [8]byte
}

// SetPointToPoint4 gives a point-to-point interface (a TUN) its IPv4
// address and its peer's, with a /32 netmask, as
// "ip addr add LOCAL peer PEER dev NAME".
func SetPointToPoint4(name string, local, peer netip.Addr) error {
	if !local.Is4() || !peer.Is4() {
		return fmt.Errorf("address %s peer %s on %s: want IPv4 addresses", local, peer, name)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("address of %s: %w", name, err)
	}
	defer unix.Close(fd)
	for _, s := range []struct {
		req  uintptr
		what string
		a    netip.Addr
	}{
		{unix.SIOCSIFADDR, "address", local},
		{unix.SIOCSIFDSTADDR, "peer address", peer},
		{unix.SIOCSIFNETMASK, "netmask", netip.AddrFrom4([4]byte{255, 255, 255, 255})},
	} {
		var r ifreqAddr4
		copy(r.name[:], name)
		r.family = unix.AF_INET
		r.addr = s.a.As4()
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), s.req, uintptr(unsafe.Pointer(&r))); e != 0 {
			return fmt.Errorf("set %s %s on %s: %w", s.what, s.a, name, capHint(e, "CAP_NET_ADMIN"))
		}
	}
	return nil
}
