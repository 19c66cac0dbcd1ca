package auth

import (
	"bytes"
	"testing"
)

// BenchmarkExchange runs a whole authentication, authenticator against
// peer: control path, once per call, so allocations are reported but not
// held to zero.
func BenchmarkExchange(b *testing.B) {
	s, err := ParseSecrets(bytes.NewReader([]byte("alice * pw *\n")), "b")
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range methods {
		b.Run(m.String(), func(b *testing.B) {
			rnd := bytes.NewReader(bytes.Repeat([]byte{3}, 64))
			acfg := AuthenticatorConfig{Name: "lns", Verify: s.VerifyPassword, Secret: s.Secret, Rand: rnd}
			pcfg := PeerConfig{User: "alice", Password: "pw", Rand: rnd}
			a, p := NewAuthenticator(m, acfg), NewPeer(m, pcfg)
			b.ReportAllocs()
			for b.Loop() {
				rnd.Seek(0, 0)
				out := p.Start(t0)
				if ch := a.Start(t0); m != PAP {
					out = p.Receive(ch[0], t0)
				}
				p.Receive(a.Receive(out[0], t0)[0], t0)
				if !a.Result().OK || !p.Result().OK {
					b.Fatal(a.Result(), p.Result())
				}
			}
		})
	}
}
