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
		off := int(binary.BigEndian.Uint16(b[n:]))
		n += 2 + off
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
