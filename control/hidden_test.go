package control

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The expected values were computed by hand (a separate script) from the
// algorithm text of RFC 2661 section 4.3, not with this package.
func TestHideVector(t *testing.T) {
	secret, rv := []byte("s3cret"), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	for _, tc := range []struct {
		name  string
		t     AttrType
		value string
		pad   int
		want  string
	}{
		{"two blocks", AttrHostName, "lac.example.net-host-name", 5,
			"8cf3bb7590fa4ecd16fdfec9d98dbb2e9b93a82c2348db481c7ad65fd20ea3b1"},
		{"partial block", AttrAssignedTunnelID, "abc", 0, "dcd70b2a17"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Hide(make([]byte, 64), tc.t, []byte(tc.value), secret, rv, tc.pad)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tc.want {
				t.Fatalf("hide: %x, want %s", got, tc.want)
			}
			a, err := Unhide(make([]byte, 64), AVP{Flags: avpFlagH | avpFlagM, Type: tc.t, Value: got}, secret, rv)
			if err != nil || string(a.Value) != tc.value || a.Hidden() || !a.Mandatory() {
				t.Fatalf("unhide: %q %v %v", a.Value, a, err)
			}
			// In place.
			a, err = Unhide(got, AVP{Flags: avpFlagH, Type: tc.t, Value: got}, secret, rv)
			if err != nil || string(a.Value) != tc.value {
				t.Fatalf("unhide in place: %q %v", a.Value, err)
			}
		})
	}
}

func TestChallengeResponseVector(t *testing.T) {
	// MD5(0x02 | "secret" | challenge), computed by hand.
	got := ChallengeResponse(MsgSCCRP, []byte("secret"), mustHex(t, "00112233445566778899aabbccddeeff"))
	if hex.EncodeToString(got[:]) != "45842102c2f5c31ac7b1610b789b451d" {
		t.Fatalf("got %x", got)
	}
}

func TestHiddenInMessage(t *testing.T) {
	secret := []byte("tunnel secret")
	buf := make([]byte, 256)
	b := NewBuilder(buf, Header{Version: V2, TunnelID: 1}, MsgICRQ)
	b.AddHidden(AttrAssignedSessionID, true, []byte{0, 9}, secret, 0) // no RV yet
	if b.Err() == nil {
		t.Fatal("hidden AVP without Random Vector accepted")
	}
	b = NewBuilder(buf, Header{Version: V2, TunnelID: 1}, MsgICRQ)
	b.AddBytes(AttrRandomVector, true, []byte("0123456789abcdef"))
	b.AddHidden(AttrAssignedSessionID, true, []byte{0, 9}, secret, 13)
	b.AddBytes(AttrRandomVector, true, []byte("another vector"))
	b.AddHidden(AttrCallingNumber, true, []byte("+4912345"), secret, 0)
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	it := m.AVPs()
	for a, ok := it.Next(); ok; a, ok = it.Next() {
		if !a.Hidden() {
			continue
		}
		p, err := Unhide(make([]byte, len(a.Value)), a, secret, it.RandomVector())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, hex.EncodeToString(p.Value))
		// A wrong secret does not give the value back.
		if w, err := Unhide(make([]byte, len(a.Value)), a, []byte("wrong"), it.RandomVector()); err == nil && bytes.Equal(w.Value, p.Value) {
			t.Error("wrong secret unhid the value")
		}
	}
	if want := []string{"0009", hex.EncodeToString([]byte("+4912345"))}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("unhidden %v, want %v", got, want)
	}
}

func FuzzHidden(f *testing.F) {
	f.Add([]byte("value"), []byte("secret"), []byte("0123456789abcdef"), uint16(7), uint8(3))
	f.Add([]byte{}, []byte{}, []byte{1}, uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, value, secret, rv []byte, at uint16, pad uint8) {
		if len(value) > 900 {
			return
		}
		h, err := Hide(make([]byte, HiddenLen(len(value), int(pad))), AttrType(at), value, secret, rv, int(pad))
		if err != nil {
			t.Fatal(err)
		}
		a, err := Unhide(make([]byte, len(h)), AVP{Flags: avpFlagH, Type: AttrType(at), Value: h}, secret, rv)
		if err != nil || !bytes.Equal(a.Value, value) {
			t.Fatalf("round trip %x -> %x: %v", value, a.Value, err)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(sccrq(f, make([]byte, 512)))
	f.Add(mustHex(f, "c802000c0005000700010002"))
	f.Add(mustHex(f, "c8030010010203040009000880080000"))
	// Every packet the real peers sent (testdata/golden).
	files, _ := filepath.Glob("testdata/golden/*.txt")
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if _, h, ok := strings.Cut(line, " "); ok && line[0] != '#' {
				f.Add(mustHex(f, h))
			}
		}
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		m, err := Parse(pkt)
		if err != nil {
			return
		}
		// Parse checked every AVP: iteration cannot fail, accessors and
		// Unhide never panic.
		it := m.AVPs()
		scratch := make([]byte, MaxAVPLen)
		for a, ok := it.Next(); ok; a, ok = it.Next() {
			a.Uint16()
			a.Uint32()
			a.Uint64()
			a.ResultCode()
			a.Q931Cause()
			a.CallErrors()
			a.ACCM()
			a.ProtocolVersion()
			Unhide(scratch, a, []byte("s"), it.RandomVector())
		}
		if it.Err() != nil {
			t.Fatalf("Parse accepted, iteration failed: %v", it.Err())
		}
		FirstUnknownMandatory(m, KnownV2)
		_ = m.Type()
	})
}
