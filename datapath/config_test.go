package datapath

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ul2tp/ul2tp/encap"
)

func TestSessionConfigName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"", true}, // the default, l2tpeth%d
		{"l2tpeth%d", true},
		{"pw-1.a_b", true},
		{"fifteen-bytes-x", true},
		{"sixteen-bytes-xy", false},
		{"x\x00y", false},
		{"x\ny", false},
		{"x\ty", false},
		{"x\x7fy", false},
		{"a b", false},
		{"x\u00a0y", false},
		{"a/b", false},
		{"a:1", false},
		{".", false},
		{"..", false},
		{"%d%d", false},
		{"x%s", false},
		{"x%", false},
	} {
		c := SessionConfig{TunnelID: 1, ID: 2, PeerID: 3, Name: tc.name, L2Spec: encap.L2SpecDefault}
		err := c.Check()
		if (err == nil) != tc.ok {
			t.Errorf("name %q: Check() = %v, want ok %v", tc.name, err, tc.ok)
			continue
		}
		if err != nil && (!strings.HasPrefix(err.Error(), "invalid name ") || strings.ContainsAny(err.Error(), "\x00\n\t")) {
			t.Errorf("name %q: error %q does not name the field, or carries a control character", tc.name, err)
		}
	}
}

func TestTunnelConfigAddresses(t *testing.T) {
	for _, tc := range []struct {
		local, remote string
		field         string // "" when valid
	}{
		{"", "10.0.0.2", ""},
		{"10.0.0.1", "10.0.0.2", ""},
		{"0.0.0.0", "10.0.0.2", ""},
		{"", "fd00::2", ""},
		{"", "::ffff:10.0.0.2", ""},
		{"", "", "remote"},
		{"", "0.0.0.0", "remote"},
		{"", "::", "remote"},
		{"", "224.0.0.1", "remote"},
		{"", "239.1.2.3", "remote"},
		{"", "::ffff:224.0.0.5", "remote"},
		{"", "255.255.255.255", "remote"},
		{"", "ff02::1", "remote"},
		{"", "ff05::2", "remote"},
		{"224.0.0.1", "10.0.0.2", "local"},
		{"ff02::1", "fd00::2", "local"},
		{"255.255.255.255", "10.0.0.2", "local"},
		{"fd00::1", "10.0.0.2", "local"},
	} {
		c := TunnelConfig{ID: 1, PeerID: 2, Encap: encap.EncapUDP}
		if tc.local != "" {
			c.Local = netip.MustParseAddr(tc.local)
		}
		if tc.remote != "" {
			c.Remote = netip.MustParseAddr(tc.remote)
		}
		err := c.Check()
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("local %s remote %s: %v", tc.local, tc.remote, err)
		case tc.field != "" && (err == nil || !strings.HasPrefix(err.Error(), "invalid "+tc.field)):
			t.Errorf("local %s remote %s: error %v, want one naming %s", tc.local, tc.remote, err, tc.field)
		}
	}
}

func TestFieldErrorText(t *testing.T) {
	for _, tc := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{"tunnel", nil, "missing"}, "invalid tunnel: missing"},
		{FieldError{"tunnel", "", "missing"}, "invalid tunnel: missing"},
		{FieldError{"name", "x\x00y", "bad"}, `invalid name "x\x00y": bad`},
		{FieldError{"mtu", 20, "must be 68..65471"}, "invalid mtu 20: must be 68..65471"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%#v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

// FuzzIfName checks that a name Check accepts is one the kernel takes
// unchanged.
func FuzzIfName(f *testing.F) {
	for _, s := range []string{"l2tpeth%d", "x\x00y", "a b", "..", "%d%d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c := SessionConfig{TunnelID: 1, ID: 2, PeerID: 3, Name: name, L2Spec: encap.L2SpecDefault}
		if c.Check() != nil {
			return
		}
		n := c.Name
		if len(n) == 0 || len(n) > 15 || n == "." || n == ".." || strings.ContainsAny(n, "/: \t\n\v\f\r\x00") ||
			strings.Count(n, "%") > 1 || strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("accepted name %q", n)
		}
	})
}

// TestSessionSeqNeedsSublayer checks that sequencing without the default
// L2-specific sublayer, where an L2TPv3 data packet carries its sequence
// number, is refused by name instead of dropping every packet.
func TestSessionSeqNeedsSublayer(t *testing.T) {
	for _, tc := range []struct {
		l2spec    encap.L2Spec
		send, rcv bool
		bad       bool
	}{
		{encap.L2SpecNone, false, false, false},
		{encap.L2SpecNone, true, false, true},
		{encap.L2SpecNone, false, true, true},
		{encap.L2SpecNone, true, true, true},
		{encap.L2SpecDefault, true, true, false},
	} {
		c := SessionConfig{TunnelID: 1, ID: 2, PeerID: 3, L2Spec: tc.l2spec, SendSeq: tc.send, RecvSeq: tc.rcv}
		err := c.Check()
		if tc.bad != (err != nil) || (err != nil && !strings.HasPrefix(err.Error(), "invalid seq")) {
			t.Errorf("l2spec %v send %v recv %v: error %v, want one naming seq: %v", tc.l2spec, tc.send, tc.rcv, err, tc.bad)
		}
	}
}
