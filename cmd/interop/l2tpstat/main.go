// Command l2tpstat reads and changes kernel L2TP sessions over generic
// netlink, for what iproute2 cannot do: it prints every session with all
// of L2TP_ATTR_STATS (iproute2's "ip -s l2tp show" prints none) and sets
// the reorder timeout (iproute2 has no word for L2TP_ATTR_RECV_TIMEOUT).
// It is an interop tool: make interop runs a static build of it inside
// the kernel-peer guest.
//
//	l2tpstat                         JSON array of sessions with stats
//	l2tpstat modify TID SID [recv_timeout MS] [send_seq 0|1] [recv_seq 0|1] [lns_mode 0|1]
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// From linux/l2tp.h.
const (
	cmdSessionModify = 7
	cmdSessionGet    = 8

	attrConnID        = 9
	attrPeerConnID    = 10
	attrSessionID     = 11
	attrPeerSessionID = 12
	attrIfname        = 8
	attrRecvSeq       = 18
	attrSendSeq       = 19
	attrLNSMode       = 20
	attrRecvTimeout   = 22
	attrStats         = 30

	statTxPackets        = 1
	statTxBytes          = 2
	statTxErrors         = 3
	statRxPackets        = 4
	statRxBytes          = 5
	statRxSeqDiscards    = 6
	statRxOOSPackets     = 7
	statRxErrors         = 8
	statRxCookieDiscards = 10
	statRxInvalid        = 11

	genlVersion = 1
)

// Session is one kernel session, with the same JSON names as "ul2tp -j -s".
type Session struct {
	TunnelID       uint32            `json:"tunnel_id"`
	SessionID      uint32            `json:"session_id"`
	PeerTunnelID   uint32            `json:"peer_tunnel_id"`
	PeerSessionID  uint32            `json:"peer_session_id"`
	Interface      string            `json:"interface,omitempty"`
	SendSeq        bool              `json:"send_seq"`
	RecvSeq        bool              `json:"recv_seq"`
	LNSMode        bool              `json:"lns_mode"`
	ReorderTimeout uint64            `json:"reorder_timeout"`
	Stats          map[string]uint64 `json:"stats"`
}

var statNames = map[uint16]string{
	statTxPackets: "tx_packets", statTxBytes: "tx_bytes", statTxErrors: "tx_errors",
	statRxPackets: "rx_packets", statRxBytes: "rx_bytes", statRxErrors: "rx_errors",
	statRxSeqDiscards: "rx_seq_discards", statRxOOSPackets: "rx_oos_packets",
	statRxCookieDiscards: "rx_cookie_discards", statRxInvalid: "rx_invalid",
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "l2tpstat:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer unix.Close(c.fd)
	if len(args) == 0 {
		ss, err := c.sessions()
		if err != nil {
			return err
		}
		b, _ := json.Marshal(ss)
		fmt.Println(string(b))
		return nil
	}
	if args[0] != "modify" || len(args) < 3 || len(args)%2 != 1 {
		return errors.New("usage: l2tpstat | l2tpstat modify TID SID [recv_timeout MS] [send_seq 0|1] [recv_seq 0|1] [lns_mode 0|1]")
	}
	tid, err1 := strconv.ParseUint(args[1], 10, 32)
	sid, err2 := strconv.ParseUint(args[2], 10, 32)
	if err1 != nil || err2 != nil {
		return errors.New("modify: TID and SID must be numbers")
	}
	attrs := putU32(nil, attrConnID, uint32(tid))
	attrs = putU32(attrs, attrSessionID, uint32(sid))
	for i := 3; i < len(args); i += 2 {
		v, err := strconv.ParseUint(args[i+1], 10, 64)
		if err != nil {
			return fmt.Errorf("%s %q: not a number", args[i], args[i+1])
		}
		switch args[i] {
		case "recv_timeout":
			attrs = putAttr(attrs, attrRecvTimeout, binary.NativeEndian.AppendUint64(nil, v))
		case "send_seq":
			attrs = putAttr(attrs, attrSendSeq, []byte{byte(v)})
		case "recv_seq":
			attrs = putAttr(attrs, attrRecvSeq, []byte{byte(v)})
		case "lns_mode":
			attrs = putAttr(attrs, attrLNSMode, []byte{byte(v)})
		default:
			return fmt.Errorf("modify: unknown option %q", args[i])
		}
	}
	_, err = c.request(cmdSessionModify, unix.NLM_F_ACK, attrs)
	return err
}

type conn struct {
	fd     int
	family uint16
	seq    uint32
}

func dial() (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	c := &conn{fd: fd, family: unix.GENL_ID_CTRL}
	msgs, err := c.request(unix.CTRL_CMD_GETFAMILY, unix.NLM_F_ACK, putAttr(nil, unix.CTRL_ATTR_FAMILY_NAME, []byte("l2tp\x00")))
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("generic netlink family l2tp (is l2tp_netlink loaded?): %w", err)
	}
	for _, m := range msgs {
		for typ, v := range attrsOf(m) {
			if typ == unix.CTRL_ATTR_FAMILY_ID && len(v) >= 2 {
				c.family = binary.NativeEndian.Uint16(v)
				return c, nil
			}
		}
	}
	unix.Close(fd)
	return nil, errors.New("generic netlink family l2tp: no id in the answer")
}

// request sends a generic netlink command and collects the answers
// (their payloads after the genl header), until the ack or the dump's end.
func (c *conn) request(cmd uint8, flags uint16, attrs []byte) ([][]byte, error) {
	c.seq++
	msg := make([]byte, unix.NLMSG_HDRLEN+4, unix.NLMSG_HDRLEN+4+len(attrs))
	msg = append(msg, attrs...)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], c.family)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(msg[8:], c.seq)
	msg[16], msg[17] = cmd, genlVersion
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	var out [][]byte
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		b := buf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			typ := binary.NativeEndian.Uint16(b[4:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return nil, errors.New("netlink: bad message length")
			}
			body := b[unix.NLMSG_HDRLEN:l]
			switch typ {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(body) < 4 {
					return nil, errors.New("netlink: short error")
				}
				if e := int32(binary.NativeEndian.Uint32(body)); e != 0 {
					return nil, unix.Errno(-e)
				}
				return out, nil
			default:
				if len(body) >= 4 {
					out = append(out, append([]byte(nil), body[4:]...))
				}
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}

func (c *conn) sessions() ([]Session, error) {
	msgs, err := c.request(cmdSessionGet, unix.NLM_F_DUMP, nil)
	if err != nil {
		return nil, err
	}
	ss := []Session{}
	for _, m := range msgs {
		s := Session{Stats: map[string]uint64{}}
		for typ, v := range attrsOf(m) {
			switch typ {
			case attrConnID:
				s.TunnelID = u32(v)
			case attrPeerConnID:
				s.PeerTunnelID = u32(v)
			case attrSessionID:
				s.SessionID = u32(v)
			case attrPeerSessionID:
				s.PeerSessionID = u32(v)
			case attrIfname:
				s.Interface = string(trimNUL(v))
			case attrSendSeq:
				s.SendSeq = len(v) > 0 && v[0] != 0
			case attrRecvSeq:
				s.RecvSeq = len(v) > 0 && v[0] != 0
			case attrLNSMode:
				s.LNSMode = len(v) > 0 && v[0] != 0
			case attrRecvTimeout:
				if len(v) >= 8 {
					s.ReorderTimeout = binary.NativeEndian.Uint64(v)
				}
			case attrStats:
				for st, sv := range attrsOf(v) {
					if name, ok := statNames[st]; ok && len(sv) >= 8 {
						s.Stats[name] = binary.NativeEndian.Uint64(sv)
					}
				}
			}
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// attrsOf iterates over netlink attributes.
func attrsOf(b []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			l := int(binary.NativeEndian.Uint16(b[0:]))
			typ := binary.NativeEndian.Uint16(b[2:]) & 0x3fff
			if l < 4 || l > len(b) {
				return
			}
			if !yield(typ, b[4:l]) {
				return
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}

func putAttr(b []byte, typ uint16, v []byte) []byte {
	l := 4 + len(v)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func putU32(b []byte, typ uint16, v uint32) []byte {
	return putAttr(b, typ, binary.NativeEndian.AppendUint32(nil, v))
}

func u32(v []byte) uint32 {
	if len(v) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(v)
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}
