package main

// End-to-end tests: two network namespaces joined by a veth pair, a ul2tpd
// in each, configured through the ul2tp CLI (or a config file), traffic
// through the TAP devices, counters read back through the CLI. They need
// root, ip(8) and ping(8), and skip with the reason otherwise (and under
// -short). Helpers are in e2e_helpers_test.go.
//
//	go test ./cmd/ul2tpd -run E2E -v -count=1

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tunnel and session ids used throughout: A's tunnel 100 / session 101
// talk to B's tunnel 200 / session 201.
const (
	tidA, tidB = 100, 200
	sidA, sidB = 101, 201
)

// cookiePair is the cookie A sends (B expects) and the cookie B sends
// (A expects).
type cookiePair struct{ a, b string }

var cookies = map[string]cookiePair{
	"nocookie": {},
	"cookie4":  {"11223344", "55667788"},
	"cookie8":  {"0011223344556677", "8899aabbccddeeff"},
}

type pwCase struct {
	encap  string // udp or ip
	family string // v4 or v6
	cookie string // key of cookies
	l2spec string // none or default
}

func (c pwCase) name() string {
	return c.encap + "/" + c.family + "/" + c.cookie + "/" + c.l2spec
}

// bulkCases also carry a TCP transfer.
var bulkCases = map[string]bool{
	"udp/v4/cookie4/default": true,
	"ip/v6/cookie8/default":  true,
	"udp/v6/nocookie/none":   true,
}

const bulkSize = 20 << 20

// TestE2EMatrix runs a pseudowire for every encapsulation, outer family,
// cookie length and L2-specific sublayer, pings through it and checks the
// counters; three of them also carry a 20 MB TCP transfer.
func TestE2EMatrix(t *testing.T) {
	requireE2E(t)
	var cases []pwCase
	for _, enc := range []string{"udp", "ip"} {
		for _, fam := range []string{"v4", "v6"} {
			for _, ck := range []string{"nocookie", "cookie4", "cookie8"} {
				for _, l2 := range []string{"none", "default"} {
					cases = append(cases, pwCase{enc, fam, ck, l2})
				}
			}
		}
	}
	for i, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			testPseudowire(t, c, i%2 == 1)
		})
	}
}

func testPseudowire(t *testing.T, c pwCase, aliases bool) {
	e := newEnv(t)
	a := e.startDaemon(e.nsA)
	b := e.startDaemon(e.nsB)
	localA, localB := e.outer4(1), e.outer4(2)
	if c.family == "v6" {
		localA, localB = e.outer6(1), e.outer6(2)
	}
	ck := cookies[c.cookie]

	// A is configured with iproute2's long words, B with the short ones
	// (or the other way round), and half the cases paste "l2tp" as from
	// "ip l2tp" and leave l2spec_type default implicit.
	addTunnel := func(d *daemon, short bool, tid, ptid int, local, remote netip.Addr) {
		w := []string{"add", "tunnel", "tunnel_id", fmt.Sprint(tid), "peer_tunnel_id", fmt.Sprint(ptid)}
		if short {
			w = []string{"l2tp", "add", "tunnel", "tid", fmt.Sprint(tid), "ptid", fmt.Sprint(ptid)}
		}
		w = append(w, "encap", c.encap, "local", local.String(), "remote", remote.String())
		if c.encap == "udp" {
			w = append(w, "udp_sport", "1701", "udp_dport", "1701")
			if c.family == "v4" && !short {
				w = append(w, "udp_csum", "on")
			}
			if c.family == "v6" && short {
				w = append(w, "udp6_csum_tx", "on", "udp6_csum_rx", "on")
			}
		}
		if _, errOut, code := d.cli(w...); code != 0 {
			t.Fatalf("ul2tp %s: exit %d: %s", strings.Join(w, " "), code, errOut)
		}
	}
	addSession := func(d *daemon, short bool, tid, sid, psid int, cookie, peerCookie string) {
		w := []string{"add", "session", "name", "l2t0", "tunnel_id", fmt.Sprint(tid),
			"session_id", fmt.Sprint(sid), "peer_session_id", fmt.Sprint(psid)}
		if short {
			w = []string{"a", "s", "name", "l2t0", "tid", fmt.Sprint(tid), "sid", fmt.Sprint(sid), "psid", fmt.Sprint(psid)}
		}
		if cookie != "" {
			w = append(w, "cookie", cookie, "peer_cookie", peerCookie)
		}
		if c.l2spec == "none" || !short {
			w = append(w, "l2spec_type", c.l2spec)
		}
		d.mustCLI(w...)
		d.taps = append(d.taps, "l2t0")
	}
	addTunnel(a, aliases, tidA, tidB, localA, localB)
	addSession(a, aliases, tidA, sidA, sidB, ck.a, ck.b)
	addTunnel(b, !aliases, tidB, tidA, localB, localA)
	addSession(b, !aliases, tidB, sidB, sidA, ck.b, ck.a)

	// What the daemons say they have.
	wantEncap := strings.ToUpper(c.encap)
	for _, x := range []struct {
		d                  *daemon
		tid, ptid          uint32
		sid, psid          uint32
		local, peer        netip.Addr
		cookie, peerCookie string
	}{
		{a, tidA, tidB, sidA, sidB, localA, localB, ck.a, ck.b},
		{b, tidB, tidA, sidB, sidA, localB, localA, ck.b, ck.a},
	} {
		tn := x.d.tunnel(x.tid)
		if tn.Encap != wantEncap || tn.PeerTunnelID != x.ptid || tn.Local != x.local.String() ||
			tn.Peer != x.peer.String() || tn.Sessions != 1 {
			t.Errorf("%s: show tunnel: %+v", x.d.ns, tn)
		}
		if c.encap == "udp" && (tn.LocalPort != 1701 || tn.PeerPort != 1701) {
			t.Errorf("%s: show tunnel ports %d/%d, want 1701/1701", x.d.ns, tn.LocalPort, tn.PeerPort)
		}
		s := x.d.session(x.tid, x.sid)
		if s.PeerSessionID != x.psid || s.PeerTunnelID != x.ptid || s.Interface != "l2t0" ||
			s.Cookie != x.cookie || s.PeerCookie != x.peerCookie || s.L2SpecType != c.l2spec {
			t.Errorf("%s: show session: %+v", x.d.ns, s)
		}
		if s.MTU < 1280 || s.MTU > 1500 {
			t.Errorf("%s: session mtu %d, want the veth's 1500 less the overhead", x.d.ns, s.MTU)
		}
	}

	a.upTAP("l2t0", "10.211.0.1/24")
	b.upTAP("l2t0", "10.211.0.2/24")
	// Until B's TAP is up, frames A sends (IPv6 ND, MLD) cannot be written
	// to it and count as rx_errors: none may be counted from here on.
	rxErrA0 := a.session(tidA, sidA).Stats.RxErrors
	rxErrB0 := b.session(tidB, sidB).Stats.RxErrors
	e.ping(e.nsA, "10.211.0.2")
	e.ping(e.nsB, "10.211.0.1")
	if bulkCases[c.name()] {
		e.tcpTransfer(e.nsA, e.nsB, netip.MustParseAddr("10.211.0.2"), bulkSize)
	}
	if t.Failed() {
		return
	}

	// B can only have received what A sent: read B before A for that, and
	// B again after A for the other direction. (IPv6 ND/MLD and ARP flow
	// too, so equalities would not hold.)
	b1 := b.session(tidB, sidB).Stats
	a1 := a.session(tidA, sidA).Stats
	b2 := b.session(tidB, sidB).Stats
	for _, x := range []struct {
		ns     string
		st     *statsJSON
		rxErr0 uint64
	}{{e.nsA, a1, rxErrA0}, {e.nsB, b1, rxErrB0}, {e.nsB, b2, rxErrB0}} {
		if x.st.TxPackets == 0 || x.st.RxPackets == 0 || x.st.TxBytes == 0 || x.st.RxBytes == 0 {
			t.Errorf("%s: session counters show no traffic: %+v", x.ns, *x.st)
		}
		if x.st.RxCookieDiscards != 0 || x.st.RxInvalid != 0 || x.st.RxErrors != x.rxErr0 || x.st.TxErrors != 0 {
			t.Errorf("%s: session counters show errors (rx_errors was %d with both TAPs up): %+v", x.ns, x.rxErr0, *x.st)
		}
	}
	if b1.RxPackets > a1.TxPackets || b1.RxBytes > a1.TxBytes {
		t.Errorf("B received more than A sent: B rx %d packets %d bytes, A tx %d packets %d bytes",
			b1.RxPackets, b1.RxBytes, a1.TxPackets, a1.TxBytes)
	}
	if a1.RxPackets > b2.TxPackets || a1.RxBytes > b2.TxBytes {
		t.Errorf("A received more than B sent: A rx %d packets %d bytes, B tx %d packets %d bytes",
			a1.RxPackets, a1.RxBytes, b2.TxPackets, b2.TxBytes)
	}
	// 2 echo requests at least each way, and their replies.
	if a1.TxPackets < 4 || b2.TxPackets < 4 {
		t.Errorf("tx_packets A %d, B %d: want at least 4 each (two pings of 2)", a1.TxPackets, b2.TxPackets)
	}
	if bulkCases[c.name()] {
		if b2.RxBytes < bulkSize {
			t.Errorf("B rx_bytes %d after a %d-byte transfer", b2.RxBytes, bulkSize)
		}
		if a1.TxBytes < bulkSize {
			t.Errorf("A tx_bytes %d after a %d-byte transfer", a1.TxBytes, bulkSize)
		}
	}
	for _, d := range []*daemon{a, b} {
		for _, tn := range d.tunnels() {
			st := tn.Stats
			if st.RxPackets == 0 || st.TxPackets == 0 || st.RxInvalid != 0 || st.RxCookieDiscards != 0 {
				t.Errorf("%s: tunnel %d counters: %+v", d.ns, tn.TunnelID, *st)
			}
		}
	}
}

// TestE2EBadInput sends crafted datagrams at A's UDP port from B's
// namespace and checks that each is dropped and counted where it belongs,
// that a valid crafted frame is delivered, and that the daemon keeps
// working.
//
// A has tunnel 100 (peer 10.210.N.2) with sessions 101 and 102, and tunnel
// 110 (peer 10.210.N.3, B's second address) with session 101 again, both
// on A's UDP 10.210.N.1:1701.
func TestE2EBadInput(t *testing.T) {
	e := newEnv(t)
	vB := fmt.Sprintf("u2t%db", e.n)
	e.ip("-n", e.nsB, "addr", "add", e.outer4(3).String()+"/24", "dev", vB)
	a := e.startDaemon(e.nsA)
	b := e.startDaemon(e.nsB)
	A1, B2, B3 := e.outer4(1), e.outer4(2), e.outer4(3)

	type sess struct {
		tidA, sidA, tidB, sidB int
		name                   string
		cookieA, cookieB       string // A sends cookieA and expects cookieB
		inner                  int    // 10.211.inner.0/24
	}
	ss := []sess{
		{100, 101, 200, 201, "l2t0", "11223344", "55667788", 0},
		{100, 102, 200, 202, "l2t1", "21222324", "25262728", 1},
		{110, 101, 210, 201, "l2t2", "31323334", "35363738", 2},
	}
	a.mustCLI("add", "tunnel", "tunnel_id", "100", "peer_tunnel_id", "200", "encap", "udp",
		"local", A1.String(), "remote", B2.String(), "udp_sport", "1701", "udp_dport", "1701")
	a.mustCLI("add", "tunnel", "tunnel_id", "110", "peer_tunnel_id", "210", "encap", "udp",
		"local", A1.String(), "remote", B3.String(), "udp_sport", "1701", "udp_dport", "1701")
	b.mustCLI("add", "tunnel", "tunnel_id", "200", "peer_tunnel_id", "100", "encap", "udp",
		"local", B2.String(), "remote", A1.String(), "udp_sport", "1701", "udp_dport", "1701")
	b.mustCLI("add", "tunnel", "tunnel_id", "210", "peer_tunnel_id", "110", "encap", "udp",
		"local", B3.String(), "remote", A1.String(), "udp_sport", "1701", "udp_dport", "1701")
	for _, s := range ss {
		a.mustCLI("add", "session", "name", s.name, "tunnel_id", fmt.Sprint(s.tidA), "session_id", fmt.Sprint(s.sidA),
			"peer_session_id", fmt.Sprint(s.sidB), "cookie", s.cookieA, "peer_cookie", s.cookieB, "l2spec_type", "default")
		b.mustCLI("add", "session", "name", s.name, "tunnel_id", fmt.Sprint(s.tidB), "session_id", fmt.Sprint(s.sidB),
			"peer_session_id", fmt.Sprint(s.sidA), "cookie", s.cookieB, "peer_cookie", s.cookieA, "l2spec_type", "default")
		a.taps = append(a.taps, s.name)
		b.taps = append(b.taps, s.name)
		a.upTAP(s.name, fmt.Sprintf("10.211.%d.1/24", s.inner))
		b.upTAP(s.name, fmt.Sprintf("10.211.%d.2/24", s.inner))
	}
	// Session id 101 twice on one socket, told apart by the peer.
	if got := a.sessions("session_id", "101"); len(got) != 2 {
		t.Fatalf("show session session_id 101: %d sessions, want 2 (tunnels 100 and 110): %+v", len(got), got)
	}

	// A UDP listener in A on port 9999 receives the markers of the crafted
	// frames that get through.
	const markerPort = 9999
	var lc *net.UDPConn
	if err := inNetns(e.nsA, func() error {
		var err error
		lc, err = net.ListenUDP("udp4", &net.UDPAddr{Port: markerPort})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	var mmu sync.Mutex
	markers := map[string]int{}
	gotMarker := make(chan string, 64)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := lc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m := string(buf[:n])
			mmu.Lock()
			markers[m]++
			mmu.Unlock()
			select {
			case gotMarker <- m:
			default:
			}
		}
	}()

	// frame makes an Ethernet frame for A's TAP of session s carrying a UDP
	// datagram to the marker port.
	frame := func(s sess, marker string) []byte {
		return udpFrame(e.macOf(e.nsA, s.name),
			netip.AddrFrom4([4]byte{10, 211, byte(s.inner), 2}),
			netip.AddrFrom4([4]byte{10, 211, byte(s.inner), 1}), markerPort, []byte(marker))
	}
	hdr := func(flags uint16, sid uint32, cookie string) []byte {
		return l2tpv3UDPHeader(flags, sid, mustHex(t, cookie), true)
	}
	cat := func(bs ...[]byte) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	s0, s1, s2 := ss[0], ss[1], ss[2]
	const ver3 = 0x0003

	// Raw UDP sockets in B, one per source address, so the source port can
	// be the one ul2tpd in B already has bound.
	from2 := rawUDPSender(t, e.nsB, B2)
	from3 := rawUDPSender(t, e.nsB, B3)
	type pkt struct {
		what  string
		from  *rawSender
		sport uint16
		data  []byte
	}
	bad := []pkt{
		{"unknown session id", from2, 1701, cat(hdr(ver3, 999, s0.cookieB), frame(s0, "bad-unknown-sid"))},
		{"session id 0", from2, 1701, cat(hdr(ver3, 0, s0.cookieB), frame(s0, "bad-sid0"))},
		{"wrong cookie 1", from2, 1701, cat(hdr(ver3, 101, "00000000"), frame(s0, "bad-cookie-1"))},
		{"wrong cookie 2 (tunnel 110's)", from2, 1701, cat(hdr(ver3, 101, s2.cookieB), frame(s0, "bad-cookie-2"))},
		{"wrong cookie 3", from2, 1701, cat(hdr(ver3, 101, "55667789"), frame(s0, "bad-cookie-3"))},
		{"wrong cookie 4 (session 101's)", from2, 1701, cat(hdr(ver3, 102, s0.cookieB), frame(s1, "bad-cookie-4"))},
		{"wrong cookie 5", from2, 1701, cat(hdr(ver3, 102, "a5262728"), frame(s1, "bad-cookie-5"))},
		{"version 2", from2, 1701, cat(hdr(0x0002, 101, s0.cookieB), frame(s0, "bad-version"))},
		{"T bit", from2, 1701, cat(hdr(0x8000|ver3, 101, s0.cookieB), frame(s0, "bad-control"))},
		{"truncated 3", from2, 1701, []byte{0x00, 0x03, 0x00}},
		{"truncated 7", from2, 1701, hdr(ver3, 101, s0.cookieB)[:7]},
		{"header, no payload", from2, 1701, hdr(ver3, 101, s0.cookieB)},
		{"oversized 60000", from2, 1701, cat(hdr(ver3, 101, s0.cookieB), frame(s0, "bad-oversized"), make([]byte, 60000-16-60))},
		{"wrong source port", from2, 1702, cat(hdr(ver3, 101, s0.cookieB), frame(s0, "bad-wrong-port"))},
		{"session 102 from tunnel 110's peer", from3, 1701, cat(hdr(ver3, 102, s1.cookieB), frame(s1, "bad-wrong-peer"))},
	}
	good := []pkt{
		{"valid to session 100/101", from2, 1701, cat(hdr(ver3, 101, s0.cookieB), frame(s0, "ok-100-101"))},
		{"valid to session 100/102", from2, 1701, cat(hdr(ver3, 102, s1.cookieB), frame(s1, "ok-100-102"))},
		{"valid to session 110/101", from3, 1701, cat(hdr(ver3, 101, s2.cookieB), frame(s2, "ok-110-101"))},
	}
	// What the bad packets must add up to. The oversized datagram is
	// counted once more, in tunnel 100's rx_invalid if the daemon received
	// it truncated, else in session 100/101's rx_errors (and maybe
	// rx_invalid) as a frame far longer than the TAP's MTU: the kernel's
	// l2tp_eth drops such frames (dev_forward_skb), and so must ul2tpd.
	const (
		wantCookie101  = 3
		wantCookie102  = 2
		wantInvalid101 = 1 // header, no payload
		wantTunnel100  = 5 // unknown session, session 0, version 2, truncated 3 and 7
		wantTunnel110  = 1 // session 102 is not in tunnel 110
	)
	before := map[string]*statsJSON{
		"s100/101": a.session(100, 101).Stats, "s100/102": a.session(100, 102).Stats,
		"s110/101": a.session(110, 101).Stats,
		"t100":     a.tunnel(100).Stats, "t110": a.tunnel(110).Stats,
	}
	unmatched0 := a.tunnel(100).Socket.Unmatched
	for _, p := range append(bad, good...) {
		if err := p.from.send(p.sport, A1, 1701, p.data); err != nil {
			t.Fatalf("send %s: %v", p.what, err)
		}
	}
	// The valid frames were sent last: once they are all in, the bad ones
	// have been through the daemon's receive loop too.
	deadline := time.After(10 * time.Second)
	for seen := 0; seen < len(good); {
		select {
		case m := <-gotMarker:
			if strings.HasPrefix(m, "ok-") {
				seen++
			}
		case <-deadline:
			mmu.Lock()
			got := fmt.Sprint(markers)
			mmu.Unlock()
			t.Fatalf("valid crafted frames not all delivered in 10s; markers received: %v\nA's log:\n%s", got, a.log())
		}
	}
	counts := func() (s101, s102, s110 sessionJSON, t100, t110 tunnelJSON) {
		return a.session(100, 101), a.session(100, 102), a.session(110, 101), a.tunnel(100), a.tunnel(110)
	}
	s101, s102, s110, t100, t110 := counts()
	// Packets from two sockets may be queued on two CPUs: give stragglers
	// a moment (bounded) to be counted.
	for i := 0; i < 20 && (s101.Stats.RxCookieDiscards-before["s100/101"].RxCookieDiscards < wantCookie101 ||
		s102.Stats.RxCookieDiscards-before["s100/102"].RxCookieDiscards < wantCookie102 ||
		t100.Stats.RxInvalid-before["t100"].RxInvalid < wantTunnel100 ||
		t100.Stats.RxInvalid-before["t100"].RxInvalid+s101.Stats.RxErrors-before["s100/101"].RxErrors <
			wantTunnel100+wantCookie101+wantInvalid101+1 ||
		t110.Stats.RxInvalid-before["t110"].RxInvalid < wantTunnel110); i++ {
		time.Sleep(100 * time.Millisecond)
		s101, s102, s110, t100, t110 = counts()
	}
	time.Sleep(200 * time.Millisecond) // for markers that must not arrive
	mmu.Lock()
	for m, n := range markers {
		if strings.HasPrefix(m, "bad-") {
			t.Errorf("frame %q was delivered (%d times), want it dropped", m, n)
		}
		if strings.HasPrefix(m, "ok-") && n != 1 {
			t.Errorf("frame %q delivered %d times, want once", m, n)
		}
	}
	mmu.Unlock()

	check := func(what string, got, before, want uint64) {
		t.Helper()
		if got-before != want {
			t.Errorf("%s grew by %d, want %d", what, got-before, want)
		}
	}
	check("session 100/101 rx_cookie_discards", s101.Stats.RxCookieDiscards, before["s100/101"].RxCookieDiscards, wantCookie101)
	if t100.Socket == nil || t110.Socket == nil {
		t.Fatalf("show tunnel -s has no socket counters: %+v %+v", t100, t110)
	}
	// The datagram from the wrong source port comes from no tunnel's peer.
	check("socket unmatched", t100.Socket.Unmatched, unmatched0, 1)
	if t110.Socket.Unmatched != t100.Socket.Unmatched {
		t.Errorf("tunnels 100 and 110 share a socket but show unmatched %d and %d", t100.Socket.Unmatched, t110.Socket.Unmatched)
	}
	check("session 100/102 rx_cookie_discards", s102.Stats.RxCookieDiscards, before["s100/102"].RxCookieDiscards, wantCookie102)
	check("session 110/101 rx_cookie_discards", s110.Stats.RxCookieDiscards, before["s110/101"].RxCookieDiscards, 0)
	check("session 100/102 rx_invalid", s102.Stats.RxInvalid, before["s100/102"].RxInvalid, 0)
	check("session 110/101 rx_invalid", s110.Stats.RxInvalid, before["s110/101"].RxInvalid, 0)
	check("session 100/102 rx_errors", s102.Stats.RxErrors, before["s100/102"].RxErrors, wantCookie102)
	// The oversized datagram, counted as truncated or as too long a frame.
	extraT := int64(t100.Stats.RxInvalid-before["t100"].RxInvalid) - wantTunnel100
	extraS := int64(s101.Stats.RxErrors-before["s100/101"].RxErrors) - (wantCookie101 + wantInvalid101)
	if extraT < 0 || extraS < 0 || extraT+extraS != 1 {
		t.Errorf("tunnel 100 rx_invalid grew by %d (want %d, +1 if the oversized datagram was truncated), "+
			"session 100/101 rx_errors by %d (want %d, +1 for an oversized frame dropped): "+
			"the 60000-byte datagram must be counted as an error exactly once",
			extraT+wantTunnel100, wantTunnel100, extraS+wantCookie101+wantInvalid101, wantCookie101+wantInvalid101)
	}
	if inv := int64(s101.Stats.RxInvalid - before["s100/101"].RxInvalid); inv < wantInvalid101 || inv > wantInvalid101+max(extraS, 0) {
		t.Errorf("session 100/101 rx_invalid grew by %d, want %d (+1 at most for the oversized frame)", inv, wantInvalid101)
	}
	check("tunnel 110 rx_invalid", t110.Stats.RxInvalid, before["t110"].RxInvalid, wantTunnel110)
	for _, x := range []struct {
		name          string
		after, before *statsJSON
	}{{"100/101", s101.Stats, before["s100/101"]}, {"100/102", s102.Stats, before["s100/102"]}, {"110/101", s110.Stats, before["s110/101"]}} {
		if x.after.RxPackets <= x.before.RxPackets {
			t.Errorf("session %s rx_packets %d -> %d: the valid crafted frame was not counted", x.name, x.before.RxPackets, x.after.RxPackets)
		}
	}
	if !a.alive() {
		t.Fatalf("ul2tpd in A died:\n%s", a.log())
	}

	// The text output says the same.
	out := a.mustCLI("-s", "show", "session", "tunnel_id", "100", "session_id", "101")
	for _, w := range []string{
		"Session 101 in tunnel 100\n", "Peer session 201, tunnel 200\n", "interface name: l2t0\n",
		"cookie 11223344  peer cookie 55667788\n", "l2spec_type default, mtu ",
		fmt.Sprintf(" cookie_discards %d invalid %d\n", s101.Stats.RxCookieDiscards, s101.Stats.RxInvalid),
	} {
		if !strings.Contains(out, w) {
			t.Errorf("ul2tp -s show session: no %q in:\n%s", w, out)
		}
	}
	// Packet counts move with ARP and IPv6 ND: match their shape only.
	if !regexp.MustCompile(`\n  RX: packets \d+ bytes \d+ errors \d+ seq_discards 0 oos_packets 0 cookie_discards \d+ invalid \d+\n  TX: packets \d+ bytes \d+ errors 0\n`).MatchString(out) {
		t.Errorf("ul2tp -s show session: counters not in iproute2's form:\n%s", out)
	}
	out = a.mustCLI("-s", "show", "tunnel", "tunnel_id", "100")
	for _, w := range []string{
		"Tunnel 100, encap UDP\n", fmt.Sprintf("From %s to %s\n", A1, B2), "Peer tunnel 200\n",
		"UDP source / dest ports: 1701/1701\n", "UDP checksum: enabled\n", // ul2tp's default
		fmt.Sprintf(" invalid %d\n", t100.Stats.RxInvalid),
	} {
		if !strings.Contains(out, w) {
			t.Errorf("ul2tp -s show tunnel: no %q in:\n%s", w, out)
		}
	}
	out = a.mustCLI("show", "tunnel")
	if strings.Count(out, "Tunnel ") != 2 || strings.Contains(out, "RX:") {
		t.Errorf("ul2tp show tunnel (no -s): want 2 tunnels and no counters:\n%s", out)
	}

	// Still working: ping through every session, both ways.
	for _, s := range ss {
		e.ping(e.nsA, fmt.Sprintf("10.211.%d.2", s.inner))
		e.ping(e.nsB, fmt.Sprintf("10.211.%d.1", s.inner))
	}
	if !a.alive() || !b.alive() {
		t.Fatalf("a daemon died: A alive %v, B alive %v", a.alive(), b.alive())
	}
	s101 = a.session(100, 101)
	if s101.Stats.RxCookieDiscards-before["s100/101"].RxCookieDiscards != wantCookie101 {
		t.Errorf("session 100/101 rx_cookie_discards grew during valid traffic: %+v", *s101.Stats)
	}
}

// TestE2ECLIErrors checks how ul2tp and ul2tpd report mistakes, and that
// deleting a tunnel or session removes its TAP devices.
func TestE2ECLIErrors(t *testing.T) {
	e := newEnv(t)
	a := e.startDaemon(e.nsA)
	A1, B2 := e.outer4(1).String(), e.outer4(2).String()
	tunnelWords := func(tid string, extra ...string) []string {
		return append([]string{"add", "tunnel", "tunnel_id", tid, "peer_tunnel_id", "200", "encap", "udp",
			"local", A1, "remote", B2}, extra...)
	}
	a.mustCLI(tunnelWords("100")...)

	t.Run("duplicate tunnel", func(t *testing.T) {
		a.cliFails([]string{"exists"}, tunnelWords("100")...)
	})
	t.Run("session in unknown tunnel", func(t *testing.T) {
		a.cliFails([]string{"not found"}, "add", "session", "tunnel_id", "999", "session_id", "1", "peer_session_id", "2")
	})
	t.Run("bad values", func(t *testing.T) {
		sess := func(extra ...string) []string {
			return append([]string{"add", "session", "name", "l2tbad", "tunnel_id", "100", "session_id", "1", "peer_session_id", "2"}, extra...)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{sess("cookie", "123"), "cookie"},
			{sess("cookie", "zzzzzzzz"), "cookie"},
			{sess("peer_cookie", "1122334455"), "peer_cookie"},
			{sess("l2spec_type", "bad"), "l2spec_type"},
			{sess("seq", "sometimes"), "seq"},
			{sess("mtu", "12"), "mtu"},
			{sess("mtu", "many"), "mtu"},
			{sess("offset", "4"), "offset"},
			{sess("name", "a-name-longer-than-15"), "name"},
			{sess("name", "a:b"), "name"},
			{sess("name", ".."), "name"},
			{[]string{"add", "tunnel", "tunnel_id", "101", "peer_tunnel_id", "200", "remote", "224.0.0.1"}, "remote"},
			{[]string{"add", "tunnel", "tunnel_id", "101", "peer_tunnel_id", "200", "remote", "255.255.255.255"}, "remote"},
			{[]string{"add", "tunnel", "tunnel_id", "101", "peer_tunnel_id", "200", "local", "239.1.1.1", "remote", B2}, "local"},
			{[]string{"add", "session", "tunnel_id", "100", "session_id", "0", "peer_session_id", "2"}, "session_id"},
			{[]string{"add", "session", "tunnel_id", "100", "session_id", "1"}, "peer_session_id"},
			{tunnelWords("101", "encap", "foo"), "encap"},
			{tunnelWords("101", "udp_sport", "70000"), "udp_sport"},
			{tunnelWords("101", "udp_csum", "maybe"), "udp_csum"},
			{[]string{"add", "tunnel", "tunnel_id", "101", "peer_tunnel_id", "200", "remote", "not-an-address"}, "remote"},
			{[]string{"add", "tunnel", "tunnel_id", "101", "peer_tunnel_id", "200", "local", A1, "remote", "fd00::2"}, "local"},
			{[]string{"add", "tunnel", "tunnel_id", "101", "peer_tunnel_id", "0", "remote", B2}, "peer_tunnel_id"},
			{[]string{"add", "tunnel", "tunnel_id", "101", "peer_tunnel_id", "200"}, "remote"},
			{[]string{"add", "tunnel", "tunnel_id", "101", "bogus_word", "1"}, "bogus_word"},
			{[]string{"frob", "tunnel"}, "frob"},
		} {
			a.cliFails([]string{c.want}, c.args...)
		}
		// Nothing of the failed commands was created.
		if ts := a.tunnels(); len(ts) != 1 || ts[0].TunnelID != 100 || ts[0].Sessions != 0 {
			t.Errorf("after failed adds: tunnels %+v, want only tunnel 100 without sessions", ts)
		}
		if e.linkExists(e.nsA, "l2tbad") {
			t.Errorf("a failed add session left interface l2tbad")
		}
	})
	t.Run("no daemon", func(t *testing.T) {
		_, errOut, code := runCLI(e.bin, "--socket", "/nonexistent/sock", "show", "tunnel")
		if code == 0 || !strings.Contains(errOut, "no ul2tpd") || !strings.Contains(errOut, "/nonexistent/sock") {
			t.Errorf("ul2tp --socket /nonexistent/sock show tunnel: exit %d, stderr %q; want failure naming no ul2tpd and the socket", code, errOut)
		}
		// $UL2TP_SOCKET is read too.
		t.Setenv("UL2TP_SOCKET", a.socket)
		if out, errOut, code := runCLI(e.bin, "-j", "show", "tunnel"); code != 0 || !strings.Contains(out, `"tunnel_id":100`) {
			t.Errorf("UL2TP_SOCKET=%s ul2tp -j show tunnel: exit %d, stdout %q, stderr %q", a.socket, code, out, errOut)
		}
	})
	t.Run("output forms", func(t *testing.T) {
		out := a.mustCLI("-p", "list", "tunnel")
		var ts []tunnelJSON
		if err := json.Unmarshal([]byte(out), &ts); err != nil || len(ts) != 1 || !strings.Contains(out, "\n        \"tunnel_id\": 100,\n") {
			t.Errorf("ul2tp -p list tunnel: %v\n%s", err, out)
		}
		if out := a.mustCLI("ls", "t"); !strings.HasPrefix(out, "Tunnel 100, encap UDP\n") {
			t.Errorf("ul2tp ls t: %q", out)
		}
		for _, args := range [][]string{{"help"}, {"-h"}, {}} {
			if out := a.mustCLI(args...); !strings.Contains(out, "Usage: ul2tp") {
				t.Errorf("ul2tp %s: no usage in %q", strings.Join(args, " "), out)
			}
		}
		a.cliFails([]string{"unknown option", "Usage: ul2tp"}, "-x", "show", "tunnel")
	})
	t.Run("not found", func(t *testing.T) {
		a.cliFails([]string{"not found"}, "del", "tunnel", "tunnel_id", "999")
		a.cliFails([]string{"not found"}, "show", "tunnel", "tunnel_id", "999")
		a.cliFails([]string{"not found"}, "del", "session", "tunnel_id", "100", "session_id", "999")
		a.cliFails([]string{"not found"}, "del", "session", "tunnel_id", "999", "session_id", "1")
	})
	t.Run("sessions and their devices", func(t *testing.T) {
		a.mustCLI("add", "session", "name", "l2ta", "tunnel_id", "100", "session_id", "1", "peer_session_id", "11")
		a.mustCLI("add", "session", "name", "l2tb", "tunnel_id", "100", "session_id", "2", "peer_session_id", "12",
			"seq", "both", "mtu", "1400", "l2spec_type", "default")
		// Default name from l2tpeth%d.
		a.mustCLI("add", "session", "tunnel_id", "100", "session_id", "3", "peer_session_id", "13")
		a.cliFails([]string{"exists"}, "add", "session", "name", "l2tc", "tunnel_id", "100", "session_id", "1", "peer_session_id", "14")
		// A name the daemon's own TAP already has.
		a.cliFails([]string{"exists"}, "add", "session", "name", "l2ta", "tunnel_id", "100", "session_id", "4", "peer_session_id", "14")
		ss := a.sessions("tunnel_id", "100")
		if len(ss) != 3 {
			t.Fatalf("show session tunnel_id 100: %d sessions, want 3: %+v", len(ss), ss)
		}
		if ss[2].Interface != "l2tpeth0" {
			t.Errorf("session 3 without a name: interface %q, want l2tpeth0", ss[2].Interface)
		}
		if !ss[1].SendSeq || !ss[1].RecvSeq || ss[1].MTU != 1400 {
			t.Errorf("session 2 (seq both, mtu 1400): %+v", ss[1])
		}
		if out := e.ip("-n", e.nsA, "link", "show", "dev", "l2tb"); !strings.Contains(out, "mtu 1400 ") {
			t.Errorf("l2tb: want mtu 1400: %s", out)
		}
		out := a.mustCLI("show", "session", "tunnel_id", "100", "session_id", "2")
		for _, w := range []string{"sequence numbering: send recv\n", "l2spec_type default, mtu 1400\n"} {
			if !strings.Contains(out, w) {
				t.Errorf("show session: no %q in:\n%s", w, out)
			}
		}
		for _, name := range []string{"l2ta", "l2tb", "l2tpeth0"} {
			if !e.linkExists(e.nsA, name) {
				t.Errorf("interface %s missing after add session", name)
			}
		}
		// del session removes its device only.
		a.mustCLI("del", "session", "tunnel_id", "100", "session_id", "3")
		waitLinkGone(t, e, e.nsA, "l2tpeth0")
		if !e.linkExists(e.nsA, "l2ta") {
			t.Errorf("del session 3 removed l2ta too")
		}
		// del tunnel removes the rest.
		a.mustCLI("del", "tunnel", "tunnel_id", "100")
		waitLinkGone(t, e, e.nsA, "l2ta")
		waitLinkGone(t, e, e.nsA, "l2tb")
		if ts := a.tunnels(); len(ts) != 0 {
			t.Errorf("after del tunnel: %+v", ts)
		}
		if out := a.mustCLI("-j", "show", "session"); strings.TrimSpace(out) != "[]" {
			t.Errorf("ul2tp -j show session with none: %q, want []", out)
		}
		// The port is free again for a new tunnel with the same id.
		a.mustCLI(tunnelWords("100")...)
	})
	t.Run("daemon errors", func(t *testing.T) {
		// A tunnel on an address A does not have: the bind fails, nothing
		// is left behind.
		a.cliFails([]string{"bind"}, "add", "tunnel", "tunnel_id", "300", "peer_tunnel_id", "400",
			"local", "192.0.2.1", "remote", B2)
		a.cliFails([]string{"not found"}, "show", "tunnel", "tunnel_id", "300")
		// A second daemon on the same socket refuses to start.
		out, err := runCmd(10*time.Second, "ip", "netns", "exec", e.nsA, filepath.Join(e.bin, "ul2tpd"), "--socket", a.socket)
		if err == nil || !strings.Contains(out, "another ul2tpd") {
			t.Errorf("second ul2tpd on %s: err %v, output %q; want failure naming another ul2tpd", a.socket, err, out)
		}
		if !a.alive() {
			t.Fatalf("first ul2tpd died:\n%s", a.log())
		}
		a.mustCLI("show", "tunnel")
		// A bad config file, and an unknown argument.
		bad := filepath.Join(e.dir, "bad.toml")
		if err := os.WriteFile(bad, []byte("[tunnel.t1]\npeer = \"10.0.0.2\"\ntid = 1\nptid = 2\nbogus = 3\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"--socket", filepath.Join(e.dir, "x.sock"), "--config", bad},
			{"--socket", filepath.Join(e.dir, "x.sock"), "--config", filepath.Join(e.dir, "missing.toml")},
			{"--socket", filepath.Join(e.dir, "x.sock"), "stray"},
		} {
			out, err := runCmd(10*time.Second, filepath.Join(e.bin, "ul2tpd"), args...)
			var ee interface{ ExitCode() int }
			if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.HasPrefix(out, "ul2tpd: ") {
				t.Errorf("ul2tpd %s: err %v, output %q; want a non-zero exit and an error", strings.Join(args, " "), err, out)
			}
		}
	})
	a.stop(true)
}

func waitLinkGone(t *testing.T, e *env, ns, name string) {
	t.Helper()
	for i := 0; i < 20; i++ {
		if !e.linkExists(ns, name) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("interface %s still in %s 1s after its session was deleted", name, ns)
}

// TestE2EConfigFile starts both daemons from go-l2tp TOML files: a UDP
// tunnel over IPv4 with cookies, a UDP tunnel over IPv6 ("[addr]:port")
// and an IP tunnel over IPv4 without cookies or sublayer.
//
// (IP encapsulation over IPv6 is left out: see the skip in TestE2EMatrix.)
func TestE2EConfigFile(t *testing.T) {
	e := newEnv(t)
	conf := func(me, peer int, tid, ptid int, cookie, peerCookie string) string {
		sid, psid := tid+1, ptid+1
		return fmt.Sprintf(`# go-l2tp format
[tunnel.t1]
local = "%s:1701"
peer = "%s:1701"
version = "l2tpv3"
encap = "udp"
tid = %d
ptid = %d
hello_timeout = 250
window_size = 10

[tunnel.t1.session.s1]
sid = %d
psid = %d
pseudowire = "eth"
cookie = %s
peer_cookie = %s
interface_name = "l2tcfg0"
l2spec_type = "default"
seqnum = false
reorder_timeout = 0

[tunnel.t2]
local = "[%s]:1702"
peer = "[%s]:1702"
encap = "udp"
tid = %d
ptid = %d

[tunnel.t2.session.s1]
sid = %d
psid = %d
interface_name = "l2tcfg1"
address = "02:00:5e:00:01:%02x"

[tunnel.t3]
local = "%s"
peer = "%s"
encap = "ip"
tid = %d
ptid = %d

[tunnel.t3.session.s1]
sid = %d
psid = %d
interface_name = "l2tcfg2"
l2spec_type = "none"
`, e.outer4(byte(me)), e.outer4(byte(peer)), tid, ptid, sid, psid, cookie, peerCookie,
			e.outer6(me), e.outer6(peer), tid+10, ptid+10, sid+10, psid+10, me,
			e.outer4(byte(me)), e.outer4(byte(peer)), tid+20, ptid+20, sid+20, psid+20)
	}
	ca := filepath.Join(e.dir, "a.toml")
	cb := filepath.Join(e.dir, "b.toml")
	if err := os.WriteFile(ca, []byte(conf(1, 2, 100, 200,
		"[ 0x11, 0x22, 0x33, 0x44 ]", "[ 0x55, 0x66, 0x77, 0x88 ]")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cb, []byte(conf(2, 1, 200, 100,
		"[ 0x55, 0x66, 0x77, 0x88 ]", "[ 0x11, 0x22, 0x33, 0x44 ]")), 0o644); err != nil {
		t.Fatal(err)
	}
	a := e.startDaemon(e.nsA, "--config", ca)
	b := e.startDaemon(e.nsB, "--config", cb)
	taps := []string{"l2tcfg0", "l2tcfg1", "l2tcfg2"}
	a.taps, b.taps = taps, taps

	out := a.mustCLI("-j", "show", "session")
	var ss []sessionJSON
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		t.Fatalf("ul2tp -j show session: %v\n%s", err, out)
	}
	want := []sessionJSON{
		{SessionID: 101, TunnelID: 100, PeerSessionID: 201, PeerTunnelID: 200, Interface: "l2tcfg0",
			Cookie: "11223344", PeerCookie: "55667788", L2SpecType: "default", State: "up"},
		{SessionID: 111, TunnelID: 110, PeerSessionID: 211, PeerTunnelID: 210, Interface: "l2tcfg1",
			L2SpecType: "none", State: "up", Address: "02:00:5e:00:01:01"}, // no l2spec_type: go-l2tp's default
		{SessionID: 121, TunnelID: 120, PeerSessionID: 221, PeerTunnelID: 220, Interface: "l2tcfg2",
			L2SpecType: "none", State: "up"},
	}
	if len(ss) != len(want) {
		t.Fatalf("ul2tp -j show session: %d sessions, want %d:\n%s", len(ss), len(want), out)
	}
	for i := range want {
		got := ss[i]
		got.MTU = 0
		if mac := e.macOf(e.nsA, got.Interface).String(); got.Address != mac {
			t.Errorf("session %d: address %q, the TAP has %s", i, got.Address, mac)
		}
		if want[i].Address == "" {
			got.Address = "" // derived: checked against the TAP above
		}
		if got != want[i] {
			t.Errorf("session %d: got %+v, want %+v", i, got, want[i])
		}
		if ss[i].Stats != nil {
			t.Errorf("session %d: stats without -s", i)
		}
	}
	ts := a.tunnels()
	if len(ts) != 3 ||
		ts[0].Encap != "UDP" || ts[0].Peer != e.outer4(2).String() || ts[0].LocalPort != 1701 || ts[0].PeerPort != 1701 ||
		ts[1].Encap != "UDP" || ts[1].Local != e.outer6(1).String() || ts[1].Peer != e.outer6(2).String() || ts[1].PeerPort != 1702 ||
		ts[2].Encap != "IP" || ts[2].Local != e.outer4(1).String() || ts[2].Peer != e.outer4(2).String() {
		t.Errorf("ul2tp -j -s show tunnel: %+v", ts)
	}
	for i, name := range taps {
		a.upTAP(name, fmt.Sprintf("10.211.%d.1/24", i))
		b.upTAP(name, fmt.Sprintf("10.211.%d.2/24", i))
	}
	for i := range taps {
		e.ping(e.nsA, fmt.Sprintf("10.211.%d.2", i))
	}
	for _, s := range a.sessions() {
		if s.Stats.RxPackets == 0 || s.Stats.TxPackets == 0 || s.Stats.RxCookieDiscards != 0 || s.Stats.RxInvalid != 0 {
			t.Errorf("A session %d/%d counters: %+v", s.TunnelID, s.SessionID, *s.Stats)
		}
	}
}

// l2tpv3UDPHeader is an L2TPv3 data header as sent over UDP: the flags and
// version word, reserved, session id, cookie and (with l2spec) the default
// sublayer without a sequence number.
func l2tpv3UDPHeader(flags uint16, sid uint32, cookie []byte, l2spec bool) []byte {
	b := binary.BigEndian.AppendUint16(nil, flags)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint32(b, sid)
	b = append(b, cookie...)
	if l2spec {
		b = append(b, 0, 0, 0, 0)
	}
	return b
}

// udpFrame is an Ethernet frame to dstMAC holding an IPv4 UDP datagram
// from src to dst:port (UDP checksum 0).
func udpFrame(dstMAC net.HardwareAddr, src, dst netip.Addr, port uint16, payload []byte) []byte {
	b := append([]byte(nil), dstMAC...)
	b = append(b, 0x02, 0x00, 0x5e, 0x21, 0x10, 0x01) // a locally administered source
	b = append(b, 0x08, 0x00)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = unix.IPPROTO_UDP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	b = append(b, ip...)
	b = binary.BigEndian.AppendUint16(b, 40000)
	b = binary.BigEndian.AppendUint16(b, port)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0)
	b = append(b, payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawSender sends UDP datagrams with any source port from one source
// address, through a raw socket opened in a namespace: the daemon there
// already holds the port, and a raw socket does not need it.
type rawSender struct {
	fd  int
	src netip.Addr
}

func rawUDPSender(t *testing.T, ns string, src netip.Addr) *rawSender {
	t.Helper()
	r := &rawSender{fd: -1, src: src}
	if err := inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			return err
		}
		r.fd = fd
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT); err != nil {
			return err
		}
		// Little receive buffer: it gets a copy of every UDP datagram in ns.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()})
	}); err != nil {
		if r.fd >= 0 {
			unix.Close(r.fd)
		}
		t.Fatalf("raw UDP socket in %s on %s: %v", ns, src, err)
	}
	t.Cleanup(func() { unix.Close(r.fd) })
	return r
}

func (r *rawSender) send(sport uint16, dst netip.Addr, dport uint16, payload []byte) error {
	if 8+len(payload) > 0xffff-20 {
		return errors.New("datagram too long")
	}
	b := binary.BigEndian.AppendUint16(nil, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = append(b, 0, 0) // no checksum, allowed over IPv4
	b = append(b, payload...)
	return unix.Sendto(r.fd, b, 0, &unix.SockaddrInet4{Addr: dst.As4()})
}
