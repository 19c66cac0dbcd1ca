package auth

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSecrets(t *testing.T) {
	pfx := netip.MustParsePrefix
	tests := []struct {
		name, in string
		want     []Entry
	}{
		{"empty", "# only a comment\n\n", nil},
		{"plain", "alice * secret 10.0.0.5\n", []Entry{{Client: "alice", Server: "*", Secret: "secret", Addrs: []netip.Prefix{pfx("10.0.0.5/32")}, Line: 1}}},
		{"no addresses", "\nbob l2tpd pw", []Entry{{Client: "bob", Server: "l2tpd", Secret: "pw", Line: 2}}},
		{"dash", "bob * pw -", []Entry{{Client: "bob", Server: "*", Secret: "pw", Line: 1}}},
		{"star", "bob * pw *", []Entry{{Client: "bob", Server: "*", Secret: "pw", AnyAddr: true, Line: 1}}},
		{"quoted", `"my user" * "p w#x\"q" 2001:db8::1 # comment`, []Entry{{Client: "my user", Server: "*", Secret: `p w#x"q`, Addrs: []netip.Prefix{pfx("2001:db8::1/128")}, Line: 1}}},
		{"single quotes", `a 'b c' ''`, []Entry{{Client: "a", Server: "b c", Secret: "", Line: 1}}},
		{"escapes", `a b x\sy\t\101\x41\^A\q`, []Entry{{Client: "a", Server: "b", Secret: "x y\tAA\x01q", Line: 1}}},
		{"continuation", "a b \\\n  c 10.1.0.0/16 !10.1.2.3\nd e f", []Entry{
			{Client: "a", Server: "b", Secret: "c", Addrs: []netip.Prefix{pfx("10.1.0.0/16")}, Denied: []netip.Prefix{pfx("10.1.2.3/32")}, Line: 1},
			{Client: "d", Server: "e", Secret: "f", Line: 3},
		}},
		{"options", "a b c 10.0.0.1 -- ms-dns 1.1.1.1", []Entry{{Client: "a", Server: "b", Secret: "c", Addrs: []netip.Prefix{pfx("10.0.0.1/32")}, Options: []string{"ms-dns", "1.1.1.1"}, Line: 1}}},
		{"hash in word", "a#b * c", []Entry{{Client: "a#b", Server: "*", Secret: "c", Line: 1}}},
	}
	for _, tt := range tests {
		s, err := ParseSecrets(strings.NewReader(tt.in), "f")
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got := s.Entries(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseSecretsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a b", "f:1: want client, server and secret"},
		{"a b c\n\nd e f host.example", `f:3: address "host.example": not an IP address or prefix`},
		{"a b c 10.0.0.0/33", `f:1: address "10.0.0.0/33"`},
		{"a b \"c", "f:1: unterminated \" quote"},
		{"a b c\\", "f:1: backslash at end of file"},
	}
	for _, tt := range tests {
		_, err := ParseSecrets(strings.NewReader(tt.in), "f")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseSecrets(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestSecretsLookup(t *testing.T) {
	s, err := ParseSecrets(strings.NewReader(`
*     *    anyany
*     lns  anylns
alice *    aliceany
alice lns  alicelns
alice lns  second
bob   *    bobany
`), "f")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ client, server, want string }{
		{"alice", "lns", "alicelns"}, // exact both; the first of equals
		{"alice", "other", "aliceany"},
		{"bob", "lns", "bobany"}, // exact client beats exact server
		{"carol", "lns", "anylns"},
		{"carol", "other", "anyany"},
	}
	for _, tt := range tests {
		if got, ok := s.Secret(tt.client, tt.server); !ok || got != tt.want {
			t.Errorf("Secret(%q, %q) = %q, %v; want %q", tt.client, tt.server, got, ok, tt.want)
		}
	}
	s2, _ := ParseSecrets(strings.NewReader("alice lns pw 10.0.0.9\n"), "f")
	if _, ok := s2.Lookup("bob", "lns"); ok {
		t.Error("Lookup found an entry for an unknown client")
	}
	if !s2.VerifyPassword("alice", "lns", "pw") || s2.VerifyPassword("alice", "lns", "pW") || s2.VerifyPassword("alice", "x", "pw") {
		t.Error("VerifyPassword")
	}
	e, _ := s2.Lookup("alice", "lns")
	if a, ok := e.Fixed(); !ok || a != netip.MustParseAddr("10.0.0.9") {
		t.Errorf("Fixed = %v, %v", a, ok)
	}
}

func TestEntryAllowed(t *testing.T) {
	s, _ := ParseSecrets(strings.NewReader("a b c 10.0.0.0/24 !10.0.0.7\nd e f * !10.9.9.9\ng h i -\n"), "f")
	es := s.Entries()
	addr := netip.MustParseAddr
	checks := []struct {
		e    int
		a    string
		want bool
	}{
		{0, "10.0.0.5", true}, {0, "10.0.0.7", false}, {0, "10.0.1.5", false},
		{1, "192.0.2.1", true}, {1, "10.9.9.9", false},
		{2, "10.0.0.5", false},
	}
	for _, c := range checks {
		if got := es[c.e].Allowed(addr(c.a)); got != c.want {
			t.Errorf("entry %d Allowed(%s) = %v", c.e, c.a, got)
		}
	}
	if _, ok := es[0].Fixed(); ok {
		t.Error("a prefix is not a fixed address")
	}
}

func TestLoadSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chap-secrets")
	if err := os.WriteFile(path, []byte("a b c\nbad\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSecrets(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("LoadSecrets = %v, want %s:2: ...", err, path)
	}
	if _, err := LoadSecrets(path + ".missing"); err == nil {
		t.Error("LoadSecrets of a missing file succeeded")
	}
}
