package call

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// route is an IPv4 route in the main table, as "ip route" writes it:
// Dst, via Gateway (if valid), dev with index Dev.
type route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
	Dev     int
}

func (r route) String() string {
	s := r.Dst.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	return fmt.Sprintf("%s dev #%d", s, r.Dev)
}

// routeGet is "ip route get DST": the route the kernel uses to reach dst
// now, as a host route (Dst dst/32) with its gateway and device.
func routeGet(dst netip.Addr) (route, error) {
	if !dst.Is4() {
		return route{}, fmt.Errorf("route get %s: want an IPv4 address", dst)
	}
	req := rtRequest(unix.RTM_GETROUTE, unix.NLM_F_REQUEST, route{Dst: netip.PrefixFrom(dst, 32)})
	msgs, err := netlinkDo(req)
	if err != nil {
		return route{}, fmt.Errorf("route get %s: %w", dst, err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < unix.SizeofRtMsg {
			continue
		}
		r := route{Dst: netip.PrefixFrom(dst, 32)}
		attrs, err := parseAttrs(m.Data[unix.SizeofRtMsg:])
		if err != nil {
			return route{}, fmt.Errorf("route get %s: %w", dst, err)
		}
		for _, a := range attrs {
			switch a.typ {
			case unix.RTA_GATEWAY:
				if g, ok := netip.AddrFromSlice(a.val); ok && g.Is4() {
					r.Gateway = g
				}
			case unix.RTA_OIF:
				if len(a.val) >= 4 {
					r.Dev = int(binary.NativeEndian.Uint32(a.val))
				}
			}
		}
		if r.Dev == 0 {
			return route{}, fmt.Errorf("route get %s: no output device", dst)
		}
		return r, nil
	}
	return route{}, fmt.Errorf("route get %s: no answer", dst)
}

// routeAdd is "ip route add": it fails with unix.EEXIST if the table has
// a route to the same destination (and metric 0) already.
func routeAdd(r route) error {
	_, err := netlinkDo(rtRequest(unix.RTM_NEWROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL, r))
	if err != nil {
		return fmt.Errorf("route add %s: %w", r, err)
	}
	return nil
}

// routeDel is "ip route del".
func routeDel(r route) error {
	_, err := netlinkDo(rtRequest(unix.RTM_DELROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK, r))
	if err != nil {
		return fmt.Errorf("route del %s: %w", r, err)
	}
	return nil
}

// rtRequest is a route message for r in the main table.
func rtRequest(typ uint16, flags uint16, r route) []byte {
	rt := unix.RtMsg{Family: unix.AF_INET, Dst_len: uint8(r.Dst.Bits()), Table: unix.RT_TABLE_MAIN}
	if typ != unix.RTM_GETROUTE {
		rt.Protocol = unix.RTPROT_BOOT
		rt.Scope = unix.RT_SCOPE_UNIVERSE
		rt.Type = unix.RTN_UNICAST
		if !r.Gateway.IsValid() {
			rt.Scope = unix.RT_SCOPE_LINK
		}
	}
	b := make([]byte, unix.SizeofNlMsghdr+unix.SizeofRtMsg, 128)
	copy(b[unix.SizeofNlMsghdr:], (*[unix.SizeofRtMsg]byte)(unsafe.Pointer(&rt))[:])
	if r.Dst.Bits() > 0 || typ == unix.RTM_GETROUTE {
		a := r.Dst.Addr().As4()
		b = appendAttr(b, unix.RTA_DST, a[:])
	}
	if r.Gateway.IsValid() {
		g := r.Gateway.As4()
		b = appendAttr(b, unix.RTA_GATEWAY, g[:])
	}
	if r.Dev != 0 {
		b = appendAttr(b, unix.RTA_OIF, binary.NativeEndian.AppendUint32(nil, uint32(r.Dev)))
	}
	h := unix.NlMsghdr{Len: uint32(len(b)), Type: typ, Flags: flags, Seq: 1}
	copy(b, (*[unix.SizeofNlMsghdr]byte)(unsafe.Pointer(&h))[:])
	return b
}

func appendAttr(b []byte, typ uint16, val []byte) []byte {
	n := unix.SizeofRtAttr + len(val)
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

type rtAttr struct {
	typ uint16
	val []byte
}

// parseAttrs reads a run of route attributes.
func parseAttrs(b []byte) ([]rtAttr, error) {
	var as []rtAttr
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			return nil, errors.New("malformed route attribute")
		}
		as = append(as, rtAttr{typ: binary.NativeEndian.Uint16(b[2:]), val: b[unix.SizeofRtAttr:n]})
		n = (n + 3) &^ 3
		if n > len(b) {
			break
		}
		b = b[n:]
	}
	return as, nil
}

// netlinkDo sends one request on a fresh rtnetlink socket and returns
// the answers up to the ack (or the one answer of a request without
// NLM_F_ACK). An error message from the kernel comes back as its errno.
func netlinkDo(req []byte) ([]syscall.NetlinkMessage, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Sendto(fd, req, 0, sa); err != nil {
		return nil, os.NewSyscallError("sendto", err)
	}
	buf := make([]byte, 16384)
	var out []syscall.NetlinkMessage
	for range 16 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, os.NewSyscallError("recvfrom", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Type == unix.NLMSG_ERROR {
				if len(m.Data) < 4 {
					return nil, errors.New("short netlink error")
				}
				if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
					return nil, unix.Errno(-errno)
				}
				return out, nil // the ack
			}
			out = append(out, m)
		}
		if len(out) > 0 && binary.NativeEndian.Uint16(req[6:])&unix.NLM_F_ACK == 0 {
			return out, nil
		}
	}
	return nil, errors.New("netlink: no end of answer")
}
