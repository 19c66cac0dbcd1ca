package apiserver

import (
	"context"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/control/engine"
	"github.com/ul2tp/ul2tp/datapath"
)

// StopWait bounds the wait of "del tunnel" on an L2TPv2 tunnel for the
// peer's ack of our StopCCN.
const StopWait = 5 * time.Second

// v2Tunnel reports whether id is an L2TPv2 tunnel of the engine.
func (h *Handler) v2Tunnel(id uint32) bool {
	return h.L2TPv2 != nil && h.L2TPv2.Owns(id)
}

// delTunnelV2 ends an L2TPv2 tunnel with a StopCCN, waiting for the ack.
func (h *Handler) delTunnelV2(id uint32) api.Response {
	ctx, cancel := context.WithTimeout(context.Background(), StopWait)
	defer cancel()
	if err := h.L2TPv2.CloseTunnel(ctx, id); err != nil {
		return ErrorResponse(err)
	}
	return api.Response{}
}

// addSessionV2 opens a call on an L2TPv2 tunnel (an ICRQ); the ids are
// the control protocol's, so the request may name none. The response
// lists the call with the session id it got.
func (h *Handler) addSessionV2(a *api.SessionArgs) api.Response {
	if a.SessionID != 0 || a.PeerSessionID != 0 {
		return invalid("session_id", "assigned by the L2TPv2 control protocol: give only tunnel_id (and name)")
	}
	id, err := h.L2TPv2.OpenCall(a.TunnelID, a.Name)
	if err != nil {
		return ErrorResponse(err)
	}
	return api.Response{Sessions: []api.SessionInfo{{TunnelID: a.TunnelID, SessionID: id, Version: 2}}}
}

// delSessionV2 ends an L2TPv2 call with a CDN.
func (h *Handler) delSessionV2(tid, sid uint32) api.Response {
	if err := h.L2TPv2.CloseCall(tid, sid); err != nil {
		return ErrorResponse(err)
	}
	return api.Response{}
}

// tunnelsV2 describes the engine's tunnels (id 0: all).
func (h *Handler) tunnelsV2(id uint32, stats, details bool) []api.TunnelInfo {
	if h.L2TPv2 == nil {
		return nil
	}
	var out []api.TunnelInfo
	for _, s := range h.L2TPv2.Status() {
		if id != 0 && s.ID != id {
			continue
		}
		var ti api.TunnelInfo
		if t := h.Plane.Tunnel(s.ID); isV2(t) {
			ti = TunnelInfo(t, len(s.Calls), stats)
			if details {
				ti.Details = TunnelDetails(t)
			}
		} else {
			ti = api.TunnelInfo{TunnelID: s.ID, PeerTunnelID: s.PeerID, Encap: "UDP", Sessions: len(s.Calls),
				Local: s.Local.Addr().String(), LocalPort: s.Local.Port(), Peer: s.Peer.Addr().String(), PeerPort: s.Peer.Port()}
			if details {
				ti.Details = &api.TunnelDetails{Version: 2, LocalAddress: s.Local.String(), PeerAddress: s.Peer.String()}
			}
		}
		ti.Version = 2
		ti.Control = TunnelControl(s)
		out = append(out, ti)
	}
	return out
}

// TunnelControl describes an L2TPv2 control connection.
func TunnelControl(s engine.TunnelStatus) *api.TunnelControl {
	c := s.Control
	tc := &api.TunnelControl{
		Role: s.Role, State: c.State.String(), Name: s.Name,
		PeerHostName: c.Info.HostName, PeerVendor: c.Info.VendorName,
		Ns: c.Transport.Ns, Nr: c.Transport.Nr, Window: c.Info.Window,
		Retransmits: c.Delivery.Retransmits, HelloSent: c.Stats.HellosSent, HelloReceived: c.Stats.HellosReceived,
		LastResultCode: c.LastResult.Code,
	}
	if c.LastResult.Code != 0 {
		tc.LastResult = c.LastResult.String()
		tc.LastBy = c.LastBy.String()
	}
	return tc
}

// sessionsV2 describes the engine's calls (tid, sid 0: all).
func (h *Handler) sessionsV2(tid, sid uint32, stats bool) []api.SessionInfo {
	if h.L2TPv2 == nil {
		return nil
	}
	var out []api.SessionInfo
	for _, t := range h.L2TPv2.Status() {
		if tid != 0 && t.ID != tid {
			continue
		}
		for _, c := range t.Calls {
			if sid != 0 && c.LocalID != sid {
				continue
			}
			var si api.SessionInfo
			if s := h.session(t.ID, c.LocalID); s != nil {
				si = SessionInfo(s, t.PeerID, stats)
			} else {
				si = api.SessionInfo{SessionID: c.LocalID, TunnelID: t.ID, PeerSessionID: c.PeerID,
					PeerTunnelID: t.PeerID, L2SpecType: "none", State: "down"}
			}
			si.Version = 2
			si.Call = &api.CallInfo{State: c.State.String(), Kind: c.Kind.String(), Serial: c.Serial, PPP: "none", Name: c.Name}
			if p := c.PPP; p != nil {
				ci := si.Call
				ci.PPP, ci.PPPUser, ci.PPPInterface, ci.PPPFailure, ci.PPPDropped = p.Phase, p.User, p.Interface, p.Failure, p.Dropped
				if p.Local.IsValid() {
					ci.PPPLocal, ci.PPPPeer = p.Local.String(), p.Peer.String()
				}
				if p.Local6.IsValid() {
					ci.PPPLocal6, ci.PPPPeer6 = p.Local6.String(), p.Peer6.String()
				}
				ci.PPPEchoMissed = p.EchoMissed
				si.Interface = p.Interface
			}
			history(si.Call, c)
			out = append(out, si)
		}
		if sid != 0 {
			continue
		}
		for _, c := range t.Waiting {
			si := api.SessionInfo{TunnelID: t.ID, PeerTunnelID: t.PeerID, L2SpecType: "none", State: "down", Version: 2,
				Call: &api.CallInfo{State: "waiting", Kind: "incoming", PPP: "none", Name: c.Name}}
			if c.PPP != nil {
				si.Call.PPP = c.PPP.Phase
			}
			history(si.Call, c)
			if w := c.Wait; w != nil && !w.RedialAt.IsZero() {
				si.Call.RedialIn = max(time.Until(w.RedialAt).Milliseconds(), 1)
			}
			out = append(out, si)
		}
	}
	return out
}

// history adds what the engine keeps of a LAC call's past placements.
func history(ci *api.CallInfo, c engine.CallStatus) {
	ci.LastFailure, ci.Failures = c.History.LastFailure, c.History.Failures
}

// session finds a datapath session.
func (h *Handler) session(tid, sid uint32) *datapath.Session {
	for _, s := range h.Plane.Sessions(tid) {
		if s.Config().ID == sid {
			return s
		}
	}
	return nil
}

// isV2 reports whether a datapath tunnel is L2TPv2 (shown from the
// engine's side, with its control connection).
func isV2(t *datapath.Tunnel) bool { return t != nil && t.Version() == 2 }
