package ppp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/ul2tp/ul2tp/encap"
)

// Phase is a phase of a PPP link (RFC 1661 section 3.2).
type Phase int

// The link phases, in the order a link goes through them.
const (
	PhaseDead Phase = iota
	PhaseEstablish
	PhaseAuthenticate
	PhaseNetwork
	PhaseOpen // network phase with at least one NCP opened
	PhaseTerminate
)

var phaseNames = [...]string{"dead", "establish", "authenticate", "network", "open", "terminate"}

func (p Phase) String() string {
	if p < 0 || int(p) >= len(phaseNames) {
		return "unknown"
	}
	return phaseNames[p]
}

// Authenticator runs one side of an authentication protocol (PAP, CHAP-MD5,
// MS-CHAPv2) for a Link, as a pure state machine: it never blocks, keeps its
// own retransmissions, and returns the packets to send as information fields
// of its protocol (code, identifier, length, data; no PPP header).
type Authenticator interface {
	// Start begins authentication when the link enters its
	// Authenticate phase.
	Start(now time.Time) [][]byte
	// Receive handles a packet of the negotiated protocol from the peer.
	Receive(now time.Time, pkt []byte) [][]byte
	// Tick runs retransmissions and time limits; the Link calls it on
	// each of its own Ticks while authenticating.
	Tick(now time.Time) [][]byte
	// Result tells whether authentication has finished and how: ok, the
	// name authenticated (the peer's as authenticator, ours as peer) and
	// the reason of a failure.
	Result() (done, ok bool, user string, err error)
}

// NewAuthenticator makes the Authenticator for method m once LCP has agreed
// on it: asAuthenticator is true when we authenticate the peer (LNS) and
// false when we authenticate ourselves to it (LAC).
type NewAuthenticator func(m AuthMethod, asAuthenticator bool) (Authenticator, error)

// Config configures a Link.
type Config struct {
	Timers Timers
	LCP    LCPConfig
	// NewAuth makes authenticators for LCP.Require and LCP.Accept.
	NewAuth NewAuthenticator
	// IPCP and IPv6CP enable the network protocols; nil protocol-rejects it.
	IPCP   *IPCPConfig
	IPv6CP *IPv6CPConfig
	// Send transmits a whole PPP frame (header included). The frame is
	// only valid during the call. Required.
	Send func(frame []byte)
	// OnPhase, if set, hears of each phase change.
	OnPhase func(Phase)
	// Rand draws magic numbers and interface identifiers; nil uses a
	// randomly seeded generator.
	Rand *rand.Rand
}

// Class is what Link.Receive found in a frame.
type Class int

// Frame classes.
const (
	Drop    Class = iota // malformed, or for a protocol not open
	Control              // handled by the link's state machines
	IPv4                 // IPv4 packet for the host
	IPv6                 // IPv6 packet for the host
)

// Link is the PPP state of one L2TPv2 call: LCP, authentication and the
// NCPs, tied together by the link phases. It is not safe for concurrent
// use; the caller serialises Receive, Tick and the other methods.
type Link struct {
	cfg   Config
	rand  func() uint32
	now   time.Time
	phase Phase
	fail  error

	lcp    *fsm
	lcpOpt lcpOptions
	ipcp   *fsm
	ipcpO  ipcpOptions
	ipv6cp *fsm
	ipv6O  ipv6cpOptions

	authSelf, authPeer Authenticator // we authenticate the peer / ourselves
	user               string
	authDeadline       time.Time

	echoNext    time.Time
	echoPending int
	echoMissed  uint64
	echoID      byte
	protoRejID  byte
	gone        bool // the call went away (Down)

	out []byte
}

// New returns a Link in the Dead phase.
func New(cfg Config) (*Link, error) {
	if cfg.Send == nil {
		return nil, errors.New("ppp: Config.Send is nil")
	}
	if (len(cfg.LCP.Require) > 0 || len(cfg.LCP.Accept) > 0) && cfg.NewAuth == nil {
		return nil, errors.New("ppp: authentication methods without Config.NewAuth")
	}
	if m := cfg.LCP.MRU; m != 0 && (m < MinMRU || m > 65535) {
		return nil, fmt.Errorf("ppp: MRU %d: want %d to 65535", m, MinMRU)
	}
	l := &Link{cfg: cfg}
	r := cfg.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	l.rand = r.Uint32
	l.lcpOpt = lcpOptions{cfg: &l.cfg.LCP, rand: l.rand}
	l.lcp = newFSM(encap.PPPLCP, &l.lcpOpt, cfg.Timers, l, l.sendControl)
	l.lcp.extra = l.lcpExtra
	if cfg.IPCP != nil {
		l.ipcpO = ipcpOptions{cfg: l.cfg.IPCP}
		l.ipcp = newFSM(encap.PPPIPCP, &l.ipcpO, cfg.Timers, l, l.sendControl)
	}
	if cfg.IPv6CP != nil {
		l.ipv6O = ipv6cpOptions{cfg: l.cfg.IPv6CP, rand: l.rand}
		l.ipv6cp = newFSM(encap.PPPIPv6CP, &l.ipv6O, cfg.Timers, l, l.sendControl)
	}
	return l, nil
}

// Open starts the link on an established call: LCP begins negotiating.
func (l *Link) Open(now time.Time) {
	l.now = now
	l.setPhase(PhaseEstablish)
	l.lcp.Open(now)
	l.lcp.Up(now)
}

// Close ends the link: LCP sends Terminate-Request with reason and the
// link is Dead after the peer's Terminate-Ack or the restart timer.
func (l *Link) Close(now time.Time, reason string) {
	l.now = now
	l.lcp.Close(now, reason)
	l.terminating()
	l.settle()
}

// terminating enters the Terminate phase while LCP waits for its
// Terminate-Ack (Close from a state before Opened has no tld to do it).
func (l *Link) terminating() {
	if s := l.lcp.state; s == Closing || s == Stopping {
		l.setPhase(PhaseTerminate)
	}
}

// Down tells the link its call has gone: it is Dead at once.
func (l *Link) Down(now time.Time) {
	l.now = now
	l.gone = true
	l.lcp.Down(now)
	l.lcp.Close(now, "")
	l.setPhase(PhaseDead)
}

// Phase is the link's current phase.
func (l *Link) Phase() Phase { return l.phase }

// Failure is why the link failed or went down, or nil.
func (l *Link) Failure() error { return l.fail }

// User is the authenticated name: the peer's when we authenticate it, ours
// when it authenticates us; after a failed authentication, the name that
// was refused.
func (l *Link) User() string { return l.user }

// LCPState is the state of LCP's automaton.
func (l *Link) LCPState() State { return l.lcp.state }

// EchoMissed is how many of our Echo-Requests had no reply by the time
// the next was due (or the link was taken down for it).
func (l *Link) EchoMissed() uint64 { return l.echoMissed }

// PeerMRU is the largest frame the peer accepts.
func (l *Link) PeerMRU() int { return l.lcpOpt.peerMRU }

// Header is how data frames to the peer are written: the compressions the
// peer asked for and we acked.
func (l *Link) Header() encap.PPPHeader {
	return encap.PPPHeader{ACFC: l.lcpOpt.sendACFC, PFC: l.lcpOpt.sendPFC}
}

// IPv4 is our address and the peer's as IPCP agreed them; invalid Addrs
// until IPCP is open.
func (l *Link) IPv4() (local, peer netip.Addr) {
	if l.ipcp == nil || l.ipcp.state != Opened {
		return netip.Addr{}, netip.Addr{}
	}
	return l.ipcpO.local, l.ipcpO.peer
}

// DNS is the DNS servers the peer gave us (zero Addrs for none).
func (l *Link) DNS() [2]netip.Addr {
	var d [2]netip.Addr
	for i := range d {
		if l.ipcpO.reqDNS[i] && l.ipcpO.dns[i] != zero4 {
			d[i] = l.ipcpO.dns[i]
		}
	}
	return d
}

// IPv6 is our interface identifier and the peer's as IPv6CP agreed them;
// ok is false until IPv6CP is open.
func (l *Link) IPv6() (local, peer [8]byte, ok bool) {
	if l.ipv6cp == nil || l.ipv6cp.state != Opened {
		return local, peer, false
	}
	return l.ipv6O.local, l.ipv6O.peer, true
}

// Receive takes a PPP frame from the call. IPv4 and IPv6 packets for an
// opened NCP come back as the frame's information field, without
// allocating; control packets go to the state machines (which may send).
func (l *Link) Receive(now time.Time, frame []byte) (Class, []byte) {
	proto, off, err := encap.ParsePPP(frame)
	if err != nil {
		return Drop, nil
	}
	switch {
	case proto == encap.PPPIPv4 && l.ipcp != nil:
		if l.ipcp.state == Opened {
			return IPv4, frame[off:]
		}
		return Drop, nil
	case proto == encap.PPPIPv6 && l.ipv6cp != nil:
		if l.ipv6cp.state == Opened {
			return IPv6, frame[off:]
		}
		return Drop, nil
	}
	l.now = now
	l.control(proto, frame[off:])
	l.settle()
	return Control, nil
}

// control dispatches a non-data packet by protocol and phase (RFC 1661
// section 3: only LCP before the link is open, only LCP and authentication
// before the network phase).
func (l *Link) control(proto uint16, info []byte) {
	if proto == encap.PPPLCP {
		l.lcpInput(info)
		return
	}
	if l.lcp.state != Opened {
		return
	}
	if proto == encap.PPPPAP || proto == encap.PPPCHAP {
		if l.authInput(proto, info) {
			return
		}
	} else if f := l.ncp(proto); f != nil {
		if l.phase == PhaseNetwork || l.phase == PhaseOpen {
			f.Input(l.now, info)
		}
		return
	}
	l.protocolReject(proto, info)
}

// ncp returns the automaton of an enabled NCP by protocol number.
func (l *Link) ncp(proto uint16) *fsm {
	switch {
	case proto == encap.PPPIPCP && l.ipcp != nil:
		return l.ipcp
	case proto == encap.PPPIPv6CP && l.ipv6cp != nil:
		return l.ipv6cp
	}
	return nil
}

func (l *Link) lcpInput(info []byte) {
	if p, err := parsePacket(info); err == nil && p.code == TermReq && l.lcp.state >= ReqSent && l.fail == nil {
		l.fail = fmt.Errorf("%w: %q", ErrPeerTerminate, p.data)
	}
	l.lcp.Input(l.now, info)
}

// lcpExtra handles LCP's codes beyond the automaton's: Protocol-Reject,
// Echo-Request and -Reply, Discard-Request.
func (l *Link) lcpExtra(now time.Time, p packet, raw []byte) bool {
	switch p.code {
	case ProtoRej:
		if l.lcp.state == Opened && len(p.data) >= 2 {
			l.protocolRejected(binary.BigEndian.Uint16(p.data))
		}
	case EchoReq:
		if l.lcp.state == Opened && len(p.data) >= 4 {
			if m := binary.BigEndian.Uint32(p.data); m != 0 && m == l.lcpOpt.magic {
				return true // our own request looped back
			}
			data := binary.BigEndian.AppendUint32(make([]byte, 0, len(p.data)), l.lcpOpt.magic)
			l.lcp.sendPacket(EchoReply, p.id, append(data, p.data[4:]...))
		}
	case EchoReply:
		if l.lcp.state == Opened && len(p.data) >= 4 && p.id == l.echoID {
			if m := binary.BigEndian.Uint32(p.data); m == 0 || m != l.lcpOpt.magic {
				l.echoPending = 0
			}
		}
	case DiscardReq:
	default:
		return false
	}
	return true
}

// protocolReject answers a packet of a protocol we do not run.
func (l *Link) protocolReject(proto uint16, info []byte) {
	if len(info) > maxRejected-2 {
		info = info[:maxRejected-2]
	}
	data := append([]byte{byte(proto >> 8), byte(proto)}, info...)
	l.protoRejID++
	l.lcp.sendPacket(ProtoRej, l.protoRejID, data)
}

// protocolRejected handles the peer's Protocol-Reject of proto.
func (l *Link) protocolRejected(proto uint16) {
	switch proto {
	case encap.PPPLCP:
		l.lcp.RejectedByPeer()
	case encap.PPPIPCP, encap.PPPIPv4:
		if l.ipcp != nil {
			l.ipcp.RejectedByPeer()
		}
	case encap.PPPIPv6CP, encap.PPPIPv6:
		if l.ipv6cp != nil {
			l.ipv6cp.RejectedByPeer()
		}
	case encap.PPPPAP, encap.PPPCHAP:
		if l.phase == PhaseAuthenticate {
			l.failWith(fmt.Errorf("%w: peer rejected protocol %#04x", ErrAuthFailed, proto))
		}
	}
}

// authInput passes an authentication packet to the side it is for: PAP's
// Authenticate-Request and CHAP's Response go to the authenticator, the
// rest to our own side. It reports false when no side runs the protocol.
func (l *Link) authInput(proto uint16, info []byte) bool {
	self, peer := l.authSelf, l.authPeer
	if self != nil && l.lcpOpt.auth.Protocol != proto {
		self = nil
	}
	if peer != nil && l.lcpOpt.peerAuth.Protocol != proto {
		peer = nil
	}
	a := peer
	if self != nil && (peer == nil || len(info) > 0 && info[0] == toAuthenticator(proto)) {
		a = self
	}
	if a == nil {
		return false
	}
	// Past the Authenticate phase the authenticators still answer: a
	// peer whose Success was lost retransmits its Response, and CHAP may
	// challenge again (RFC 1994 section 2.1). A failure then ends the link.
	l.sendAuth(proto, a.Receive(l.now, info))
	if l.phase == PhaseAuthenticate {
		l.authProgress()
	} else if done, ok, _, err := a.Result(); done && !ok {
		l.failWith(fmt.Errorf("%w: %w", ErrAuthFailed, err))
	}
	return true
}

// toAuthenticator is the code of the packets a peer sends to an
// authenticator: PAP Authenticate-Request (1), CHAP Response (2).
func toAuthenticator(proto uint16) byte {
	if proto == encap.PPPPAP {
		return 1
	}
	return 2
}

func (l *Link) sendAuth(proto uint16, pkts [][]byte) {
	for _, p := range pkts {
		l.sendControl(proto, p)
	}
}

// authProgress moves to the network phase when every side has succeeded,
// or fails the link when one has failed.
func (l *Link) authProgress() {
	if l.phase != PhaseAuthenticate {
		return
	}
	for _, a := range [2]Authenticator{l.authSelf, l.authPeer} {
		if a == nil {
			continue
		}
		done, ok, user, err := a.Result()
		if !done {
			return
		}
		if !ok {
			if err == nil {
				err = errors.New("rejected")
			}
			if l.user == "" {
				l.user = user // the name refused, for the failure's report
			}
			l.failWith(fmt.Errorf("%w: %w", ErrAuthFailed, err))
			return
		}
		if a == l.authSelf || l.user == "" {
			l.user = user
		}
	}
	l.network()
}

// failWith records err as the link's failure and closes it.
func (l *Link) failWith(err error) {
	if l.fail == nil {
		l.fail = err
	}
	l.lcp.Close(l.now, err.Error())
	l.terminating()
}

// Tick runs timers: restart timers, keepalives, authentication. Call it at
// Deadline (or more often).
func (l *Link) Tick(now time.Time) {
	l.now = now
	for _, f := range [3]*fsm{l.lcp, l.ipcp, l.ipv6cp} {
		if f != nil {
			f.Tick(now)
		}
	}
	if l.phase == PhaseAuthenticate {
		if l.authSelf != nil {
			l.sendAuth(l.lcpOpt.auth.Protocol, l.authSelf.Tick(now))
		}
		if l.authPeer != nil {
			l.sendAuth(l.lcpOpt.peerAuth.Protocol, l.authPeer.Tick(now))
		}
		l.authProgress()
		l.authDeadline = now.Add(authTick)
	}
	l.echo(now)
	l.settle()
}

// authTick is how often Deadline asks for a Tick while authenticating, as
// authenticators do not report their own deadlines.
const authTick = time.Second

// echo sends keepalives and takes the link down when too many went
// unanswered.
func (l *Link) echo(now time.Time) {
	c := l.cfg.LCP
	if c.EchoInterval <= 0 || l.lcp.state != Opened || l.echoNext.IsZero() || now.Before(l.echoNext) {
		return
	}
	max := c.EchoFailures
	if max <= 0 {
		max = 3
	}
	if l.echoPending > 0 {
		l.echoMissed++
	}
	if l.echoPending >= max {
		l.failWith(ErrEchoTimeout)
		return
	}
	l.echoPending++
	l.echoID++
	var data [4]byte
	binary.BigEndian.PutUint32(data[:], l.lcpOpt.magic)
	l.lcp.sendPacket(EchoReq, l.echoID, data[:])
	l.echoNext = now.Add(c.EchoInterval)
}

// Deadline is when Tick next has work, or zero when nothing is timed.
func (l *Link) Deadline() time.Time {
	var d time.Time
	for _, t := range [5]time.Time{l.lcp.deadline, l.ncpDeadline(l.ipcp), l.ncpDeadline(l.ipv6cp), l.echoNext, l.authDeadline} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

func (l *Link) ncpDeadline(f *fsm) time.Time {
	if f == nil {
		return time.Time{}
	}
	return f.deadline
}

// settle acts on what negotiation decided as a whole: a fatal option
// outcome (loopback, no common authentication, empty pool) closes the link.
func (l *Link) settle() {
	if err := l.lcpOpt.fatal; err != nil {
		l.lcpOpt.fatal = nil
		l.failWith(err)
	}
	if err := l.ipcpO.fatal; err != nil && l.ipcp != nil {
		l.ipcpO.fatal = nil
		l.failWith(err)
	}
}

func (l *Link) setPhase(p Phase) {
	if l.phase == p {
		return
	}
	l.phase = p
	if p != PhaseAuthenticate {
		l.authDeadline = time.Time{}
	}
	if l.cfg.OnPhase != nil {
		l.cfg.OnPhase(p)
	}
}

// sendControl sends a control packet with a full PPP header (ff 03 and a
// two-byte protocol: every receiver accepts it).
func (l *Link) sendControl(proto uint16, pkt []byte) {
	l.out = append(l.out[:0], 0xff, 0x03, byte(proto>>8), byte(proto))
	l.out = append(l.out, pkt...)
	l.cfg.Send(l.out)
}

// The layer actions of the automata.

func (l *Link) up(f *fsm) {
	switch f {
	case l.lcp:
		l.echoPending = 0
		if l.cfg.LCP.EchoInterval > 0 {
			l.echoNext = l.now.Add(l.cfg.LCP.EchoInterval)
		}
		l.authenticate()
	default:
		if l.phase == PhaseNetwork {
			l.setPhase(PhaseOpen)
		}
	}
}

func (l *Link) down(f *fsm) {
	switch f {
	case l.lcp:
		l.echoNext = time.Time{}
		l.authSelf, l.authPeer = nil, nil
		for _, n := range [2]*fsm{l.ipcp, l.ipv6cp} {
			if n != nil {
				n.Down(l.now)
			}
		}
		if l.lcp.state == Closing || l.lcp.state == Stopping {
			l.setPhase(PhaseTerminate)
		} else {
			l.setPhase(PhaseEstablish)
		}
	default:
		if l.phase == PhaseOpen && !l.ncpOpened() {
			l.setPhase(PhaseNetwork)
		}
	}
}

func (l *Link) started(*fsm) {}

func (l *Link) finished(f *fsm) {
	if f == l.lcp {
		if l.fail == nil && !l.gone && l.phase == PhaseEstablish {
			l.fail = ErrNegotiation
		}
		// L2TP has no lower layer to wait on: a finished LCP ends the call.
		if l.lcp.state == Stopped {
			l.lcp.Close(l.now, "")
		}
		l.setPhase(PhaseDead)
		return
	}
	// An NCP gave up: with none left the link has no purpose.
	if l.phase == PhaseNetwork || l.phase == PhaseOpen {
		for _, n := range [2]*fsm{l.ipcp, l.ipv6cp} {
			if n != nil && n.state != Stopped && n.state != Closed {
				return
			}
		}
		l.failWith(ErrNoNetwork)
	}
}

func (l *Link) ncpOpened() bool {
	return l.ipcp != nil && l.ipcp.state == Opened || l.ipv6cp != nil && l.ipv6cp.state == Opened
}

// authenticate enters the Authenticate phase with the methods LCP agreed
// on, or goes straight to the network phase when there are none.
func (l *Link) authenticate() {
	l.setPhase(PhaseAuthenticate)
	var err error
	if l.lcpOpt.reqAuth {
		if l.authSelf, err = l.cfg.NewAuth(l.lcpOpt.auth, true); err != nil {
			l.failWith(fmt.Errorf("%w: %w", ErrAuthFailed, err))
			return
		}
		l.sendAuth(l.lcpOpt.auth.Protocol, l.authSelf.Start(l.now))
	}
	if l.lcpOpt.peerAuthNegotiated {
		if l.authPeer, err = l.cfg.NewAuth(l.lcpOpt.peerAuth, false); err != nil {
			l.failWith(fmt.Errorf("%w: %w", ErrAuthFailed, err))
			return
		}
		l.sendAuth(l.lcpOpt.peerAuth.Protocol, l.authPeer.Start(l.now))
	}
	l.authDeadline = l.now.Add(authTick)
	l.authProgress()
}

// network enters the network phase and starts the NCPs.
func (l *Link) network() {
	l.setPhase(PhaseNetwork)
	if l.ipcp == nil && l.ipv6cp == nil {
		l.setPhase(PhaseOpen) // LCP only: nothing more to negotiate
		return
	}
	for _, n := range [2]*fsm{l.ipcp, l.ipv6cp} {
		if n != nil {
			n.Open(l.now)
			n.Up(l.now)
		}
	}
}
