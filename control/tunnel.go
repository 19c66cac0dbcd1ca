package control

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"
)

// Tunnel errors.
var (
	ErrState        = errors.New("control: not allowed in this tunnel state")
	ErrNoCall       = errors.New("control: no such call")
	ErrNoSessionIDs = errors.New("control: no free session id")
	ErrTooManyCalls = errors.New("control: call limit reached")
)

// Defaults of TunnelConfig.
const (
	DefaultHelloInterval = 60 * time.Second
	DefaultSetupTimeout  = 60 * time.Second
)

// Role says which side opened the control connection.
type Role uint8

// Roles.
const (
	Initiator Role = iota // sent the SCCRQ (Open)
	Responder             // answers a received SCCRQ
)

func (r Role) String() string {
	if r == Initiator {
		return "initiator"
	}
	return "responder"
}

// TunnelConfig sets up a Tunnel.
type TunnelConfig struct {
	LocalID          uint32 // our tunnel id, nonzero, assigned by the owner (16 bits in v2)
	HostName         string // Host Name AVP; RFC 2661 requires one
	VendorName       string // optional
	FirmwareRevision uint16 // optional
	FramingCaps      uint32 // FramingSync|FramingAsync; default both
	BearerCaps       uint32 // BearerDigital|BearerAnalog; 0: not sent
	// Secret enables tunnel authentication (RFC 2661 section 5.1.1): we
	// send a Challenge and require the right Challenge Response, and we
	// answer the peer's Challenge. Empty: no Challenge sent, and a peer's
	// Challenge ends the tunnel (not authorized).
	Secret []byte
	// HideAVPs sends the ids and the call numbers hidden (RFC 2661
	// section 4.3) when Secret is set.
	HideAVPs bool
	// TieBreaker, when nonzero, is sent in the SCCRQ (see TieBreak).
	TieBreaker uint64
	// HelloInterval is the idle time on the control channel after which
	// an established tunnel sends a HELLO; 0: DefaultHelloInterval;
	// negative: never.
	HelloInterval time.Duration
	// SetupTimeout bounds the time from SCCRQ to established; 0:
	// DefaultSetupTimeout.
	SetupTimeout time.Duration
	// Transport tunes reliable delivery; RecvWindow is also the Receive
	// Window Size we advertise. Its Version is set by the Tunnel.
	Transport TransportConfig
	// MaxCalls limits the calls on the tunnel, both directions; 0: no limit.
	MaxCalls int
	// AcceptCall decides on a call request from the peer (ICRQ or OCRQ):
	// accept, or refuse with a CDN result. Nil accepts every call within
	// MaxCalls. It runs inside Receive and must not call the Tunnel.
	AcceptCall func(CallInfo) (ok bool, refuse Result)
	// Answer fills in our side of a call we accept on an OCRQ (OCCN:
	// connect speeds, framing type); zero values take the OCRQ's.
	Answer CallParams
	// Rand is the source of Challenges, Random Vectors; default
	// crypto/rand.
	Rand io.Reader
}

// TunnelState is the control connection state of a Tunnel.
type TunnelState uint8

// Tunnel states (RFC 2661 section 7.2.1), plus closing (StopCCN sent or
// received, lingering to (re)ack) and closed.
const (
	StateIdle TunnelState = iota
	StateWaitCtlReply
	StateWaitCtlConn
	StateEstablished
	StateClosing
	StateClosed
)

var tunnelStateNames = [...]string{"idle", "wait-ctl-reply", "wait-ctl-conn", "established", "closing", "closed"}

func (s TunnelState) String() string {
	if int(s) < len(tunnelStateNames) {
		return tunnelStateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Origin says who ended a tunnel or call.
type Origin uint8

// Origins.
const (
	ByLocal    Origin = iota + 1 // Close, CloseCall, or our reply to a protocol error
	ByPeer                       // the peer's StopCCN or CDN
	ByPeerLost                   // retransmission gave up
)

func (o Origin) String() string {
	switch o {
	case ByLocal:
		return "local"
	case ByPeer:
		return "peer"
	case ByPeerLost:
		return "peer-lost"
	}
	return "none"
}

// Result is a Result Code AVP: Code is a StopCCN result (StopResult*)
// or a CDN result (CDNResult*); Error (ErrCode*) is sent when HasError.
type Result struct {
	Code     uint16
	Error    uint16
	HasError bool
	Message  string
}

func (r Result) String() string {
	s := fmt.Sprintf("result %d", r.Code)
	if r.HasError {
		s += fmt.Sprintf(" error %d", r.Error)
	}
	if r.Message != "" {
		s += fmt.Sprintf(" %q", r.Message)
	}
	return s
}

func generalError(code uint16, errCode uint16, format string, args ...any) Result {
	return Result{Code: code, Error: errCode, HasError: true, Message: fmt.Sprintf(format, args...)}
}

// TunnelInfo describes the peer of an established control connection.
type TunnelInfo struct {
	LocalID, PeerID  uint32
	HostName         string
	VendorName       string
	FirmwareRevision uint16
	Window           uint16 // the peer's Receive Window Size
	FramingCaps      uint32
	BearerCaps       uint32
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	EventTunnelUp   EventKind = iota + 1 // Tunnel holds the peer's details
	EventTunnelDown                      // By and Result say why; the calls went down first
	EventCallUp                          // Call
	EventCallDown                        // Call, By, Result
	EventWEN                             // Call, CallErrors: WAN-Error-Notify received
	EventSLI                             // Call, ACCMSend/ACCMRecv: Set-Link-Info received
)

var eventNames = [...]string{"", "tunnel-up", "tunnel-down", "call-up", "call-down", "wen", "sli"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is something the Tunnel's owner should know about.
type Event struct {
	Kind       EventKind
	By         Origin // TunnelDown, CallDown
	Result     Result // TunnelDown: the StopCCN's; CallDown: the CDN's, or the StopCCN's when the tunnel went
	Tunnel     TunnelInfo
	Call       CallInfo
	CallErrors CallErrors
	ACCMSend   uint32
	ACCMRecv   uint32
}

// TunnelOutput is what a Tunnel call asks of its owner: packets to send
// to the peer, in order, and events. Both are valid until the next call
// on the Tunnel; send or copy the packets before then and do not modify
// them.
type TunnelOutput struct {
	Transmit [][]byte
	Events   []Event
}

// TunnelStats counts a Tunnel's events since it was made.
type TunnelStats struct {
	HellosSent     uint64
	HellosReceived uint64
	Malformed      uint64 // dropped unparsable packets, not acked
	WrongTunnel    uint64 // dropped: header tunnel id not ours
	Unexpected     uint64 // messages ignored in this state or for no call
	OutOfWindow    uint64
}

// TunnelStatus is a snapshot of a Tunnel for display.
type TunnelStatus struct {
	Role       Role
	State      TunnelState
	Info       TunnelInfo
	Transport  TransportState
	Delivery   TransportStats
	Stats      TunnelStats
	Calls      int
	LastResult Result // of the teardown
	LastBy     Origin
}

// Tunnel is one L2TP control connection and its calls (RFC 2661 section
// 7): the tunnel state machine, initiator or responder, with tunnel
// authentication, hidden AVPs, HELLO keepalive and StopCCN, and the call
// state machines of incoming (ICRQ/ICRP/ICCN) and outgoing
// (OCRQ/OCRP/OCCN) calls in both roles, with CDN, WEN and SLI. It
// carries its messages over a Transport.
//
// Like Transport it is a pure state machine: every method takes the
// current time and returns a TunnelOutput; Deadline says when Tick is
// next due. The owner demultiplexes received packets to the Tunnel by
// the header's tunnel id (0 for an SCCRQ: see PeekSCCRQ). It is not
// safe for concurrent use.
type Tunnel struct {
	cfg   TunnelConfig
	d     *dialect
	role  Role
	state TunnelState
	tr    *Transport
	info  TunnelInfo

	challenge    [16]byte // ours, sent when cfg.Secret is set
	setupBy      time.Time
	lastActivity time.Time
	lingerUntil  time.Time // closing: when to forget the tunnel
	waitAck      bool      // closing: until our StopCCN is acked

	calls       map[uint32]*call
	nextSession uint32
	nextSerial  uint32

	lastResult Result
	lastBy     Origin
	stats      TunnelStats

	f       fields
	scratch [2 * MaxAVPLen]byte
	buf     [4096]byte
	deliver [][]byte
	out     TunnelOutput
}

// replyQueueFactor sizes the transport's queue: the owner's commands
// stop at Transport.MaxQueue queued messages (ErrQueueFull), and the
// replies the Tunnel sends on its own may fill it this many times over;
// past that the tunnel gives up (a peer that sends but never acks).
const replyQueueFactor = 4

// NewTunnel returns an idle Tunnel. An Initiator starts with Open; a
// Responder with Receive of the peer's SCCRQ.
func NewTunnel(cfg TunnelConfig, role Role) (*Tunnel, error) {
	d := &dialectV2
	if cfg.LocalID == 0 || cfg.LocalID > d.maxID {
		return nil, fmt.Errorf("local tunnel id %d: out of range 1..%d", cfg.LocalID, d.maxID)
	}
	if cfg.FramingCaps == 0 {
		cfg.FramingCaps = FramingSync | FramingAsync
	}
	if cfg.HelloInterval == 0 {
		cfg.HelloInterval = DefaultHelloInterval
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = DefaultSetupTimeout
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	cfg.Transport.Version = d.version
	cfg.Transport.setDefaults()
	trc := cfg.Transport
	trc.MaxQueue *= replyQueueFactor
	t := &Tunnel{
		cfg:         cfg,
		d:           d,
		role:        role,
		tr:          NewTransport(trc),
		calls:       make(map[uint32]*call),
		nextSession: 1,
		nextSerial:  1,
	}
	t.info.LocalID = cfg.LocalID
	return t, nil
}

// State returns the control connection state.
func (t *Tunnel) State() TunnelState { return t.state }

// Done reports whether the Tunnel is closed: the owner may forget it.
func (t *Tunnel) Done() bool { return t.state == StateClosed }

// LocalID returns our tunnel id.
func (t *Tunnel) LocalID() uint32 { return t.cfg.LocalID }

// PeerID returns the peer's tunnel id, 0 until known.
func (t *Tunnel) PeerID() uint32 { return t.info.PeerID }

// Status returns a snapshot for display.
func (t *Tunnel) Status() TunnelStatus {
	return TunnelStatus{
		Role: t.role, State: t.state, Info: t.info,
		Transport: t.tr.State(), Delivery: t.tr.Stats(), Stats: t.stats,
		Calls: len(t.calls), LastResult: t.lastResult, LastBy: t.lastBy,
	}
}

// Deadline returns when Tick is next due: the earliest of the
// transport's retransmission or delayed ack, the HELLO, the setup
// timeout and the end of the closing linger. False when nothing is
// pending.
func (t *Tunnel) Deadline() (time.Time, bool) {
	d, ok := t.tr.Deadline()
	early := func(x time.Time) {
		if !ok || x.Before(d) {
			d, ok = x, true
		}
	}
	switch t.state {
	case StateWaitCtlReply, StateWaitCtlConn:
		early(t.setupBy)
	case StateEstablished:
		if at, on := t.helloAt(); on {
			early(at)
		}
	case StateClosing:
		if !t.waitAck {
			early(t.lingerUntil)
		}
	case StateIdle, StateClosed:
		return time.Time{}, false
	}
	return d, ok
}

func (t *Tunnel) helloAt() (time.Time, bool) {
	if t.cfg.HelloInterval < 0 {
		return time.Time{}, false
	}
	return t.lastActivity.Add(t.cfg.HelloInterval), true
}

func (t *Tunnel) reset() {
	clear(t.out.Transmit)
	clear(t.out.Events)
	t.out.Transmit, t.out.Events = t.out.Transmit[:0], t.out.Events[:0]
}

func (t *Tunnel) emit(e Event) { t.out.Events = append(t.out.Events, e) }

func (t *Tunnel) random(b []byte) {
	if _, err := io.ReadFull(t.cfg.Rand, b); err != nil {
		// crypto/rand does not fail; a test reader that runs dry is a
		// bug worth stopping on.
		panic(fmt.Sprintf("control: random source: %v", err))
	}
}

// Open starts an Initiator: it sends the SCCRQ.
func (t *Tunnel) Open(now time.Time) (TunnelOutput, error) {
	t.reset()
	if t.role != Initiator || t.state != StateIdle {
		return t.out, fmt.Errorf("open in %s %s: %w", t.role, t.state, ErrState)
	}
	m := t.newMsg(MsgSCCRQ, 0)
	t.addTunnelAVPs(&m)
	if t.cfg.TieBreaker != 0 {
		m.AddUint64(AttrTieBreaker, false, t.cfg.TieBreaker)
	}
	if len(t.cfg.Secret) > 0 {
		t.random(t.challenge[:])
		m.AddBytes(AttrChallenge, true, t.challenge[:])
	}
	t.state = StateWaitCtlReply
	t.setupBy = now.Add(t.cfg.SetupTimeout)
	if err := t.send(&m, now); err != nil {
		return t.out, err
	}
	return t.out, nil
}

// addTunnelAVPs adds the AVPs SCCRQ and SCCRP share (RFC 2661 sections
// 6.1 and 6.2).
func (t *Tunnel) addTunnelAVPs(m *msgBuilder) {
	m.AddUint16(AttrProtocolVersion, true, ProtocolVersionV2)
	m.AddUint32(AttrFramingCaps, true, t.cfg.FramingCaps)
	if t.cfg.BearerCaps != 0 {
		m.AddUint32(AttrBearerCaps, true, t.cfg.BearerCaps)
	}
	if t.cfg.FirmwareRevision != 0 {
		m.AddUint16(AttrFirmwareRevision, false, t.cfg.FirmwareRevision)
	}
	m.AddString(AttrHostName, true, t.cfg.HostName)
	if t.cfg.VendorName != "" {
		m.AddString(AttrVendorName, false, t.cfg.VendorName)
	}
	t.d.putID(m, t.d.tunnelIDAttr, t.cfg.LocalID)
	m.AddUint16(AttrReceiveWindowSize, true, t.cfg.Transport.RecvWindow)
}

// Close ends the tunnel: its calls go down, a StopCCN with r goes to the
// peer (r.Code 0 means StopResultClear), and the Tunnel stays closing
// until the StopCCN is acknowledged (or retransmission gives up), then
// is Done. Closing an idle Tunnel just marks it Done.
func (t *Tunnel) Close(r Result, now time.Time) (TunnelOutput, error) {
	t.reset()
	switch t.state {
	case StateClosing, StateClosed:
		return t.out, nil
	case StateIdle:
		t.state = StateClosed
		return t.out, nil
	}
	if r.Code == 0 {
		r.Code = StopResultClear
	}
	t.stop(r, now)
	return t.out, nil
}

// stop sends a StopCCN with r and enters closing, ended by us.
func (t *Tunnel) stop(r Result, now time.Time) {
	m := t.newMsg(MsgStopCCN, 0)
	t.d.putID(&m, t.d.tunnelIDAttr, t.cfg.LocalID)
	addResult(&m, r)
	t.down(ByLocal, r, now)
	t.waitAck = true
	t.lingerUntil = now.Add(t.cycle())
	if err := t.send(&m, now); err != nil {
		t.state, t.waitAck = StateClosed, false
	}
}

func addResult(m *msgBuilder, r Result) {
	m.AddResultCode(ResultCode{Result: r.Code, Error: r.Error, HasError: r.HasError || r.Message != "", Message: []byte(r.Message)})
}

// down ends the calls and the tunnel with events, and enters closing
// (closed when the peer is lost).
func (t *Tunnel) down(by Origin, r Result, now time.Time) {
	for id, c := range t.calls {
		delete(t.calls, id)
		t.emit(Event{Kind: EventCallDown, By: by, Result: r, Call: c.info, Tunnel: t.info})
	}
	t.lastResult, t.lastBy = r, by
	t.emit(Event{Kind: EventTunnelDown, By: by, Result: r, Tunnel: t.info})
	t.state = StateClosing
	if by == ByPeerLost {
		t.state = StateClosed
	}
}

// cycle is one full retransmission cycle: how long a peer may go on
// retransmitting one message before it gives up (RFC 2661 section 5.7
// keeps a closed tunnel's state that long to ack it).
func (t *Tunnel) cycle() time.Duration {
	c := t.cfg.Transport
	var sum time.Duration
	to := c.RetryTimeout
	for range c.MaxRetries + 1 {
		sum += to
		to = min(2*to, c.MaxRetryTimeout)
	}
	return sum
}

// Tick runs the timers: retransmission and delayed acks, HELLO after
// idle, the setup timeout, the closing linger. It is due at Deadline.
func (t *Tunnel) Tick(now time.Time) TunnelOutput {
	t.reset()
	if t.state == StateIdle || t.state == StateClosed {
		return t.out
	}
	out, err := t.tr.Tick(now)
	t.collect(out)
	if errors.Is(err, ErrPeerLost) {
		t.lost(now)
		return t.out
	}
	switch t.state {
	case StateWaitCtlReply, StateWaitCtlConn:
		if !now.Before(t.setupBy) {
			t.stop(generalError(StopResultGeneralError, ErrCodeNone, "not established within %v", t.cfg.SetupTimeout), now)
		}
	case StateEstablished:
		if at, on := t.helloAt(); on && !now.Before(at) {
			t.hello(now)
		}
	case StateClosing:
		t.checkClosed(now)
	}
	return t.out
}

func (t *Tunnel) lost(now time.Time) {
	if t.state == StateClosing {
		t.state = StateClosed
		return
	}
	t.down(ByPeerLost, Result{Message: "peer lost: retransmission gave up"}, now)
}

// hello sends a HELLO, unless messages are still in flight: their
// retransmission already probes the peer.
func (t *Tunnel) hello(now time.Time) {
	if s := t.tr.State(); s.Unacked+s.Queued > 0 {
		t.lastActivity = now
		return
	}
	m := t.newMsg(MsgHELLO, 0)
	if t.send(&m, now) == nil {
		t.stats.HellosSent++
	}
}

// checkClosed ends closing once our StopCCN is acked and, when the peer
// ended the tunnel, the linger is over.
func (t *Tunnel) checkClosed(now time.Time) {
	if t.waitAck {
		if s := t.tr.State(); s.Unacked+s.Queued > 0 {
			return
		}
		t.waitAck = false
		t.state = StateClosed
		return
	}
	if !now.Before(t.lingerUntil) {
		t.state = StateClosed
	}
}

// busy fails an owner's command when the transport's queue holds
// Transport.MaxQueue messages.
func (t *Tunnel) busy() error {
	if s := t.tr.State(); s.Unacked+s.Queued >= t.cfg.Transport.MaxQueue {
		return ErrQueueFull
	}
	return nil
}

// collect appends a transport output's packets to the Tunnel's.
func (t *Tunnel) collect(out Output) {
	t.out.Transmit = append(t.out.Transmit, out.Transmit...)
}

func (t *Tunnel) newMsg(typ MessageType, session uint32) msgBuilder {
	h := Header{Version: t.d.version, TunnelID: t.info.PeerID, SessionID: uint16(session)}
	return msgBuilder{Builder: NewBuilder(t.buf[:], h, typ), t: t, typ: typ}
}

// send finishes m and hands a copy to the transport.
func (t *Tunnel) send(m *msgBuilder, now time.Time) error {
	b, err := m.Finish()
	if err != nil {
		return fmt.Errorf("build %s: %w", m.typ, err)
	}
	out, err := t.tr.Send(append([]byte(nil), b...), now)
	t.collect(out)
	switch {
	case errors.Is(err, ErrPeerLost):
		t.lost(now)
		return err
	case errors.Is(err, ErrQueueFull):
		// Not even a StopCCN would fit: forget the tunnel.
		if t.state != StateClosing {
			t.down(ByLocal, generalError(StopResultGeneralError, ErrCodeNoResources, "send queue full"), now)
		}
		t.state = StateClosed
		return err
	case err != nil:
		return err
	}
	t.lastActivity = now
	return nil
}

// Receive handles a control packet from the peer (the owner has matched
// its tunnel id). Unparsable packets are dropped without an ack, so the
// peer retransmits them; parsed ones are acked by the transport and
// handled in order.
func (t *Tunnel) Receive(pkt []byte, now time.Time) TunnelOutput {
	t.reset()
	if t.state == StateClosed {
		return t.out
	}
	m, err := Parse(pkt)
	if err != nil || m.Version != t.d.version {
		t.stats.Malformed++
		return t.out
	}
	if m.TunnelID != 0 && m.TunnelID != t.cfg.LocalID {
		t.stats.WrongTunnel++
		return t.out
	}
	if t.state == StateIdle && (t.role != Responder || m.Type() != MsgSCCRQ) {
		t.stats.Unexpected++
		return t.out
	}
	out, err := t.tr.Receive(m.Bytes(), now)
	t.collect(out)
	if errors.Is(err, ErrOutOfWindow) {
		t.stats.OutOfWindow++
	}
	t.deliver = append(t.deliver[:0], out.Deliver...)
	t.lastActivity = now
	for _, b := range t.deliver {
		if t.state == StateClosed {
			break
		}
		t.handle(b, now)
	}
	clear(t.deliver)
	if t.state == StateClosing {
		t.checkClosed(now)
	}
	return t.out
}

// handle acts on one in-order message.
func (t *Tunnel) handle(b []byte, now time.Time) {
	m, err := Parse(b)
	if err != nil {
		t.stats.Malformed++ // cannot happen: the transport delivers what Receive parsed
		return
	}
	typ := m.Type()
	switch {
	case t.state == StateClosing:
		// Acked by the transport; nothing else to do (RFC 2661 section 5.7).
		return
	case typ.IsCallMessage() && t.state != StateEstablished:
		t.stats.Unexpected++
		return
	case typ == MsgStopCCN:
		// The peer is going whatever else the message holds: take what
		// decodes.
		f := &t.f
		if err := f.decode(m, t.d, t.cfg.Secret, t.scratch[:]); err != nil {
			f.result = ResultCode{Message: []byte(err.Error())}
		}
		t.onStopCCN(f, now)
		return
	}
	if a, ok := FirstUnknownMandatory(m, t.d.known); ok {
		r := generalError(StopResultGeneralError, ErrCodeUnknownMandatory, "unknown mandatory AVP %d/%d in %s", a.VendorID, a.Type, typ)
		if typ.IsCallMessage() {
			r.Code = CDNResultGeneralError
			t.failCall(m, r, now)
			return
		}
		t.learnPeerID(m)
		t.stop(r, now)
		return
	}
	f := &t.f
	if err := f.decode(m, t.d, t.cfg.Secret, t.scratch[:]); err != nil {
		code := ErrCodeBadLength
		if errors.Is(err, errHiddenNoSecret) {
			code = ErrCodeBadValue
		}
		r := generalError(StopResultGeneralError, code, "%s: %v", typ, err)
		if typ.IsCallMessage() {
			r.Code = CDNResultGeneralError
			t.failCall(m, r, now)
			return
		}
		t.learnPeerID(m)
		t.stop(r, now)
		return
	}
	switch typ {
	case MsgSCCRQ:
		t.onSCCRQ(f, now)
	case MsgSCCRP:
		t.onSCCRP(f, now)
	case MsgSCCCN:
		t.onSCCCN(f, now)
	case MsgHELLO:
		t.stats.HellosReceived++
	default:
		if typ.IsCallMessage() {
			t.onCallMessage(m, f, now)
			return
		}
		t.stats.Unexpected++
	}
}

// learnPeerID takes the peer's tunnel id from a message we could not
// decode, so that the StopCCN refusing it reaches the peer's tunnel.
func (t *Tunnel) learnPeerID(m Message) {
	if t.info.PeerID != 0 {
		return
	}
	if a, ok := m.Find(t.d.tunnelIDAttr); ok {
		if id, err := t.d.readID(a); err == nil && id != 0 {
			t.info.PeerID = id
			t.tr.SetPeerID(id)
		}
	}
}

// peerTunnel checks and records the peer's side of SCCRQ or SCCRP; a
// refusal is the Result to stop with.
func (t *Tunnel) peerTunnel(f *fields) (Result, bool) {
	if f.has(t.d.tunnelIDAttr) && f.tunnelID != 0 {
		t.info.PeerID = f.tunnelID
		t.tr.SetPeerID(f.tunnelID)
	}
	if !f.has(AttrProtocolVersion) || f.protoVer != ProtocolVersionV2 {
		return Result{Code: StopResultBadVersion, Error: ProtocolVersionV2, HasError: true,
			Message: fmt.Sprintf("protocol version %#04x", f.protoVer)}, false
	}
	if t.info.PeerID == 0 {
		return generalError(StopResultGeneralError, ErrCodeBadValue, "no assigned tunnel id"), false
	}
	t.info.HostName = string(f.hostName)
	t.info.VendorName = string(f.vendorName)
	t.info.FirmwareRevision = f.firmware
	t.info.FramingCaps = f.framingCaps
	t.info.BearerCaps = f.bearerCaps
	t.info.Window = DefaultWindow
	if f.has(AttrReceiveWindowSize) && f.window != 0 {
		t.info.Window = f.window
	}
	t.tr.SetPeerWindow(t.info.Window)
	if f.has(AttrChallenge) && len(t.cfg.Secret) == 0 {
		return generalError(StopResultNotAuthorized, ErrCodeNone, "challenged, and no secret"), false
	}
	return Result{}, true
}

// checkResponse checks the peer's Challenge Response to our Challenge,
// carried in a message of type in.
func (t *Tunnel) checkResponse(f *fields, in MessageType) (Result, bool) {
	if len(t.cfg.Secret) == 0 {
		return Result{}, true
	}
	if !f.has(AttrChallengeResponse) {
		return generalError(StopResultNotAuthorized, ErrCodeNone, "no challenge response"), false
	}
	if f.challengeResp != ChallengeResponse(in, t.cfg.Secret, t.challenge[:]) {
		return generalError(StopResultNotAuthorized, ErrCodeNone, "wrong challenge response"), false
	}
	return Result{}, true
}

// addResponse adds the Challenge Response to the peer's Challenge.
func (t *Tunnel) addResponse(m *msgBuilder, f *fields, typ MessageType) {
	if f.has(AttrChallenge) {
		r := ChallengeResponse(typ, t.cfg.Secret, f.challenge)
		m.AddBytes(AttrChallengeResponse, true, r[:])
	}
}

func (t *Tunnel) onSCCRQ(f *fields, now time.Time) {
	if t.role != Responder || t.state != StateIdle {
		t.stats.Unexpected++
		return
	}
	t.setupBy = now.Add(t.cfg.SetupTimeout)
	t.state = StateWaitCtlConn
	if r, ok := t.peerTunnel(f); !ok {
		t.stop(r, now)
		return
	}
	m := t.newMsg(MsgSCCRP, 0)
	t.addTunnelAVPs(&m)
	t.addResponse(&m, f, MsgSCCRP)
	if len(t.cfg.Secret) > 0 {
		t.random(t.challenge[:])
		m.AddBytes(AttrChallenge, true, t.challenge[:])
	}
	t.send(&m, now)
}

func (t *Tunnel) onSCCRP(f *fields, now time.Time) {
	if t.state != StateWaitCtlReply {
		t.stats.Unexpected++
		return
	}
	r, ok := t.peerTunnel(f)
	if ok {
		r, ok = t.checkResponse(f, MsgSCCRP)
	}
	if !ok {
		t.stop(r, now)
		return
	}
	m := t.newMsg(MsgSCCCN, 0)
	t.addResponse(&m, f, MsgSCCCN)
	if t.send(&m, now) == nil {
		t.up()
	}
}

func (t *Tunnel) onSCCCN(f *fields, now time.Time) {
	if t.state != StateWaitCtlConn {
		t.stats.Unexpected++
		return
	}
	if r, ok := t.checkResponse(f, MsgSCCCN); !ok {
		t.stop(r, now)
		return
	}
	t.up()
}

func (t *Tunnel) up() {
	t.state = StateEstablished
	t.emit(Event{Kind: EventTunnelUp, Tunnel: t.info})
}

func (t *Tunnel) onStopCCN(f *fields, now time.Time) {
	r := Result{Code: f.result.Result, Error: f.result.Error, HasError: f.result.HasError,
		Message: string(f.result.Message)}
	if f.has(t.d.tunnelIDAttr) && t.info.PeerID == 0 {
		t.info.PeerID = f.tunnelID
		t.tr.SetPeerID(f.tunnelID)
	}
	t.down(ByPeer, r, now)
	t.waitAck = false
	t.lingerUntil = now.Add(t.cycle())
}

// SCCRQInfo is what the owner needs from an SCCRQ before it picks or
// makes the Tunnel for it.
type SCCRQInfo struct {
	PeerID        uint32 // Assigned Tunnel ID: with the peer's address, identifies retransmissions
	HostName      string
	TieBreaker    uint64
	HasTieBreaker bool
}

// PeekSCCRQ reads an SCCRQ addressed to tunnel 0, so the owner can route
// a retransmitted one to the Tunnel it already made for it (same peer
// address and PeerID), apply TieBreak against its own SCCRQ to that
// peer, or make a Responder. Hidden ids need the secret.
func PeekSCCRQ(pkt []byte, secret []byte) (SCCRQInfo, error) {
	var s SCCRQInfo
	m, err := Parse(pkt)
	if err != nil {
		return s, err
	}
	if m.Version != V2 || m.Type() != MsgSCCRQ {
		return s, fmt.Errorf("message type %s: not an SCCRQ", m.Type())
	}
	var f fields
	var scratch [2 * MaxAVPLen]byte
	if err := f.decode(m, &dialectV2, secret, scratch[:]); err != nil {
		return s, err
	}
	if !f.has(AttrAssignedTunnelID) || f.tunnelID == 0 {
		return s, errors.New("SCCRQ without assigned tunnel id")
	}
	s.PeerID, s.HostName = f.tunnelID, string(f.hostName)
	s.TieBreaker, s.HasTieBreaker = f.tieBreaker, f.has(AttrTieBreaker)
	return s, nil
}

// TieOutcome is which of two crossing tunnels survives.
type TieOutcome uint8

// Tie outcomes.
const (
	KeepBoth   TieOutcome = iota // neither sent a Tie Breaker: two tunnels
	KeepOurs                     // drop the received SCCRQ silently
	KeepTheirs                   // discard our tunnel silently (forget the Tunnel) and answer theirs
	KeepNone                     // equal values: both sides discard theirs
)

// TieBreak decides between our pending SCCRQ and one received from the
// same peer (RFC 2661 section 4.4.3): the lower Tie Breaker wins; a
// side that sent one wins over a side that did not; equal values lose
// both; without any, both tunnels live. The loser discards its tunnel
// silently, without StopCCN.
func TieBreak(ours uint64, oursSet bool, theirs uint64, theirsSet bool) TieOutcome {
	switch {
	case !oursSet && !theirsSet:
		return KeepBoth
	case !theirsSet:
		return KeepOurs
	case !oursSet:
		return KeepTheirs
	case ours < theirs:
		return KeepOurs
	case theirs < ours:
		return KeepTheirs
	}
	return KeepNone
}
