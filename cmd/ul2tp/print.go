package main

import (
	"fmt"
	"io"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

func enabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// printTunnel writes a tunnel as "ip l2tp show tunnel" does.
func printTunnel(w io.Writer, t api.TunnelInfo) {
	fmt.Fprintf(w, "Tunnel %d, encap %s\n", t.TunnelID, t.Encap)
	fmt.Fprintf(w, "  From %s to %s\n", t.Local, t.Peer)
	fmt.Fprintf(w, "  Peer tunnel %d\n", t.PeerTunnelID)
	if t.Encap == "UDP" {
		fmt.Fprintf(w, "  UDP source / dest ports: %d/%d\n", t.LocalPort, t.PeerPort)
		if t.Checksum != nil {
			fmt.Fprintf(w, "  UDP checksum: %s\n", enabled(*t.Checksum))
		} else if t.ChecksumTx != nil && t.ChecksumRx != nil {
			fmt.Fprintf(w, "  UDP checksum: %s (tx), %s (rx)\n", enabled(*t.ChecksumTx), enabled(*t.ChecksumRx))
		}
	}
	if t.Stats != nil {
		printStats(w, t.Stats)
	}
	if t.Socket != nil {
		fmt.Fprintf(w, "  socket %s: unmatched %d receive_errors %d\n", t.Socket.Local, t.Socket.Unmatched, t.Socket.RxErrors)
	}
	if d := t.Details; d != nil {
		fmt.Fprintf(w, "  L2TPv%d from %s to %s, %d sessions\n", d.Version, d.LocalAddress, d.PeerAddress, t.Sessions)
	}
	if c := t.Control; c != nil {
		printControl(w, t, c)
	}
}

// printControl writes an L2TPv2 tunnel's control connection.
func printControl(w io.Writer, t api.TunnelInfo, c *api.TunnelControl) {
	fmt.Fprintf(w, "  L2TPv2 %s to %s:%d host %s: %s\n", c.Role, t.Peer, t.PeerPort, c.PeerHostName, c.State)
	if c.Name != "" {
		fmt.Fprintf(w, "  name %s\n", c.Name)
	}
	if c.LastResultCode != 0 {
		fmt.Fprintf(w, "  last teardown by %s: %s\n", c.LastBy, c.LastResult)
	}
	if t.Details != nil {
		fmt.Fprintf(w, "  Ns %d Nr %d window %d retransmits %d hello sent %d received %d\n",
			c.Ns, c.Nr, c.Window, c.Retransmits, c.HelloSent, c.HelloReceived)
	}
}

// printSession writes a session as "ip l2tp show session" does.
func printSession(w io.Writer, s api.SessionInfo) {
	fmt.Fprintf(w, "Session %d in tunnel %d\n", s.SessionID, s.TunnelID)
	fmt.Fprintf(w, "  Peer session %d, tunnel %d\n", s.PeerSessionID, s.PeerTunnelID)
	fmt.Fprintf(w, "  interface name: %s\n", s.Interface)
	if s.Address != "" {
		fmt.Fprintf(w, "  address %s\n", s.Address)
	}
	fmt.Fprintf(w, "  offset 0, peer offset 0\n")
	if s.Cookie != "" || s.PeerCookie != "" {
		if s.Cookie != "" {
			fmt.Fprintf(w, "  cookie %s", s.Cookie)
		}
		if s.PeerCookie != "" {
			fmt.Fprintf(w, "  peer cookie %s", s.PeerCookie)
		}
		fmt.Fprintln(w)
	}
	if s.ReorderTimeout != 0 {
		fmt.Fprintf(w, "  reorder timeout: %d\n", s.ReorderTimeout)
	}
	if s.LNSMode {
		fmt.Fprintln(w, "  lns mode")
	}
	if s.SendSeq || s.RecvSeq {
		fmt.Fprint(w, "  sequence numbering:")
		if s.SendSeq {
			fmt.Fprint(w, " send")
		}
		if s.RecvSeq {
			fmt.Fprint(w, " recv")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  l2spec_type %s, mtu %d\n", s.L2SpecType, s.MTU)
	if s.State == "down" || s.PumpRestarts > 0 {
		fmt.Fprintf(w, "  state %s, TAP recreated %d times", s.State, s.PumpRestarts)
		if s.LastError != "" {
			fmt.Fprintf(w, ", last error: %s", s.LastError)
		}
		fmt.Fprintln(w)
	}
	if s.Stats != nil {
		printStats(w, s.Stats)
	}
	if s.Details != nil {
		printSessionDetails(w, s.Details)
	}
	if c := s.Call; c != nil {
		fmt.Fprintf(w, "  call %s %s ppp %s\n", c.Kind, c.State, c.PPP)
		if c.PPPInterface != "" {
			fmt.Fprintf(w, "  ppp interface %s user %q local %s peer %s\n", c.PPPInterface, c.PPPUser, orDash(c.PPPLocal), orDash(c.PPPPeer))
		}
		if c.PPPLocal6 != "" {
			fmt.Fprintf(w, "  ppp inet6 local %s peer %s\n", c.PPPLocal6, c.PPPPeer6)
		}
		if c.PPPEchoMissed != 0 {
			fmt.Fprintf(w, "  ppp lcp echo missed %d\n", c.PPPEchoMissed)
		}
		if c.LastFailure != "" {
			fmt.Fprintf(w, "  last failure (%d since up): %s\n", c.Failures, c.LastFailure)
		}
		if c.RedialIn > 0 {
			fmt.Fprintf(w, "  redial in %v\n", time.Duration(c.RedialIn)*time.Millisecond)
		}
		if c.PPPFailure != "" {
			fmt.Fprintf(w, "  ppp failure: %s\n", c.PPPFailure)
		}
		if c.PPPDropped != 0 {
			fmt.Fprintf(w, "  ppp control frames dropped %d\n", c.PPPDropped)
		}
	}
}

// printSessionDetails writes a session's sequencing state, as the
// kernel's debugfs dump has it: the options, then nr/ns.
func printSessionDetails(w io.Writer, d *api.SessionDetails) {
	fmt.Fprintf(w, "  seq: send_seq %s recv_seq %s lns_mode %s reorder_timeout %d\n",
		onOff(d.SendSeq), onOff(d.RecvSeq), onOff(d.LNSMode), d.ReorderTimeout)
	nr := "-"
	if d.NrValid {
		nr = fmt.Sprint(d.Nr)
	}
	fmt.Fprintf(w, "  nr %s ns %d reorder_queue %d\n", nr, d.Ns, d.ReorderQueueLength)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func printStats(w io.Writer, st *api.Stats) {
	fmt.Fprintf(w, "  RX: packets %d bytes %d errors %d seq_discards %d oos_packets %d cookie_discards %d invalid %d\n",
		st.RxPackets, st.RxBytes, st.RxErrors, st.RxSeqDiscards, st.RxOOSPackets, st.RxCookieDiscards, st.RxInvalid)
	fmt.Fprintf(w, "  TX: packets %d bytes %d errors %d\n", st.TxPackets, st.TxBytes, st.TxErrors)
	if o := st; o.TxTSOFrames+o.TxGSOSends+o.RxGRODatagrams+o.RxCoalescedFrames != 0 {
		fmt.Fprintf(w, "  offload: tso_frames %d tso_segments %d gso_sends %d gso_datagrams %d gro_datagrams %d coalesced_frames %d coalesced_segments %d\n",
			o.TxTSOFrames, o.TxTSOSegments, o.TxGSOSends, o.TxGSODatagrams, o.RxGRODatagrams, o.RxCoalescedFrames, o.RxCoalescedSegments)
	}
	if st.ReorderQueueDepth > 0 {
		fmt.Fprintf(w, "  reorder queue: %d\n", st.ReorderQueueDepth)
	}
}

// printReload writes a reload's summary line, then one line per item
// changed and per step that failed.
func printReload(w io.Writer, r *api.ReloadResult) {
	fmt.Fprintf(w, "reload: %d added, %d removed, %d rebuilt, %d modified, %d unchanged",
		len(r.Added), len(r.Removed), len(r.Rebuilt), len(r.Modified), r.Unchanged)
	if len(r.Failed) > 0 {
		fmt.Fprintf(w, ", %d failed", len(r.Failed))
	}
	fmt.Fprintln(w)
	for _, l := range []struct {
		what  string
		items []api.ReloadItem
	}{{"added", r.Added}, {"removed", r.Removed}, {"rebuilt", r.Rebuilt}, {"modified", r.Modified}} {
		for _, it := range l.items {
			fmt.Fprintf(w, "  %s %s\n", l.what, it)
		}
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "  failed %s\n", f)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
