package encap

import "encoding/binary"

// L2TPv2 header flag bits (RFC 2661 section 3.1).
const (
	V2FlagT   = 0x8000 // control message
	V2FlagL   = 0x4000 // Length field present
	V2FlagS   = 0x0800 // Ns and Nr present
	V2FlagO   = 0x0200 // Offset Size field present
	V2FlagP   = 0x0100 // priority
	v2Version = 2

	// V2MinHeaderLen is the shortest L2TPv2 header: flags, tunnel and session id.
	V2MinHeaderLen = 6
	// V2MaxDataHeaderLen is the longest header Encode writes: with Ns and Nr.
	V2MaxDataHeaderLen = 10
)

// V2Header holds the fields of an L2TPv2 header.
type V2Header struct {
	Flags     uint16 // T, L, S, O, P bits as received (version bits cleared)
	Length    uint16 // total length, valid when Flags&V2FlagL
	TunnelID  uint16
	SessionID uint16
	Ns, Nr    uint16 // valid when Flags&V2FlagS
	// OffsetSize is the Offset Size field: how many bytes of padding
	// follow it. Valid when Flags&V2FlagO.
	OffsetSize uint16
	// PayloadOffset is where the PPP frame starts: after the header and any
	// offset padding.
	PayloadOffset int
}

// ParseV2 reads an L2TPv2 header from a UDP payload. It accepts control and
// data messages (look at Flags&V2FlagT) and checks that every field it
// announces, the offset padding and the Length field fit in b.
func ParseV2(b []byte) (V2Header, error) {
	var h V2Header
	if len(b) < 2 {
		return h, ErrTruncated
	}
	flags := binary.BigEndian.Uint16(b[0:2])
	if flags&versionMask != v2Version {
		return h, ErrVersion
	}
	h.Flags = flags &^ versionMask
	n := 2
	if flags&V2FlagL != 0 {
		if len(b) < n+2 {
			return h, ErrTruncated
		}
		h.Length = binary.BigEndian.Uint16(b[n:])
		n += 2
	}
	if len(b) < n+4 {
		return h, ErrTruncated
	}
	h.TunnelID = binary.BigEndian.Uint16(b[n:])
	h.SessionID = binary.BigEndian.Uint16(b[n+2:])
	n += 4
	if flags&V2FlagS != 0 {
		if len(b) < n+4 {
			return h, ErrTruncated
		}
		h.Ns = binary.BigEndian.Uint16(b[n:])
		h.Nr = binary.BigEndian.Uint16(b[n+2:])
		n += 4
	}
	if flags&V2FlagO != 0 {
		if len(b) < n+2 {
			return h, ErrTruncated
		}
		h.OffsetSize = binary.BigEndian.Uint16(b[n:])
		n += 2 + int(h.OffsetSize)
		if len(b) < n {
			return h, ErrTruncated
		}
	}
	if flags&V2FlagL != 0 && (int(h.Length) < n || int(h.Length) > len(b)) {
		return h, ErrTruncated
	}
	h.PayloadOffset = n
	return h, nil
}

// V2DataHeaderLen is the length of the data header EncodeV2Data writes.
func V2DataHeaderLen(withSeq bool) int {
	if withSeq {
		return V2MaxDataHeaderLen
	}
	return V2MinHeaderLen
}

// EncodeV2Data writes an L2TPv2 data header into b, as the kernel builds
// it: no Length, no Offset, and Ns/Nr only when withSeq (Nr is 0 for data).
// It returns the header length.
func EncodeV2Data(b []byte, tunnelID, sessionID, ns uint16, withSeq bool) int {
	flags := uint16(v2Version)
	if withSeq {
		flags |= V2FlagS
	}
	binary.BigEndian.PutUint16(b[0:2], flags)
	binary.BigEndian.PutUint16(b[2:4], tunnelID)
	binary.BigEndian.PutUint16(b[4:6], sessionID)
	if !withSeq {
		return V2MinHeaderLen
	}
	binary.BigEndian.PutUint16(b[6:8], ns)
	binary.BigEndian.PutUint16(b[8:10], 0)
	return V2MaxDataHeaderLen
}

// V2HeaderLen is the length of an L2TPv2 header with the fields flags
// announce and offsetSize bytes of offset padding (with V2FlagO).
func V2HeaderLen(flags uint16, offsetSize uint16) int {
	n := V2MinHeaderLen
	if flags&V2FlagL != 0 {
		n += 2
	}
	if flags&V2FlagS != 0 {
		n += 4
	}
	if flags&V2FlagO != 0 {
		n += 2 + int(offsetSize)
	}
	return n
}

// EncodeV2 writes the L2TPv2 header h describes into b, for a message
// with payloadLen bytes after the header: the T, L, S, O and P bits of
// h.Flags (others are ignored), TunnelID and SessionID, Ns and Nr with
// V2FlagS, the Offset Size and zeroed padding with V2FlagO, and with
// V2FlagL the Length of header and payload. It returns the header length,
// or ErrTruncated if b is shorter than the header, and ErrLength if the
// message is longer than a Length field holds.
func EncodeV2(b []byte, h *V2Header, payloadLen int) (int, error) {
	flags := h.Flags & (V2FlagT | V2FlagL | V2FlagS | V2FlagO | V2FlagP)
	n := V2HeaderLen(flags, h.OffsetSize)
	if len(b) < n {
		return 0, ErrTruncated
	}
	if flags&V2FlagL != 0 && n+payloadLen > 0xffff {
		return 0, ErrLength
	}
	binary.BigEndian.PutUint16(b[0:2], flags|v2Version)
	i := 2
	if flags&V2FlagL != 0 {
		binary.BigEndian.PutUint16(b[i:], uint16(n+payloadLen))
		i += 2
	}
	binary.BigEndian.PutUint16(b[i:], h.TunnelID)
	binary.BigEndian.PutUint16(b[i+2:], h.SessionID)
	i += 4
	if flags&V2FlagS != 0 {
		binary.BigEndian.PutUint16(b[i:], h.Ns)
		binary.BigEndian.PutUint16(b[i+2:], h.Nr)
		i += 4
	}
	if flags&V2FlagO != 0 {
		binary.BigEndian.PutUint16(b[i:], h.OffsetSize)
		clear(b[i+2 : n])
	}
	return n, nil
}
