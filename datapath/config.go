package datapath

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ul2tp/ul2tp/encap"
)

// Errors with the meaning of the kernel's EEXIST and ENOENT for tunnels and
// sessions. Returned errors wrap them.
var (
	ErrExists   = errors.New("exists")
	ErrNotFound = errors.New("not found")
)

// FieldError says which configuration field has a bad value.
type FieldError struct {
	Field string
	// Value is the bad value: a string is quoted (control characters
	// escaped), nil or "" left out of the message.
	Value  any
	Reason string
}

func (e *FieldError) Error() string {
	switch v := e.Value.(type) {
	case nil:
		return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
	case string:
		if v == "" {
			return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
		}
		return fmt.Sprintf("invalid %s %q: %s", e.Field, v, e.Reason)
	}
	return fmt.Sprintf("invalid %s %v: %s", e.Field, e.Value, e.Reason)
}

// DefaultUDPPort is L2TP's registered UDP port, used when a tunnel names none.
const DefaultUDPPort = 1701

// TunnelConfig is what L2TP_CMD_TUNNEL_CREATE carries for an unmanaged
// L2TPv3 tunnel, or for the data side of an L2TPv2 tunnel whose control
// connection runs on a Listener's socket.
type TunnelConfig struct {
	// Version is the L2TP version: 0 or 3 for L2TPv3, 2 for L2TPv2 (ids
	// of 16 bits, encap udp only, sessions with a Payload and no TAP; the
	// tunnel uses the socket of the Listener on its local address and
	// port, so Listen must come first).
	Version uint8       `json:"version,omitempty"`
	ID      uint32      `json:"tunnel_id"`
	PeerID  uint32      `json:"peer_tunnel_id"`
	Encap   encap.Encap `json:"-"`
	// Local is the local address; the zero Addr binds every address of
	// Remote's family.
	Local  netip.Addr `json:"local"`
	Remote netip.Addr `json:"peer"`
	// UDPSport and UDPDport default to 1701.
	UDPSport uint16 `json:"local_port"`
	UDPDport uint16 `json:"peer_port"`
	// UDPCsum turns on IPv4 UDP checksums. The zero value is off, as the
	// kernel's default; ul2tpd's API and config default to on, which lets
	// the kernel segment UDP GSO batches.
	UDPCsum bool `json:"udp_csum"`
	// UDP6CsumTx / UDP6CsumRx: IPv6 UDP checksums on send / required on
	// receive (both on by default, as the kernel).
	UDP6CsumTx bool `json:"udp6_csum_tx"`
	UDP6CsumRx bool `json:"udp6_csum_rx"`
}

// Check validates the configuration and fills defaults.
func (c *TunnelConfig) Check() error {
	if err := c.checkIDs(); err != nil {
		return err
	}
	if c.Encap != encap.EncapUDP && c.Encap != encap.EncapIP {
		return &FieldError{"encap", c.Encap, "want udp or ip"}
	}
	if c.Version == 2 && c.Encap != encap.EncapUDP {
		return &FieldError{"encap", c.Encap, "L2TPv2 runs over UDP only"}
	}
	if !c.Remote.IsValid() {
		return &FieldError{"remote", nil, "an address is required"}
	}
	c.Remote = c.Remote.Unmap()
	if why := badRemote(c.Remote); why != "" {
		return &FieldError{"remote", c.Remote, why}
	}
	if c.Local.IsValid() {
		c.Local = c.Local.Unmap()
		if why := badLocal(c.Local); why != "" {
			return &FieldError{"local", c.Local, why}
		}
		if c.Local.Is4() != c.Remote.Is4() {
			return &FieldError{"local", c.Local, "not the same family as remote " + c.Remote.String()}
		}
	}
	if c.Encap == encap.EncapUDP {
		if c.UDPSport == 0 {
			c.UDPSport = DefaultUDPPort
		}
		if c.UDPDport == 0 {
			c.UDPDport = DefaultUDPPort
		}
	} else {
		c.UDPSport, c.UDPDport = 0, 0
	}
	return nil
}

// checkIDs checks the version and the tunnel ids for it: 32 bits in
// L2TPv3, 16 in L2TPv2.
func (c *TunnelConfig) checkIDs() error {
	limit := uint32(math.MaxUint32)
	switch c.Version {
	case 0, 3:
	case 2:
		limit = math.MaxUint16
	default:
		return &FieldError{"version", c.Version, "want 2 or 3"}
	}
	if c.ID == 0 || c.ID > limit {
		return &FieldError{"tunnel_id", c.ID, fmt.Sprintf("must be 1..%d", limit)}
	}
	if c.PeerID == 0 || c.PeerID > limit {
		return &FieldError{"peer_tunnel_id", c.PeerID, fmt.Sprintf("must be 1..%d", limit)}
	}
	return nil
}

// V2 reports whether the tunnel is L2TPv2.
func (c *TunnelConfig) V2() bool { return c.Version == 2 }

// broadcast4 is the IPv4 limited broadcast address.
var broadcast4 = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// badRemote says why a (unmapped) address cannot be a tunnel's peer: a
// tunnel has one unicast peer.
func badRemote(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "an address is required, not the unspecified address"
	case a.IsMulticast():
		return "a multicast address cannot be a peer"
	case a == broadcast4:
		return "the broadcast address cannot be a peer"
	}
	return ""
}

// badLocal says why a (unmapped) address cannot be a tunnel's local
// address; the unspecified address means any and is fine.
func badLocal(a netip.Addr) string {
	switch {
	case a.IsMulticast():
		return "a multicast address cannot be bound"
	case a == broadcast4:
		return "the broadcast address cannot be bound"
	}
	return ""
}

// localAddrPort is the address the tunnel's socket binds.
func (c *TunnelConfig) localAddrPort() netip.AddrPort {
	a := c.Local
	if !a.IsValid() {
		if c.Remote.Is4() {
			a = netip.IPv4Unspecified()
		} else {
			a = netip.IPv6Unspecified()
		}
	}
	return netip.AddrPortFrom(a, c.UDPSport)
}

// remoteAddrPort is the peer's address as received packets show it.
func (c *TunnelConfig) remoteAddrPort() netip.AddrPort {
	return netip.AddrPortFrom(c.Remote, c.UDPDport)
}

// SessionConfig is what L2TP_CMD_SESSION_CREATE carries for an Ethernet
// pseudowire.
type SessionConfig struct {
	TunnelID uint32 `json:"tunnel_id"`
	ID       uint32 `json:"session_id"`
	PeerID   uint32 `json:"peer_session_id"`
	// Name is the interface name; default "l2tpeth%d".
	Name string `json:"ifname"`
	// Cookie is sent in every packet; PeerCookie is required in every
	// packet received (the kernel's cookie and peer_cookie).
	Cookie     encap.Cookie `json:"-"`
	PeerCookie encap.Cookie `json:"-"`
	L2Spec     encap.L2Spec `json:"-"`
	// SendSeq, RecvSeq, LNSMode and ReorderTimeout are the kernel's
	// sequencing options.
	SendSeq        bool          `json:"send_seq"`
	RecvSeq        bool          `json:"recv_seq"`
	LNSMode        bool          `json:"lns_mode"`
	ReorderTimeout time.Duration `json:"-"`
	// MTU of the TAP device; 0 derives it from the path MTU toward the
	// tunnel's remote less the encapsulation overhead.
	MTU int `json:"mtu"`
	// Address is the TAP's Ethernet address; nil derives a stable one
	// from the ids and the peer (DefaultAddress), so a restart keeps it.
	Address net.HardwareAddr `json:"-"`
	// Payload, for a session of an L2TPv2 tunnel (and only there), takes
	// the session's received frames instead of a TAP: ids are then 16
	// bits, Name, cookies, L2Spec and Address stay empty, and MTU, if
	// set, is only reported (see Session.MTU).
	Payload Payload `json:"-"`
}

// Check validates the configuration and fills defaults.
func (c *SessionConfig) Check() error {
	if c.Payload != nil {
		return c.checkV2()
	}
	if c.TunnelID == 0 {
		return &FieldError{"tunnel_id", c.TunnelID, "must be 1..4294967295"}
	}
	if c.ID == 0 {
		return &FieldError{"session_id", c.ID, "must be 1..4294967295"}
	}
	if c.PeerID == 0 {
		return &FieldError{"peer_session_id", c.PeerID, "must be 1..4294967295"}
	}
	if c.L2Spec != encap.L2SpecNone && c.L2Spec != encap.L2SpecDefault {
		return &FieldError{"l2spec_type", c.L2Spec, "want none or default"}
	}
	if err := checkSeqSublayer(c.L2Spec, c.SendSeq, c.RecvSeq); err != nil {
		return err
	}
	if c.Name == "" {
		c.Name = "l2tpeth%d"
	}
	if why := badIfName(c.Name); why != "" {
		return &FieldError{"name", c.Name, why}
	}
	if c.MTU != 0 && (c.MTU < 68 || c.MTU > 65535-64) {
		return &FieldError{"mtu", c.MTU, "must be 68..65471"}
	}
	if c.ReorderTimeout < 0 {
		return &FieldError{"reorder_timeout", c.ReorderTimeout, "must not be negative"}
	}
	return nil
}

// checkV2 validates the configuration of an L2TPv2 session.
func (c *SessionConfig) checkV2() error {
	const limit = math.MaxUint16
	switch {
	case c.TunnelID == 0 || c.TunnelID > limit:
		return &FieldError{"tunnel_id", c.TunnelID, "must be 1..65535"}
	case c.ID == 0 || c.ID > limit:
		return &FieldError{"session_id", c.ID, "must be 1..65535"}
	case c.PeerID == 0 || c.PeerID > limit:
		return &FieldError{"peer_session_id", c.PeerID, "must be 1..65535"}
	case c.Name != "":
		return &FieldError{"name", c.Name, "an L2TPv2 session has no interface"}
	case c.Cookie.Len() != 0 || c.PeerCookie.Len() != 0:
		return &FieldError{"cookie", nil, "L2TPv2 has no cookies"}
	case c.L2Spec != encap.L2SpecNone:
		return &FieldError{"l2spec_type", c.L2Spec, "L2TPv2 has no L2-specific sublayer"}
	case c.Address != nil:
		return &FieldError{"address", c.Address.String(), "an L2TPv2 session has no interface"}
	case c.MTU < 0 || c.MTU > 65535:
		return &FieldError{"mtu", c.MTU, "must be 0..65535"}
	case c.ReorderTimeout < 0:
		return &FieldError{"reorder_timeout", c.ReorderTimeout, "must not be negative"}
	}
	return nil
}

// badIfName says why name is not a valid Linux interface name, the
// kernel's dev_valid_name rules and stricter: 1..15 bytes, not "." or
// "..", no '/', ':', whitespace or control characters (NUL included), and
// at most one '%', as the "%d" the kernel numbers.
func badIfName(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > 15:
		return "longer than 15 bytes"
	case name == "." || name == "..":
		return "not an interface name"
	}
	for i := 0; i < len(name); i++ {
		switch b := name[i]; {
		case b < 0x20 || b == 0x7f:
			return "contains a control character"
		case b == ' ' || b == 0xa0: // the kernel's isspace counts 0xa0
			return "contains a space"
		case b == '/' || b == ':':
			return fmt.Sprintf("contains %q", b)
		}
	}
	if i := strings.IndexByte(name, '%'); i >= 0 {
		if !strings.HasPrefix(name[i:], "%d") || strings.Contains(name[i+2:], "%") {
			return `'%' only as one "%d"`
		}
	}
	return ""
}

// Overhead is the number of bytes the outer IP header, UDP header (for UDP
// encapsulation), L2TPv3 header and the tunnelled Ethernet header add to an
// IP packet inside the pseudowire. The TAP's MTU is the path MTU less this.
func Overhead(t *TunnelConfig, s *SessionConfig) int {
	l := encap.V3Layout{Encap: t.Encap, Cookie: s.Cookie, L2Spec: s.L2Spec}
	return underlayLen(t) + l.HeaderLen() + 14
}

// underlayLen is the tunnel's outer IP header, and its UDP header for
// encap udp.
func underlayLen(t *TunnelConfig) int {
	n := 20
	if !t.Remote.Is4() {
		n = 40
	}
	if t.Encap == encap.EncapUDP {
		n += 8
	}
	return n
}

// checkSeqSublayer refuses sequencing on a session without the default
// L2-specific sublayer: an L2TPv3 data packet carries its sequence number
// there, so the kernel, taking such a session, sends no numbers and drops
// every packet received (recv_seq), which is never what was meant.
func checkSeqSublayer(l encap.L2Spec, send, recv bool) error {
	if l != encap.L2SpecNone || !send && !recv {
		return nil
	}
	word := "both"
	switch {
	case !recv:
		word = "send"
	case !send:
		word = "recv"
	}
	return &FieldError{"seq", word, "needs l2spec_type default: L2TPv3 carries sequence numbers in the L2-specific sublayer"}
}
