package control

// dialect holds what differs between the control protocols of L2TPv2
// and L2TPv3 for the tunnel and call state machines: which attributes
// carry the ids, how wide they are, which attributes are understood and
// which may be hidden. The state machines consult it instead of naming
// version-specific attributes, so that L2TPv3 (RFC 3931: Assigned
// Control Connection ID, Local/Remote Session ID, pseudowire type,
// cookies) can be added as a second table. Only V2 exists today.
type dialect struct {
	version       uint8
	tunnelIDAttr  AttrType // our id, in SCCRQ and SCCRP (and StopCCN)
	sessionIDAttr AttrType // our session id, in ICRQ/ICRP/OCRQ/OCRP/CDN
	maxID         uint32   // largest tunnel or session id
	known         func(AVP) bool
	hideable      func(AttrType) bool
}

var dialectV2 = dialect{
	version:       V2,
	tunnelIDAttr:  AttrAssignedTunnelID,
	sessionIDAttr: AttrAssignedSessionID,
	maxID:         0xffff,
	known:         KnownV2,
	hideable:      hideableV2,
}

// hideableV2 lists the attributes sent hidden when hiding is on: the ids
// and the call's numbers, which RFC 2661 section 4.4 allows to hide. The
// Message Type, Random Vector, Protocol Version, Challenge, Challenge
// Response and Tie Breaker must never be hidden.
func hideableV2(t AttrType) bool {
	switch t {
	case AttrAssignedTunnelID, AttrAssignedSessionID, AttrCallSerialNumber,
		AttrCalledNumber, AttrCallingNumber, AttrSubAddress:
		return true
	}
	return false
}

// putID writes an id attribute of the dialect's width.
func (d *dialect) putID(m *msgBuilder, t AttrType, id uint32) {
	if d.maxID <= 0xffff {
		m.u16(t, true, uint16(id))
	} else {
		m.u32(t, true, id)
	}
}

// readID reads an id attribute of the dialect's width.
func (d *dialect) readID(a AVP) (uint32, error) {
	if d.maxID <= 0xffff {
		v, err := a.Uint16()
		return uint32(v), err
	}
	return a.Uint32()
}
