package datapath

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"net"
)

// DefaultAddress is the Ethernet address of a session's TAP when the
// configuration gives none. It is stable, so a daemon restarted with the
// same configuration gives the TAP the address it had and the far side's
// neighbour entries stay right. It is 02 followed by the first five bytes
// of the SHA-256 of, in order:
//
//	tunnel_id, session_id, peer_tunnel_id, peer_session_id  (4 bytes each, big-endian)
//	the tunnel's remote address                            (4 bytes IPv4, 16 bytes IPv6)
//
// The first byte 02 makes the address locally administered and unicast.
// The local ids come first, so the two ends of a mirrored configuration
// (tunnel 1 session 11 to 2/22, and 2/22 to 1/11) hash different input;
// the remote address makes two ends with the same ids differ too, since
// each names the other.
func DefaultAddress(t *TunnelConfig, s *SessionConfig) net.HardwareAddr {
	var b [16 + 16]byte
	binary.BigEndian.PutUint32(b[0:], s.TunnelID)
	binary.BigEndian.PutUint32(b[4:], s.ID)
	binary.BigEndian.PutUint32(b[8:], t.PeerID)
	binary.BigEndian.PutUint32(b[12:], s.PeerID)
	n := 16 + copy(b[16:], t.Remote.Unmap().AsSlice())
	sum := sha256.Sum256(b[:n])
	mac := make(net.HardwareAddr, 6)
	mac[0] = 0x02
	copy(mac[1:], sum[:5])
	return mac
}

// CheckAddress validates a TAP's Ethernet address, as the FieldError of
// field address: it must be 6 bytes, unicast and not all zeros (the kernel
// refuses the others).
func CheckAddress(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return &FieldError{"address", mac, "want 6 bytes, as 02:00:00:00:00:01"}
	case mac[0]&0x01 != 0:
		return &FieldError{"address", mac, "multicast (the first byte is odd); want a unicast address"}
	case bytes.Equal(mac, make(net.HardwareAddr, 6)):
		return &FieldError{"address", mac, "all zeros"}
	}
	return nil
}

// setAddress checks c's address, or gives c the default one for tunnel t.
// The address is copied, so the caller's slice is not shared.
func (c *SessionConfig) setAddress(t *TunnelConfig) error {
	if c.Address == nil {
		c.Address = DefaultAddress(t, c)
		return nil
	}
	if err := CheckAddress(c.Address); err != nil {
		return err
	}
	c.Address = bytes.Clone(c.Address)
	return nil
}
