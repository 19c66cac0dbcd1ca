package ppp

import (
	"bytes"
	"time"
)

// State is a state of the option negotiation automaton (RFC 1661 section 4.2).
type State int

// The states of RFC 1661 section 4.2, in its order.
const (
	Initial State = iota
	Starting
	Closed
	Stopped
	Closing
	Stopping
	ReqSent
	AckRcvd
	AckSent
	Opened
)

var stateNames = [...]string{"initial", "starting", "closed", "stopped", "closing", "stopping", "req-sent", "ack-rcvd", "ack-sent", "opened"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// timed reports whether the restart timer runs in state s.
func (s State) timed() bool { return s >= Closing && s <= AckSent }

// negotiating reports whether a Configure-Request of ours is outstanding or acked.
func (s State) negotiating() bool { return s >= ReqSent && s <= AckSent }

// Timers holds the restart timer and counters of RFC 1661 section 4.6.
// Zero fields take the RFC's suggested values.
type Timers struct {
	Restart      time.Duration // 3s
	MaxConfigure int           // 10 Configure-Requests before giving up
	MaxTerminate int           // 2 Terminate-Requests
	MaxFailure   int           // 5 Configure-Naks in a row before rejecting instead
}

func (t Timers) withDefaults() Timers {
	if t.Restart <= 0 {
		t.Restart = 3 * time.Second
	}
	if t.MaxConfigure <= 0 {
		t.MaxConfigure = 10
	}
	if t.MaxTerminate <= 0 {
		t.MaxTerminate = 2
	}
	if t.MaxFailure <= 0 {
		t.MaxFailure = 5
	}
	return t
}

// Options is the per-protocol part of the negotiation: LCP, IPCP and IPv6CP
// each implement it and share the automaton. Option lists passed in are
// well formed (the automaton checks them first).
type Options interface {
	// Reset starts a new negotiation of our options from the configured
	// values: called before the first Configure-Request of a negotiation.
	Reset()
	// AppendRequest appends the options of our next Configure-Request.
	AppendRequest(b []byte) []byte
	// Judge examines the options of a peer's Configure-Request and
	// appends the options of the reply to out: all of req with ConfAck, the
	// rejected options with ConfRej, or the options with the values we
	// want with ConfNak. With rejectNaks (Max-Failure reached) it rejects
	// what it would otherwise Nak. It records the values of an acked
	// request for the Opened state.
	Judge(req, out []byte, rejectNaks bool) (code byte, reply []byte)
	// Acked applies a Configure-Ack of our last request.
	Acked(opts []byte)
	// Naked and Rejected apply a Configure-Nak or Configure-Reject of
	// our last request. An error discards the packet.
	Naked(opts []byte) error
	Rejected(opts []byte) error
}

// layer receives the automaton's this-layer actions (tlu, tld, tls, tlf).
type layer interface {
	up(f *fsm)
	down(f *fsm)
	started(f *fsm)
	finished(f *fsm)
}

// fsm is the option negotiation automaton of RFC 1661 section 4, for one
// protocol. It sends through send and reports layer actions to l; time is
// passed into every event.
type fsm struct {
	proto uint16
	opts  Options
	t     Timers
	l     layer
	send  func(proto uint16, pkt []byte)
	// extra handles codes beyond 7 (LCP's); nil means Code-Reject them.
	extra func(now time.Time, p packet, raw []byte) bool

	state    State
	now      time.Time
	deadline time.Time // of the restart timer; zero when stopped
	restart  int       // restart counter
	failures int       // Configure-Naks sent since the last Configure-Ack
	refused  int       // Configure-Naks and -Rejects received since the last Configure-Ack
	nextID   byte
	reqID    byte   // identifier of our last Configure-Request
	lastReq  []byte // its options
	buf      []byte // scratch for packets sent
	reply    []byte // scratch for reply options
}

func newFSM(proto uint16, opts Options, t Timers, l layer, send func(uint16, []byte)) *fsm {
	return &fsm{proto: proto, opts: opts, t: t.withDefaults(), l: l, send: send, nextID: 1}
}

func (f *fsm) setState(s State) {
	f.state = s
	if !s.timed() {
		f.deadline = time.Time{}
	}
}

// Up: the lower layer is ready.
func (f *fsm) Up(now time.Time) {
	f.now = now
	switch f.state {
	case Initial:
		f.setState(Closed)
	case Starting:
		f.irc(f.t.MaxConfigure)
		f.scr()
		f.setState(ReqSent)
	}
}

// Down: the lower layer went away.
func (f *fsm) Down(now time.Time) {
	f.now = now
	switch f.state {
	case Closed, Closing:
		f.setState(Initial)
	case Stopped:
		f.setState(Starting)
		f.l.started(f)
	case Stopping, ReqSent, AckRcvd, AckSent:
		f.setState(Starting)
	case Opened:
		f.setState(Starting)
		f.l.down(f)
	}
}

// Open: administratively allowed to come up.
func (f *fsm) Open(now time.Time) {
	f.now = now
	switch f.state {
	case Initial:
		f.setState(Starting)
		f.l.started(f)
	case Closed:
		f.irc(f.t.MaxConfigure)
		f.scr()
		f.setState(ReqSent)
	case Closing:
		f.setState(Stopping)
	}
}

// Close: administratively closed; reason goes in the Terminate-Request.
func (f *fsm) Close(now time.Time, reason string) {
	f.now = now
	switch f.state {
	case Starting:
		f.setState(Initial)
		f.l.finished(f)
	case Stopped:
		f.setState(Closed)
	case Stopping:
		f.setState(Closing)
	case ReqSent, AckRcvd, AckSent:
		f.irc(f.t.MaxTerminate)
		f.str(reason)
		f.setState(Closing)
	case Opened:
		f.irc(f.t.MaxTerminate)
		f.str(reason)
		f.setState(Closing)
		f.l.down(f)
	}
}

// Tick runs the restart timer: TO+ or TO- when it has expired.
func (f *fsm) Tick(now time.Time) {
	if f.deadline.IsZero() || now.Before(f.deadline) {
		return
	}
	f.now = now
	if f.restart > 0 { // TO+
		switch f.state {
		case Closing, Stopping:
			f.str("")
		case ReqSent, AckRcvd:
			f.scr()
			f.setState(ReqSent)
		case AckSent:
			f.scr()
		}
		return
	}
	switch f.state { // TO-
	case Closing:
		f.setState(Closed)
		f.l.finished(f)
	case Stopping, ReqSent, AckRcvd, AckSent:
		f.setState(Stopped)
		f.l.finished(f)
	}
}

// Deadline is when Tick next has work, or zero.
func (f *fsm) Deadline() time.Time { return f.deadline }

// Input handles a control packet of this protocol (its information field).
func (f *fsm) Input(now time.Time, b []byte) {
	p, err := parsePacket(b)
	if err != nil {
		return // RFC 1661 section 5: silently discard
	}
	f.now = now
	if f.state == Initial || f.state == Starting {
		return // lower layer not up: nothing to answer with
	}
	switch p.code {
	case ConfReq:
		f.rcr(p)
	case ConfAck:
		f.rca(p)
	case ConfNak, ConfRej:
		f.rcn(p)
	case TermReq:
		f.rtr(p)
	case TermAck:
		f.rta()
	case CodeRej:
		f.rxj(p)
	default:
		if f.extra != nil && f.extra(now, p, b[:4+len(p.data)]) {
			return
		}
		f.scj(b[:4+len(p.data)])
	}
}

func (f *fsm) rcr(p packet) {
	switch f.state {
	case Closed:
		f.sta(p.id)
		return
	case Closing, Stopping:
		return
	}
	if checkOptions(p.data) != nil {
		return
	}
	code, reply := f.opts.Judge(p.data, f.reply[:0], f.failures >= f.t.MaxFailure)
	f.reply = reply[:0]
	good := code == ConfAck
	switch f.state {
	case Stopped:
		f.irc(f.t.MaxConfigure)
		f.scr()
	case Opened:
		f.l.down(f)
		f.scr()
	}
	if good {
		f.sendPacket(ConfAck, p.id, p.data)
		f.failures = 0
	} else {
		f.sendPacket(code, p.id, reply)
		if code == ConfNak {
			f.failures++
		}
	}
	switch {
	case good && f.state == AckRcvd:
		f.setState(Opened)
		f.l.up(f)
	case good:
		f.setState(AckSent)
	case f.state == AckRcvd:
		// stays in Ack-Rcvd
	default:
		f.setState(ReqSent)
	}
}

func (f *fsm) rca(p packet) {
	if p.id != f.reqID || !bytes.Equal(p.data, f.lastReq) {
		return // not an ack of our current request: discard
	}
	switch f.state {
	case Closed, Stopped:
		f.sta(p.id)
	case ReqSent:
		f.refused = 0
		f.opts.Acked(p.data)
		f.irc(f.t.MaxConfigure)
		f.setState(AckRcvd)
	case AckRcvd:
		f.scr()
		f.setState(ReqSent)
	case AckSent:
		f.refused = 0
		f.opts.Acked(p.data)
		f.irc(f.t.MaxConfigure)
		f.setState(Opened)
		f.l.up(f)
	case Opened:
		f.l.down(f)
		f.scr()
		f.setState(ReqSent)
	}
}

func (f *fsm) rcn(p packet) {
	if p.id != f.reqID || checkOptions(p.data) != nil {
		return
	}
	switch f.state {
	case Closed, Stopped:
		f.sta(p.id)
		return
	case Closing, Stopping:
		return
	}
	apply := f.opts.Naked
	if p.code == ConfRej {
		apply = f.opts.Rejected
	}
	if apply(p.data) != nil {
		return
	}
	// The RFC restarts the counter on every Nak, so a peer that Naks
	// forever would hold the link in negotiation forever; after
	// Max-Configure refusals in a row, give up as on TO-.
	if f.refused++; f.refused >= f.t.MaxConfigure && f.state != Opened {
		f.setState(Stopped)
		f.l.finished(f)
		return
	}
	switch f.state {
	case ReqSent, AckSent:
		f.irc(f.t.MaxConfigure)
		f.scr()
	case AckRcvd:
		f.scr()
		f.setState(ReqSent)
	case Opened:
		f.l.down(f)
		f.scr()
		f.setState(ReqSent)
	}
}

func (f *fsm) rtr(p packet) {
	f.sta(p.id)
	switch f.state {
	case AckRcvd, AckSent:
		f.setState(ReqSent)
	case Opened:
		f.restart = 0
		f.setState(Stopping)
		f.deadline = f.now.Add(f.t.Restart) // zrc
		f.l.down(f)
	}
}

func (f *fsm) rta() {
	switch f.state {
	case Closing:
		f.setState(Closed)
		f.l.finished(f)
	case Stopping:
		f.setState(Stopped)
		f.l.finished(f)
	case AckRcvd:
		f.setState(ReqSent)
	case Opened:
		f.l.down(f)
		f.scr()
		f.setState(ReqSent)
	}
}

// rxj handles a Code-Reject: rejecting a code the automaton needs (1 to 7)
// is catastrophic (RXJ-); rejecting an LCP extension code is not (RXJ+).
func (f *fsm) rxj(p packet) {
	if len(p.data) > 0 && p.data[0] >= ConfReq && p.data[0] <= CodeRej {
		f.RejectedByPeer()
		return
	}
	if f.state == AckRcvd {
		f.setState(ReqSent)
	}
}

// RejectedByPeer is RXJ-: the peer refused something the protocol cannot
// run without (a Code-Reject of a basic code, or a Protocol-Reject of the
// protocol itself).
func (f *fsm) RejectedByPeer() {
	switch f.state {
	case Closed, Closing:
		f.setState(Closed)
		f.l.finished(f)
	case Stopped, Stopping, ReqSent, AckRcvd, AckSent:
		f.setState(Stopped)
		f.l.finished(f)
	case Opened:
		f.irc(f.t.MaxTerminate)
		f.str("")
		f.setState(Stopping)
		f.l.down(f)
	}
}

func (f *fsm) irc(n int) { f.restart = n }

// scr sends a Configure-Request, starting a new negotiation of our options
// when none is under way.
func (f *fsm) scr() {
	if !f.state.negotiating() {
		f.opts.Reset()
		f.refused = 0
	}
	f.lastReq = f.opts.AppendRequest(f.lastReq[:0])
	f.reqID = f.id()
	f.sendPacket(ConfReq, f.reqID, f.lastReq)
	f.restart--
	f.deadline = f.now.Add(f.t.Restart)
}

func (f *fsm) str(reason string) {
	f.buf = appendPacket(f.buf[:0], TermReq, f.id(), []byte(reason))
	f.send(f.proto, f.buf)
	f.restart--
	f.deadline = f.now.Add(f.t.Restart)
}

func (f *fsm) sta(id byte) { f.sendPacket(TermAck, id, nil) }

// maxRejected bounds the rejected packet a Code-Reject or Protocol-Reject
// carries, so the reply fits a default MRU.
const maxRejected = 1400

func (f *fsm) scj(rejected []byte) {
	if len(rejected) > maxRejected {
		rejected = rejected[:maxRejected]
	}
	f.sendPacket(CodeRej, f.id(), rejected)
}

func (f *fsm) sendPacket(code, id byte, data []byte) {
	f.buf = appendPacket(f.buf[:0], code, id, data)
	f.send(f.proto, f.buf)
}

func (f *fsm) id() byte {
	id := f.nextID
	f.nextID++
	return id
}
