package main

import (
	"fmt"
	"net/netip"
	"testing"
)

// TestE2EOffloadPaths moves a TCP transfer, checked by SHA-256 at the far
// end, through each of the datapath's paths: TSO segmentation with UDP GSO
// and GRO coalescing (UDP with checksums), TSO segmentation sent with
// sendmmsg (IPv4 UDP with checksums off, where the kernel refuses GSO; and
// IP encapsulation), and the fallback with every offload off (--no-offload),
// also against an end that has them; then a burst of small UDP datagrams,
// each checked.
func TestE2EOffloadPaths(t *testing.T) {
	for _, c := range []struct {
		name          string
		encap, family string
		tunnelWords   []string
		flagsA        []string
		flagsB        []string
		// The paths each end must (yes) or must not (no) have taken, as
		// its offload counters show; anyPath: either.
		pathsA, pathsB paths
	}{
		{"udp4-gso", "udp", "v4", []string{"udp_csum", "on"}, nil, nil, gsoPaths, gsoPaths},
		{"udp4-nocsum-sendmmsg", "udp", "v4", []string{"udp_csum", "off"}, nil, nil, noGSOPaths, noGSOPaths},
		{"udp6-gso", "udp", "v6", nil, nil, nil, gsoPaths, gsoPaths},
		{"ip4-segment", "ip", "v4", nil, nil, nil, ipPaths, ipPaths},
		{"udp4-no-offload", "udp", "v4", []string{"udp_csum", "on"}, []string{"--no-offload"}, []string{"--no-offload"}, noPaths, noPaths},
		{"udp4-mixed", "udp", "v4", []string{"udp_csum", "on"}, []string{"--no-offload"}, nil,
			noPaths, paths{tso: yes, gso: yes, gro: anyPath, coalesce: yes}},
		{"udp4-two-queues", "udp", "v4", []string{"udp_csum", "on"}, []string{"--queues", "2"}, []string{"--queues", "2"}, gsoPaths, gsoPaths},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.startDaemon(e.nsA, c.flagsA...)
			b := e.startDaemon(e.nsB, c.flagsB...)
			la, lb := e.outer4(1), e.outer4(2)
			if c.family == "v6" {
				la, lb = e.outer6(1), e.outer6(2)
			}
			tunnel := func(d *daemon, tid, ptid int, local, remote netip.Addr) {
				w := []string{"add", "tunnel", "tunnel_id", fmt.Sprint(tid), "peer_tunnel_id", fmt.Sprint(ptid),
					"encap", c.encap, "local", local.String(), "remote", remote.String()}
				d.mustCLI(append(w, c.tunnelWords...)...)
			}
			tunnel(a, 1, 2, la, lb)
			tunnel(b, 2, 1, lb, la)
			a.mustCLI("add", "session", "name", "ofl0", "tunnel_id", "1", "session_id", "11", "peer_session_id", "22",
				"cookie", "01020304", "peer_cookie", "05060708")
			b.mustCLI("add", "session", "name", "ofl0", "tunnel_id", "2", "session_id", "22", "peer_session_id", "11",
				"cookie", "05060708", "peer_cookie", "01020304")
			inner := fmt.Sprintf("10.212.%d.", e.n)
			a.upTAP("ofl0", inner+"1/24")
			b.upTAP("ofl0", inner+"2/24")
			e.ping(e.nsA, inner+"2")
			const size = 24 << 20
			e.tcpTransfer(e.nsA, e.nsB, netip.MustParseAddr(inner+"2"), size)
			e.tcpTransfer(e.nsB, e.nsA, netip.MustParseAddr(inner+"1"), size)
			// Small equal-size frames: joined into UDP GSO runs where
			// the socket has GSO, one datagram each elsewhere.
			e.udpBurst(e.nsA, e.nsB, netip.MustParseAddr(inner+"2"), 2000, 64)
			for _, d := range []*daemon{a, b} {
				tid, sid := uint32(1), uint32(11)
				if d == b {
					tid, sid = 2, 22
				}
				st := d.session(tid, sid).Stats
				if st.TxErrors != 0 || st.RxInvalid != 0 || st.RxCookieDiscards != 0 {
					t.Errorf("%s: errors in %+v", d.ns, *st)
				}
				if st.RxBytes < size || st.TxBytes < size {
					t.Errorf("%s: rx_bytes %d tx_bytes %d, want at least %d each", d.ns, st.RxBytes, st.TxBytes, size)
				}
				want := c.pathsA
				if d == b {
					want = c.pathsB
				}
				want.check(t, d.ns, st)
			}
		})
	}
}

// want says whether an offload path must have been taken.
type want int

const (
	anyPath want = iota
	yes
	no
)

// paths are the offload paths one end takes: TSO super-frames segmented,
// UDP GSO sends, UDP GRO batches received, super-frames coalesced for the
// TAP.
type paths struct{ tso, gso, gro, coalesce want }

var (
	// With UDP checksums: everything. The peer's GSO sends arrive whole
	// at a socket with UDP_GRO.
	gsoPaths = paths{tso: yes, gso: yes, gro: yes, coalesce: yes}
	// IPv4 UDP without checksums: no GSO (the kernel refuses it).
	noGSOPaths = paths{tso: yes, gso: no, gro: anyPath, coalesce: yes}
	// IP encapsulation: no UDP offloads at all.
	ipPaths = paths{tso: yes, gso: no, gro: no, coalesce: yes}
	noPaths = paths{tso: no, gso: no, gro: no, coalesce: no}
)

func (p paths) check(t *testing.T, who string, o *statsJSON) {
	t.Helper()
	for _, c := range []struct {
		name string
		want want
		n    uint64
	}{
		{"tx_tso_frames", p.tso, o.TxTSOFrames},
		{"tx_gso_sends", p.gso, o.TxGSOSends},
		{"rx_gro_datagrams", p.gro, o.RxGRODatagrams},
		{"rx_coalesced_frames", p.coalesce, o.RxCoalescedFrames},
	} {
		if (c.want == yes && c.n == 0) || (c.want == no && c.n != 0) {
			t.Errorf("%s: %s %d: that path was %s (offload counters %+v)", who, c.name, c.n,
				map[want]string{yes: "not taken", no: "taken"}[c.want], o)
		}
	}
}
