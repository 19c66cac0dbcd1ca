package ppp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ul2tp/ul2tp/encap"
)

// goldenFrame is one PPP frame of a captured call.
type goldenFrame struct {
	fromPeer bool
	frame    []byte
}

// readGolden reads a capture written by testdata/capture-l2tpns.sh or
// cmd/interop/v2-ppp-interop.sh: "peer HEX" for the peer's frames, any
// other word for ours; lines starting with # are comments.
func readGolden(t *testing.T, name string) []goldenFrame {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var frames []goldenFrame
	s := bufio.NewScanner(f)
	for s.Scan() {
		if s.Text() == "" || strings.HasPrefix(s.Text(), "#") {
			continue
		}
		dir, h, ok := strings.Cut(s.Text(), " ")
		b, err := hex.DecodeString(h)
		if !ok || err != nil {
			t.Fatalf("%s: bad line %q", name, s.Text())
		}
		frames = append(frames, goldenFrame{dir == "peer", b})
	}
	return frames
}

// TestGoldenL2TPNSParses: every frame l2tpns and the probe exchanged
// parses, and every option list in a negotiation packet is well formed.
func TestGoldenL2TPNSParses(t *testing.T) {
	for _, g := range readGolden(t, "testdata/l2tpns-pap.txt") {
		proto, off, err := encap.ParsePPP(g.frame)
		if err != nil {
			t.Fatalf("%x: %v", g.frame, err)
		}
		if proto == encap.PPPIPv4 || proto == encap.PPPIPv6 {
			continue
		}
		p, err := parsePacket(g.frame[off:])
		if err != nil {
			t.Fatalf("%x: %v", g.frame, err)
		}
		if proto != encap.PPPPAP && p.code >= ConfReq && p.code <= ConfRej {
			if err := checkOptions(p.data); err != nil {
				t.Fatalf("%x: %v", g.frame, err)
			}
		}
	}
}

// TestGoldenL2TPNS plays our LAC against the frames l2tpns sent in a real
// call (PAP, IPCP with DNS, ping, echo). Where l2tpns answered the probe's
// own requests the test builds l2tpns' answer to ours; the IPCP exchange
// matches byte for byte and is replayed as captured.
func TestGoldenL2TPNS(t *testing.T) {
	var peer []goldenFrame
	for _, g := range readGolden(t, "testdata/l2tpns-pap.txt") {
		if g.fromPeer {
			peer = append(peer, g)
		}
	}
	find := func(prefix string) []byte {
		t.Helper()
		p, _ := hex.DecodeString(prefix)
		for _, g := range peer {
			if bytes.HasPrefix(g.frame, p) {
				return g.frame
			}
		}
		t.Fatalf("no frame from l2tpns starting %s", prefix)
		return nil
	}
	var sent [][]byte
	var methods []AuthMethod
	cfg := withAuth(Config{IPCP: &IPCPConfig{RequestDNS: true}}, nil, []AuthMethod{PAP}, "test", &methods)
	cfg.Send = func(f []byte) { sent = append(sent, bytes.Clone(f)) }
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	last := func() []byte { return sent[len(sent)-1] }
	l.Open(t0)
	ourReq := last()

	// l2tpns asks for MRU 1462, PAP, a magic number, MRRU and an Endpoint
	// Discriminator: we reject the multilink options, nothing else.
	lcpReq := find("ff03c02101")
	l.Receive(t0, lcpReq)
	if want := "ff03c0210401000f1104064e1307020acb0201"; hex.EncodeToString(last()) != want {
		t.Fatalf("answer to l2tpns' Configure-Request: %x, want %s", last(), want)
	}
	// Its next request drops them (as l2tpns does on a Reject); we ack.
	opts := lcpReq[8:]
	trimmed := opts[:len(opts)-len("1104064e1307020acb0201")/2]
	l.Receive(t0, appendPacket([]byte{0xff, 0x03, 0xc0, 0x21}, ConfReq, 2, trimmed))
	if last()[4] != ConfAck {
		t.Fatalf("answer to the trimmed request: %x", last())
	}
	// It acks our request.
	l.Receive(t0, append([]byte{0xff, 0x03, 0xc0, 0x21, ConfAck}, ourReq[5:]...))
	if l.Phase() != PhaseAuthenticate || len(methods) != 1 || methods[0] != PAP {
		t.Fatalf("phase %v methods %v", l.Phase(), methods)
	}
	if l.PeerMRU() != 1462 {
		t.Errorf("peer MRU %d, want 1462", l.PeerMRU())
	}

	// PAP: l2tpns' Authenticate-Ack moves us to the network phase, where
	// we ask for an address and DNS servers.
	l.Receive(t0, find("ff03c02302"))
	if l.Phase() != PhaseNetwork || l.User() != "alice" {
		t.Fatalf("phase %v user %q after PAP Ack", l.Phase(), l.User())
	}
	if want := "ff03802101010016030600000000810600000000830600000000"; hex.EncodeToString(last()) != want {
		t.Fatalf("our IPCP request %x, want %s", last(), want)
	}
	// From here on the capture replays as is: l2tpns' request is acked,
	// its Nak gives us 10.203.1.1 and DNS 10.203.2.53, it acks our
	// second request.
	l.Receive(t0, find("ff03802101"))
	if want := "ff0380210201000a03060acb0201"; hex.EncodeToString(last()) != want {
		t.Fatalf("answer to l2tpns' IPCP request %x, want %s", last(), want)
	}
	l.Receive(t0, find("ff03802103"))
	if want := "ff0380210102001603060acb010181060acb0235830600000000"; hex.EncodeToString(last()) != want {
		t.Fatalf("IPCP request after the Nak %x, want %s", last(), want)
	}
	l.Receive(t0, find("ff03802102"))
	if l.Phase() != PhaseOpen {
		t.Fatalf("phase %v after l2tpns' IPCP Ack", l.Phase())
	}
	local, remote := l.IPv4()
	if local != netip.MustParseAddr("10.203.1.1") || remote != netip.MustParseAddr("10.203.2.1") {
		t.Errorf("addresses %v peer %v", local, remote)
	}
	if dns := l.DNS(); dns != [2]netip.Addr{netip.MustParseAddr("10.203.2.53")} {
		t.Errorf("DNS %v", dns)
	}

	// A ping reply from l2tpns is IPv4 for the TUN.
	reply := find("ff030021")
	if c, pkt := l.Receive(t0, reply); c != IPv4 || !bytes.Equal(pkt, reply[4:]) {
		t.Errorf("data frame: %v %x", c, pkt)
	}

	// Its Echo-Request gets our Echo-Reply with the same identifier.
	echo := find("ff03c02109")
	l.Receive(t0, echo)
	want := append([]byte{0xff, 0x03, 0xc0, 0x21, EchoReply, echo[5], 0, 8}, ourReq[len(ourReq)-4:]...)
	if !bytes.Equal(last(), want) {
		t.Errorf("echo reply %x, want %x", last(), want)
	}

	// We hang up; its Terminate-Ack ends the link.
	l.Close(t0, "")
	if last()[4] != TermReq {
		t.Fatalf("sent %x, want a Terminate-Request", last())
	}
	l.Receive(t0, find("ff03c02106"))
	if l.Phase() != PhaseDead || l.Failure() != nil {
		t.Errorf("phase %v failure %v after Terminate-Ack", l.Phase(), l.Failure())
	}
}
