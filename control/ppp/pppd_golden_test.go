package ppp

import (
	"bytes"
	"io"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/control/ppp/auth"
	"github.com/ul2tp/ul2tp/encap"
)

// The pppd captures (testdata/pppd-*.txt) are real calls between ul2tpd
// and pppd 2.4.9 driven by xl2tpd on the Linux kernel's PPPoL2TP, written
// by cmd/interop/v2-ppp-interop.sh (PPP_GOLDEN): "peer" lines are pppd's
// frames, "ul2tp" lines ours. In lns-* files pppd is the LNS (we dial as
// the LAC), in lac-* files pppd is the LAC (we are the LNS). The guest's
// user is kpuser, password kppass; its LNS is 10.203.0.1 with the pool
// 10.203.0.10-10.203.0.50, ours the same.

// pppdAuthAdapter is an auth.Protocol as an Authenticator (the glue
// control/ppp/call has, without the import).
type pppdAuthAdapter struct{ p auth.Protocol }

func (a pppdAuthAdapter) Start(now time.Time) [][]byte { return a.p.Start(now) }
func (a pppdAuthAdapter) Receive(now time.Time, pkt []byte) [][]byte {
	return a.p.Receive(pkt, now)
}
func (a pppdAuthAdapter) Tick(now time.Time) [][]byte {
	if d, ok := a.p.Deadline(); !ok || now.Before(d) {
		return nil
	}
	return a.p.Tick(now)
}
func (a pppdAuthAdapter) Result() (done, ok bool, user string, err error) {
	r := a.p.Result()
	return r.Done, r.OK, r.User, r.Err
}

// splitPPP returns a control frame's protocol and information field.
func splitPPP(t *testing.T, f []byte) (uint16, []byte) {
	t.Helper()
	proto, off, err := encap.ParsePPP(f)
	if err != nil {
		t.Fatalf("%x: %v", f, err)
	}
	return proto, f[off:]
}

// capturedRand is what our side drew in the capture: the CHAP Challenge's
// identifier and value (as authenticator) or MS-CHAPv2's peer challenge (as
// peer), so the replay's authentication frames are the captured ones.
func capturedRand(t *testing.T, frames []goldenFrame, lns bool) io.Reader {
	t.Helper()
	for _, g := range frames {
		proto, info := splitPPP(t, g.frame)
		if g.fromPeer || proto != encap.PPPCHAP || len(info) < 5 {
			continue
		}
		if lns && info[0] == 1 { // our Challenge: id, then the value
			return bytes.NewReader(append([]byte{info[1]}, info[5:5+int(info[4])]...))
		}
		if !lns && info[0] == 2 && info[4] == 49 { // our MS-CHAPv2 Response
			return bytes.NewReader(info[5 : 5+16])
		}
	}
	return bytes.NewReader(nil)
}

// replayPPPD plays our Link against pppd's frames of a capture. Our LCP
// Configure-Requests carry a random magic number, so pppd's Ack of one is
// rebuilt from the request we sent in the replay, and pppd's answers to our
// requests take the identifier of our last request; every other pppd frame
// is fed as captured, up to our last frame in the capture (pppd's frames
// after it went to a call we had already ended). It returns the Link, the
// frames it sent, with the replay's magic number replaced by the captured
// one, and the addresses IPCP agreed when the link opened.
func replayPPPD(t *testing.T, name string, lns bool, method AuthMethod) (l *Link, sent [][]byte, local, peer netip.Addr) {
	t.Helper()
	frames := readGolden(t, filepath.Join("testdata", name))
	for len(frames) > 0 && frames[len(frames)-1].fromPeer {
		frames = frames[:len(frames)-1]
	}
	cfg := Config{Send: func(f []byte) { sent = append(sent, bytes.Clone(f)) }}
	cfg.OnPhase = func(p Phase) {
		if p == PhaseOpen {
			local, peer = l.IPv4()
		}
	}
	rnd := capturedRand(t, frames, lns)
	var assigned netip.Addr
	if lns {
		cfg.LCP.Require = []AuthMethod{method}
		// The address we gave in the capture: in our Ack of pppd's
		// IPCP request.
		for _, g := range frames {
			if proto, info := splitPPP(t, g.frame); !g.fromPeer && proto == encap.PPPIPCP && info[0] == ConfAck && len(info) >= 10 {
				assigned = netip.AddrFrom4([4]byte(info[6:10]))
			}
		}
		cfg.IPCP = &IPCPConfig{Local: netip.MustParseAddr("10.203.0.1"), DNS: [2]netip.Addr{netip.MustParseAddr("10.203.0.53")},
			Assign: func() (netip.Addr, error) { return assigned, nil }}
	} else {
		cfg.LCP.Accept = []AuthMethod{MSCHAPv2, CHAPMD5, PAP}
		cfg.IPCP = &IPCPConfig{RequestDNS: true}
	}
	cfg.NewAuth = func(m AuthMethod, asAuthenticator bool) (Authenticator, error) {
		am := map[AuthMethod]auth.Method{PAP: auth.PAP, CHAPMD5: auth.CHAPMD5, MSCHAPv2: auth.MSCHAPv2}[m]
		if asAuthenticator {
			return pppdAuthAdapter{auth.NewAuthenticator(am, auth.AuthenticatorConfig{Name: "ul2tp", Rand: rnd,
				Verify: func(c, _, p string) bool { return c == "kpuser" && p == "kppass" },
				Secret: func(c, _ string) (string, bool) { return "kppass", c == "kpuser" }})}, nil
		}
		return pppdAuthAdapter{auth.NewPeer(am, auth.PeerConfig{User: "kpuser", Password: "kppass", Rand: rnd})}, nil
	}
	var err error
	if l, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	l.Open(t0)
	lastReq := func(proto uint16) []byte {
		for i := len(sent) - 1; i >= 0; i-- {
			if p, info := splitPPP(t, sent[i]); p == proto && info[0] == ConfReq {
				return info
			}
		}
		return nil
	}
	for _, g := range frames {
		if !g.fromPeer {
			continue
		}
		f := g.frame
		proto, info := splitPPP(t, f)
		if (proto == encap.PPPLCP || proto == encap.PPPIPCP) && len(info) >= 4 && info[0] >= ConfAck && info[0] <= ConfRej {
			req := lastReq(proto)
			if req == nil {
				t.Fatalf("pppd's %x answers no request of ours", f)
			}
			info = bytes.Clone(info)
			info[1] = req[1]
			if proto == encap.PPPLCP && info[0] == ConfAck {
				info = append([]byte{ConfAck}, req[1:]...)
			}
			f = append([]byte{0xff, 0x03, byte(proto >> 8), byte(proto)}, info...)
		}
		if proto == encap.PPPPAP && len(info) >= 2 && (info[0] == 2 || info[0] == 3) {
			for i := len(sent) - 1; i >= 0; i-- {
				if p, our := splitPPP(t, sent[i]); p == encap.PPPPAP && our[0] == 1 {
					info = bytes.Clone(info)
					info[1] = our[1]
					f = append([]byte{0xff, 0x03, 0xc0, 0x23}, info...)
					break
				}
			}
		}
		c, pkt := l.Receive(t0, f)
		if proto == encap.PPPIPv4 && (c != IPv4 || !bytes.Equal(pkt, f[len(f)-len(pkt):])) {
			t.Errorf("pppd's IPv4 packet %x: class %v", f, c)
		}
	}
	// Our magic number in the capture and in the replay.
	magic := func(req []byte) []byte {
		for o := req[4:]; len(o) >= 2 && int(o[1]) >= 2 && int(o[1]) <= len(o); o = o[o[1]:] {
			if o[0] == optMagic && o[1] == 6 {
				return o[2:6]
			}
		}
		return nil
	}
	var captured []byte
	for _, g := range frames {
		if p, info := splitPPP(t, g.frame); !g.fromPeer && p == encap.PPPLCP && info[0] == ConfReq {
			captured = magic(info)
			break
		}
	}
	ours := magic(lastReq(encap.PPPLCP))
	if len(captured) == 4 && len(ours) == 4 {
		for i, f := range sent {
			if p, _ := splitPPP(t, f); p == encap.PPPLCP {
				sent[i] = bytes.ReplaceAll(f, ours, captured)
			}
		}
	}
	return l, sent, local, peer
}

// checkSubsequence: every frame the replay sent was sent in the capture,
// in the same order (the capture has more: retransmissions, data).
func checkSubsequence(t *testing.T, name string, sent [][]byte) {
	t.Helper()
	var ours [][]byte
	for _, g := range readGolden(t, filepath.Join("testdata", name)) {
		if !g.fromPeer {
			ours = append(ours, g.frame)
		}
	}
	i := 0
	for _, f := range sent {
		for i < len(ours) && !bytes.Equal(ours[i], f) {
			i++
		}
		if i == len(ours) {
			t.Errorf("%s: the replay sent %x, not in the capture (in this order)", name, f)
			return
		}
		i++
	}
}

// TestGoldenPPPDParses: every frame of every pppd capture parses, and every
// option list of a negotiation packet is well formed.
func TestGoldenPPPDParses(t *testing.T) {
	files, _ := filepath.Glob("testdata/pppd-*.txt")
	if len(files) == 0 {
		t.Fatal("no testdata/pppd-*.txt")
	}
	for _, name := range files {
		for _, g := range readGolden(t, name) {
			proto, off, err := encap.ParsePPP(g.frame)
			if err != nil {
				t.Fatalf("%s: %x: %v", name, g.frame, err)
			}
			if proto == encap.PPPIPv4 || proto == encap.PPPIPv6 {
				continue
			}
			p, err := parsePacket(g.frame[off:])
			if err != nil {
				t.Fatalf("%s: %x: %v", name, g.frame, err)
			}
			if (proto == encap.PPPLCP || proto == encap.PPPIPCP) && p.code >= ConfReq && p.code <= ConfRej {
				if err := checkOptions(p.data); err != nil {
					t.Fatalf("%s: %x: %v", name, g.frame, err)
				}
			}
		}
	}
}

// TestGoldenPPPD replays each capture against our Link in the role we had:
// LCP (pppd's MRU 1400, its auth demand or ours), authentication with the
// captured randomness (so CHAP, MS-CHAPv2 and PAP frames match byte for
// byte), IPCP to the captured addresses (pppd rejects our DNS options as
// LNS), the pings, pppd's echoes and, where pppd hung up first, its
// Terminate-Request: everything we send is what ul2tpd sent to pppd.
func TestGoldenPPPD(t *testing.T) {
	for _, tc := range []struct {
		file          string
		lns           bool // we are the LNS (pppd the LAC)
		method        AuthMethod
		local, remote string
	}{
		{"pppd-lns-pap.txt", false, PAP, "10.203.0.10", "10.203.0.1"},
		{"pppd-lns-chap.txt", false, CHAPMD5, "10.203.0.10", "10.203.0.1"},
		{"pppd-lns-mschap.txt", false, MSCHAPv2, "10.203.0.10", "10.203.0.1"},
		{"pppd-lac-pap.txt", true, PAP, "10.203.0.1", "10.203.0.10"},
		{"pppd-lac-chap.txt", true, CHAPMD5, "10.203.0.1", "10.203.0.10"},
		{"pppd-lac-mschap.txt", true, MSCHAPv2, "10.203.0.1", "10.203.0.10"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			l, sent, local, remote := replayPPPD(t, tc.file, tc.lns, tc.method)
			checkSubsequence(t, tc.file, sent)
			if l.User() != "kpuser" {
				t.Errorf("user %q, want kpuser (failure %v)", l.User(), l.Failure())
			}
			if l.PeerMRU() != 1400 {
				t.Errorf("pppd's MRU %d, want 1400", l.PeerMRU())
			}
			if local != netip.MustParseAddr(tc.local) || remote != netip.MustParseAddr(tc.remote) {
				t.Errorf("IPCP opened with %v peer %v, want %s peer %s", local, remote, tc.local, tc.remote)
			}
			// lns-*: the capture ends with the link open (we ended the
			// call); lac-*: pppd terminated it and we acked (the link
			// stays in Terminate for a restart interval).
			if want := map[bool]Phase{false: PhaseOpen, true: PhaseTerminate}[tc.lns]; l.Phase() != want {
				t.Errorf("phase %v at the end, want %v (failure %v)", l.Phase(), want, l.Failure())
			}
		})
	}
}
