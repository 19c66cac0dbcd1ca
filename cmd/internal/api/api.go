// Package api is the protocol between ul2tpd and its clients: one JSON
// request per line on a Unix stream socket, answered by one JSON response
// per line. docs/api.md describes it for programs other than ul2tp.
//
// Field names follow iproute2's "ip l2tp" words and its JSON output, so a
// script written for the kernel reads ours unchanged.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/encap"
)

// DefaultSocket is where ul2tpd listens unless told otherwise.
const DefaultSocket = "/run/ul2tp/ul2tpd.sock"

// Operations.
const (
	OpAddTunnel   = "add_tunnel"
	OpDelTunnel   = "del_tunnel"
	OpShowTunnel  = "show_tunnel"
	OpAddSession  = "add_session"
	OpDelSession  = "del_session"
	OpShowSession = "show_session"
	OpSetSession  = "set_session"
)

// Request is one command to the daemon.
type Request struct {
	Op      string       `json:"op"`
	Tunnel  *TunnelArgs  `json:"tunnel,omitempty"`
	Session *SessionArgs `json:"session,omitempty"`
	// Set carries set_session's changes.
	Set *SetSessionArgs `json:"set,omitempty"`
	// Stats asks show_tunnel and show_session for counters.
	Stats bool `json:"stats,omitempty"`
}

// TunnelArgs are the words of "ip l2tp add tunnel"; for del and show only
// tunnel_id is read (0 in show means every tunnel).
type TunnelArgs struct {
	TunnelID     uint32 `json:"tunnel_id"`
	PeerTunnelID uint32 `json:"peer_tunnel_id,omitempty"`
	Encap        string `json:"encap,omitempty"` // udp (default) or ip
	Local        string `json:"local,omitempty"`
	Remote       string `json:"remote,omitempty"`
	UDPSport     uint16 `json:"udp_sport,omitempty"`
	UDPDport     uint16 `json:"udp_dport,omitempty"`
	UDPCsum      *bool  `json:"udp_csum,omitempty"`
	UDP6CsumTx   *bool  `json:"udp6_csum_tx,omitempty"`
	UDP6CsumRx   *bool  `json:"udp6_csum_rx,omitempty"`
}

// SessionArgs are the words of "ip l2tp add session" plus ours
// (reorder_timeout, lns_mode, mtu).
type SessionArgs struct {
	Name          string `json:"name,omitempty"`
	TunnelID      uint32 `json:"tunnel_id"`
	SessionID     uint32 `json:"session_id"`
	PeerSessionID uint32 `json:"peer_session_id,omitempty"`
	Cookie        string `json:"cookie,omitempty"`
	PeerCookie    string `json:"peer_cookie,omitempty"`
	L2SpecType    string `json:"l2spec_type,omitempty"` // default (default) or none
	Seq           string `json:"seq,omitempty"`         // none, send, recv, both
	// ReorderTimeout is in milliseconds.
	ReorderTimeout uint64 `json:"reorder_timeout,omitempty"`
	LNSMode        bool   `json:"lns_mode,omitempty"`
	MTU            int    `json:"mtu,omitempty"`
}

// SetSessionArgs are the words of "ul2tp set session" (the netlink
// SESSION_MODIFY equivalent); absent fields stay as they are.
type SetSessionArgs struct {
	TunnelID  uint32 `json:"tunnel_id"`
	SessionID uint32 `json:"session_id"`
	Seq       string `json:"seq,omitempty"` // none, send, recv, both
	// ReorderTimeout is in milliseconds; 0 turns reordering off.
	ReorderTimeout *uint64 `json:"reorder_timeout,omitempty"`
	LNSMode        *bool   `json:"lns_mode,omitempty"`
}

// Modify turns the arguments into a datapath change.
func (a *SetSessionArgs) Modify() (datapath.SessionModify, error) {
	var m datapath.SessionModify
	if a.TunnelID == 0 {
		return m, &datapath.FieldError{Field: "tunnel_id", Value: a.TunnelID, Reason: "must be 1..4294967295"}
	}
	if a.SessionID == 0 {
		return m, &datapath.FieldError{Field: "session_id", Value: a.SessionID, Reason: "must be 1..4294967295"}
	}
	if a.Seq != "" {
		send, recv, err := ParseSeq(a.Seq)
		if err != nil {
			return m, err
		}
		m.SendSeq, m.RecvSeq = &send, &recv
	}
	if a.ReorderTimeout != nil {
		if *a.ReorderTimeout > uint64(time.Hour/time.Millisecond) {
			return m, &datapath.FieldError{Field: "reorder_timeout", Value: *a.ReorderTimeout, Reason: "longer than an hour"}
		}
		d := time.Duration(*a.ReorderTimeout) * time.Millisecond
		m.ReorderTimeout = &d
	}
	m.LNSMode = a.LNSMode
	return m, nil
}

// Response answers a Request.
type Response struct {
	// Error is empty on success. Code classifies it: "exists",
	// "not found" or "invalid" (a bad field), else "failed".
	Error    string        `json:"error,omitempty"`
	Code     string        `json:"code,omitempty"`
	Tunnels  []TunnelInfo  `json:"tunnels,omitempty"`
	Sessions []SessionInfo `json:"sessions,omitempty"`
}

// Error codes.
const (
	CodeExists   = "exists"
	CodeNotFound = "not found"
	CodeInvalid  = "invalid"
	CodeFailed   = "failed"
)

// ErrorResponse classifies err.
func ErrorResponse(err error) Response {
	code := CodeFailed
	var fe *datapath.FieldError
	switch {
	case errors.Is(err, datapath.ErrExists):
		code = CodeExists
	case errors.Is(err, datapath.ErrNotFound):
		code = CodeNotFound
	case errors.As(err, &fe):
		code = CodeInvalid
	}
	return Response{Error: err.Error(), Code: code}
}

// TunnelInfo describes a tunnel with iproute2's JSON keys.
type TunnelInfo struct {
	TunnelID     uint32          `json:"tunnel_id"`
	Encap        string          `json:"encap"`
	Local        string          `json:"local"`
	Peer         string          `json:"peer"`
	PeerTunnelID uint32          `json:"peer_tunnel"`
	LocalPort    uint16          `json:"local_port,omitempty"`
	PeerPort     uint16          `json:"peer_port,omitempty"`
	Checksum     *bool           `json:"checksum,omitempty"`
	ChecksumTx   *bool           `json:"checksum_tx,omitempty"`
	ChecksumRx   *bool           `json:"checksum_rx,omitempty"`
	Sessions     int             `json:"sessions"`
	Stats        *datapath.Stats `json:"stats,omitempty"`
}

// SessionInfo describes a session with iproute2's JSON keys.
type SessionInfo struct {
	SessionID      uint32 `json:"session_id"`
	TunnelID       uint32 `json:"tunnel_id"`
	PeerSessionID  uint32 `json:"peer_session_id"`
	PeerTunnelID   uint32 `json:"peer_tunnel_id"`
	Interface      string `json:"interface"`
	Cookie         string `json:"cookie,omitempty"`
	PeerCookie     string `json:"peer_cookie,omitempty"`
	L2SpecType     string `json:"l2spec_type"`
	SendSeq        bool   `json:"send_seq,omitempty"`
	RecvSeq        bool   `json:"recv_seq,omitempty"`
	LNSMode        bool   `json:"lns_mode,omitempty"`
	ReorderTimeout uint64 `json:"reorder_timeout,omitempty"`
	MTU            int    `json:"mtu"`
	// State is "up", or "down" while the daemon recreates a TAP device
	// whose pump failed (deleted under it); PumpRestarts counts the TAPs
	// recreated and LastError says why the last one failed.
	State        string          `json:"state"`
	PumpRestarts uint64          `json:"pump_restarts,omitempty"`
	LastError    string          `json:"last_error,omitempty"`
	Stats        *datapath.Stats `json:"stats,omitempty"`
}

// Config turns the arguments into a datapath configuration, checking each.
func (a *TunnelArgs) Config() (datapath.TunnelConfig, error) {
	c := datapath.TunnelConfig{
		ID: a.TunnelID, PeerID: a.PeerTunnelID,
		UDPSport: a.UDPSport, UDPDport: a.UDPDport,
		// udp_csum defaults to on, unlike the kernel (off for IPv4): only a
		// socket with checksums may use UDP GSO (docs/performance.md).
		UDPCsum:    true,
		UDP6CsumTx: true, UDP6CsumRx: true,
	}
	if a.Encap != "" {
		e, err := encap.ParseEncap(a.Encap)
		if err != nil {
			return c, &datapath.FieldError{Field: "encap", Value: a.Encap, Reason: "want udp or ip"}
		}
		c.Encap = e
	}
	var err error
	if c.Remote, err = parseAddr("remote", a.Remote); err != nil {
		return c, err
	}
	if c.Local, err = parseAddr("local", a.Local); err != nil {
		return c, err
	}
	if a.UDPCsum != nil {
		c.UDPCsum = *a.UDPCsum
	}
	if a.UDP6CsumTx != nil {
		c.UDP6CsumTx = *a.UDP6CsumTx
	}
	if a.UDP6CsumRx != nil {
		c.UDP6CsumRx = *a.UDP6CsumRx
	}
	return c, c.Check()
}

func parseAddr(field, s string) (netip.Addr, error) {
	if s == "" || s == "any" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, &datapath.FieldError{Field: field, Value: s, Reason: "not an IP address"}
	}
	return a, nil
}

// Config turns the arguments into a datapath configuration, checking each.
func (a *SessionArgs) Config() (datapath.SessionConfig, error) {
	c := datapath.SessionConfig{
		TunnelID: a.TunnelID, ID: a.SessionID, PeerID: a.PeerSessionID,
		Name: a.Name, L2Spec: encap.L2SpecDefault, LNSMode: a.LNSMode, MTU: a.MTU,
		ReorderTimeout: time.Duration(a.ReorderTimeout) * time.Millisecond,
	}
	var err error
	if c.Cookie, err = encap.ParseCookie(a.Cookie); err != nil {
		return c, &datapath.FieldError{Field: "cookie", Value: a.Cookie, Reason: "want 8 or 16 hex digits"}
	}
	if c.PeerCookie, err = encap.ParseCookie(a.PeerCookie); err != nil {
		return c, &datapath.FieldError{Field: "peer_cookie", Value: a.PeerCookie, Reason: "want 8 or 16 hex digits"}
	}
	if a.L2SpecType != "" {
		if c.L2Spec, err = encap.ParseL2Spec(a.L2SpecType); err != nil {
			return c, &datapath.FieldError{Field: "l2spec_type", Value: a.L2SpecType, Reason: "want none or default"}
		}
	}
	if c.SendSeq, c.RecvSeq, err = ParseSeq(a.Seq); err != nil {
		return c, err
	}
	if a.ReorderTimeout > uint64(time.Hour/time.Millisecond) {
		return c, &datapath.FieldError{Field: "reorder_timeout", Value: a.ReorderTimeout, Reason: "longer than an hour"}
	}
	return c, c.Check()
}

// ParseSeq reads iproute2's seq word.
func ParseSeq(s string) (send, recv bool, err error) {
	switch s {
	case "", "none":
		return false, false, nil
	case "send":
		return true, false, nil
	case "recv":
		return false, true, nil
	case "both":
		return true, true, nil
	}
	return false, false, &datapath.FieldError{Field: "seq", Value: s, Reason: "want none, send, recv or both"}
}

// TunnelInfoOf describes t.
func TunnelInfoOf(t *datapath.Tunnel, sessions int, stats bool) TunnelInfo {
	c := t.Config()
	ti := TunnelInfo{
		TunnelID: c.ID, PeerTunnelID: c.PeerID, Encap: map[encap.Encap]string{encap.EncapUDP: "UDP", encap.EncapIP: "IP"}[c.Encap],
		Local: "any", Peer: c.Remote.String(), Sessions: sessions,
	}
	if c.Local.IsValid() {
		ti.Local = c.Local.String()
	}
	if c.Encap == encap.EncapUDP {
		ti.LocalPort, ti.PeerPort = c.UDPSport, c.UDPDport
		if c.Remote.Is4() {
			ti.Checksum = &c.UDPCsum
		} else {
			ti.ChecksumTx, ti.ChecksumRx = &c.UDP6CsumTx, &c.UDP6CsumRx
		}
	}
	if stats {
		st := t.Stats()
		ti.Stats = &st
	}
	return ti
}

// SessionInfoOf describes s.
func SessionInfoOf(s *datapath.Session, peerTunnelID uint32, stats bool) SessionInfo {
	c := s.Config()
	si := SessionInfo{
		SessionID: c.ID, TunnelID: c.TunnelID, PeerSessionID: c.PeerID, PeerTunnelID: peerTunnelID,
		Interface: s.IfName(), Cookie: c.Cookie.String(), PeerCookie: c.PeerCookie.String(),
		L2SpecType: c.L2Spec.String(), SendSeq: c.SendSeq, RecvSeq: c.RecvSeq, LNSMode: c.LNSMode,
		ReorderTimeout: uint64(c.ReorderTimeout / time.Millisecond), MTU: s.MTU(),
		State: "up",
	}
	h := s.Health()
	if !h.Up {
		si.State = "down"
	}
	si.PumpRestarts, si.LastError = h.Restarts, h.LastError
	if stats {
		st := s.Stats()
		si.Stats = &st
	}
	return si
}

// Marshal encodes v as one line.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append(b, '\n'), nil
}
