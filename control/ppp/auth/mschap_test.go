package auth

import (
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The example of RFC 2759 section 9.2.
func TestMSCHAPv2Vectors(t *testing.T) {
	const user, password = "User", "clientPass"
	authChallenge := unhex(t, "5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
	peerChallenge := unhex(t, "21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")

	if got, want := challengeHash(peerChallenge, authChallenge, user), unhex(t, "D0 2E 43 86 BC E9 12 26"); string(got[:]) != string(want) {
		t.Errorf("ChallengeHash = %X, want %X", got, want)
	}
	hash := ntPasswordHash(password)
	if want := unhex(t, "44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE"); string(hash[:]) != string(want) {
		t.Errorf("NtPasswordHash = %X, want %X", hash, want)
	}
	nt := generateNTResponse(authChallenge, peerChallenge, user, password)
	if want := unhex(t, "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"); string(nt[:]) != string(want) {
		t.Errorf("NT-Response = %X, want %X", nt, want)
	}
	hh := hashNTPasswordHash(hash)
	if want := unhex(t, "41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F"); string(hh[:]) != string(want) {
		t.Errorf("PasswordHashHash = %X, want %X", hh, want)
	}
	if got, want := generateAuthenticatorResponse(password, nt[:], peerChallenge, authChallenge, user), "S=407A5589115FD0D6209F510FE9C04566932CDA56"; got != want {
		t.Errorf("AuthenticatorResponse = %s, want %s", got, want)
	}
	// A domain prefix is not hashed (section 8.2).
	if a, b := challengeHash(peerChallenge, authChallenge, `CORP\User`), challengeHash(peerChallenge, authChallenge, user); a != b {
		t.Errorf("ChallengeHash with domain = %X, want %X", a, b)
	}
}

// The peer checks the authenticator response: a Success with a wrong one
// (an authenticator that does not know the password) fails the peer.
func TestMSCHAPv2WrongAuthenticatorResponse(t *testing.T) {
	p := NewPeer(MSCHAPv2, peerConfig("User", "clientPass"))
	p.Start(t0)
	ch := build(nil, chapChallenge, 9, []byte{16}, unhex(t, "5B5D7C7D7B3F2F3E3C2C602132262628"), []byte("lns"))
	if out := p.Receive(ch, t0); len(out) != 1 || len(out[0]) != 4+1+49+4 {
		t.Fatalf("Response %x", out)
	}
	for _, msg := range []string{
		"S=407A5589115FD0D6209F510FE9C04566932CDA57 M=ok", // one bit off
		"S=407A5589 M=short",
		"M=no S",
		"",
	} {
		q := *p.(*CHAPPeer)
		q.Receive(build(nil, chapSuccess, 9, []byte(msg)), t0)
		if r := q.Result(); !r.Done || r.OK || r.Err == nil {
			t.Errorf("Success %q: peer result %+v", msg, r)
		}
	}
}

func TestParseMSFailure(t *testing.T) {
	f := parseMSFailure("E=691 R=1 C=0123456789ABCDEF0123456789ABCDEF V=3 M=Authentication failure, try again")
	if f.Code != 691 || !f.Retry || f.Message != "Authentication failure, try again" {
		t.Errorf("parseMSFailure = %+v", f)
	}
	if f := parseMSFailure("garbage E= =x"); f.Code != 0 || f.Message != "" {
		t.Errorf("parseMSFailure(garbage) = %+v", f)
	}
}
