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

// PacketPayload is a Payload whose IP packets go to a device with a
// virtio_net_hdr (a TUN with offloads): the receive pump merges the TCP
// segments of a flow among one batch's frames into super-packets for it,
// as it does for a TAP's Ethernet frames, and hands them over itself;
// Deliver gets every other frame. A session's frames reach the payload in
// order either way.
type PacketPayload interface {
	Payload
	// PacketOffset returns where the IP packet starts in frame when the
	// frame carries one for the device, or -1 for a frame for Deliver.
	// Like Deliver, it is called on the receive pump and must not block.
	PacketOffset(frame []byte) int
	// WritePacket writes one packet to the device: parts[0] is its
	// virtio_net_hdr, the rest the packet's pieces in order.
	WritePacket(parts [][]byte) error
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

	// For SendSegments, made on its first call: a batch of
	// segBatchLen messages, their parts, and each message's segments and
	// bytes.
	sb       *conn.Batch
	segParts [][]byte
	segs     [segBatchLen]int
	segBytes [segBatchLen]uint64
}

// segBatchLen is the most messages one SendSegments system call sends.
const segBatchLen = 64

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
	s.packets, _ = cfg.Payload.(PacketPayload)
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

// SendSegments sends len(payloads) frames of an L2TPv2 session, in order,
// as Send would one by one, but in one sendmmsg per 64 datagrams, joined
// into UDP GSO sends where the socket and the path take them: the
// segments of a TCP super-packet a TUN handed over. Frame i is
// hdrs[i*stride+encap.V2MaxDataHeaderLen:(i+1)*stride] followed by
// payloads[i]; the first encap.V2MaxDataHeaderLen bytes of each stride are
// room for its data header, which SendSegments writes there (ending where
// the frame starts; with consecutive Ns when the session sends sequence
// numbers). Frames of one length in a row, the last of a run possibly
// shorter, go as one GSO send. It may be called from any goroutine;
// nothing is kept. The error is the first send's, or ErrSessionClosed.
func (s *Session) SendSegments(hdrs []byte, stride int, payloads [][]byte) error {
	x := s.v2tx
	if x == nil {
		return fmt.Errorf("session %d in tunnel %d: SendSegments is for L2TPv2 sessions", s.cfg.ID, s.cfg.TunnelID)
	}
	if stride < encap.V2MaxDataHeaderLen || len(hdrs) < len(payloads)*stride {
		return fmt.Errorf("session %d in tunnel %d: SendSegments: %d frames of stride %d in %d header bytes",
			s.cfg.ID, s.cfg.TunnelID, len(payloads), stride, len(hdrs))
	}
	t := s.tunnel
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return fmt.Errorf("session %d in tunnel %d: %w", s.cfg.ID, s.cfg.TunnelID, ErrSessionClosed)
	}
	if x.sb == nil {
		x.sb = t.sock.c.NewBatch(segBatchLen)
	}
	limit := 0 // the longest datagram of a GSO send; 0: none
	if t.sock.c.GSO() {
		limit = s.gsoLimit()
	}
	seq := s.seq.SendSeq()
	var first error
	for len(payloads) > 0 {
		k, used := x.fillSegments(s, hdrs, stride, payloads, seq, limit)
		sent, err := t.sock.c.Send(x.sb, k)
		if err != nil {
			// Declared here: errors.As makes it escape, and the
			// allocation must stay off the path without errors.
			var refused *conn.ErrGSORefused
			if errors.As(err, &refused) {
				// Sent after all, one datagram per segment.
				t.sock.log.Warn("kernel refused UDP GSO on the tunnel socket; sending one datagram per segment",
					"local", t.sock.key.local.String(), "err", refused.Err)
			} else if first == nil {
				first = err
			}
		}
		// The messages not sent: those with Err, and as many more at the
		// end when Send stopped early (the socket closed).
		unsent := k - sent
		for i := range k {
			if x.sb.Msgs[i].Err != nil {
				unsent--
			}
		}
		for i := k - 1; i >= 0; i-- {
			m := &x.sb.Msgs[i]
			if m.Err != nil || unsent > 0 {
				if m.Err == nil {
					unsent--
				}
				s.stats.txErrors.Add(uint64(x.segs[i]))
				t.stats.txErrors.Add(uint64(x.segs[i]))
			} else {
				s.stats.txPackets.Add(uint64(x.segs[i]))
				s.stats.txBytes.Add(x.segBytes[i])
				t.stats.txPackets.Add(uint64(x.segs[i]))
				t.stats.txBytes.Add(x.segBytes[i])
			}
			m.Parts, m.Err = nil, nil // the caller's frames are not kept
		}
		clear(x.segParts)
		hdrs, payloads = hdrs[used*stride:], payloads[used:]
	}
	if first != nil {
		s.note(event.Drop, event.TxError, "the tunnel socket refused it", first)
		return fmt.Errorf("session %d in tunnel %d: send: %w", s.cfg.ID, s.cfg.TunnelID, first)
	}
	return nil
}

// fillSegments writes the data headers of the frames SendSegments sends
// and fills x.sb with up to segBatchLen messages of them: with limit,
// runs of equal frames (at most maxGSOSegs and maxGSOBytes, each frame at
// most limit) as one GSO message each. It returns the messages and the
// frames they take. Called with x.mu held.
func (x *v2Sender) fillSegments(s *Session, hdrs []byte, stride int, payloads [][]byte, seq bool, limit int) (msgs, used int) {
	t := s.tunnel
	if need := 2 * min(len(payloads), segBatchLen*maxGSOSegs); cap(x.segParts) < need {
		x.segParts = make([][]byte, 0, need)
	}
	x.segParts = x.segParts[:0]
	const room = encap.V2MaxDataHeaderLen
	hl := encap.V2DataHeaderLen(seq)
	for used < len(payloads) && msgs < segBatchLen {
		start := len(x.segParts)
		size, n, bytes := 0, 0, 0
		x.segBytes[msgs] = 0
		for used < len(payloads) && n < maxGSOSegs && len(x.segParts)+2 <= cap(x.segParts) {
			flen := stride - room + len(payloads[used])
			l := hl + flen
			if n > 0 && (limit == 0 || l > size || l > limit || bytes+l > maxGSOBytes) {
				break
			}
			ns := uint32(0)
			if seq {
				ns = s.seq.NextNs()
			}
			h := hdrs[used*stride+room-hl : (used+1)*stride]
			encap.EncodeV2Data(h, uint16(t.cfg.PeerID), uint16(s.cfg.PeerID), uint16(ns), seq)
			x.segParts = append(x.segParts, h, payloads[used])
			if n == 0 {
				size = l
			}
			n++
			used++
			bytes += l
			x.segBytes[msgs] += uint64(flen)
			if l < size {
				break // a shorter datagram ends a GSO run
			}
		}
		m := &x.sb.Msgs[msgs]
		m.Buf, m.Parts, m.Addr, m.GSOSize = nil, x.segParts[start:len(x.segParts):len(x.segParts)], t.remote, 0
		if n > 1 {
			m.GSOSize = size
		}
		x.segs[msgs] = n
		msgs++
	}
	return msgs, used
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
