package ppp

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/encap"
)

var t0 = time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)

// pair is two Links joined back to back, with a fake clock and optional loss.
type pair struct {
	t      testing.TB
	a, b   *Link
	now    time.Time
	toA    [][]byte
	toB    [][]byte
	drop   func(toB bool, frame []byte) bool
	sentA  [][]byte // every frame a sent
	sentB  [][]byte
	phaseA []Phase
	phaseB []Phase
}

func newPair(t testing.TB, ca, cb Config) *pair {
	t.Helper()
	p := &pair{t: t, now: t0}
	ca.Send = func(f []byte) {
		f = bytes.Clone(f)
		p.sentA = append(p.sentA, f)
		if p.drop == nil || !p.drop(true, f) {
			p.toB = append(p.toB, f)
		}
	}
	cb.Send = func(f []byte) {
		f = bytes.Clone(f)
		p.sentB = append(p.sentB, f)
		if p.drop == nil || !p.drop(false, f) {
			p.toA = append(p.toA, f)
		}
	}
	ca.OnPhase = func(ph Phase) { p.phaseA = append(p.phaseA, ph) }
	cb.OnPhase = func(ph Phase) { p.phaseB = append(p.phaseB, ph) }
	if ca.Rand == nil {
		ca.Rand = rand.New(rand.NewPCG(1, 2))
	}
	if cb.Rand == nil {
		cb.Rand = rand.New(rand.NewPCG(3, 4))
	}
	var err error
	if p.a, err = New(ca); err != nil {
		t.Fatal(err)
	}
	if p.b, err = New(cb); err != nil {
		t.Fatal(err)
	}
	return p
}

// run delivers frames and advances the clock to each deadline for d.
func (p *pair) run(d time.Duration) {
	end := p.now.Add(d)
	for i := 0; i < 100000; i++ {
		if len(p.toA) > 0 || len(p.toB) > 0 {
			toA, toB := p.toA, p.toB
			p.toA, p.toB = nil, nil
			for _, f := range toB {
				p.b.Receive(p.now, f)
			}
			for _, f := range toA {
				p.a.Receive(p.now, f)
			}
			continue
		}
		next := earliest(p.a.Deadline(), p.b.Deadline())
		if next.IsZero() || next.After(end) {
			p.now = end
			return
		}
		if next.After(p.now) {
			p.now = next
		}
		p.a.Tick(p.now)
		p.b.Tick(p.now)
	}
	p.t.Fatal("pair did not settle")
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

var (
	lnsAddr  = netip.MustParseAddr("192.0.2.1")
	poolAddr = netip.MustParseAddr("192.0.2.10")
	dns1     = netip.MustParseAddr("198.51.100.53")
	dns2     = netip.MustParseAddr("198.51.100.54")
)

// lnsConfig is a server: it assigns an address from a one-address pool
// and pushes DNS.
func lnsConfig() Config {
	return Config{
		LCP: LCPConfig{MRU: 1400, PFC: true, ACFC: true},
		IPCP: &IPCPConfig{Local: lnsAddr, DNS: [2]netip.Addr{dns1, dns2},
			Assign: func() (netip.Addr, error) { return poolAddr, nil }},
		IPv6CP: &IPv6CPConfig{Local: [8]byte{0, 0, 0, 0, 0, 0, 0, 1}, Peer: [8]byte{0, 0, 0, 0, 0, 0, 0, 2}},
	}
}

// lacConfig is a client: it asks for an address and DNS.
func lacConfig() Config {
	return Config{
		LCP:    LCPConfig{PFC: true, ACFC: true},
		IPCP:   &IPCPConfig{RequestDNS: true},
		IPv6CP: &IPv6CPConfig{},
	}
}

func (p *pair) open() {
	p.a.Open(p.now)
	p.b.Open(p.now)
	p.run(30 * time.Second)
}

func TestLinkOpensLNSAndLAC(t *testing.T) {
	p := newPair(t, lnsConfig(), lacConfig())
	p.open()
	for _, l := range []*Link{p.a, p.b} {
		if l.Phase() != PhaseOpen {
			t.Fatalf("phase %v, want open (failure %v)", l.Phase(), l.Failure())
		}
	}
	wantPhases := []Phase{PhaseEstablish, PhaseAuthenticate, PhaseNetwork, PhaseOpen}
	if fmt.Sprint(p.phaseA) != fmt.Sprint(wantPhases) || fmt.Sprint(p.phaseB) != fmt.Sprint(wantPhases) {
		t.Errorf("phases %v and %v, want %v", p.phaseA, p.phaseB, wantPhases)
	}
	if local, peer := p.b.IPv4(); local != poolAddr || peer != lnsAddr {
		t.Errorf("LAC IPv4 %v peer %v, want %v peer %v", local, peer, poolAddr, lnsAddr)
	}
	if local, peer := p.a.IPv4(); local != lnsAddr || peer != poolAddr {
		t.Errorf("LNS IPv4 %v peer %v, want %v peer %v", local, peer, lnsAddr, poolAddr)
	}
	if d := p.b.DNS(); d != [2]netip.Addr{dns1, dns2} {
		t.Errorf("LAC DNS %v", d)
	}
	la, pa, ok := p.a.IPv6()
	lb, pb, okb := p.b.IPv6()
	if !ok || !okb || la != pb || lb != pa || la == lb {
		t.Errorf("IPv6 ids %x/%x and %x/%x", la, pa, lb, pb)
	}
	if lb != [8]byte{7: 2} {
		t.Errorf("LAC interface id %x, want the LNS's suggestion", lb)
	}
	if LinkLocal(la).String() != "fe80::1" {
		t.Errorf("link-local %v", LinkLocal(la))
	}
	if p.b.PeerMRU() != 1400 || p.a.PeerMRU() != DefaultMRU {
		t.Errorf("peer MRUs %d and %d", p.a.PeerMRU(), p.b.PeerMRU())
	}
	if h := p.a.Header(); !h.ACFC || !h.PFC {
		t.Errorf("LNS sends with %+v", h)
	}
	if p.a.lcpOpt.peerMagic != p.b.lcpOpt.magic || p.b.lcpOpt.peerMagic != p.a.lcpOpt.magic || p.a.lcpOpt.magic == 0 {
		t.Errorf("magic numbers %x/%x and %x/%x", p.a.lcpOpt.magic, p.a.lcpOpt.peerMagic, p.b.lcpOpt.magic, p.b.lcpOpt.peerMagic)
	}

	// Data flows both ways with the negotiated header.
	buf := make([]byte, 64)
	n, _ := encap.EncodePPP(buf, encap.PPPIPv4, p.a.Header())
	copy(buf[n:], "\x45packet")
	class, pkt := p.b.Receive(p.now, buf[:n+7])
	if class != IPv4 || string(pkt) != "\x45packet" {
		t.Errorf("Receive = %v %q", class, pkt)
	}
	class, _ = p.b.Receive(p.now, []byte{0x57, 0x60})
	if class != IPv6 {
		t.Errorf("IPv6 frame: %v", class)
	}
}

func TestLinkLossyOpens(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { lossyOpen(t, seed) })
	}
}

// lossyOpen opens a pair that loses a quarter of the frames.
func lossyOpen(t *testing.T, seed uint64) {
	loss := rand.New(rand.NewPCG(seed, 99))
	p := newPair(t, lnsConfig(), lacConfig())
	p.drop = func(bool, []byte) bool { return loss.IntN(4) == 0 }
	p.a.Open(p.now)
	p.b.Open(p.now)
	p.run(2 * time.Minute)
	if p.a.Phase() != PhaseOpen || p.b.Phase() != PhaseOpen {
		t.Fatalf("phases %v %v (failures %v, %v)", p.a.Phase(), p.b.Phase(), p.a.Failure(), p.b.Failure())
	}
	if local, _ := p.b.IPv4(); local != poolAddr {
		t.Errorf("LAC address %v", local)
	}
}

func TestLinkGivesUpAfterMaxConfigure(t *testing.T) {
	p := newPair(t, lnsConfig(), lacConfig())
	p.drop = func(bool, []byte) bool { return true }
	p.a.Open(p.now)
	p.run(5 * time.Minute)
	if p.a.Phase() != PhaseDead || !errors.Is(p.a.Failure(), ErrNegotiation) {
		t.Fatalf("phase %v failure %v", p.a.Phase(), p.a.Failure())
	}
	reqs := 0
	for _, f := range p.sentA {
		if f[4] == ConfReq {
			reqs++
		}
	}
	if reqs != 10 {
		t.Errorf("%d Configure-Requests, want Max-Configure 10", reqs)
	}
}

// fakeAuth is a PAP-like authenticator: the peer sends its name and
// password in an Authenticate-Request; the authenticator answers Ack or Nak.
type fakeAuth struct {
	server     bool
	user, pass string
	users      map[string]string
	done, ok   bool
	got        string
	last       time.Time
}

func (f *fakeAuth) request() [][]byte {
	data := append(append([]byte{byte(len(f.user))}, f.user...), byte(len(f.pass)))
	return [][]byte{appendPacket(nil, 1, 1, append(data, f.pass...))}
}

func (f *fakeAuth) Start(now time.Time) [][]byte {
	f.last = now
	if f.server {
		return nil
	}
	return f.request()
}

func (f *fakeAuth) Receive(now time.Time, b []byte) [][]byte {
	p, err := parsePacket(b)
	if err != nil {
		return nil
	}
	switch {
	case f.server && p.code == 1 && len(p.data) > 0 && int(p.data[0])+1 < len(p.data):
		n := int(p.data[0])
		user, pass := string(p.data[1:1+n]), string(p.data[2+n:])
		f.done, f.got = true, user
		f.ok = f.users[user] == pass
		code := byte(3)
		if f.ok {
			code = 2
		}
		return [][]byte{appendPacket(nil, code, p.id, nil)}
	case !f.server && (p.code == 2 || p.code == 3):
		f.done, f.ok, f.got = true, p.code == 2, f.user
	}
	return nil
}

func (f *fakeAuth) Tick(now time.Time) [][]byte {
	if f.server || f.done || now.Sub(f.last) < 3*time.Second {
		return nil
	}
	f.last = now
	return f.request()
}

func (f *fakeAuth) Result() (bool, bool, string, error) {
	var err error
	if f.done && !f.ok {
		err = errors.New("bad password")
	}
	return f.done, f.ok, f.got, err
}

func withAuth(c Config, require, accept []AuthMethod, pass string, methods *[]AuthMethod) Config {
	c.LCP.Require, c.LCP.Accept = require, accept
	c.NewAuth = func(m AuthMethod, server bool) (Authenticator, error) {
		*methods = append(*methods, m)
		return &fakeAuth{server: server, user: "alice", pass: pass, users: map[string]string{"alice": "secret"}}, nil
	}
	return c
}

func TestLinkAuthNakToSupported(t *testing.T) {
	var lnsM, lacM []AuthMethod
	lns := withAuth(lnsConfig(), []AuthMethod{MSCHAPv2, PAP}, nil, "", &lnsM)
	lac := withAuth(lacConfig(), nil, []AuthMethod{PAP}, "secret", &lacM)
	p := newPair(t, lns, lac)
	p.open()
	if p.a.Phase() != PhaseOpen || p.b.Phase() != PhaseOpen {
		t.Fatalf("phases %v %v (failures %v, %v)", p.a.Phase(), p.b.Phase(), p.a.Failure(), p.b.Failure())
	}
	if fmt.Sprint(lnsM) != "[pap]" || fmt.Sprint(lacM) != "[pap]" {
		t.Errorf("methods %v and %v, want pap after the LAC's Nak", lnsM, lacM)
	}
	if p.a.User() != "alice" || p.b.User() != "alice" {
		t.Errorf("users %q and %q", p.a.User(), p.b.User())
	}
	// The LAC Nak'd MS-CHAPv2 with PAP.
	found := false
	for _, f := range p.sentB {
		if bytes.HasPrefix(f, []byte{0xff, 0x03, 0xc0, 0x21, ConfNak}) && bytes.Contains(f[8:], []byte{optAuth, 4, 0xc0, 0x23}) {
			found = true
		}
	}
	if !found {
		t.Error("no Configure-Nak of the authentication protocol with PAP")
	}
}

func TestLinkAuthWrongPassword(t *testing.T) {
	var m1, m2 []AuthMethod
	p := newPair(t, withAuth(lnsConfig(), []AuthMethod{PAP}, nil, "", &m1),
		withAuth(lacConfig(), nil, []AuthMethod{PAP}, "wrong", &m2))
	p.open()
	for _, l := range []*Link{p.a, p.b} {
		if l.Phase() != PhaseDead || !errors.Is(l.Failure(), ErrAuthFailed) {
			t.Errorf("phase %v failure %v, want dead with %v", l.Phase(), l.Failure(), ErrAuthFailed)
		}
		// The name that was refused is reported with the failure (the
		// LNS's log and `ul2tp show session` say who failed).
		if l.User() != "alice" {
			t.Errorf("user %q after the refusal, want alice", l.User())
		}
	}
}

func TestLinkNoCommonAuth(t *testing.T) {
	var m1, m2 []AuthMethod
	p := newPair(t, withAuth(lnsConfig(), []AuthMethod{MSCHAPv2}, nil, "", &m1),
		withAuth(lacConfig(), nil, []AuthMethod{PAP}, "secret", &m2))
	p.open()
	p.run(time.Minute) // the LAC tries until Max-Configure
	if !errors.Is(p.a.Failure(), ErrNoCommonAuth) || p.a.Phase() != PhaseDead {
		t.Errorf("LNS phase %v failure %v", p.a.Phase(), p.a.Failure())
	}
	if !errors.Is(p.b.Failure(), ErrPeerTerminate) || p.b.Phase() != PhaseDead {
		t.Errorf("LAC phase %v failure %v", p.b.Phase(), p.b.Failure())
	}
}

func TestLinkLoopback(t *testing.T) {
	var l *Link
	var queue [][]byte
	cfg := lacConfig()
	cfg.Rand = rand.New(rand.NewPCG(5, 6))
	cfg.Send = func(f []byte) { queue = append(queue, bytes.Clone(f)) }
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	l.Open(now)
	for i := 0; i < 1000 && len(queue) > 0; i++ {
		f := queue[0]
		queue = queue[1:]
		l.Receive(now, f)
	}
	if !errors.Is(l.Failure(), ErrLoopback) {
		t.Fatalf("failure %v, want %v", l.Failure(), ErrLoopback)
	}
	if l.Phase() != PhaseDead && l.Phase() != PhaseTerminate {
		t.Errorf("phase %v", l.Phase())
	}
}

func TestLinkEchoFailure(t *testing.T) {
	a, b := lnsConfig(), lacConfig()
	a.LCP.EchoInterval = 10 * time.Second
	a.LCP.EchoFailures = 3
	b.LCP.EchoInterval = 10 * time.Second
	p := newPair(t, a, b)
	p.open()
	p.run(time.Minute) // echoes answered
	if p.a.Phase() != PhaseOpen {
		t.Fatalf("phase %v after answered echoes (%v)", p.a.Phase(), p.a.Failure())
	}
	if n := p.a.EchoMissed(); n != 0 {
		t.Errorf("%d echoes missed with every one answered", n)
	}
	p.drop = func(toB bool, _ []byte) bool { return !toB } // b goes silent
	sent := len(p.sentA)
	p.run(2 * time.Minute)
	if !errors.Is(p.a.Failure(), ErrEchoTimeout) || p.a.Phase() != PhaseDead {
		t.Fatalf("phase %v failure %v, want dead by %v", p.a.Phase(), p.a.Failure(), ErrEchoTimeout)
	}
	// Exactly EchoFailures requests went unanswered before the link went
	// down, and each is counted.
	echoes := 0
	for _, f := range p.sentA[sent:] {
		if proto, off, err := encap.ParsePPP(f); err == nil && proto == encap.PPPLCP && f[off] == EchoReq {
			echoes++
		}
	}
	if echoes != 3 || p.a.EchoMissed() != 3 {
		t.Errorf("%d Echo-Requests sent unanswered, %d counted missed; want 3 and 3", echoes, p.a.EchoMissed())
	}
}

// TestLinkEchoLoss loses every other Echo-Reply: each loss is counted, but
// as no EchoFailures requests in a row go unanswered the link stays up.
func TestLinkEchoLoss(t *testing.T) {
	a, b := lnsConfig(), lacConfig()
	a.LCP.EchoInterval = 10 * time.Second
	a.LCP.EchoFailures = 2
	p := newPair(t, a, b)
	p.open()
	lose := false
	p.drop = func(toB bool, f []byte) bool {
		if proto, off, err := encap.ParsePPP(f); !toB && err == nil && proto == encap.PPPLCP && f[off] == EchoReply {
			lose = !lose
			return lose
		}
		return false
	}
	p.run(10 * time.Minute)
	if p.a.Phase() != PhaseOpen || p.a.Failure() != nil {
		t.Fatalf("phase %v failure %v, want open", p.a.Phase(), p.a.Failure())
	}
	if n := p.a.EchoMissed(); n < 25 || n > 35 {
		t.Errorf("%d echoes missed in 60 with every other reply lost", n)
	}
}

func TestLinkTerminate(t *testing.T) {
	for _, fromLNS := range []bool{true, false} {
		t.Run(fmt.Sprint("fromLNS=", fromLNS), func(t *testing.T) {
			p := newPair(t, lnsConfig(), lacConfig())
			p.open()
			closer, other := p.a, p.b
			if !fromLNS {
				closer, other = p.b, p.a
			}
			closer.Close(p.now, "admin down")
			p.run(30 * time.Second)
			if closer.Phase() != PhaseDead || other.Phase() != PhaseDead {
				t.Fatalf("phases %v %v", closer.Phase(), other.Phase())
			}
			if closer.Failure() != nil {
				t.Errorf("closer failure %v", closer.Failure())
			}
			if err := other.Failure(); !errors.Is(err, ErrPeerTerminate) || !bytes.Contains([]byte(err.Error()), []byte("admin down")) {
				t.Errorf("other failure %v", err)
			}
			if ph := p.phaseA[len(p.phaseA)-2:]; fmt.Sprint(ph) != "[terminate dead]" {
				t.Errorf("last phases of a: %v", ph)
			}
		})
	}
}

func TestLinkProtocolRejectCCP(t *testing.T) {
	p := newPair(t, lnsConfig(), lacConfig())
	p.open()
	ccp := []byte{0xff, 0x03, 0x80, 0xfd, ConfReq, 1, 0, 10, 0x12, 6, 0, 0, 0, 0x40}
	n := len(p.sentA)
	if c, _ := p.a.Receive(p.now, ccp); c != Control {
		t.Fatalf("class %v", c)
	}
	if len(p.sentA) != n+1 {
		t.Fatalf("sent %d frames, want a Protocol-Reject", len(p.sentA)-n)
	}
	f := p.sentA[n]
	want := append([]byte{0xff, 0x03, 0xc0, 0x21, ProtoRej}, f[5], 0, byte(4+2+len(ccp)-4), 0x80, 0xfd)
	want = append(want, ccp[4:]...)
	if !bytes.Equal(f, want) {
		t.Fatalf("sent %x, want %x", f, want)
	}
	p.run(time.Second)
	if p.a.Phase() != PhaseOpen || p.b.Phase() != PhaseOpen {
		t.Errorf("phases %v %v after a CCP reject", p.a.Phase(), p.b.Phase())
	}
	// An unknown LCP code gets a Code-Reject and changes nothing.
	p.a.Receive(p.now, []byte{0xff, 0x03, 0xc0, 0x21, 42, 7, 0, 4})
	if f := p.sentA[len(p.sentA)-1]; f[4] != CodeRej || !bytes.Equal(f[8:], []byte{42, 7, 0, 4}) {
		t.Errorf("sent %x, want a Code-Reject", f)
	}
}

func TestLinkNCPRejectedByPeer(t *testing.T) {
	lac := lacConfig()
	lac.IPv6CP = nil // protocol-rejects IPv6CP
	p := newPair(t, lnsConfig(), lac)
	p.open()
	if p.a.Phase() != PhaseOpen || p.a.ipv6cp.state != Stopped {
		t.Errorf("LNS phase %v IPv6CP %v", p.a.Phase(), p.a.ipv6cp.state)
	}
	if _, _, ok := p.a.IPv6(); ok {
		t.Error("IPv6 reported open")
	}
}

func TestLinkPoolEmpty(t *testing.T) {
	lns := lnsConfig()
	lns.IPCP.Assign = func() (netip.Addr, error) { return netip.Addr{}, errors.New("pool exhausted") }
	lns.IPv6CP = nil
	p := newPair(t, lns, lacConfig())
	p.open()
	if !errors.Is(p.a.Failure(), ErrPool) || p.a.Phase() != PhaseDead {
		t.Errorf("phase %v failure %v", p.a.Phase(), p.a.Failure())
	}
}

func TestReceiveAllocs(t *testing.T) {
	p := newPair(t, lnsConfig(), lacConfig())
	p.open()
	frame := []byte{0x21, 0x45, 0, 0, 20}
	if n := testing.AllocsPerRun(100, func() { p.b.Receive(p.now, frame) }); n != 0 {
		t.Errorf("%v allocations per data frame", n)
	}
}

func BenchmarkReceiveData(b *testing.B) {
	p := newPair(b, lnsConfig(), lacConfig())
	p.open()
	frame := make([]byte, 1400)
	copy(frame, []byte{0xff, 0x03, 0x00, 0x21, 0x45})
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		if c, _ := p.b.Receive(p.now, frame); c != IPv4 {
			b.Fatal(c)
		}
	}
}

func FuzzLink(f *testing.F) {
	f.Add([]byte{0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 10, 5, 6, 1, 2, 3, 4}, uint8(0))
	f.Add([]byte{0xc0, 0x21, 9, 1, 0, 8, 0, 0, 0, 0}, uint8(1))
	f.Add([]byte{0x80, 0x21, 1, 1, 0, 10, 3, 6, 0, 0, 0, 0}, uint8(2))
	f.Add([]byte{0xc0, 0x23, 1, 1, 0, 6, 0, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, frame []byte, state uint8) {
		var m []AuthMethod
		p := newPair(t, withAuth(lnsConfig(), []AuthMethod{PAP}, nil, "", &m), withAuth(lacConfig(), nil, []AuthMethod{PAP}, "secret", &m))
		switch state % 3 {
		case 1:
			p.a.Open(p.now)
		case 2:
			p.open()
		}
		for _, l := range []*Link{p.a, p.b} {
			class, pkt := l.Receive(p.now, frame)
			if (class == IPv4 || class == IPv6) && len(pkt) >= len(frame) {
				t.Fatalf("data %x from frame %x", pkt, frame)
			}
		}
		p.run(time.Minute)
		for _, f := range append(p.sentA, p.sentB...) {
			proto, off, err := encap.ParsePPP(f)
			if err != nil {
				t.Fatalf("sent malformed frame %x", f)
			}
			if proto != encap.PPPIPv4 && proto != encap.PPPIPv6 {
				if pk, err := parsePacket(f[off:]); err != nil || 4+len(pk.data) != len(f)-off {
					t.Fatalf("sent malformed control packet %x", f)
				}
			}
		}
	})
}

// TestLinkPeerNaksForever: a peer that Naks every Configure-Request (here
// with an MRU we cannot take) does not hold the link in negotiation.
func TestLinkPeerNaksForever(t *testing.T) {
	var queue [][]byte
	naks := 0
	cfg := lacConfig()
	cfg.Send = func(f []byte) {
		if bytes.HasPrefix(f, []byte{0xff, 0x03, 0xc0, 0x21, ConfReq}) {
			naks++
			queue = append(queue, appendPacket([]byte{0xff, 0x03, 0xc0, 0x21}, ConfNak, f[5], []byte{optMRU, 4, 0, 10}))
		}
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.Open(t0)
	for i := 0; i < 100 && len(queue) > 0; i++ {
		f := queue[0]
		queue = queue[1:]
		l.Receive(t0, f)
	}
	if l.Phase() != PhaseDead || !errors.Is(l.Failure(), ErrNegotiation) {
		t.Fatalf("phase %v failure %v after %d Naks", l.Phase(), l.Failure(), naks)
	}
	if naks != 10 {
		t.Errorf("sent %d Configure-Requests, want Max-Configure 10", naks)
	}
}

// TestLinkMaxFailureRejects: after Max-Failure Naks of the same option we
// reject it instead, so a peer that insists on MRU 64 still converges.
func TestLinkMaxFailureRejects(t *testing.T) {
	var sent [][]byte
	cfg := lnsConfig()
	cfg.Send = func(f []byte) { sent = append(sent, bytes.Clone(f)) }
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l.Open(t0)
	for id := byte(1); id <= 6; id++ {
		l.Receive(t0, appendPacket([]byte{0xff, 0x03, 0xc0, 0x21}, ConfReq, id, []byte{optMRU, 4, 0, 64}))
	}
	var codes []byte
	for _, f := range sent {
		if f[4] != ConfReq {
			codes = append(codes, f[4])
		}
	}
	if want := []byte{ConfNak, ConfNak, ConfNak, ConfNak, ConfNak, ConfRej}; !bytes.Equal(codes, want) {
		t.Errorf("replies %v, want %v", codes, want)
	}
}

// TestIPv6CPInterfaceIDs checks RFC 5072's identifier rules as the LNS
// applies them with no identifier imposed on the peer: the peer's own is
// accepted, a collision is Nak'd with a random one, a zero one too, and a
// random one of ours is never zero.
func TestIPv6CPInterfaceIDs(t *testing.T) {
	id := func(b byte) [8]byte { return [8]byte{7: b} }
	for _, tc := range []struct {
		name            string
		lns, lac        [8]byte
		wantLNS, wantLA [8]byte // zero: random, checked non-zero and distinct
	}{
		{"configured, peer's own accepted", id(1), id(5), id(1), id(5)},
		{"both random", [8]byte{}, [8]byte{}, [8]byte{}, [8]byte{}},
		// Each end Naks the other's (equal to its own), and each takes
		// the suggestion (RFC 5072 section 4.1): two fresh identifiers.
		{"collision Nak'd", id(1), id(1), [8]byte{}, [8]byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := lnsConfig(), lacConfig()
			a.IPv6CP = &IPv6CPConfig{Local: tc.lns}
			b.IPv6CP = &IPv6CPConfig{Local: tc.lac}
			p := newPair(t, a, b)
			p.open()
			la, pa, ok := p.a.IPv6()
			lb, pb, okb := p.b.IPv6()
			if !ok || !okb || la != pb || lb != pa || la == lb || la == [8]byte{} || lb == [8]byte{} {
				t.Fatalf("LNS %x peer %x (%v), LAC %x peer %x (%v)", la, pa, ok, lb, pb, okb)
			}
			if tc.wantLNS != [8]byte{} && la != tc.wantLNS || tc.wantLA != [8]byte{} && lb != tc.wantLA {
				t.Errorf("LNS %x LAC %x, want %x %x", la, lb, tc.wantLNS, tc.wantLA)
			}
		})
	}
	// A zero identifier from the peer is Nak'd with a non-zero one.
	o := ipv6cpOptions{cfg: &IPv6CPConfig{Local: id(1)}, rand: rand.New(rand.NewPCG(5, 6)).Uint32}
	o.Reset()
	code, out := o.Judge(appendOption(nil, optInterfaceID, make([]byte, 8)...), nil, false)
	if code != ConfNak || len(out) != 10 || [8]byte(out[2:]) == [8]byte{} || [8]byte(out[2:]) == id(1) {
		t.Errorf("zero identifier: code %d options % x, want a Nak with a fresh one", code, out)
	}
}
