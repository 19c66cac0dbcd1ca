// Package api is the protocol between ul2tpd and its clients: one JSON
// request per line on a Unix stream socket, answered by one JSON response
// per line. docs/api.md describes it for programs other than ul2tp.
//
// Field names follow iproute2's "ip l2tp" words and its JSON output, so a
// script written for the kernel reads ours unchanged.
package api

import (
	"encoding/json"
	"fmt"
	"time"
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
	// OpMonitor turns the connection into a stream of events: after its
	// response, one Event per line until either side closes it.
	OpMonitor = "monitor"
	// OpReload rereads the daemon's --config file (docs/operations.md).
	OpReload = "reload"
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
	// Details asks show_tunnel and show_session for the dump: socket
	// addresses and sequencing state (TunnelDetails, SessionDetails).
	Details bool `json:"details,omitempty"`
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
// (reorder_timeout, lns_mode, mtu, address).
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
	// Address is the TAP's Ethernet address (iproute2's "ip link set
	// address" word), as 02:00:00:00:00:01; empty derives a stable one
	// from the ids and the peer (docs/config.md).
	Address string `json:"address,omitempty"`
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

// Response answers a Request.
type Response struct {
	// Error is empty on success. Code classifies it: "exists",
	// "not found" or "invalid" (a bad field), else "failed".
	Error    string        `json:"error,omitempty"`
	Code     string        `json:"code,omitempty"`
	Tunnels  []TunnelInfo  `json:"tunnels,omitempty"`
	Sessions []SessionInfo `json:"sessions,omitempty"`
	// Reload says what a reload did; with Error set, what it did before
	// and despite the error.
	Reload *ReloadResult `json:"reload,omitempty"`
}

// ReloadResult is what a reload changed, each list in the order done.
type ReloadResult struct {
	// Added were created; Removed deleted; Rebuilt deleted and created
	// again (a change other than sequencing, or their tunnel changed);
	// Modified changed in place (seq, reorder_timeout, lns_mode), keeping
	// their TAP.
	Added    []ReloadItem `json:"added"`
	Removed  []ReloadItem `json:"removed"`
	Rebuilt  []ReloadItem `json:"rebuilt"`
	Modified []ReloadItem `json:"modified"`
	// Unchanged counts the file's tunnels and sessions left as they were.
	Unchanged int `json:"unchanged"`
	// Failed are the steps that failed, each naming its item; the reload
	// went on with the others.
	Failed []string `json:"failed,omitempty"`
}

// ReloadItem names a tunnel (Session empty) or session of the file.
type ReloadItem struct {
	Tunnel    string `json:"tunnel"`
	Session   string `json:"session,omitempty"`
	TunnelID  uint32 `json:"tunnel_id"`
	SessionID uint32 `json:"session_id,omitempty"`
}

// String is "tunnel NAME (ID)" or "session TUNNEL/NAME (TID/SID)".
func (i ReloadItem) String() string {
	if i.Session == "" {
		return fmt.Sprintf("tunnel %s (%d)", i.Tunnel, i.TunnelID)
	}
	return fmt.Sprintf("session %s/%s (%d/%d)", i.Tunnel, i.Session, i.TunnelID, i.SessionID)
}

// Error codes.
const (
	CodeExists   = "exists"
	CodeNotFound = "not found"
	CodeInvalid  = "invalid"
	CodeFailed   = "failed"
)

// TunnelInfo describes a tunnel with iproute2's JSON keys.
type TunnelInfo struct {
	TunnelID     uint32 `json:"tunnel_id"`
	Encap        string `json:"encap"`
	Local        string `json:"local"`
	Peer         string `json:"peer"`
	PeerTunnelID uint32 `json:"peer_tunnel"`
	LocalPort    uint16 `json:"local_port,omitempty"`
	PeerPort     uint16 `json:"peer_port,omitempty"`
	Checksum     *bool  `json:"checksum,omitempty"`
	ChecksumTx   *bool  `json:"checksum_tx,omitempty"`
	ChecksumRx   *bool  `json:"checksum_rx,omitempty"`
	Sessions     int    `json:"sessions"`
	Stats        *Stats `json:"stats,omitempty"`
	// Socket has the counters of the tunnel's socket (shared with the
	// tunnels on the same local address and port), with Stats.
	Socket *SocketStats `json:"socket,omitempty"`
	// Details is the dump, with Request.Details.
	Details *TunnelDetails `json:"details,omitempty"`
	// Version is 2 for an L2TPv2 tunnel (absent: L2TPv3), whose control
	// connection Control describes.
	Version int            `json:"version,omitempty"`
	Control *TunnelControl `json:"control,omitempty"`
}

// TunnelControl is the control connection of an L2TPv2 tunnel.
type TunnelControl struct {
	Role           string `json:"role"`  // lac or lns
	State          string `json:"state"` // idle, wait-ctl-reply, wait-ctl-conn, established, closing, closed
	Name           string `json:"name,omitempty"`
	PeerHostName   string `json:"peer_host_name"`
	PeerVendor     string `json:"peer_vendor"`
	Ns             uint16 `json:"ns"`
	Nr             uint16 `json:"nr"`
	Window         uint16 `json:"window"` // the peer's receive window
	Retransmits    uint64 `json:"retransmits"`
	HelloSent      uint64 `json:"hello_sent"`
	HelloReceived  uint64 `json:"hello_received"`
	LastResult     string `json:"last_result"`
	LastResultCode uint16 `json:"last_result_code"`
	LastBy         string `json:"last_by,omitempty"`
}

// TunnelDetails is what the kernel's /sys/kernel/debug/l2tp/tunnels shows
// of a tunnel beyond "ip l2tp show tunnel".
type TunnelDetails struct {
	// Version is the L2TP version: 3.
	Version int `json:"version"`
	// LocalAddress is the tunnel socket's address, as bound (with the
	// port the kernel chose when udp_sport is 0); PeerAddress is where
	// the tunnel sends. Both are address:port over UDP, address over IP.
	LocalAddress string `json:"local_address"`
	PeerAddress  string `json:"peer_address"`
}

// SocketStats are a tunnel socket's counters: datagrams from no
// configured peer, and receive calls that failed.
type SocketStats struct {
	Local     string `json:"local"`
	Unmatched uint64 `json:"unmatched"`
	RxErrors  uint64 `json:"rx_errors"`
	// Control messages handed to the control plane, and dropped because
	// its queue was full (sockets with a control Listener only).
	ControlPackets    uint64 `json:"control_packets,omitempty"`
	ControlQueueDrops uint64 `json:"control_queue_drops,omitempty"`
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
	// Address is the TAP's Ethernet address, as "ip -j link" shows it.
	Address string `json:"address"`
	// State is "up", or "down" while the daemon recreates a TAP device
	// whose pump failed (deleted under it); PumpRestarts counts the TAPs
	// recreated and LastError says why the last one failed.
	State        string `json:"state"`
	PumpRestarts uint64 `json:"pump_restarts,omitempty"`
	LastError    string `json:"last_error,omitempty"`
	Stats        *Stats `json:"stats,omitempty"`
	// Details is the dump, with Request.Details.
	Details *SessionDetails `json:"details,omitempty"`
	// Version is 2 for a call of an L2TPv2 tunnel (absent: L2TPv3),
	// which Call describes.
	Version int       `json:"version,omitempty"`
	Call    *CallInfo `json:"call,omitempty"`
}

// CallInfo is an L2TPv2 call.
type CallInfo struct {
	State  string `json:"state"` // wait-reply, wait-connect, established
	Kind   string `json:"kind"`  // incoming or outgoing
	Serial uint32 `json:"serial"`
	// PPP is "none" for a call without PPP, else the PPP link's phase:
	// dead, establish, authenticate, network, open, terminate.
	PPP  string `json:"ppp"`
	Name string `json:"name,omitempty"`
	// The PPP link of a call with PPP: the user authenticated, the IPv4
	// addresses IPCP agreed (ours, the peer's), the TUN device and the
	// link's last failure.
	PPPUser      string `json:"ppp_user,omitempty"`
	PPPLocal     string `json:"ppp_local,omitempty"`
	PPPPeer      string `json:"ppp_peer,omitempty"`
	PPPInterface string `json:"ppp_interface,omitempty"`
	PPPFailure   string `json:"ppp_failure,omitempty"`
	PPPDropped   uint64 `json:"ppp_dropped,omitempty"` // control frames dropped, queue full
	// The IPv6 link-local addresses IPv6CP agreed (ours, the peer's), and
	// the LCP Echo-Requests that went unanswered.
	PPPLocal6     string `json:"ppp_local6,omitempty"`
	PPPPeer6      string `json:"ppp_peer6,omitempty"`
	PPPEchoMissed uint64 `json:"ppp_echo_missed,omitempty"`
	// A LAC's configured call, across its placements: why the last one
	// ended (kept after the call is gone) and how many have ended since
	// one stayed up. A call with no placement now is listed with session
	// id 0 and State "waiting"; RedialIn is the milliseconds until it is
	// placed again (absent: when its tunnel is up again, or never after
	// "del session").
	LastFailure string `json:"last_failure,omitempty"`
	Failures    int    `json:"failures,omitempty"`
	RedialIn    int64  `json:"redial_in,omitempty"`
}

// SessionDetails is what the kernel's /sys/kernel/debug/l2tp/tunnels
// shows of a session beyond "ip l2tp show session": its sequencing state.
type SessionDetails struct {
	// SendSeq, RecvSeq and LNSMode are the sequencing options as they are
	// now (a LAC's send_seq follows its peer); ReorderTimeout is in
	// milliseconds.
	SendSeq        bool   `json:"send_seq"`
	RecvSeq        bool   `json:"recv_seq"`
	LNSMode        bool   `json:"lns_mode"`
	ReorderTimeout uint64 `json:"reorder_timeout"`
	// Ns is the Ns of the next packet sent, Nr the Ns expected next;
	// NrValid is false until a sequenced packet has set Nr.
	Ns      uint32 `json:"ns"`
	Nr      uint32 `json:"nr"`
	NrValid bool   `json:"nr_valid"`
	// ReorderQueueLength is how many frames wait in the reorder queue.
	ReorderQueueLength int `json:"reorder_queue_length"`
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
	return false, false, fmt.Errorf("invalid seq %q: want none, send, recv or both", s)
}

// Stats are the counters of a tunnel or session, named and meant as the
// kernel's L2TP_ATTR_STATS (iproute2's JSON keys). Byte counts are of the
// tunnelled frames, without the L2TP header, as the kernel counts them.
type Stats struct {
	TxPackets        uint64 `json:"tx_packets"`
	TxBytes          uint64 `json:"tx_bytes"`
	TxErrors         uint64 `json:"tx_errors"`
	RxPackets        uint64 `json:"rx_packets"`
	RxBytes          uint64 `json:"rx_bytes"`
	RxErrors         uint64 `json:"rx_errors"`
	RxSeqDiscards    uint64 `json:"rx_seq_discards"`
	RxOOSPackets     uint64 `json:"rx_oos_packets"`
	RxCookieDiscards uint64 `json:"rx_cookie_discards"`
	RxInvalid        uint64 `json:"rx_invalid"`
	// ReorderQueueDepth is how many frames wait in the reorder queue now
	// (sessions only; not a kernel counter).
	ReorderQueueDepth int `json:"reorder_queue_depth,omitempty"`
	// Which offload paths a session's frames took (ours, not the
	// kernel's), present when not zero: docs/api.md.
	TxTSOFrames         uint64 `json:"tx_tso_frames,omitempty"`
	TxTSOSegments       uint64 `json:"tx_tso_segments,omitempty"`
	TxGSOSends          uint64 `json:"tx_gso_sends,omitempty"`
	TxGSODatagrams      uint64 `json:"tx_gso_datagrams,omitempty"`
	RxGRODatagrams      uint64 `json:"rx_gro_datagrams,omitempty"`
	RxCoalescedFrames   uint64 `json:"rx_coalesced_frames,omitempty"`
	RxCoalescedSegments uint64 `json:"rx_coalesced_segments,omitempty"`
}

// Event is one line of a monitor stream: something that happened in the
// datapath (docs/api.md lists the events and reasons).
type Event struct {
	Time time.Time `json:"time"`
	// Event is tunnel_added, tunnel_deleted, session_added,
	// session_modified, session_deleted, session_down, session_up, drop,
	// seq, or lost (events dropped because this client read too slowly);
	// for L2TPv2, tunnel-up, tunnel-down, call-up, call-down and
	// retransmit; for PPP on a call, ppp-phase, ppp-auth-failed and
	// ppp-down.
	Event     string `json:"event"`
	TunnelID  uint32 `json:"tunnel_id,omitempty"`
	SessionID uint32 `json:"session_id,omitempty"`
	Interface string `json:"interface,omitempty"`
	// Reason qualifies drop and seq events, and says why for
	// ppp-auth-failed and ppp-down.
	Reason string `json:"reason,omitempty"`
	// Count is, for drop and seq, how many times it happened since the
	// previous event of the same session (or socket) and reason; for
	// lost, the events lost.
	Count  uint64 `json:"count,omitempty"`
	Detail string `json:"detail,omitempty"`
	// PPP events: the link's phase (the new one for ppp-phase) and the
	// one before (ppp-phase), the user authenticated or refused, and for
	// ppp-auth-failed the method (pap, chap, mschap-v2) and our role in
	// it (authenticator or peer).
	Phase     string `json:"phase,omitempty"`
	FromPhase string `json:"from_phase,omitempty"`
	User      string `json:"user,omitempty"`
	Method    string `json:"method,omitempty"`
	Role      string `json:"role,omitempty"`
}

// Marshal encodes v as one line.
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append(b, '\n'), nil
}
