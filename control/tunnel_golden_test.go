package control

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// goldenIDs reads what the recorded peers chose: the tunnel id each
// side assigned, the LAC's first session id, and each side's Challenge.
type goldenIDs struct {
	tunnel    map[byte]uint32
	session   uint32 // the LAC's, from its ICRQ
	lnsSess   uint32 // the LNS's, from its ICRP
	challenge map[byte][]byte
}

func readGoldenIDs(t *testing.T, pkts []goldenPkt) goldenIDs {
	g := goldenIDs{tunnel: map[byte]uint32{}, challenge: map[byte][]byte{}}
	for _, p := range pkts {
		m, _ := Parse(p.data)
		if m.IsZLB() {
			continue
		}
		if a, ok := m.Find(AttrAssignedTunnelID); ok && g.tunnel[p.from] == 0 {
			id, _ := a.Uint16()
			g.tunnel[p.from] = uint32(id)
		}
		if a, ok := m.Find(AttrChallenge); ok {
			g.challenge[p.from] = a.Value
		}
		if a, ok := m.Find(AttrAssignedSessionID); ok {
			id, _ := a.Uint16()
			switch {
			case m.Type() == MsgICRQ && g.session == 0:
				g.session = uint32(id)
			case m.Type() == MsgICRP && g.lnsSess == 0:
				g.lnsSess = uint32(id)
			}
		}
	}
	return g
}

// randThen is a random source that first yields the given bytes: our
// Challenge is then the recorded peer's, and so is the response to it.
func randThen(b []byte) io.Reader {
	return io.MultiReader(bytes.NewReader(b), rand.NewChaCha8([32]byte{}))
}

var goldenCases = []goldenCase{
	{name: "xl2tpd-plain"},
	{name: "xl2tpd-secret-hidden-hello", secret: "secret", challenges: 2},
	{name: "l2tpns-challenge", secret: "secret", challenges: 1},
}

// TestGoldenLAC plays our Tunnel as the LAC (a) against the recorded LNS
// (b): it opens the tunnel and a call and is fed the LNS's messages. Our
// messages carry the same Ns as the recorded LAC's, so the LNS's acks
// line up.
func TestGoldenLAC(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			pkts := readGolden(t, tc.name)
			g := readGoldenIDs(t, pkts)
			cfg := TunnelConfig{LocalID: g.tunnel['a'], HostName: "xl2tpd-lac", Secret: []byte(tc.secret),
				Rand: randThen(g.challenge['a'])}
			lac, err := NewTunnel(cfg, Initiator)
			if err != nil {
				t.Fatal(err)
			}
			lac.nextSession = g.session
			var sent []Message
			var events []Event
			take := func(out TunnelOutput) {
				for _, p := range out.Transmit {
					m, err := Parse(append([]byte(nil), p...))
					if err != nil {
						t.Fatalf("sent malformed %x: %v", p, err)
					}
					sent = append(sent, m)
				}
				events = append(events, out.Events...)
			}
			out, _ := lac.Open(t0)
			take(out)
			called := false
			for _, p := range pkts {
				if p.from != 'b' {
					continue
				}
				take(lac.Receive(p.data, t0))
				if lac.State() == StateEstablished && !called {
					called = true
					_, out, err := lac.OpenCall(CallParams{Kind: IncomingCall}, t0)
					if err != nil {
						t.Fatal(err)
					}
					take(out)
				}
			}
			k := kinds(events)
			if len(k) < 2 || k[0] != "tunnel-up" || k[1] != "call-up" {
				t.Fatalf("events %v", k)
			}
			up := events[0].Tunnel
			if up.PeerID != g.tunnel['b'] || up.HostName == "" {
				t.Errorf("tunnel %+v", up)
			}
			for _, e := range events {
				if (e.Kind == EventTunnelDown || e.Kind == EventCallDown) && e.By != ByPeer {
					t.Errorf("%v by %v: %v", e.Kind, e.By, e.Result)
				}
			}
			// Our SCCCN equals the recorded one's response.
			if tc.challenges == 2 {
				want := findType(t, pkts, 'a', MsgSCCCN)
				a, _ := want.Find(AttrChallengeResponse)
				b, _ := sent[1].Find(AttrChallengeResponse)
				if sent[1].Type() != MsgSCCCN || !bytes.Equal(a.Value, b.Value) {
					t.Errorf("SCCCN response %x, recorded %x", b.Value, a.Value)
				}
			}
		})
	}
}

func findType(t *testing.T, pkts []goldenPkt, from byte, typ MessageType) Message {
	for _, p := range pkts {
		if m, _ := Parse(p.data); p.from == from && !m.IsZLB() && m.Type() == typ {
			return m
		}
	}
	t.Fatalf("no %s from %c", typ, from)
	return Message{}
}

// TestGoldenLNS plays our Tunnel as the LNS (b), fed the recorded LAC's
// messages: it answers the real SCCRQ with a valid SCCRP and, when the
// recorded LNS challenged too (our Challenge is made the same), accepts
// the LAC's SCCCN and its call.
func TestGoldenLNS(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			pkts := readGolden(t, tc.name)
			g := readGoldenIDs(t, pkts)
			cfg := TunnelConfig{LocalID: g.tunnel['b'], HostName: "ul2tp-lns", Secret: []byte(tc.secret),
				Rand: randThen(g.challenge['b'])}
			// With challenges == 1 the recorded LNS did not challenge
			// back; with the secret we do, and the LAC's SCCCN, which
			// has no response, is refused: checked below.
			lns, err := NewTunnel(cfg, Responder)
			if err != nil {
				t.Fatal(err)
			}
			lns.nextSession = g.lnsSess
			var events []Event
			var sent []Message
			for i, p := range pkts {
				if p.from != 'a' {
					continue
				}
				out := lns.Receive(p.data, t0)
				for _, q := range out.Transmit {
					m, err := Parse(append([]byte(nil), q...))
					if err != nil {
						t.Fatalf("sent malformed %x: %v", q, err)
					}
					sent = append(sent, m)
				}
				events = append(events, out.Events...)
				if i == 0 {
					checkSCCRP(t, tc, g, pkts, sent)
				}
			}
			k := kinds(events)
			switch tc.challenges {
			case 1:
				if len(k) != 1 || events[0].Result.Code != StopResultNotAuthorized {
					t.Errorf("events %v %+v", k, events)
				}
			default:
				if len(k) < 2 || k[0] != "tunnel-up" {
					t.Fatalf("events %v", k)
				}
				if events[0].Tunnel.HostName != "xl2tpd-lac" || events[0].Tunnel.PeerID != g.tunnel['a'] {
					t.Errorf("tunnel %+v", events[0].Tunnel)
				}
				// The LAC's call came up; its CDN and StopCCN take the
				// call and the tunnel down.
				if !eq(k, []string{"tunnel-up", "call-up", "call-down", "tunnel-down"}) || events[1].Call.PeerID != g.session {
					t.Errorf("events %v, call %+v", k, events[1].Call)
				}
				if events[3].By != ByPeer || events[3].Result.Code == 0 {
					t.Errorf("tunnel down %v %v", events[3].By, events[3].Result)
				}
			}
		})
	}
}

func checkSCCRP(t *testing.T, tc goldenCase, g goldenIDs, pkts []goldenPkt, sent []Message) {
	t.Helper()
	if len(sent) != 1 || sent[0].Type() != MsgSCCRP {
		t.Fatalf("answer to the SCCRQ: %d messages", len(sent))
	}
	m := sent[0]
	if m.TunnelID != g.tunnel['a'] || m.Ns != 0 || m.Nr != 1 {
		t.Errorf("SCCRP header %+v", m.Header)
	}
	if a, ok := FirstUnknownMandatory(m, KnownV2); ok {
		t.Errorf("unknown mandatory %v", a)
	}
	for _, at := range []AttrType{AttrProtocolVersion, AttrFramingCaps, AttrHostName, AttrAssignedTunnelID} {
		if _, ok := m.Find(at); !ok {
			t.Errorf("SCCRP without %s", at)
		}
	}
	if tc.challenges > 0 {
		// The same response the recorded LNS gave to the same challenge.
		want := findType(t, pkts, 'b', MsgSCCRP)
		a, _ := want.Find(AttrChallengeResponse)
		b, ok := m.Find(AttrChallengeResponse)
		if !ok || !bytes.Equal(a.Value, b.Value) {
			t.Errorf("SCCRP response %x, recorded %x", b.Value, a.Value)
		}
	}
}
