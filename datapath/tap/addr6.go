package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// SetPointToPoint6 gives a point-to-point interface (a TUN) an IPv6
// address with a /64 prefix and its peer's address, without duplicate
// address detection, as "ip addr add LOCAL/64 peer PEER dev NAME nodad".
// PPP's link-local addresses (RFC 5072 section 5) are set this way: the
// interface identifiers were negotiated, so there is nothing to detect.
func SetPointToPoint6(name string, local, peer netip.Addr) error {
	if !local.Is6() || local.Is4In6() || !peer.Is6() || peer.Is4In6() {
		return fmt.Errorf("address %s peer %s on %s: want IPv6 addresses", local, peer, name)
	}
	idx, err := ifIndex(name)
	if err != nil {
		return fmt.Errorf("address %s on %s: %w", local, name, err)
	}
	// struct ifaddrmsg: family, prefixlen, flags, scope, index.
	b := make([]byte, 8, 8+2*20)
	b[0], b[1], b[2] = unix.AF_INET6, 64, unix.IFA_F_NODAD
	binary.NativeEndian.PutUint32(b[4:], uint32(idx))
	l, p := local.As16(), peer.As16()
	b = appendAttr(b, unix.IFA_LOCAL, l[:])
	b = appendAttr(b, unix.IFA_ADDRESS, p[:])
	if err := rtnetlink(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b); err != nil {
		return fmt.Errorf("set address %s peer %s on %s: %w", local, peer, name, capHint(err, "CAP_NET_ADMIN"))
	}
	return nil
}

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE of linux/if_link.h.
const in6AddrGenModeNone = 1

// SetNoLinkLocal stops the kernel from giving an interface a link-local
// IPv6 address of its own when it comes up, as
// "ip link set dev NAME addrgenmode none": a PPP link's link-local
// address comes from IPv6CP instead. Call it before SetUp.
func SetNoLinkLocal(name string) error {
	idx, err := ifIndex(name)
	if err != nil {
		return fmt.Errorf("addrgenmode of %s: %w", name, err)
	}
	// struct ifinfomsg: family, pad, type, index, flags, change.
	b := make([]byte, 16, 16+16)
	binary.NativeEndian.PutUint32(b[4:], uint32(idx))
	inet6 := appendAttr(nil, unix.IFLA_INET6_ADDR_GEN_MODE, []byte{in6AddrGenModeNone})
	af := appendAttr(nil, unix.NLA_F_NESTED|unix.AF_INET6, inet6)
	b = appendAttr(b, unix.NLA_F_NESTED|unix.IFLA_AF_SPEC, af)
	if err := rtnetlink(unix.RTM_NEWLINK, 0, b); err != nil {
		return fmt.Errorf("set addrgenmode none on %s: %w", name, capHint(err, "CAP_NET_ADMIN"))
	}
	return nil
}

// ifIndex is an interface's index.
func ifIndex(name string) (int32, error) {
	idx, err := ifIoctl(name, unix.SIOCGIFINDEX, 0)
	if err != nil {
		return 0, fmt.Errorf("index of %s: %w", name, err)
	}
	return idx, nil
}

// appendAttr appends a netlink attribute (struct nlattr and its value,
// padded to 4 bytes).
func appendAttr(b []byte, typ uint16, val []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.NLA_HDRLEN+len(val)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%unix.NLA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// rtnetlink sends one rtnetlink request of type typ with body and waits
// for the kernel's acknowledgement.
func rtnetlink(typ, flags uint16, body []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	const seq = 1
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for range 16 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
				return syscall.Errno(-e)
			}
			return nil
		}
	}
	return errors.New("netlink: no acknowledgement")
}
