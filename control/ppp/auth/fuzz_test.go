package auth

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseSecrets(f *testing.F) {
	for _, s := range []string{
		"alice * \"open sesame\" 10.0.0.5\n", "a b c\\\n d", `a 'b' "c\x41\101\^A" !10.0.0.0/8 * -- x`, "\"", "a b c\\",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSecrets(strings.NewReader(in), "f")
		if err != nil {
			return
		}
		for _, e := range s.Entries() {
			s.Lookup(e.Client, e.Server)
			e.Fixed()
		}
	})
}

// FuzzReceive feeds each role of each method a frame at every stage of an
// exchange: no panic, and every frame sent is well formed.
func FuzzReceive(f *testing.F) {
	f.Add([]byte{1, 1, 0, 18, 5, 'a', 'l', 'i', 'c', 'e', 11, 'o', 'p', 'e', 'n', ' ', 's', 'e', 's'})
	f.Add([]byte{2, 0, 0, 21, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 'x'})
	f.Add([]byte{3, 1, 0, 46, 'S', '=', '4', '0'})
	f.Add([]byte{4, 1, 0, 20, 'E', '=', '6', '9', '1', ' ', 'M', '=', 'x'})
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, m := range methods {
			cfg := authConfig(t)
			for _, p := range []Protocol{NewAuthenticator(m, cfg), NewPeer(m, peerConfig("alice", "open sesame"))} {
				check(t, p.Start(t0))
				check(t, p.Receive(bytes.Clone(frame), t0))
				check(t, p.Receive(bytes.Clone(frame), t0))
				check(t, p.Tick(t0.Add(DefaultTimeout)))
			}
		}
	})
}

func check(t *testing.T, out [][]byte) {
	t.Helper()
	for _, f := range out {
		if _, _, _, ok := header(f); !ok || len(f) > 1500 {
			t.Fatalf("sent a malformed frame %x", f)
		}
	}
}
