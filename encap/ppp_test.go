package encap

import (
	"encoding/hex"
	"errors"
	"testing"
)

func TestParsePPP(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame string
		proto uint16
		off   int
		err   error
	}{
		{"full", "ff03c02101", PPPLCP, 4, nil},
		{"no address", "c02101", PPPLCP, 2, nil},
		{"pfc", "ff032145", PPPIPv4, 3, nil},
		{"acfc and pfc", "2145", PPPIPv4, 1, nil},
		{"ipv6 uncompressed", "005760", PPPIPv6, 2, nil},
		{"header only", "ff030021", PPPIPv4, 4, nil},
		{"empty", "", 0, 0, ErrTruncated},
		{"address only", "ff03", 0, 0, ErrTruncated},
		{"half protocol", "ff03c0", 0, 0, ErrTruncated},
		{"even second octet", "ff03c020", 0, 0, ErrPPPProtocol},
		{"lone ff reads as a compressed protocol", "ff", 0xff, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := hex.DecodeString(tc.frame)
			proto, off, err := ParsePPP(b)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && (proto != tc.proto || off != tc.off) {
				t.Fatalf("ParsePPP = %#04x, %d; want %#04x, %d", proto, off, tc.proto, tc.off)
			}
		})
	}
}

func TestEncodePPP(t *testing.T) {
	for _, tc := range []struct {
		proto uint16
		h     PPPHeader
		want  string
	}{
		{PPPLCP, PPPHeader{}, "ff03c021"},
		{PPPLCP, PPPHeader{ACFC: true, PFC: true}, "ff03c021"}, // LCP keeps ff 03
		{PPPIPv4, PPPHeader{}, "ff030021"},
		{PPPIPv4, PPPHeader{PFC: true}, "ff0321"},
		{PPPIPv4, PPPHeader{ACFC: true}, "0021"},
		{PPPIPv4, PPPHeader{ACFC: true, PFC: true}, "21"},
		{PPPIPCP, PPPHeader{ACFC: true, PFC: true}, "8021"},
		{PPPIPv6, PPPHeader{ACFC: true, PFC: true}, "57"},
	} {
		b := make([]byte, PPPMaxHeaderLen)
		n, err := EncodePPP(b, tc.proto, tc.h)
		if err != nil {
			t.Fatalf("%#04x %+v: %v", tc.proto, tc.h, err)
		}
		if got := hex.EncodeToString(b[:n]); got != tc.want {
			t.Errorf("%#04x %+v: %s, want %s", tc.proto, tc.h, got, tc.want)
		}
		if n != PPPHeaderLen(tc.proto, tc.h) {
			t.Errorf("%#04x %+v: wrote %d, PPPHeaderLen %d", tc.proto, tc.h, n, PPPHeaderLen(tc.proto, tc.h))
		}
		proto, off, err := ParsePPP(append(b[:n], 0x45))
		if err != nil || proto != tc.proto || off != n {
			t.Errorf("%#04x %+v: parsed back %#04x, %d, %v", tc.proto, tc.h, proto, off, err)
		}
	}
	if _, err := EncodePPP(make([]byte, 4), 0x0020, PPPHeader{}); !errors.Is(err, ErrPPPProtocol) {
		t.Errorf("even protocol: %v", err)
	}
	if _, err := EncodePPP(make([]byte, 4), 0x0121, PPPHeader{}); !errors.Is(err, ErrPPPProtocol) {
		t.Errorf("odd high octet: %v", err)
	}
	if _, err := EncodePPP(make([]byte, 3), PPPLCP, PPPHeader{}); !errors.Is(err, ErrTruncated) {
		t.Errorf("short buffer: %v", err)
	}
}

func FuzzPPP(f *testing.F) {
	f.Add([]byte{0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4})
	f.Add([]byte{0x21, 0x45})
	f.Add([]byte{0x00, 0x57, 0x60})
	f.Fuzz(func(t *testing.T, frame []byte) {
		proto, off, err := ParsePPP(frame)
		if err != nil {
			return
		}
		if off > len(frame) {
			t.Fatalf("offset %d past %d", off, len(frame))
		}
		// Written back uncompressed, the header parses to the same protocol.
		b := make([]byte, PPPMaxHeaderLen)
		n, err := EncodePPP(b, proto, PPPHeader{})
		if err != nil {
			t.Fatalf("EncodePPP(%#04x): %v", proto, err)
		}
		if got, goff, err := ParsePPP(b[:n]); err != nil || got != proto || goff != n {
			t.Fatalf("re-parsed %#04x, %d, %v; want %#04x", got, goff, err, proto)
		}
	})
}

func BenchmarkParsePPP(b *testing.B) {
	frame := []byte{0xff, 0x03, 0x00, 0x21, 0x45, 0, 0, 20}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, off, _ := ParsePPP(frame)
		sink += off
	}
}

// BenchmarkEncodePPP writes the header of an IPv4 frame as the TUN-to-call
// path does, uncompressed and with ACFC and PFC.
func BenchmarkEncodePPP(b *testing.B) {
	buf := make([]byte, PPPMaxHeaderLen)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h := PPPHeader{ACFC: i&1 != 0, PFC: i&1 != 0}
		n, _ := EncodePPP(buf[PPPMaxHeaderLen-PPPHeaderLen(PPPIPv4, h):], PPPIPv4, h)
		sink += n
	}
}
