package auth

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pppdAuth is one authentication exchange of a capture in
// ../testdata/pppd-*.txt (ul2tpd against pppd 2.4.9 on the Linux kernel's
// PPPoL2TP, cmd/interop/v2-ppp-interop.sh): the PAP or CHAP packets
// (information fields), in order, and who sent each.
type pppdAuth struct {
	fromPPPD []bool
	pkts     [][]byte
}

// readPPPDAuth reads the packets of protocol proto from a capture.
func readPPPDAuth(t *testing.T, name string, proto uint16) pppdAuth {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var x pppdAuth
	s := bufio.NewScanner(f)
	for s.Scan() {
		if s.Text() == "" || strings.HasPrefix(s.Text(), "#") {
			continue
		}
		dir, h, _ := strings.Cut(s.Text(), " ")
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("%s: %q: %v", name, s.Text(), err)
		}
		b = bytes.TrimPrefix(b, []byte{0xff, 0x03})
		if len(b) < 2+4 || uint16(b[0])<<8|uint16(b[1]) != proto {
			continue
		}
		x.fromPPPD = append(x.fromPPPD, dir == "peer")
		x.pkts = append(x.pkts, b[2:])
	}
	if len(x.pkts) == 0 {
		t.Fatalf("%s: no packets of protocol %#04x", name, proto)
	}
	return x
}

// first returns the first packet with code from pppd (fromPPPD) or us.
func (x pppdAuth) first(t *testing.T, fromPPPD bool, code byte) []byte {
	t.Helper()
	for i, p := range x.pkts {
		if x.fromPPPD[i] == fromPPPD && p[0] == code {
			return p
		}
	}
	t.Fatalf("no packet with code %d from pppd=%v", code, fromPPPD)
	return nil
}

const pppdUser, pppdPassword = "kpuser", "kppass"

func pppdSecret(password string) func(client, server string) (string, bool) {
	return func(client, _ string) (string, bool) { return password, client == pppdUser }
}

// TestGoldenPPPDAuthenticator: as the LNS, our CHAP-MD5 and MS-CHAPv2
// authenticators, drawing the captured Challenge, check pppd's Response
// with the known password and answer exactly what ul2tpd answered (for
// MS-CHAPv2 a Success with the authenticator response pppd then checked);
// with a wrong password they refuse the same Response.
func TestGoldenPPPDAuthenticator(t *testing.T) {
	for _, tc := range []struct {
		file string
		m    Method
	}{
		{"pppd-lac-chap.txt", CHAPMD5},
		{"pppd-lac-mschap.txt", MSCHAPv2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			x := readPPPDAuth(t, tc.file, 0xc223)
			chal, resp, verdict := x.first(t, false, chapChallenge), x.first(t, true, chapResponse), x.first(t, false, chapSuccess)
			rnd := append([]byte{chal[1]}, chal[5:5+int(chal[4])]...)
			a := NewAuthenticator(tc.m, AuthenticatorConfig{Name: "ul2tp", Secret: pppdSecret(pppdPassword), Rand: bytes.NewReader(rnd)})
			if out := a.Start(t0); len(out) != 1 || !bytes.Equal(out[0], chal) {
				t.Fatalf("Challenge %x, want the captured %x", out, chal)
			}
			out := a.Receive(resp, t0)
			if len(out) != 1 || !bytes.Equal(out[0], verdict) {
				t.Fatalf("answer to pppd's Response %x, want the captured %x", out, verdict)
			}
			if r := a.Result(); !r.Done || !r.OK || r.User != pppdUser {
				t.Fatalf("result %+v", r)
			}
			bad := NewAuthenticator(tc.m, AuthenticatorConfig{Name: "ul2tp", Secret: pppdSecret("not" + pppdPassword), Rand: bytes.NewReader(rnd)})
			bad.Start(t0)
			if out := bad.Receive(resp, t0); len(out) != 1 || out[0][0] != chapFailure {
				t.Fatalf("wrong password: answer %x, want a Failure", out)
			}
			if r := bad.Result(); !r.Done || r.OK || !errors.Is(r.Err, ErrBadCredentials) {
				t.Fatalf("wrong password: result %+v", r)
			}
		})
	}
}

// TestGoldenPPPDPeer: as the LAC, our CHAP-MD5 and MS-CHAPv2 peers answer
// pppd's Challenge with the captured Response (MS-CHAPv2 drawing the
// captured peer challenge) and take its Success: for MS-CHAPv2 that means
// pppd's authenticator response matches ours.
func TestGoldenPPPDPeer(t *testing.T) {
	for _, tc := range []struct {
		file string
		m    Method
	}{
		{"pppd-lns-chap.txt", CHAPMD5},
		{"pppd-lns-mschap.txt", MSCHAPv2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			x := readPPPDAuth(t, tc.file, 0xc223)
			chal, resp, success := x.first(t, true, chapChallenge), x.first(t, false, chapResponse), x.first(t, true, chapSuccess)
			var rnd []byte
			if tc.m == MSCHAPv2 {
				rnd = resp[5 : 5+16]
			}
			p := NewPeer(tc.m, PeerConfig{User: pppdUser, Password: pppdPassword, Rand: bytes.NewReader(rnd)})
			p.Start(t0)
			if out := p.Receive(chal, t0); len(out) != 1 || !bytes.Equal(out[0], resp) {
				t.Fatalf("Response %x, want the captured %x", out, resp)
			}
			p.Receive(success, t0)
			if r := p.Result(); !r.Done || !r.OK {
				t.Fatalf("after pppd's Success %q: %+v", success[4:], r)
			}
		})
	}
}

// TestGoldenPPPDPeerRefused: pppd's MS-CHAPv2 Failure to a wrong password
// (capture pppd-lns-badpass.txt) fails our peer with ErrRefused, E=691.
func TestGoldenPPPDPeerRefused(t *testing.T) {
	x := readPPPDAuth(t, "pppd-lns-badpass.txt", 0xc223)
	chal, failure := x.first(t, true, chapChallenge), x.first(t, true, chapFailure)
	p := NewPeer(MSCHAPv2, PeerConfig{User: pppdUser, Password: "wrong"})
	p.Start(t0)
	out := p.Receive(chal, t0)
	if len(out) != 1 {
		t.Fatalf("no Response to %x", chal)
	}
	failure = bytes.Clone(failure)
	failure[1] = out[0][1]
	p.Receive(failure, t0)
	r := p.Result()
	if !r.Done || r.OK || !errors.Is(r.Err, ErrRefused) || !strings.Contains(r.Err.Error(), "E=691") {
		t.Fatalf("after pppd's Failure %q: %+v", failure[4:], r)
	}
}

// TestGoldenPPPDPAP: pppd's PAP Authenticate-Request as captured is
// accepted by our authenticator with the captured Ack, and our peer's
// request is the captured one.
func TestGoldenPPPDPAP(t *testing.T) {
	x := readPPPDAuth(t, "pppd-lac-pap.txt", 0xc023)
	req, ack := x.first(t, true, 1), x.first(t, false, 2)
	a := NewAuthenticator(PAP, AuthenticatorConfig{Verify: func(c, _, p string) bool { return c == pppdUser && p == pppdPassword }})
	a.Start(t0)
	if out := a.Receive(req, t0); len(out) != 1 || !bytes.Equal(out[0], ack) {
		t.Fatalf("answer to pppd's %x: %x, want the captured %x", req, out, ack)
	}
	if r := a.Result(); !r.OK || r.User != pppdUser {
		t.Fatalf("result %+v", r)
	}

	x = readPPPDAuth(t, "pppd-lns-pap.txt", 0xc023)
	ours, pppdAck := x.first(t, false, 1), x.first(t, true, 2)
	p := NewPeer(PAP, PeerConfig{User: pppdUser, Password: pppdPassword})
	out := p.Start(t0)
	if len(out) != 1 || !bytes.Equal(out[0][4:], ours[4:]) {
		t.Fatalf("our Authenticate-Request %x, want the captured %x (identifier aside)", out, ours)
	}
	pppdAck = bytes.Clone(pppdAck)
	pppdAck[1] = out[0][1]
	p.Receive(pppdAck, t0)
	if r := p.Result(); !r.OK {
		t.Fatalf("after pppd's Ack %x: %+v", pppdAck, r)
	}
}

// TestGoldenL2TPNSCHAPPeer: our CHAP-MD5 peer's Response to l2tpns'
// Challenge (../testdata/l2tpns-chap-ul2tp.txt, ul2tpd's LAC against
// l2tpns 2.4.1 with RADIUS user test/test) is the one l2tpns accepted.
func TestGoldenL2TPNSCHAPPeer(t *testing.T) {
	x := readPPPDAuth(t, "l2tpns-chap-ul2tp.txt", 0xc223)
	chal, resp, success := x.first(t, true, chapChallenge), x.first(t, false, chapResponse), x.first(t, true, chapSuccess)
	p := NewPeer(CHAPMD5, PeerConfig{User: "test", Password: "test"})
	p.Start(t0)
	if out := p.Receive(chal, t0); len(out) != 1 || !bytes.Equal(out[0], resp) {
		t.Fatalf("Response %x, want the captured %x", out, resp)
	}
	p.Receive(success, t0)
	if r := p.Result(); !r.Done || !r.OK {
		t.Fatalf("after l2tpns' Success: %+v", r)
	}
}
