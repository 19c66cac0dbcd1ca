package datapath

import (
	"fmt"
	"time"

	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/reorder"
)

// rxItem is a received frame on its way through a session's sequencing:
// a slice of the receive pump's buffer, or of a session buffer once it has
// to wait in the reorder queue.
type rxItem struct {
	frame []byte
	owned bool // frame is in a session buffer, returned after use
}

// seqHandler carries a receive pump's state into reorder's callbacks.
type seqHandler struct {
	r *receiver
	s *Session
}

// Deliver passes a frame that is in sequence to the TAP.
func (h *seqHandler) Deliver(it rxItem) {
	h.r.toTAP(h.s, it.frame, it.owned)
	h.release(it)
}

// receive passes a packet through the session's sequencing, with the
// session's seqMu held, and publishes the state changes it made: the
// expected Ns jumped (resync), or send_seq followed the peer.
func (h *seqHandler) receive(now int64, hasSeq bool, ns uint32, it rxItem) {
	s := h.s
	resyncs, sendSeq := s.seq.Resyncs(), s.seq.SendSeq()
	s.seq.Receive(now, hasSeq, ns, it, h)
	if s.seq.Resyncs() != resyncs {
		s.note(event.Seq, event.Resync, "the expected Ns jumped", nil)
	}
	if on := s.seq.SendSeq(); on != sendSeq {
		detail := "send_seq off, following the peer"
		if on {
			detail = "send_seq on, following the peer"
		}
		s.note(event.Seq, event.SendSeq, detail, nil)
	}
}

// Drop discards a frame; reorder counts it.
func (h *seqHandler) Drop(it rxItem, why reorder.Reason) {
	h.s.note(event.Drop, event.SeqDiscard, seqReason(why), nil)
	h.release(it)
}

// seqReasons names reorder's reasons without building a string per drop.
var seqReasons = func() (n [reorder.NoSequence + 1]string) {
	for r := range n {
		n[r] = reorder.Reason(r).String()
	}
	return n
}()

// seqReason names a reorder reason, "" for one not in seqReasons.
func seqReason(r reorder.Reason) string {
	if int(r) < len(seqReasons) {
		return seqReasons[r]
	}
	return ""
}

// Keep copies a frame that must wait into a session buffer, of the
// longest frame the session's TAP takes (see Session.maxFrame).
func (h *seqHandler) Keep(it rxItem) rxItem {
	if it.owned {
		return it
	}
	s := h.s
	var b []byte
	if n := len(s.keep); n > 0 {
		b, s.keep = s.keep[n-1], s.keep[:n-1]
	} else {
		b = make([]byte, 0, s.maxFrame.Load())
	}
	return rxItem{frame: append(b[:0], it.frame...), owned: true}
}

func (h *seqHandler) release(it rxItem) {
	if it.owned {
		h.s.keep = append(h.s.keep, it.frame[:0])
	}
}

// SessionModify is what L2TP_CMD_SESSION_MODIFY may change; nil fields
// stay as they are.
type SessionModify struct {
	SendSeq, RecvSeq, LNSMode *bool
	ReorderTimeout            *time.Duration
}

// ModifySession changes a session's sequencing options.
func (p *Plane) ModifySession(tunnelID, id uint32, m SessionModify) error {
	p.mu.Lock()
	_, s, err := p.lookup(tunnelID, id)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if m.ReorderTimeout != nil && *m.ReorderTimeout < 0 {
		return &FieldError{"reorder_timeout", *m.ReorderTimeout, "must not be negative"}
	}
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	c := s.seq.Config()
	if m.SendSeq != nil {
		c.SendSeq = *m.SendSeq
	}
	if m.RecvSeq != nil {
		c.RecvSeq = *m.RecvSeq
	}
	if m.LNSMode != nil {
		c.LNSMode = *m.LNSMode
	}
	if m.ReorderTimeout != nil {
		c.Timeout = *m.ReorderTimeout
	}
	if s.payload == nil { // L2TPv2 carries Ns in its header
		if err := checkSeqSublayer(s.rx.L2Spec, c.SendSeq, c.RecvSeq); err != nil {
			return err
		}
	}
	s.seq.Configure(c)
	p.log.Info("session modified", "tunnel_id", tunnelID, "session_id", id, "send_seq", c.SendSeq,
		"recv_seq", c.RecvSeq, "lns_mode", c.LNSMode, "reorder_timeout", c.Timeout)
	p.publish(event.Event{Kind: event.SessionModified, TunnelID: tunnelID, SessionID: id, Interface: s.ifName(),
		Detail: fmt.Sprintf("send_seq %v recv_seq %v lns_mode %v reorder_timeout %v", c.SendSeq, c.RecvSeq, c.LNSMode, c.Timeout)})
	return nil
}

// seqConfig is the reorder configuration of a new session.
func seqConfig(c *SessionConfig) reorder.Config {
	return reorder.Config{
		Max:     reorder.MaxV3,
		RecvSeq: c.RecvSeq,
		SendSeq: c.SendSeq,
		LNSMode: c.LNSMode,
		Timeout: c.ReorderTimeout,
	}
}
