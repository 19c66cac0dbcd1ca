package control

import (
	"errors"
	"fmt"
)

// fields are the AVPs of one received message that the state machines
// use, decoded (and unhidden) once. Byte slices are views into the
// message or into the Tunnel's unhide scratch buffer: valid while the
// message is handled.
type fields struct {
	present uint64 // bit t set when attribute t (< 64) was seen

	result        ResultCode
	protoVer      uint16
	framingCaps   uint32
	bearerCaps    uint32
	tieBreaker    uint64
	firmware      uint16
	hostName      []byte
	vendorName    []byte
	tunnelID      uint32
	window        uint16
	challenge     []byte
	challengeResp [16]byte
	sessionID     uint32
	serial        uint32
	minBPS        uint32
	maxBPS        uint32
	bearerType    uint32
	framingType   uint32
	txSpeed       uint32
	rxSpeed       uint32
	physChannel   uint32
	called        []byte
	calling       []byte
	subAddress    []byte
	q931          Q931Cause
	callErrors    CallErrors
	accmSend      uint32
	accmRecv      uint32
}

func (f *fields) has(t AttrType) bool { return t < 64 && f.present&(1<<t) != 0 }

// errHiddenNoSecret is a hidden AVP received by a tunnel without a secret.
var errHiddenNoSecret = errors.New("control: hidden AVP and no secret")

// decode reads m's AVPs into f, unhiding hidden ones with secret into
// scratch. Vendor and unknown AVPs are skipped (the unknown mandatory
// check comes first). An error names the attribute with a bad value.
func (f *fields) decode(m Message, d *dialect, secret, scratch []byte) error {
	*f = fields{}
	it := m.AVPs()
	for {
		a, ok := it.Next()
		if !ok {
			return it.Err()
		}
		if a.VendorID != 0 || a.Reserved() || a.Type >= 64 {
			continue
		}
		if a.Hidden() {
			if len(secret) == 0 {
				return fmt.Errorf("%s: %w", a.Type, errHiddenNoSecret)
			}
			if len(scratch) < len(a.Value) {
				return fmt.Errorf("%s: %w", a.Type, ErrBufferFull)
			}
			var err error
			if a, err = Unhide(scratch, a, secret, it.RandomVector()); err != nil {
				return err
			}
			scratch = scratch[len(a.Value)+2:]
		}
		if err := f.set(a, d); err != nil {
			return err
		}
		f.present |= 1 << a.Type
	}
}

func (f *fields) set(a AVP, d *dialect) error {
	var err error
	switch a.Type {
	case AttrResultCode:
		f.result, err = a.ResultCode()
	case AttrProtocolVersion:
		f.protoVer, err = a.Uint16()
	case AttrFramingCaps:
		f.framingCaps, err = a.Uint32()
	case AttrBearerCaps:
		f.bearerCaps, err = a.Uint32()
	case AttrTieBreaker:
		f.tieBreaker, err = a.Uint64()
	case AttrFirmwareRevision:
		f.firmware, err = a.Uint16()
	case AttrHostName:
		f.hostName, err = a.Bytes()
	case AttrVendorName:
		f.vendorName, err = a.Bytes()
	case AttrReceiveWindowSize:
		f.window, err = a.Uint16()
	case AttrChallenge:
		f.challenge, err = a.Bytes()
	case AttrChallengeResponse:
		f.challengeResp, err = a.ChallengeResponse()
	case AttrCallSerialNumber:
		f.serial, err = a.Uint32()
	case AttrMinBPS:
		f.minBPS, err = a.Uint32()
	case AttrMaxBPS:
		f.maxBPS, err = a.Uint32()
	case AttrBearerType:
		f.bearerType, err = a.Uint32()
	case AttrFramingType:
		f.framingType, err = a.Uint32()
	case AttrTxConnectSpeed:
		f.txSpeed, err = a.Uint32()
	case AttrRxConnectSpeed:
		f.rxSpeed, err = a.Uint32()
	case AttrPhysicalChannelID:
		f.physChannel, err = a.Uint32()
	case AttrCalledNumber:
		f.called, err = a.Bytes()
	case AttrCallingNumber:
		f.calling, err = a.Bytes()
	case AttrSubAddress:
		f.subAddress, err = a.Bytes()
	case AttrQ931Cause:
		f.q931, err = a.Q931Cause()
	case AttrCallErrors:
		f.callErrors, err = a.CallErrors()
	case AttrACCM:
		f.accmSend, f.accmRecv, err = a.ACCM()
	case AttrSequencingRequired:
		err = a.Empty()
	case d.tunnelIDAttr:
		f.tunnelID, err = d.readID(a)
	case d.sessionIDAttr:
		f.sessionID, err = d.readID(a)
	}
	return err
}

// msgBuilder builds one outgoing message of a Tunnel, hiding the
// attributes the dialect allows when the tunnel hides AVPs: a Random
// Vector goes in before the first hidden one.
type msgBuilder struct {
	Builder
	t   *Tunnel
	typ MessageType
	rv  bool
}

func (m *msgBuilder) hide(at AttrType) bool {
	return m.t.cfg.HideAVPs && len(m.t.cfg.Secret) > 0 && m.t.d.hideable(at)
}

func (m *msgBuilder) addHidden(at AttrType, mandatory bool, v []byte) {
	if !m.rv {
		var rv [16]byte
		m.t.random(rv[:])
		m.AddBytes(AttrRandomVector, true, rv[:])
		m.rv = true
	}
	m.AddHidden(at, mandatory, v, m.t.cfg.Secret, 0)
}

func (m *msgBuilder) u16(at AttrType, mandatory bool, v uint16) {
	if m.hide(at) {
		m.addHidden(at, mandatory, []byte{byte(v >> 8), byte(v)})
		return
	}
	m.AddUint16(at, mandatory, v)
}

func (m *msgBuilder) u32(at AttrType, mandatory bool, v uint32) {
	if m.hide(at) {
		m.addHidden(at, mandatory, []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		return
	}
	m.AddUint32(at, mandatory, v)
}

func (m *msgBuilder) str(at AttrType, mandatory bool, v string) {
	if v == "" {
		return
	}
	if m.hide(at) {
		m.addHidden(at, mandatory, []byte(v))
		return
	}
	m.AddString(at, mandatory, v)
}
