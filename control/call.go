package control

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"
)

// CallKind is the direction of a call as RFC 2661 names it, from the
// LAC's point of view.
type CallKind uint8

// Call kinds.
const (
	IncomingCall CallKind = iota + 1 // ICRQ, ICRP, ICCN: opened by the LAC
	OutgoingCall                     // OCRQ, OCRP, OCCN: opened by the LNS
)

func (k CallKind) String() string {
	switch k {
	case IncomingCall:
		return "incoming"
	case OutgoingCall:
		return "outgoing"
	}
	return "none"
}

// CallParams are our side of a call: what OpenCall sends, and (as
// TunnelConfig.Answer) what we answer an OCRQ with.
type CallParams struct {
	Kind            CallKind
	BearerType      uint32 // BearerDigital/BearerAnalog; 0: not sent (ICRQ)
	FramingType     uint32 // FramingSync/FramingAsync; default sync
	Called          string // Called Number
	Calling         string // Calling Number (ICRQ)
	SubAddress      string
	TxSpeed         uint32 // Tx Connect Speed in bps (ICCN, OCCN); default 100 Mbit/s
	RxSpeed         uint32 // Rx Connect Speed; 0: not sent
	MinBPS, MaxBPS  uint32 // OCRQ
	PhysicalChannel uint32 // ICRQ, OCRP; 0: not sent
	// SequencingRequired asks the peer to send data with sequence
	// numbers (Sequencing Required AVP in our ICCN or OCCN).
	SequencingRequired bool
}

const defaultConnectSpeed = 100_000_000

// CallState is the state of one call.
type CallState uint8

// Call states (RFC 2661 section 7.4 and 7.5, folded: the waits for the
// peer's reply and for its connect).
const (
	CallWaitReply   CallState = iota + 1 // sent ICRQ or OCRQ
	CallWaitConnect                      // sent ICRP, or got OCRP: waiting for ICCN/OCCN
	CallEstablished
)

func (s CallState) String() string {
	switch s {
	case CallWaitReply:
		return "wait-reply"
	case CallWaitConnect:
		return "wait-connect"
	case CallEstablished:
		return "established"
	}
	return "none"
}

// CallInfo describes a call: the ids, and the parameters both sides
// sent. The owner sends data to PeerID and receives it on LocalID.
type CallInfo struct {
	LocalID, PeerID uint32
	Kind            CallKind
	Initiator       bool // we sent the ICRQ or OCRQ
	Serial          uint32
	BearerType      uint32
	FramingType     uint32
	TxSpeed         uint32
	RxSpeed         uint32
	MinBPS, MaxBPS  uint32
	PhysicalChannel uint32
	Called          string
	Calling         string
	SubAddress      string
	// SequencingRequired: the side that sent the ICCN/OCCN asked for
	// data with sequence numbers. For a call we answer (LNS of an
	// incoming call, LAC of an outgoing one) it is the peer's demand.
	SequencingRequired bool
}

// CallStatus is a snapshot of a call for display.
type CallStatus struct {
	CallInfo
	State CallState
}

type call struct {
	info  CallInfo
	state CallState
}

// Calls returns the calls, sorted by local id.
func (t *Tunnel) Calls() []CallStatus {
	s := make([]CallStatus, 0, len(t.calls))
	for _, c := range t.calls {
		s = append(s, CallStatus{CallInfo: c.info, State: c.state})
	}
	sort.Slice(s, func(i, j int) bool { return s[i].LocalID < s[j].LocalID })
	return s
}

// allocSession returns a free nonzero local session id.
func (t *Tunnel) allocSession() (uint32, error) {
	for range t.d.maxID {
		id := t.nextSession
		t.nextSession++
		if t.nextSession > t.d.maxID {
			t.nextSession = 1
		}
		if _, used := t.calls[id]; !used {
			return id, nil
		}
	}
	return 0, ErrNoSessionIDs
}

// OpenCall opens a call on an established tunnel: an incoming call
// (ICRQ, as a LAC) or an outgoing call (OCRQ, as an LNS). It returns our
// session id; EventCallUp follows when the peer has answered.
func (t *Tunnel) OpenCall(p CallParams, now time.Time) (uint32, TunnelOutput, error) {
	t.reset()
	if t.state != StateEstablished {
		return 0, t.out, fmt.Errorf("open call in %s: %w", t.state, ErrState)
	}
	if t.cfg.MaxCalls > 0 && len(t.calls) >= t.cfg.MaxCalls {
		return 0, t.out, ErrTooManyCalls
	}
	if err := t.busy(); err != nil {
		return 0, t.out, err
	}
	id, err := t.allocSession()
	if err != nil {
		return 0, t.out, err
	}
	c := &call{state: CallWaitReply, info: CallInfo{
		LocalID: id, Kind: p.Kind, Initiator: true, Serial: t.nextSerial,
		BearerType: p.BearerType, FramingType: p.FramingType, TxSpeed: p.TxSpeed, RxSpeed: p.RxSpeed,
		MinBPS: p.MinBPS, MaxBPS: p.MaxBPS, PhysicalChannel: p.PhysicalChannel,
		Called: p.Called, Calling: p.Calling, SubAddress: p.SubAddress,
		SequencingRequired: p.SequencingRequired,
	}}
	if c.info.FramingType == 0 {
		c.info.FramingType = FramingSync
	}
	if c.info.TxSpeed == 0 {
		c.info.TxSpeed = defaultConnectSpeed
	}
	var m msgBuilder
	switch p.Kind {
	case IncomingCall:
		m = t.newMsg(MsgICRQ, 0)
		t.d.putID(&m, t.d.sessionIDAttr, id)
		m.u32(AttrCallSerialNumber, true, c.info.Serial)
		if p.BearerType != 0 {
			m.AddUint32(AttrBearerType, true, p.BearerType)
		}
		if p.PhysicalChannel != 0 {
			m.AddUint32(AttrPhysicalChannelID, false, p.PhysicalChannel)
		}
		m.str(AttrCalledNumber, true, p.Called)
		m.str(AttrCallingNumber, true, p.Calling)
		m.str(AttrSubAddress, true, p.SubAddress)
	case OutgoingCall:
		m = t.newMsg(MsgOCRQ, 0)
		t.d.putID(&m, t.d.sessionIDAttr, id)
		m.u32(AttrCallSerialNumber, true, c.info.Serial)
		m.AddUint32(AttrMinBPS, true, p.MinBPS)
		m.AddUint32(AttrMaxBPS, true, p.MaxBPS)
		m.AddUint32(AttrBearerType, true, p.BearerType)
		m.AddUint32(AttrFramingType, true, c.info.FramingType)
		if p.Called == "" {
			m.AddString(AttrCalledNumber, true, "") // mandatory in OCRQ
		}
		m.str(AttrCalledNumber, true, p.Called)
		m.str(AttrSubAddress, true, p.SubAddress)
	default:
		return 0, t.out, fmt.Errorf("call kind %d: %w", p.Kind, ErrState)
	}
	if err := t.send(&m, now); err != nil {
		return 0, t.out, err
	}
	t.nextSerial++
	t.calls[id] = c
	return id, t.out, nil
}

// CloseCall ends a call with a CDN carrying r (r.Code 0 means
// CDNResultAdmin). EventCallDown follows at once.
func (t *Tunnel) CloseCall(id uint32, r Result, now time.Time) (TunnelOutput, error) {
	t.reset()
	c, ok := t.calls[id]
	if !ok {
		return t.out, fmt.Errorf("call %d: %w", id, ErrNoCall)
	}
	if r.Code == 0 {
		r.Code = CDNResultAdmin
	}
	return t.out, t.endCall(c, r, ByLocal, now)
}

// endCall sends a CDN (unless the peer sent one) and drops the call.
func (t *Tunnel) endCall(c *call, r Result, by Origin, now time.Time) error {
	delete(t.calls, c.info.LocalID)
	t.emit(Event{Kind: EventCallDown, By: by, Result: r, Call: c.info, Tunnel: t.info})
	if by != ByLocal {
		return nil
	}
	return t.sendCDN(c.info.LocalID, c.info.PeerID, r, now)
}

func (t *Tunnel) sendCDN(local, peer uint32, r Result, now time.Time) error {
	m := t.newMsg(MsgCDN, peer)
	addResult(&m, r)
	t.d.putID(&m, t.d.sessionIDAttr, local)
	return t.send(&m, now)
}

// SendWEN sends a WAN-Error-Notify (LAC to LNS) with the call's error
// counters.
func (t *Tunnel) SendWEN(id uint32, e CallErrors, now time.Time) (TunnelOutput, error) {
	t.reset()
	c, ok := t.calls[id]
	if !ok {
		return t.out, fmt.Errorf("call %d: %w", id, ErrNoCall)
	}
	if err := t.busy(); err != nil {
		return t.out, err
	}
	var v [26]byte
	for i, x := range [...]uint32{e.CRC, e.Framing, e.HardwareOverruns, e.BufferOverruns, e.Timeout, e.Alignment} {
		binary.BigEndian.PutUint32(v[2+4*i:], x)
	}
	m := t.newMsg(MsgWEN, c.info.PeerID)
	m.AddBytes(AttrCallErrors, true, v[:])
	return t.out, t.send(&m, now)
}

// SendSLI sends a Set-Link-Info (LNS to LAC) with the PPP ACCMs.
func (t *Tunnel) SendSLI(id uint32, send, recv uint32, now time.Time) (TunnelOutput, error) {
	t.reset()
	c, ok := t.calls[id]
	if !ok {
		return t.out, fmt.Errorf("call %d: %w", id, ErrNoCall)
	}
	if err := t.busy(); err != nil {
		return t.out, err
	}
	var v [10]byte
	binary.BigEndian.PutUint32(v[2:], send)
	binary.BigEndian.PutUint32(v[6:], recv)
	m := t.newMsg(MsgSLI, c.info.PeerID)
	m.AddBytes(AttrACCM, true, v[:])
	return t.out, t.send(&m, now)
}

// callOf finds the call a message is for: by the header's session id
// (ours), or for a CDN that precedes our reply, by the peer's id.
func (t *Tunnel) callOf(m Message, f *fields) *call {
	if m.SessionID != 0 {
		return t.calls[uint32(m.SessionID)]
	}
	if f == nil || !f.has(t.d.sessionIDAttr) || f.sessionID == 0 {
		return nil
	}
	for _, c := range t.calls {
		if c.info.PeerID == f.sessionID {
			return c
		}
	}
	return nil
}

// failCall ends the call a bad call message is for with a CDN carrying
// r. A bad ICRQ or OCRQ is refused with a CDN from a transient id.
func (t *Tunnel) failCall(m Message, r Result, now time.Time) {
	switch m.Type() {
	case MsgICRQ, MsgOCRQ:
		var peer uint32
		if a, ok := m.Find(t.d.sessionIDAttr); ok {
			peer, _ = t.d.readID(a) // hidden or bad: 0
		}
		t.refuse(peer, r, now)
		return
	}
	if c := t.callOf(m, nil); c != nil {
		t.endCall(c, r, ByLocal, now)
		return
	}
	t.stats.Unexpected++
}

// refuse answers a call request with a CDN from a transient session id.
func (t *Tunnel) refuse(peer uint32, r Result, now time.Time) {
	id, err := t.allocSession()
	if err != nil {
		id = 0
	}
	t.sendCDN(id, peer, r, now)
}

func (t *Tunnel) onCallMessage(m Message, f *fields, now time.Time) {
	typ := m.Type()
	if typ == MsgICRQ || typ == MsgOCRQ {
		t.onCallRequest(typ, f, now)
		return
	}
	c := t.callOf(m, f)
	if c == nil {
		t.stats.Unexpected++
		return
	}
	in := &c.info
	switch {
	case typ == MsgCDN:
		r := Result{Code: f.result.Result, Error: f.result.Error, HasError: f.result.HasError,
			Message: string(f.result.Message)}
		t.endCall(c, r, ByPeer, now)
	case typ == MsgWEN:
		t.emit(Event{Kind: EventWEN, Call: c.info, CallErrors: f.callErrors, Tunnel: t.info})
	case typ == MsgSLI:
		t.emit(Event{Kind: EventSLI, Call: c.info, ACCMSend: f.accmSend, ACCMRecv: f.accmRecv, Tunnel: t.info})
	case typ == MsgICRP && c.state == CallWaitReply && in.Kind == IncomingCall:
		if !t.callPeer(c, f, now) {
			return
		}
		n := t.newMsg(MsgICCN, in.PeerID)
		t.addConnect(&n, in)
		if t.send(&n, now) == nil {
			t.callUp(c)
		}
	case typ == MsgOCRP && c.state == CallWaitReply && in.Kind == OutgoingCall:
		if t.callPeer(c, f, now) {
			if f.has(AttrPhysicalChannelID) {
				in.PhysicalChannel = f.physChannel
			}
			c.state = CallWaitConnect
		}
	case (typ == MsgICCN && in.Kind == IncomingCall || typ == MsgOCCN && in.Kind == OutgoingCall) &&
		c.state == CallWaitConnect:
		in.TxSpeed, in.FramingType = f.txSpeed, f.framingType
		in.RxSpeed = f.rxSpeed
		in.SequencingRequired = f.has(AttrSequencingRequired)
		t.callUp(c)
	default:
		t.stats.Unexpected++
	}
}

// callPeer records the peer's session id from its ICRP or OCRP; without
// one the call ends.
func (t *Tunnel) callPeer(c *call, f *fields, now time.Time) bool {
	if !f.has(t.d.sessionIDAttr) || f.sessionID == 0 {
		t.endCall(c, generalError(CDNResultGeneralError, ErrCodeBadValue, "no assigned session id"), ByLocal, now)
		return false
	}
	c.info.PeerID = f.sessionID
	return true
}

// addConnect adds the AVPs of ICCN and OCCN.
func (t *Tunnel) addConnect(m *msgBuilder, in *CallInfo) {
	m.AddUint32(AttrTxConnectSpeed, true, in.TxSpeed)
	m.AddUint32(AttrFramingType, true, in.FramingType)
	if in.RxSpeed != 0 {
		m.AddUint32(AttrRxConnectSpeed, false, in.RxSpeed)
	}
	if in.SequencingRequired {
		m.AddEmpty(AttrSequencingRequired, true)
	}
}

func (t *Tunnel) callUp(c *call) {
	c.state = CallEstablished
	t.emit(Event{Kind: EventCallUp, Call: c.info, Tunnel: t.info})
}

// onCallRequest handles an ICRQ or OCRQ: accept (ICRP; or OCRP and
// OCCN at once, as we dial nothing) or refuse with a CDN.
func (t *Tunnel) onCallRequest(typ MessageType, f *fields, now time.Time) {
	if !f.has(t.d.sessionIDAttr) || f.sessionID == 0 {
		t.refuse(0, generalError(CDNResultGeneralError, ErrCodeBadValue, "%s without assigned session id", typ), now)
		return
	}
	for _, c := range t.calls {
		if c.info.PeerID == f.sessionID && !c.info.Initiator {
			t.stats.Unexpected++ // the same request again under a new Ns: a peer bug
			return
		}
	}
	in := CallInfo{
		PeerID: f.sessionID, Kind: IncomingCall, Serial: f.serial, BearerType: f.bearerType,
		FramingType: f.framingType, MinBPS: f.minBPS, MaxBPS: f.maxBPS, PhysicalChannel: f.physChannel,
		Called: string(f.called), Calling: string(f.calling), SubAddress: string(f.subAddress),
	}
	if typ == MsgOCRQ {
		in.Kind = OutgoingCall
	}
	if t.cfg.MaxCalls > 0 && len(t.calls) >= t.cfg.MaxCalls {
		t.refuse(in.PeerID, generalError(CDNResultNoFacilitiesTmp, ErrCodeNoResources, "call limit %d", t.cfg.MaxCalls), now)
		return
	}
	if t.cfg.AcceptCall != nil {
		if ok, r := t.cfg.AcceptCall(in); !ok {
			if r.Code == 0 {
				r.Code = CDNResultAdmin
			}
			t.refuse(in.PeerID, r, now)
			return
		}
	}
	id, err := t.allocSession()
	if err != nil {
		t.refuse(in.PeerID, generalError(CDNResultNoFacilitiesTmp, ErrCodeNoResources, "no session id"), now)
		return
	}
	in.LocalID = id
	c := &call{info: in, state: CallWaitConnect}
	t.calls[id] = c
	reply := MsgICRP
	if typ == MsgOCRQ {
		reply = MsgOCRP
	}
	m := t.newMsg(reply, in.PeerID)
	t.d.putID(&m, t.d.sessionIDAttr, id)
	if t.send(&m, now) != nil || typ == MsgICRQ {
		return
	}
	// Outgoing call: we have no line to dial, so it connects at once.
	a := t.cfg.Answer
	c.info.TxSpeed, c.info.RxSpeed = a.TxSpeed, a.RxSpeed
	if c.info.TxSpeed == 0 {
		c.info.TxSpeed = max(in.MaxBPS, in.MinBPS, 1)
	}
	if a.FramingType != 0 {
		c.info.FramingType = a.FramingType
	} else if c.info.FramingType&FramingSync != 0 || c.info.FramingType == 0 {
		c.info.FramingType = FramingSync
	}
	c.info.SequencingRequired = a.SequencingRequired
	n := t.newMsg(MsgOCCN, in.PeerID)
	t.addConnect(&n, &c.info)
	if t.send(&n, now) == nil {
		t.callUp(c)
	}
}
