package apiserver

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/encap"
	"github.com/ul2tp/ul2tp/reorder"
)

// TunnelConfig turns add_tunnel's arguments into a datapath configuration,
// checking each.
func TunnelConfig(a *api.TunnelArgs) (datapath.TunnelConfig, error) {
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

// SessionConfig turns add_session's arguments into a datapath
// configuration, checking each.
func SessionConfig(a *api.SessionArgs) (datapath.SessionConfig, error) {
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
	if c.SendSeq, c.RecvSeq, err = parseSeq(a.Seq); err != nil {
		return c, err
	}
	if a.ReorderTimeout > uint64(time.Hour/time.Millisecond) {
		return c, &datapath.FieldError{Field: "reorder_timeout", Value: a.ReorderTimeout, Reason: "longer than an hour"}
	}
	if c.Address, err = parseMAC(a.Address); err != nil {
		return c, err
	}
	return c, c.Check()
}

// parseMAC reads a session's address word: nil for "", else a valid
// unicast Ethernet address.
func parseMAC(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, &datapath.FieldError{Field: "address", Value: s, Reason: "want an Ethernet address, as 02:00:00:00:00:01"}
	}
	return mac, datapath.CheckAddress(mac)
}

// parseSeq reads iproute2's seq word, as a FieldError if bad.
func parseSeq(s string) (send, recv bool, err error) {
	if send, recv, err = api.ParseSeq(s); err != nil {
		return false, false, &datapath.FieldError{Field: "seq", Value: s, Reason: "want none, send, recv or both"}
	}
	return send, recv, nil
}

// SessionModify turns set_session's arguments into a datapath change.
func SessionModify(a *api.SetSessionArgs) (datapath.SessionModify, error) {
	var m datapath.SessionModify
	if a.TunnelID == 0 {
		return m, &datapath.FieldError{Field: "tunnel_id", Value: a.TunnelID, Reason: "must be 1..4294967295"}
	}
	if a.SessionID == 0 {
		return m, &datapath.FieldError{Field: "session_id", Value: a.SessionID, Reason: "must be 1..4294967295"}
	}
	if a.Seq != "" {
		send, recv, err := parseSeq(a.Seq)
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

// ErrorResponse classifies err.
func ErrorResponse(err error) api.Response {
	code := api.CodeFailed
	var fe *datapath.FieldError
	switch {
	case errors.Is(err, datapath.ErrExists):
		code = api.CodeExists
	case errors.Is(err, datapath.ErrNotFound):
		code = api.CodeNotFound
	case errors.As(err, &fe):
		code = api.CodeInvalid
	}
	return api.Response{Error: err.Error(), Code: code}
}

// TunnelInfo describes t.
func TunnelInfo(t *datapath.Tunnel, sessions int, stats bool) api.TunnelInfo {
	c := t.Config()
	ti := api.TunnelInfo{
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
		st := statsOf(t.Stats())
		ti.Stats = &st
		ss := t.SocketStats()
		ti.Socket = &api.SocketStats{Local: ss.Local.String(), Unmatched: ss.Unmatched, RxErrors: ss.RxErrors,
			ControlPackets: ss.ControlPackets, ControlQueueDrops: ss.ControlQueueDrops}
	}
	return ti
}

// SessionInfo describes s.
func SessionInfo(s *datapath.Session, peerTunnelID uint32, stats bool) api.SessionInfo {
	c := s.Config()
	si := api.SessionInfo{
		SessionID: c.ID, TunnelID: c.TunnelID, PeerSessionID: c.PeerID, PeerTunnelID: peerTunnelID,
		Interface: s.IfName(), Cookie: c.Cookie.String(), PeerCookie: c.PeerCookie.String(),
		L2SpecType: c.L2Spec.String(), SendSeq: c.SendSeq, RecvSeq: c.RecvSeq, LNSMode: c.LNSMode,
		ReorderTimeout: uint64(c.ReorderTimeout / time.Millisecond), MTU: s.MTU(),
		Address: c.Address.String(), State: "up",
	}
	h := s.Health()
	if !h.Up {
		si.State = "down"
	}
	si.PumpRestarts, si.LastError = h.Restarts, h.LastError
	if stats {
		st := statsOf(s.Stats())
		si.Stats = &st
	}
	return si
}

// TunnelDetails is t's dump (show_tunnel with details).
func TunnelDetails(t *datapath.Tunnel) *api.TunnelDetails {
	return &api.TunnelDetails{
		Version:      3,
		LocalAddress: addrPortString(t.Config().Encap, t.SocketStats().Local),
		PeerAddress:  addrPortString(t.Config().Encap, t.PeerAddr()),
	}
}

// addrPortString is ap as address:port over UDP, the address alone over
// IP (which has no ports).
func addrPortString(e encap.Encap, ap netip.AddrPort) string {
	if e == encap.EncapIP {
		return ap.Addr().String()
	}
	return ap.String()
}

// SessionDetails is s's dump (show_session with details).
func SessionDetails(s *datapath.Session) *api.SessionDetails {
	return sessionDetails(s.Config(), s.SeqState())
}

func sessionDetails(c datapath.SessionConfig, st reorder.State) *api.SessionDetails {
	return &api.SessionDetails{
		SendSeq: c.SendSeq, RecvSeq: c.RecvSeq, LNSMode: c.LNSMode,
		ReorderTimeout: uint64(c.ReorderTimeout / time.Millisecond),
		Ns:             st.Ns, Nr: st.Nr, NrValid: st.NrValid,
		ReorderQueueLength: st.QueueDepth,
	}
}

// statsOf is st as the API sends it.
func statsOf(st datapath.Stats) api.Stats {
	return api.Stats{
		TxPackets:         st.TxPackets,
		TxBytes:           st.TxBytes,
		TxErrors:          st.TxErrors,
		RxPackets:         st.RxPackets,
		RxBytes:           st.RxBytes,
		RxErrors:          st.RxErrors,
		RxSeqDiscards:     st.RxSeqDiscards,
		RxOOSPackets:      st.RxOOSPackets,
		RxCookieDiscards:  st.RxCookieDiscards,
		RxInvalid:         st.RxInvalid,
		ReorderQueueDepth: st.ReorderQueueDepth,

		TxTSOFrames:         st.TxTSOFrames,
		TxTSOSegments:       st.TxTSOSegments,
		TxGSOSends:          st.TxGSOSends,
		TxGSODatagrams:      st.TxGSODatagrams,
		RxGRODatagrams:      st.RxGRODatagrams,
		RxCoalescedFrames:   st.RxCoalescedFrames,
		RxCoalescedSegments: st.RxCoalescedSegments,
	}
}
