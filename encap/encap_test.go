package encap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func mustCookie(t testing.TB, s string) Cookie {
	t.Helper()
	c, err := ParseCookie(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestV3EncodeTable(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout V3Layout
		sid    uint32
		ns     uint32
		seq    bool
		want   string
	}{
		{"udp none", V3Layout{Encap: EncapUDP}, 0x65, 0, false, "0003000000000065"},
		{"udp cookie4 default", V3Layout{Encap: EncapUDP, Cookie: mustCookie(t, "11223344"), L2Spec: L2SpecDefault}, 0x65, 7, false, "00030000000000651122334400000000"},
		{"udp cookie8 default seq", V3Layout{Encap: EncapUDP, Cookie: mustCookie(t, "0011223344556677"), L2Spec: L2SpecDefault}, 0x01020304, 0x123456, true, "0003000001020304001122334455667740123456"},
		{"udp seq wraps to 24 bits", V3Layout{Encap: EncapUDP, L2Spec: L2SpecDefault}, 1, 0x01ffffff, true, "000300000000000140ffffff"},
		{"ip none", V3Layout{Encap: EncapIP}, 0x65, 0, false, "00000065"},
		{"ip cookie4 none", V3Layout{Encap: EncapIP, Cookie: mustCookie(t, "a1b2c3d4")}, 0xffffffff, 0, false, "ffffffffa1b2c3d4"},
		{"ip default seq", V3Layout{Encap: EncapIP, L2Spec: L2SpecDefault}, 9, 1, true, "0000000940000001"},
		{"l2spec none ignores seq", V3Layout{Encap: EncapIP}, 9, 1, true, "00000009"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, MaxV3HeaderLen)
			n := tc.layout.Encode(b, tc.sid, tc.ns, tc.seq)
			if n != tc.layout.HeaderLen() {
				t.Fatalf("Encode wrote %d bytes, HeaderLen %d", n, tc.layout.HeaderLen())
			}
			if got := hex.EncodeToString(b[:n]); got != tc.want {
				t.Fatalf("Encode = %s, want %s", got, tc.want)
			}
			pkt := append(b[:n:n], 0xaa, 0xbb)
			sid, err := PeekV3SessionID(pkt, tc.layout.Encap)
			if err != nil || sid != tc.sid {
				t.Fatalf("PeekV3SessionID = %#x, %v; want %#x", sid, err, tc.sid)
			}
			d, err := tc.layout.Decode(pkt)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !bytes.Equal(pkt[d.PayloadOffset:], []byte{0xaa, 0xbb}) {
				t.Fatalf("payload at %d, want %d", d.PayloadOffset, n)
			}
			wantSeq := tc.seq && tc.layout.L2Spec == L2SpecDefault
			if d.HasSeq != wantSeq || (wantSeq && d.Ns != tc.ns&SeqMaskV3) {
				t.Fatalf("seq = %v %#x, want %v %#x", d.HasSeq, d.Ns, wantSeq, tc.ns&SeqMaskV3)
			}
		})
	}
}

func TestV3ParseErrors(t *testing.T) {
	c4 := V3Layout{Encap: EncapUDP, Cookie: mustCookie(t, "11223344"), L2Spec: L2SpecDefault}
	for _, tc := range []struct {
		name  string
		pkt   string
		encap Encap
		peek  error
		dec   error // with c4 (UDP) or an IP layout with the same cookie
	}{
		{"udp empty", "", EncapUDP, ErrTruncated, nil},
		{"udp 7 bytes", "00030000000000", EncapUDP, ErrTruncated, nil},
		{"udp control", "c8030000000000650000", EncapUDP, ErrControl, nil},
		{"udp version 2", "0002000000000065", EncapUDP, ErrVersion, nil},
		{"udp session 0", "0003000000000000", EncapUDP, ErrSession, nil},
		{"udp no cookie room", "00030000000000651122", EncapUDP, nil, ErrTruncated},
		{"udp wrong cookie", "000300000000006511223345" + "00000000", EncapUDP, nil, ErrCookie},
		{"udp no sublayer room", "00030000000000651122334400", EncapUDP, nil, ErrTruncated},
		{"ip 3 bytes", "000000", EncapIP, ErrTruncated, nil},
		{"ip control", "00000000c8030000", EncapIP, ErrControl, nil},
		{"ip wrong cookie", "0000006599223344" + "00000000", EncapIP, nil, ErrCookie},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := unhex(t, tc.pkt)
			_, err := PeekV3SessionID(pkt, tc.encap)
			if !errors.Is(err, tc.peek) {
				t.Fatalf("PeekV3SessionID error %v, want %v", err, tc.peek)
			}
			if err != nil {
				return
			}
			l := c4
			l.Encap = tc.encap
			if _, err := l.Decode(pkt); !errors.Is(err, tc.dec) {
				t.Fatalf("Decode error %v, want %v", err, tc.dec)
			}
		})
	}
}

func TestParseCookie(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		fail bool
	}{
		{"", 0, false}, {"11223344", 4, false}, {"0011223344556677", 8, false},
		{"123", 0, true}, {"1122334", 0, true}, {"112233445566778899", 0, true}, {"zz223344", 0, true},
	} {
		c, err := ParseCookie(tc.in)
		if (err != nil) != tc.fail || c.Len() != tc.n {
			t.Errorf("ParseCookie(%q) = len %d, %v", tc.in, c.Len(), err)
		}
		if err == nil && c.String() != tc.in {
			t.Errorf("ParseCookie(%q).String() = %q", tc.in, c.String())
		}
	}
	if _, err := CookieFromBytes([]byte{1, 2, 3}); err == nil {
		t.Error("CookieFromBytes of 3 bytes: no error")
	}
}

func TestV2(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  string
		want V2Header
		err  error
	}{
		{"data plain", "0002000a0014ff", V2Header{TunnelID: 10, SessionID: 20, PayloadOffset: 6}, nil},
		{"data seq", "0802000a001400050000ff", V2Header{Flags: V2FlagS, TunnelID: 10, SessionID: 20, Ns: 5, PayloadOffset: 10}, nil},
		{"length", "4002000b000a0014ffffff", V2Header{Flags: V2FlagL, Length: 11, TunnelID: 10, SessionID: 20, PayloadOffset: 8}, nil},
		{"offset", "0202000a00140002aaaaff", V2Header{Flags: V2FlagO, TunnelID: 10, SessionID: 20, OffsetSize: 2, PayloadOffset: 10}, nil},
		{"control", "c802000c000100000000", V2Header{Flags: V2FlagT | V2FlagL | V2FlagS, Length: 12, TunnelID: 1, PayloadOffset: 12}, ErrTruncated},
		{"control ok", "c802000c0001000000000001", V2Header{Flags: V2FlagT | V2FlagL | V2FlagS, Length: 12, TunnelID: 1, Nr: 1, PayloadOffset: 12}, nil},
		{"version 3", "0003000a0014", V2Header{}, ErrVersion},
		{"short", "0002000a00", V2Header{}, ErrTruncated},
		{"offset past end", "0202000a001400ff", V2Header{}, ErrTruncated},
		{"length short", "40020004000a0014", V2Header{}, ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseV2(unhex(t, tc.pkt))
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err == nil && h != tc.want {
				t.Fatalf("got %+v, want %+v", h, tc.want)
			}
		})
	}
	b := make([]byte, V2MaxDataHeaderLen)
	n := EncodeV2Data(b, 10, 20, 5, true)
	if got := hex.EncodeToString(b[:n]); got != "0802000a001400050000" {
		t.Fatalf("EncodeV2Data = %s", got)
	}
	n = EncodeV2Data(b, 10, 20, 0, false)
	if got := hex.EncodeToString(b[:n]); got != "0002000a0014" {
		t.Fatalf("EncodeV2Data = %s", got)
	}
}

func FuzzV3(f *testing.F) {
	f.Add([]byte{0, 3, 0, 0, 0, 0, 0, 0x65, 0x11, 0x22, 0x33, 0x44, 0x40, 0, 0, 1}, uint8(0), uint8(4), true)
	f.Add([]byte{0, 0, 0, 0x65, 0xaa}, uint8(1), uint8(0), false)
	f.Add([]byte{0xc8, 3}, uint8(0), uint8(8), true)
	f.Fuzz(func(t *testing.T, pkt []byte, e uint8, cookieLen uint8, l2 bool) {
		enc := Encap(e % 2)
		l := V3Layout{Encap: enc}
		c, _ := CookieFromBytes(make([]byte, []int{0, 4, 8}[cookieLen%3]))
		l.Cookie = c
		if l2 {
			l.L2Spec = L2SpecDefault
		}
		if _, err := PeekV3SessionID(pkt, enc); err != nil {
			return
		}
		d, err := l.Decode(pkt)
		if err != nil {
			return
		}
		if d.PayloadOffset > len(pkt) || d.PayloadOffset != l.HeaderLen() {
			t.Fatalf("payload offset %d of %d", d.PayloadOffset, len(pkt))
		}
		// Re-encoding what was decoded gives the same session id, cookie
		// and sequence number back.
		sid, _ := PeekV3SessionID(pkt, enc)
		b := make([]byte, MaxV3HeaderLen)
		n := l.Encode(b, sid, d.Ns, d.HasSeq)
		from := 0
		if enc == EncapUDP {
			from = V3UDPPrefixLen // the flags word's other bits are not kept
		}
		to := n
		if l.L2Spec == L2SpecDefault {
			to = n - L2SpecDefaultLen
			got, _ := l.Decode(append(b[:n:n], pkt[n:]...))
			if got != d {
				t.Fatalf("re-decoded %+v, want %+v", got, d)
			}
		}
		if !bytes.Equal(b[from:to], pkt[from:to]) {
			t.Fatalf("re-encoded %x, got %x", b[:n], pkt[:n])
		}
	})
}

func FuzzV2(f *testing.F) {
	f.Add([]byte{0x08, 0x02, 0, 10, 0, 20, 0, 5, 0, 0, 0xff})
	f.Add([]byte{0x42, 0x02, 0, 12, 0, 1, 0, 0, 0, 2, 0xaa, 0xaa})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h, err := ParseV2(pkt)
		if err != nil {
			return
		}
		if h.PayloadOffset > len(pkt) {
			t.Fatalf("payload offset %d past %d", h.PayloadOffset, len(pkt))
		}
		// Encoding what was parsed, with the same payload, parses back
		// to the same header.
		end := len(pkt)
		if h.Flags&V2FlagL != 0 {
			end = int(h.Length)
		}
		b := make([]byte, V2HeaderLen(h.Flags, h.OffsetSize)+end-h.PayloadOffset)
		n, err := EncodeV2(b, &h, end-h.PayloadOffset)
		if err != nil {
			t.Fatalf("EncodeV2(%+v): %v", h, err)
		}
		if n != h.PayloadOffset {
			t.Fatalf("EncodeV2 wrote %d bytes, parsed header was %d", n, h.PayloadOffset)
		}
		copy(b[n:], pkt[h.PayloadOffset:end])
		got, err := ParseV2(b)
		h.Flags &= V2FlagT | V2FlagL | V2FlagS | V2FlagO | V2FlagP // reserved bits are not sent
		if err != nil || got != h {
			t.Fatalf("re-parsed %+v, %v; want %+v", got, err, h)
		}
	})
}

var sink int

func BenchmarkV3Encode(b *testing.B) {
	l := V3Layout{Encap: EncapUDP, Cookie: mustCookie(b, "0011223344556677"), L2Spec: L2SpecDefault}
	buf := make([]byte, 1500)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sink += l.Encode(buf, 0x65, uint32(i), true)
	}
}

func BenchmarkV3Decode(b *testing.B) {
	l := V3Layout{Encap: EncapUDP, Cookie: mustCookie(b, "0011223344556677"), L2Spec: L2SpecDefault}
	buf := make([]byte, 1500)
	l.Encode(buf, 0x65, 1, true)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sid, _ := PeekV3SessionID(buf, EncapUDP)
		d, _ := l.Decode(buf)
		sink += int(sid) + d.PayloadOffset
	}
}
