package encap

import (
	"encoding/hex"
	"errors"
	"testing"
)

// TestEncodeV2 writes headers with every optional field and checks the
// bytes against the layout of RFC 2661 section 3.1, written out by hand.
func TestEncodeV2(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h       V2Header
		payload int
		want    string
	}{
		{"plain", V2Header{TunnelID: 0x1234, SessionID: 0x5678}, 4, "000212345678"},
		{"length", V2Header{Flags: V2FlagL, TunnelID: 1, SessionID: 2}, 4, "4002000c00010002"},
		{"seq", V2Header{Flags: V2FlagS, TunnelID: 1, SessionID: 2, Ns: 0xfffe, Nr: 7}, 0, "080200010002fffe0007"},
		{"offset", V2Header{Flags: V2FlagO, TunnelID: 1, SessionID: 2, OffsetSize: 3}, 1, "0202000100020003000000"},
		{"priority", V2Header{Flags: V2FlagP, TunnelID: 1, SessionID: 2}, 0, "010200010002"},
		{"all", V2Header{Flags: V2FlagL | V2FlagS | V2FlagO | V2FlagP, TunnelID: 9, SessionID: 10, Ns: 1, Nr: 2, OffsetSize: 1},
			2, "4b0200110009000a00010002000100"},
		{"control", V2Header{Flags: V2FlagT | V2FlagL | V2FlagS, TunnelID: 3, Ns: 4, Nr: 5}, 0, "c802000c0003000000040005"},
		{"reserved bits dropped", V2Header{Flags: 0x34f0, TunnelID: 1, SessionID: 2}, 0, "000200010002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, 32)
			for i := range b {
				b[i] = 0xee // the padding must come out zeroed
			}
			n, err := EncodeV2(b, &tc.h, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(b[:n]); got != tc.want {
				t.Fatalf("EncodeV2 = %s, want %s", got, tc.want)
			}
			if n != V2HeaderLen(tc.h.Flags, tc.h.OffsetSize) {
				t.Fatalf("wrote %d bytes, V2HeaderLen says %d", n, V2HeaderLen(tc.h.Flags, tc.h.OffsetSize))
			}
			// With its payload the header parses back.
			pkt := append(b[:n:n], make([]byte, tc.payload)...)
			h, err := ParseV2(pkt)
			if err != nil {
				t.Fatalf("ParseV2: %v", err)
			}
			want := tc.h
			want.Flags &= V2FlagT | V2FlagL | V2FlagS | V2FlagO | V2FlagP
			if want.Flags&V2FlagL != 0 {
				want.Length = uint16(n + tc.payload)
			}
			want.PayloadOffset = n
			if h != want {
				t.Fatalf("parsed %+v, want %+v", h, want)
			}
		})
	}
}

func TestEncodeV2Errors(t *testing.T) {
	h := V2Header{Flags: V2FlagS | V2FlagL, TunnelID: 1, SessionID: 2}
	if _, err := EncodeV2(make([]byte, 11), &h, 0); !errors.Is(err, ErrTruncated) {
		t.Errorf("short buffer: %v, want ErrTruncated", err)
	}
	if _, err := EncodeV2(make([]byte, 12), &h, 0xffff-11); !errors.Is(err, ErrLength) {
		t.Errorf("long payload: %v, want ErrLength", err)
	}
	if _, err := EncodeV2(make([]byte, 12), &h, 0xffff-12); err != nil {
		t.Errorf("longest payload: %v", err)
	}
	h.Flags = V2FlagS // without a Length field any payload goes
	if _, err := EncodeV2(make([]byte, 10), &h, 1<<20); err != nil {
		t.Errorf("no Length: %v", err)
	}
}

// TestEncodeV2DataMatches checks the kernel-style data header against the
// general encoder.
func TestEncodeV2DataMatches(t *testing.T) {
	for _, seq := range []bool{false, true} {
		a, b := make([]byte, V2MaxDataHeaderLen), make([]byte, V2MaxDataHeaderLen)
		n := EncodeV2Data(a, 7, 8, 9, seq)
		h := V2Header{TunnelID: 7, SessionID: 8}
		if seq {
			h.Flags, h.Ns = V2FlagS, 9
		}
		m, err := EncodeV2(b, &h, 0)
		if err != nil || n != m || hex.EncodeToString(a[:n]) != hex.EncodeToString(b[:m]) {
			t.Errorf("seq %v: EncodeV2Data %x, EncodeV2 %x (%v)", seq, a[:n], b[:m], err)
		}
		if n != V2DataHeaderLen(seq) {
			t.Errorf("seq %v: V2DataHeaderLen %d, wrote %d", seq, V2DataHeaderLen(seq), n)
		}
	}
}

func BenchmarkV2Encode(b *testing.B) {
	h := V2Header{Flags: V2FlagS | V2FlagL, TunnelID: 1, SessionID: 2}
	buf := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.Ns = uint16(i)
		n, _ := EncodeV2(buf, &h, 1400)
		sink += n
	}
}

func BenchmarkV2Parse(b *testing.B) {
	buf := make([]byte, 1500)
	h := V2Header{Flags: V2FlagS | V2FlagL | V2FlagO, TunnelID: 1, SessionID: 2, OffsetSize: 2}
	EncodeV2(buf, &h, len(buf)-V2HeaderLen(h.Flags, 2))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h, _ := ParseV2(buf)
		sink += h.PayloadOffset
	}
}
