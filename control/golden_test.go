package control

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Golden control messages of real peers, captured by
// testdata/capture-xl2tpd.sh: an xl2tpd LAC (a) dialling an xl2tpd or
// l2tpns LNS (b); and by cmd/interop/v2-kernel-interop.sh (kernel-xl2tpd-*):
// xl2tpd + pppd on the Linux kernel's PPPoL2TP as LNS or LAC, ul2tpd the
// other side.

type goldenPkt struct {
	from byte // 'a' or 'b'
	data []byte
}

func readGolden(t *testing.T, name string) []goldenPkt {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata/golden", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkts []goldenPkt
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		dir, h, ok := strings.Cut(line, " ")
		if !ok || (dir != "a>b" && dir != "b>a") {
			t.Fatalf("bad line %q", line)
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, goldenPkt{dir[0], b})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return pkts
}

type goldenCase struct {
	name       string
	secret     string // tunnel authentication
	challenges int    // 1: the LAC challenges the LNS; 2: both ways
	lacHost    string
	lnsHost    string
	lnsVendor  string
	seq        string
}

func TestGoldenPeers(t *testing.T) {
	for _, tc := range []goldenCase{
		{"xl2tpd-plain", "", 0, "xl2tpd-lac", "xl2tpd-lns", "xelerance.com",
			"a:SCCRQ b:SCCRP a:SCCCN a:ICRQ b:ZLB b:ICRP b:ZLB a:ICCN b:ZLB b:CDN a:CDN a:ZLB b:ZLB " +
				"a:StopCCN b:ZLB b:ZLB a:ZLB a:StopCCN b:ZLB a:StopCCN b:ZLB"},
		{"xl2tpd-secret-hidden-hello", "secret", 2, "xl2tpd-lac", "xl2tpd-lns", "xelerance.com",
			"a:SCCRQ b:SCCRP a:SCCCN a:ICRQ b:ZLB b:ICRP b:ZLB a:ICCN b:ZLB b:CDN a:ZLB " +
				"b:HELLO a:ZLB a:HELLO b:ZLB a:StopCCN b:ZLB"},
		{"xl2tpd-lac-ul2tp-lns-plain", "", 0, "xl2tpd-lac", "ul2tp-lns", "ul2tp",
			"a:SCCRQ b:SCCRP a:SCCCN a:ICRQ b:ICRP a:ICCN a:CDN b:ZLB a:StopCCN b:ZLB"},
		{"xl2tpd-lac-ul2tp-lns-secret", "secret", 2, "xl2tpd-lac", "ul2tp-lns", "ul2tp",
			"a:SCCRQ b:SCCRP a:SCCCN a:ICRQ b:ICRP a:ICCN a:CDN b:ZLB a:StopCCN b:ZLB"},
		{"l2tpns-challenge", "secret", 1, "xl2tpd-lac", "l2tpns-lns", "",
			"a:SCCRQ b:SCCRP a:SCCCN a:ICRQ b:ZLB b:ICRP a:ICCN b:ZLB a:CDN b:ZLB a:StopCCN b:ZLB " +
				"b:StopCCN b:StopCCN b:StopCCN b:StopCCN"},
		{"kernel-xl2tpd-lns", "", 0, "ul2tp-lac", "k2-lns", "xelerance.com",
			"a:SCCRQ a:SCCRQ b:SCCRP b:ZLB a:SCCCN a:ICRQ b:ZLB b:ICRP a:ICCN b:ZLB b:ZLB b:CDN a:ZLB a:StopCCN b:ZLB"},
		{"kernel-xl2tpd-lns-secret", "kp-tunnel-secret", 2, "ul2tp-lac", "k2-lnss", "xelerance.com",
			"a:SCCRQ a:SCCRQ b:SCCRP a:SCCCN a:ICRQ b:ZLB b:ZLB b:ICRP b:ZLB a:ICCN b:ZLB b:CDN a:ZLB a:StopCCN b:ZLB"},
		{"kernel-xl2tpd-lac", "", 0, "k2-lac", "ul2tp-lns", "ul2tp",
			"a:SCCRQ b:SCCRP a:SCCCN a:ICRQ b:ICRP a:ICCN b:ZLB a:CDN b:ZLB b:StopCCN a:ZLB"},
		{"kernel-xl2tpd-lac-secret", "kp-tunnel-secret", 2, "k2-lacs", "ul2tp-lns", "ul2tp",
			"a:SCCRQ b:SCCRP a:SCCCN a:ICRQ b:ICRP a:ICCN b:ZLB a:CDN b:ZLB b:StopCCN a:ZLB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, readGolden(t, tc.name), tc)
		})
	}
}

func checkGolden(t *testing.T, pkts []goldenPkt, tc goldenCase) {
	secret, wantSeq := tc.secret, tc.seq
	var seq []string
	msgs := map[MessageType]Message{} // first of each type
	tunnelOf := map[byte]uint32{}     // tunnel id each side assigned
	scratch := make([]byte, MaxAVPLen)
	for i, p := range pkts {
		m, err := Parse(p.data)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		name := "ZLB"
		if !m.IsZLB() {
			name = m.Type().String()
			if _, ok := msgs[m.Type()]; !ok {
				msgs[m.Type()] = m
			}
		}
		seq = append(seq, string(p.from)+":"+name)
		if a, ok := FirstUnknownMandatory(m, KnownV2); ok {
			t.Errorf("packet %d (%s): unknown mandatory %v", i, name, a)
		}
		// Every AVP is readable; hidden ones unhide with the secret.
		it := m.AVPs()
		for a, ok := it.Next(); ok; a, ok = it.Next() {
			if a.Hidden() {
				if _, err := Unhide(scratch, a, []byte(secret), it.RandomVector()); err != nil {
					t.Errorf("packet %d: %v", i, err)
				}
			}
		}
		if a, ok := m.Find(AttrAssignedTunnelID); ok {
			id, err := a.Uint16()
			if err != nil {
				t.Fatal(err)
			}
			tunnelOf[p.from] = uint32(id)
		}
		// After SCCRQ/SCCRP each side addresses the tunnel id the other
		// assigned.
		if other := 'a' + 'b' - p.from; m.TunnelID != 0 && tunnelOf[other] != 0 && m.TunnelID != tunnelOf[other] {
			t.Errorf("packet %d from %c: tunnel id %d, peer assigned %d", i, p.from, m.TunnelID, tunnelOf[other])
		}
	}
	if got := strings.Join(seq, " "); got != wantSeq {
		t.Fatalf("sequence\n got %s\nwant %s", got, wantSeq)
	}

	str := func(m Message, at AttrType) string {
		a, ok := m.Find(at)
		if !ok {
			return ""
		}
		v, _ := a.Bytes()
		return string(v)
	}
	if h := str(msgs[MsgSCCRQ], AttrHostName); h != tc.lacHost {
		t.Errorf("SCCRQ host name %q", h)
	}
	if h := str(msgs[MsgSCCRP], AttrHostName); h != tc.lnsHost {
		t.Errorf("SCCRP host name %q", h)
	}
	if v := str(msgs[MsgSCCRP], AttrVendorName); v != tc.lnsVendor {
		t.Errorf("SCCRP vendor %q", v)
	}
	a, _ := msgs[MsgSCCRQ].Find(AttrProtocolVersion)
	if ver, rev, err := a.ProtocolVersion(); err != nil || ver != 1 || rev != 0 {
		t.Errorf("protocol version %d.%d %v", ver, rev, err)
	}
	a, _ = msgs[MsgCDN].Find(AttrResultCode)
	if rc, err := a.ResultCode(); err != nil || rc.Result != CDNResultLostCarrier {
		t.Errorf("CDN result %+v %v", rc, err)
	}
	a, _ = msgs[MsgStopCCN].Find(AttrResultCode)
	if rc, err := a.ResultCode(); err != nil || rc.Result == 0 {
		t.Errorf("StopCCN result %+v %v", rc, err)
	}
	if _, ok := msgs[MsgICRP].Find(AttrAssignedSessionID); !ok {
		t.Error("ICRP without Assigned Session ID")
	}

	// Tunnel authentication: SCCRP answers the SCCRQ's challenge, SCCCN
	// the SCCRP's.
	for k, c := range []struct{ chal, resp MessageType }{{MsgSCCRQ, MsgSCCRP}, {MsgSCCRP, MsgSCCCN}} {
		if k >= tc.challenges {
			if _, ok := msgs[c.chal].Find(AttrChallenge); ok {
				t.Errorf("%v carries a Challenge", c.chal)
			}
			continue
		}
		ch, ok1 := msgs[c.chal].Find(AttrChallenge)
		rs, ok2 := msgs[c.resp].Find(AttrChallengeResponse)
		if !ok1 || !ok2 {
			t.Fatalf("%v/%v: challenge %t response %t", c.chal, c.resp, ok1, ok2)
		}
		got, err := rs.ChallengeResponse()
		if want := ChallengeResponse(c.resp, []byte(secret), ch.Value); err != nil || got != want {
			t.Errorf("%v response %x, want %x (%v)", c.resp, got, want, err)
		}
	}

	// Replay each direction into a receiving Transport: every message
	// is delivered once, in the sender's Ns order, retransmissions
	// counted as duplicates.
	for _, from := range []byte{'a', 'b'} {
		tr := NewTransport(TransportConfig{})
		var sent, got []string
		seen := map[uint16]bool{}
		for _, p := range pkts {
			if p.from != from {
				continue
			}
			m, _ := Parse(p.data)
			if !m.IsZLB() && !seen[m.Ns] {
				seen[m.Ns] = true
				sent = append(sent, m.Type().String())
			}
			out, err := tr.Receive(p.data, t0)
			if err != nil {
				t.Fatalf("replay from %c: %v", from, err)
			}
			for _, d := range out.Deliver {
				dm, _ := Parse(d)
				got = append(got, dm.Type().String())
			}
		}
		if !eq(got, sent) {
			t.Errorf("replay from %c delivered %v, want %v", from, got, sent)
		}
	}
}

// The golden files are valid fuzz seeds too.
func TestGoldenParseClean(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.txt")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		pkts := readGolden(t, strings.TrimSuffix(filepath.Base(f), ".txt"))
		for i, p := range pkts {
			m, err := Parse(p.data)
			if err != nil || !bytes.Equal(m.Bytes(), p.data) {
				t.Errorf("%s packet %d: %v", f, i, err)
			}
		}
	}
}
