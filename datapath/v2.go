package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/ul2tp/ul2tp/datapath/conn"
	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/encap"
	"github.com/ul2tp/ul2tp/reorder"
)

// L2TPv2 sessions have no TAP: the frames they carry (PPP, as L2TP carries
// it: from the Address and Control field or the Protocol field on, as the
// peer sends it) go to a Payload, and the Payload's frames go out through
// Session.Send. Received data packets are demultiplexed by the peer's
// address and port, our tunnel id and our session id; they may carry
// Length, Ns/Nr, Offset and the P bit.

// Payload takes an L2TPv2 session's received frames.
type Payload interface {
	// Deliver is called on the socket's receive pump with each frame in
	// order (after sequencing, if on). frame is valid only during the
	// call; Deliver must not block.
	Deliver(frame []byte)
}

// ErrSessionClosed is returned by Session.Send once the session is deleted.
var ErrSessionClosed = errors.New("session closed")

// v2Key is the key of an L2TPv2 session in peerDemux.v2.
func v2Key(tunnelID, sessionID uint16) uint32 { return uint32(tunnelID)<<16 | uint32(sessionID) }

// peerV2Sessions collects the sessions of the socket's L2TPv2 tunnels to
// remote, by v2Key.
func (s *socket) peerV2Sessions(p *Plane, remote netip.AddrPort) *map[uint32]*Session {
	m := map[uint32]*Session{}
	for _, t := range p.tunnels {
		if t.sock != s || t.remote != remote || !t.cfg.V2() {
			continue
		}
		for id, ss := range t.sessions {
			m[v2Key(uint16(t.cfg.ID), uint16(id))] = ss
		}
	}
	return &m
}

// v2Sender is an L2TPv2 session's send state: Send numbers and sends
// under mu, so datagrams leave in the order of their Ns.
type v2Sender struct {
	mu     sync.Mutex
	closed bool
	b      *conn.Batch
	hdr    [encap.V2MaxDataHeaderLen]byte
	parts  [2][]byte
}

// addSessionV2 adds an L2TPv2 session to t. Called with p.mu held, cfg
// checked.
func (p *Plane) addSessionV2(t *Tunnel, cfg SessionConfig) *Session {
	s := &Session{
		cfg:     cfg,
		tunnel:  t,
		log:     p.log,
		payload: cfg.Payload,
		v2tx:    &v2Sender{b: t.sock.c.NewBatch(1)},
	}
	sc := seqConfig(&cfg)
	sc.Max = reorder.MaxV2
	s.seq = reorder.New[rxItem](sc)
	s.mtu = cfg.MTU
	if s.mtu == 0 {
		s.mtu = conn.PathMTU(t.cfg.Remote) - underlayLen(&t.cfg) - encap.V2MaxDataHeaderLen
	}
	s.maxFrame.Store(int32(s.mtu))
	t.sessions[cfg.ID] = s
	t.sock.rebuildPeer(p, t.remote)
	p.log.Info("session created", "version", 2, "tunnel_id", cfg.TunnelID, "session_id", cfg.ID,
		"peer_session_id", cfg.PeerID)
	p.publish(event.Event{Kind: event.SessionAdded, TunnelID: cfg.TunnelID, SessionID: cfg.ID,
		Detail: fmt.Sprintf("L2TPv2 peer_session_id %d", cfg.PeerID)})
	return s
}

// Send sends one frame of an L2TPv2 session to the peer, behind a data
// header (with Ns when the session sends sequence numbers). It may be
// called from any goroutine; frame is not kept.
func (s *Session) Send(frame []byte) error {
	x := s.v2tx
	if x == nil {
		return fmt.Errorf("session %d in tunnel %d: Send is for L2TPv2 sessions", s.cfg.ID, s.cfg.TunnelID)
	}
	t := s.tunnel
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("session %d in tunnel %d: %w", s.cfg.ID, s.cfg.TunnelID, ErrSessionClosed)
	}
	ns, seq := uint32(0), s.seq.SendSeq()
	if seq {
		ns = s.seq.NextNs()
	}
	n := encap.EncodeV2Data(x.hdr[:], uint16(t.cfg.PeerID), uint16(s.cfg.PeerID), uint16(ns), seq)
	x.parts[0], x.parts[1] = x.hdr[:n], frame
	m := &x.b.Msgs[0]
	m.Buf, m.Parts, m.Addr, m.GSOSize = nil, x.parts[:], t.remote, 0
	_, err := t.sock.c.Send(x.b, 1)
	x.parts[1], m.Parts = nil, nil // the caller's frame is not kept
	if err != nil {
		s.stats.txErrors.Add(1)
		t.stats.txErrors.Add(1)
		s.note(event.Drop, event.TxError, "the tunnel socket refused it", err)
		return fmt.Errorf("session %d in tunnel %d: send: %w", s.cfg.ID, s.cfg.TunnelID, err)
	}
	s.stats.txPackets.Add(1)
	s.stats.txBytes.Add(uint64(len(frame)))
	t.stats.txPackets.Add(1)
	t.stats.txBytes.Add(uint64(len(frame)))
	return nil
}

// closeV2 makes Send refuse from now on.
func (s *Session) closeV2() {
	x := s.v2tx
	x.mu.Lock()
	x.closed = true
	x.mu.Unlock()
}

// deliverV2 checks one L2TPv2 data packet and passes its frame on to its
// session's Payload.
func (r *receiver) deliverV2(d *demux, pkt []byte, from netip.AddrPort, truncated bool) {
	s := r.sock
	pd := r.peer(d, from)
	if pd == nil {
		s.unmatched.Add(1)
		s.noteDrop(event.UnmatchedPeer, 0, 0, from)
		return
	}
	h, err := encap.ParseV2(pkt)
	if err != nil || truncated {
		pd.tunnel.stats.rxInvalid.Add(1)
		s.noteDrop(event.InvalidHeader, pd.tunnel.cfg.ID, 0, from)
		return
	}
	ss := r.sessionV2(pd, h.TunnelID, h.SessionID)
	if ss == nil {
		t := pd.v2tunnels[h.TunnelID]
		if t == nil {
			t = pd.tunnel // no such tunnel: counted on one to the peer
		}
		t.stats.rxInvalid.Add(1)
		s.noteDrop(event.UnknownSession, uint32(h.TunnelID), uint32(h.SessionID), from)
		return
	}
	end := len(pkt)
	if h.Flags&encap.V2FlagL != 0 {
		end = int(h.Length) // ParseV2 checked it is within pkt
	}
	frame := pkt[h.PayloadOffset:end]
	if len(frame) == 0 {
		ss.stats.rxInvalid.Add(1)
		ss.stats.rxErrors.Add(1)
		ss.note(event.Drop, event.InvalidHeader, "no frame after the L2TPv2 header", nil)
		return
	}
	hasSeq := h.Flags&encap.V2FlagS != 0
	if hasSeq || !ss.seq.Idle() {
		ss.seqMu.Lock()
		r.sh.s = ss
		r.sh.receive(nanotime(), hasSeq, uint32(h.Ns), rxItem{frame: frame})
		ss.seqMu.Unlock()
		return
	}
	r.toTAP(ss, frame, false)
}

// sessionV2 looks up an L2TPv2 session of a peer (nil for none), through
// the one-entry cache.
func (r *receiver) sessionV2(pd *peerDemux, tunnelID, sessionID uint16) *Session {
	key := v2Key(tunnelID, sessionID)
	if m := pd.v2.Load(); m != r.lastV2M || key != r.lastV2Key {
		r.lastV2M, r.lastV2Key, r.lastV2S = m, key, (*m)[key]
	}
	return r.lastV2S
}

// PayloadRecorder is a Payload that keeps copies of the first Max frames
// it is given (64 if Max is 0) and counts them all: for tests, and for a
// call whose frames go nowhere yet ("ppp: none").
type PayloadRecorder struct {
	Max int

	mu     sync.Mutex
	frames [][]byte
	count  uint64
}

// Deliver records a frame.
func (r *PayloadRecorder) Deliver(frame []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count++
	if max := r.Max; len(r.frames) < max || max == 0 && len(r.frames) < 64 {
		r.frames = append(r.frames, append([]byte(nil), frame...))
	}
}

// Frames returns the frames kept and how many were delivered in all.
func (r *PayloadRecorder) Frames() ([][]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames...), r.count
}
