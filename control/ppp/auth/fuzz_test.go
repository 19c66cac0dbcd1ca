package auth

import (
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
