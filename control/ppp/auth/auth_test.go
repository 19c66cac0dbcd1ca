package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// pair runs an authenticator and a peer against each other with a fake
// clock. drop, when set, decides whether the n-th frame (from 0) in a
// direction is lost.
type pair struct {
	a, p     Protocol
	now      time.Time
	dropA    func(n int) bool // frames from the authenticator
	dropP    func(n int) bool // frames from the peer
	nA, nP   int
	lastFail []byte // the last frame the authenticator sent
}

func (x *pair) toPeer(out [][]byte) {
	for _, f := range out {
		x.lastFail = append(x.lastFail[:0], f...)
		n := x.nA
		x.nA++
		if x.dropA != nil && x.dropA(n) {
			continue
		}
		x.toAuth(x.p.Receive(bytes.Clone(f), x.now))
	}
}

func (x *pair) toAuth(out [][]byte) {
	for _, f := range out {
		n := x.nP
		x.nP++
		if x.dropP != nil && x.dropP(n) {
			continue
		}
		x.toPeer(x.a.Receive(bytes.Clone(f), x.now))
	}
}

// run starts both sides and advances the clock to the next deadline until
// both are done or the clock passed a minute.
func (x *pair) run(t *testing.T) (Result, Result) {
	t.Helper()
	x.now = t0
	x.toAuth(x.p.Start(x.now))
	x.toPeer(x.a.Start(x.now))
	for range 1000 {
		if x.a.Result().Done && x.p.Result().Done {
			break
		}
		next, ok := time.Time{}, false
		for _, s := range []Protocol{x.a, x.p} {
			if d, armed := s.Deadline(); armed && (!ok || d.Before(next)) {
				next, ok = d, true
			}
		}
		if !ok || next.Sub(t0) > 5*time.Minute {
			break
		}
		x.now = next
		x.toPeer(x.a.Tick(x.now))
		x.toAuth(x.p.Tick(x.now))
	}
	return x.a.Result(), x.p.Result()
}

// secrets is the table the authenticators of the tests use.
func testSecrets(t *testing.T) *Secrets {
	t.Helper()
	s, err := ParseSecrets(strings.NewReader(`
# client  server  secret        addresses
alice     *       "open sesame" 10.0.0.5
User      lns     clientPass    *
`), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func authConfig(t *testing.T) AuthenticatorConfig {
	s := testSecrets(t)
	return AuthenticatorConfig{
		Name:   "lns",
		Verify: s.VerifyPassword,
		Secret: s.Secret,
		Rand:   bytes.NewReader(bytes.Repeat([]byte{7, 1, 2, 3, 4, 5, 6, 8, 9}, 1000)),
	}
}

func peerConfig(user, password string) PeerConfig {
	return PeerConfig{User: user, Password: password, Rand: bytes.NewReader(bytes.Repeat([]byte{0x21, 0x40, 0x23}, 1000))}
}

var methods = []Method{PAP, CHAPMD5, MSCHAPv2}

func TestRightPasswordAccepted(t *testing.T) {
	for _, m := range methods {
		for _, user := range []string{"alice", "User"} {
			pw := map[string]string{"alice": "open sesame", "User": "clientPass"}[user]
			x := &pair{a: NewAuthenticator(m, authConfig(t)), p: NewPeer(m, peerConfig(user, pw))}
			ra, rp := x.run(t)
			if !ra.Done || !ra.OK || ra.User != user || ra.Err != nil {
				t.Errorf("%v %s: authenticator result %+v", m, user, ra)
			}
			if !rp.Done || !rp.OK || rp.User != user || rp.Err != nil {
				t.Errorf("%v %s: peer result %+v", m, user, rp)
			}
			if x.a.Method() != m || x.p.Method() != m {
				t.Errorf("%v: Method() = %v, %v", m, x.a.Method(), x.p.Method())
			}
		}
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	wantMsg := map[Method]string{
		PAP:      "\x0dAccess denied",
		CHAPMD5:  "Access denied",
		MSCHAPv2: "E=691 R=0 C=",
	}
	for _, m := range methods {
		for _, user := range []string{"alice", "nobody"} {
			x := &pair{a: NewAuthenticator(m, authConfig(t)), p: NewPeer(m, peerConfig(user, "wrong"))}
			ra, rp := x.run(t)
			if !ra.Done || ra.OK || !errors.Is(ra.Err, ErrBadCredentials) || ra.User != user {
				t.Errorf("%v %s: authenticator result %+v", m, user, ra)
			}
			if !rp.Done || rp.OK || !errors.Is(rp.Err, ErrRefused) {
				t.Errorf("%v %s: peer result %+v", m, user, rp)
			}
			_, _, data, _ := header(x.lastFail)
			if !strings.HasPrefix(string(data), wantMsg[m]) {
				t.Errorf("%v %s: failure frame data %q, want prefix %q", m, user, data, wantMsg[m])
			}
			if m == MSCHAPv2 {
				if !strings.Contains(string(data), " V=3 M=Access denied") || !strings.Contains(rp.Err.Error(), "E=691") {
					t.Errorf("%v: failure %q, peer error %v", m, data, rp.Err)
				}
			}
		}
	}
}

// Lost frames: the retransmissions carry the exchange through (a lost PAP
// verdict: the peer's next Request gets it again).
func TestLossRecovered(t *testing.T) {
	for _, m := range methods {
		for _, lose := range []string{"first from authenticator", "first from peer", "first two each"} {
			x := &pair{a: NewAuthenticator(m, authConfig(t)), p: NewPeer(m, peerConfig("alice", "open sesame"))}
			switch lose {
			case "first from authenticator":
				x.dropA = func(n int) bool { return n == 0 }
			case "first from peer":
				x.dropP = func(n int) bool { return n == 0 }
			default:
				x.dropA = func(n int) bool { return n < 2 }
				x.dropP = func(n int) bool { return n < 2 }
			}
			ra, rp := x.run(t)
			if !ra.OK || !rp.OK {
				t.Errorf("%v, lost %s: authenticator %+v, peer %+v", m, lose, ra, rp)
			}
		}
	}
}

// A silent other side: each role gives up with ErrTimeout after its
// retransmissions or its wait.
func TestTimeouts(t *testing.T) {
	for _, m := range methods {
		never := func(int) bool { return true }
		x := &pair{a: NewAuthenticator(m, authConfig(t)), p: NewPeer(m, peerConfig("alice", "open sesame")), dropA: never, dropP: never}
		ra, rp := x.run(t)
		if !errors.Is(ra.Err, ErrTimeout) || !errors.Is(rp.Err, ErrTimeout) || ra.OK || rp.OK {
			t.Errorf("%v: authenticator %+v, peer %+v", m, ra, rp)
		}
		if _, armed := x.a.Deadline(); armed {
			t.Errorf("%v: authenticator timer armed after giving up", m)
		}
		if _, armed := x.p.Deadline(); armed {
			t.Errorf("%v: peer timer armed after giving up", m)
		}
		// The sender retransmitted exactly MaxTransmits times.
		sent := x.nP
		if m != PAP {
			sent = x.nA
		}
		if sent != DefaultMaxTransmits {
			t.Errorf("%v: %d requests or challenges sent, want %d", m, sent, DefaultMaxTransmits)
		}
	}
}

// After its verdict the authenticator answers a repeated request with the
// same verdict; a frame of the wrong identifier is ignored.
func TestVerdictRepeated(t *testing.T) {
	for _, m := range methods {
		a := NewAuthenticator(m, authConfig(t))
		p := NewPeer(m, peerConfig("alice", "open sesame"))
		out := p.Start(t0)
		if ch := a.Start(t0); m != PAP {
			out = p.Receive(bytes.Clone(ch[0]), t0)
		}
		req := bytes.Clone(out[0])
		v1 := bytes.Clone(a.Receive(req, t0)[0])
		v2 := a.Receive(req, t0)
		if len(v2) != 1 || !bytes.Equal(v1, v2[0]) {
			t.Errorf("%v: repeated verdict %x, first %x", m, v2, v1)
		}
		if r := a.Result(); !r.OK {
			t.Errorf("%v: %+v", m, r)
		}
		wrong := bytes.Clone(v1)
		wrong[1]++
		p.Receive(wrong, t0)
		if p.Result().Done {
			t.Errorf("%v: peer took a verdict with the wrong identifier", m)
		}
		p.Receive(v1, t0)
		if r := p.Result(); !r.OK {
			t.Errorf("%v: peer %+v", m, r)
		}
	}
}

// Malformed frames are ignored: no reply, no verdict, no panic.
func TestMalformedIgnored(t *testing.T) {
	bad := [][]byte{
		nil, {1}, {1, 2, 0}, {1, 2, 0, 3}, {1, 2, 0, 9, 1}, {1, 2, 0, 4},
		{1, 2, 0, 5, 9}, {1, 2, 0, 6, 0, 7}, {2, 2, 0, 6, 3, 7}, {3, 2, 0, 4}, {4, 2, 0, 4}, {9, 2, 0, 4},
	}
	for _, m := range methods {
		a := NewAuthenticator(m, authConfig(t))
		p := NewPeer(m, peerConfig("alice", "open sesame"))
		a.Start(t0)
		p.Start(t0)
		for _, f := range bad {
			if out := a.Receive(f, t0); len(out) != 0 {
				t.Errorf("%v: authenticator answered %x with %x", m, f, out)
			}
			if out := p.Receive(f, t0); len(out) != 0 {
				t.Errorf("%v: peer answered %x with %x", m, f, out)
			}
		}
		if a.Result().Done || p.Result().Done {
			t.Errorf("%v: malformed frames ended the exchange: %+v %+v", m, a.Result(), p.Result())
		}
	}
}

func TestOption(t *testing.T) {
	for _, m := range methods {
		got, ok := ParseOption(m.Option())
		if !ok || got != m {
			t.Errorf("ParseOption(%x) = %v, %v; want %v", m.Option(), got, ok, m)
		}
	}
	for _, d := range [][]byte{nil, {0xc0}, {0xc2, 0x23}, {0xc2, 0x23, 0x80}, {0xc0, 0x23, 5}} {
		if m, ok := ParseOption(d); ok {
			t.Errorf("ParseOption(%x) = %v", d, m)
		}
	}
	if NewAuthenticator(0, AuthenticatorConfig{}) != nil || NewPeer(9, PeerConfig{}) != nil {
		t.Error("unknown method gave a state machine")
	}
}

// RFC 1994 section 2.3: the authenticator may challenge again at any
// time; the peer answers, and a Failure to the new Response ends it.
func TestRechallenge(t *testing.T) {
	for _, m := range []Method{CHAPMD5, MSCHAPv2} {
		p := NewPeer(m, peerConfig("alice", "open sesame"))
		p.Start(t0)
		for i, right := range []bool{true, true, false} {
			cfg := authConfig(t)
			if !right {
				cfg.Secret = func(string, string) (string, bool) { return "changed", true }
			}
			cfg.Rand = bytes.NewReader(bytes.Repeat([]byte{byte(i + 1)}, 100)) // a new identifier each time
			a := NewAuthenticator(m, cfg)
			resp := p.Receive(bytes.Clone(a.Start(t0)[0]), t0)
			if len(resp) != 1 {
				t.Fatalf("%v challenge %d: no Response", m, i)
			}
			p.Receive(bytes.Clone(a.Receive(bytes.Clone(resp[0]), t0)[0]), t0)
			if r := p.Result(); !r.Done || r.OK != right {
				t.Errorf("%v challenge %d: peer %+v, want OK %v", m, i, r, right)
			}
		}
	}
}

// A Challenge retransmitted after our Response crossed it gets the same
// Response, and no timer stays armed once the verdict is in.
func TestCHAPPeerLateChallenge(t *testing.T) {
	for _, m := range []Method{CHAPMD5, MSCHAPv2} {
		a := NewAuthenticator(m, authConfig(t))
		p := NewPeer(m, peerConfig("alice", "open sesame"))
		p.Start(t0)
		ch := bytes.Clone(a.Start(t0)[0])
		resp := bytes.Clone(p.Receive(ch, t0)[0])
		p.Receive(bytes.Clone(a.Receive(resp, t0)[0]), t0)
		again := p.Receive(ch, t0.Add(time.Second))
		if len(again) != 1 || !bytes.Equal(again[0], resp) {
			t.Errorf("%v: late Challenge answered %x, want %x", m, again, resp)
		}
		if _, armed := p.Deadline(); armed {
			t.Errorf("%v: peer timer armed after the verdict", m)
		}
		if _, armed := a.Deadline(); armed {
			t.Errorf("%v: authenticator timer armed after the verdict", m)
		}
		if r := p.Result(); !r.OK {
			t.Errorf("%v: %+v", m, r)
		}
	}
}
