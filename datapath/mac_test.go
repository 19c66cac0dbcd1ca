package datapath

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/ul2tp/ul2tp/encap"
)

// mirrored is the two ends of one pseudowire: tunnel 1 session 11 at
// 10.0.0.1 and tunnel 2 session 22 at 10.0.0.2.
func mirrored() (ta, tb TunnelConfig, sa, sb SessionConfig) {
	ta = TunnelConfig{ID: 1, PeerID: 2, Encap: encap.EncapUDP, Remote: netip.MustParseAddr("10.0.0.2")}
	tb = TunnelConfig{ID: 2, PeerID: 1, Encap: encap.EncapUDP, Remote: netip.MustParseAddr("10.0.0.1")}
	sa = SessionConfig{TunnelID: 1, ID: 11, PeerID: 22}
	sb = SessionConfig{TunnelID: 2, ID: 22, PeerID: 11}
	return
}

// TestDefaultAddress checks that a session's derived address is the same
// every time (a restart keeps it), locally administered and unicast, and
// differs between the two ends of a pseudowire, mirrored or with the same
// ids, and between sessions.
func TestDefaultAddress(t *testing.T) {
	ta, tb, sa, sb := mirrored()
	a := DefaultAddress(&ta, &sa)
	if again := DefaultAddress(&ta, &sa); !bytes.Equal(a, again) {
		t.Errorf("DefaultAddress not deterministic: %v then %v", a, again)
	}
	b := DefaultAddress(&tb, &sb)
	// Both ends with the same ids: only the remote address differs.
	tsame := tb
	tsame.PeerID = 2
	ssame := sa
	same := DefaultAddress(&tsame, &ssame)
	sa2 := sa
	sa2.ID = 12
	a2 := DefaultAddress(&ta, &sa2)
	ta6 := ta
	ta6.Remote = netip.MustParseAddr("fd00::2")
	a6 := DefaultAddress(&ta6, &sa)
	for _, m := range []net.HardwareAddr{a, b, same, a2, a6} {
		if len(m) != 6 {
			t.Fatalf("address %v: %d bytes, want 6", m, len(m))
		}
		if m[0]&0x02 == 0 {
			t.Errorf("address %v: not locally administered", m)
		}
		if m[0]&0x01 != 0 {
			t.Errorf("address %v: multicast", m)
		}
		if err := CheckAddress(m); err != nil {
			t.Errorf("CheckAddress(%v): %v", m, err)
		}
	}
	seen := map[string]string{}
	for _, x := range []struct {
		name string
		mac  net.HardwareAddr
	}{{"A 1/11->2/22", a}, {"B 2/22->1/11", b}, {"B with A's ids", same}, {"A session 12", a2}, {"A over IPv6", a6}} {
		if o, ok := seen[x.mac.String()]; ok {
			t.Errorf("%s and %s: same address %v", o, x.name, x.mac)
		}
		seen[x.mac.String()] = x.name
	}
	// The documented derivation (docs/config.md), pinned so that a change
	// to it, which would change every TAP's address on upgrade, is seen.
	// 02 + SHA-256(00000001 0000000b 00000002 00000016 0a000002)[:5]
	if want := "02:08:18:d8:c6:ff"; a.String() != want {
		t.Errorf("address of A %v, want %s", a, want)
	}
	t.Logf("A %v, B %v", a, b)
}

// TestCheckAddress checks that multicast, all-zero and short addresses
// are refused with an error naming the address field.
func TestCheckAddress(t *testing.T) {
	for _, bad := range []net.HardwareAddr{
		{0x01, 0x00, 0x5e, 0, 0, 1},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		{0, 0, 0, 0, 0, 0},
		{0x02, 0, 0, 0, 1},
		{0x02, 0, 0, 0, 0, 0, 0, 1},
	} {
		err := CheckAddress(bad)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "address" {
			t.Errorf("CheckAddress(%v) = %v, want a FieldError of address", bad, err)
		}
	}
	for _, good := range []net.HardwareAddr{{0x02, 0, 0, 0, 0, 1}, {0x00, 0x16, 0x3e, 1, 2, 3}} {
		if err := CheckAddress(good); err != nil {
			t.Errorf("CheckAddress(%v): %v", good, err)
		}
	}
}
