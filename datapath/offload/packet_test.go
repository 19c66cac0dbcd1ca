package offload

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// buildPacket is buildTCP's segment as a bare IP packet, as a TUN carries it.
func buildPacket(v6 bool, seq uint32, flags uint8, payload, opts []byte, partial bool) []byte {
	return buildTCP(v6, seq, flags, payload, opts, partial)[ethHdrLen:]
}

// packetVnet is the virtio_net_hdr a TUN gives super-packet p.
func packetVnet(p []byte, mss int) VnetHdr {
	t, ok := parsePacketTCP(p)
	if !ok {
		panic("packetVnet: unparsable")
	}
	gso := uint8(GSOTCPv4)
	if t.v6 {
		gso = GSOTCPv6
	}
	return VnetHdr{Flags: FlagNeedsCsum, GSOType: gso, HdrLen: uint16(t.hdrLen), GSOSize: uint16(mss),
		CsumStart: uint16(t.l4), CsumOffset: tcpCsumOff}
}

func TestSegmentPacket(t *testing.T) {
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2} // NOP NOP timestamps
	tests := []struct {
		name  string
		v6    bool
		opts  []byte
		flags uint8
		size  int
		mss   int
		segs  int
	}{
		{"v4 one segment", false, nil, tcpFlagACK | tcpFlagPSH, 1000, 1460, 1},
		{"v4 exact", false, nil, tcpFlagACK | tcpFlagPSH, 3 * 1460, 1460, 3},
		{"v4 odd last", false, ts, tcpFlagACK | tcpFlagPSH, 10001, 1448, 7},
		{"v4 FIN PSH", false, ts, tcpFlagACK | tcpFlagPSH | tcpFlagFIN, 5000, 1448, 4},
		{"v4 CWR first only", false, nil, tcpFlagACK | tcpFlagCWR, 3000, 1460, 3},
		{"v4 64K", false, ts, tcpFlagACK, 65535 - 20 - 32, 1448, 46},
		{"v6 no options", true, nil, tcpFlagACK | tcpFlagPSH, 2881, 1440, 3},
		{"v6 options FIN", true, ts, tcpFlagACK | tcpFlagFIN, 9999, 1428, 8},
		{"v6 small mss", true, ts, tcpFlagACK | tcpFlagPSH, 1001, 100, 11},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const seq0 = 0xfffff000 // the sequence numbers wrap
			payload := randBytes(tc.size, int64(tc.size))
			super := buildPacket(tc.v6, seq0, tc.flags, payload, tc.opts, true)
			h := packetVnet(super, tc.mss)
			s, err := ParsePacketTSO(super, h)
			if err != nil {
				t.Fatal(err)
			}
			if s.Segments() != tc.segs {
				t.Fatalf("%d segments, want %d", s.Segments(), tc.segs)
			}
			ipLen := 20
			if tc.v6 {
				ipLen = 40
			}
			if want := ipLen + 20 + len(tc.opts); s.HeaderLen() != want {
				t.Fatalf("header length %d, want %d", s.HeaderLen(), want)
			}
			const prefix = 14
			hdrs := make([]byte, 4*(prefix+s.HeaderLen()))
			payloads := make([][]byte, 4)
			var got []byte
			for first := 0; first < s.Segments(); {
				n, stride := s.Segment(first, hdrs, prefix, payloads)
				if n == 0 {
					t.Fatalf("no segment from %d", first)
				}
				for i := range n {
					k := first + i
					seg := append(append([]byte(nil), hdrs[i*stride+prefix:(i+1)*stride]...), payloads[i]...)
					checkSegment(t, seg, tc.v6, k, tc.segs, tc.mss, seq0, tc.flags, super)
					got = append(got, payloads[i]...)
				}
				first += n
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("payloads differ")
			}
		})
	}
}

// checkSegment checks segment k of segs cut from super.
func checkSegment(t *testing.T, seg []byte, v6 bool, k, segs, mss int, seq0 uint32, flags uint8, super []byte) {
	t.Helper()
	st, ok := parsePacketTCP(seg)
	if !ok || st.v6 != v6 {
		t.Fatalf("segment %d: unparsable", k)
	}
	if !st.tcpChecksumOK(seg) {
		t.Fatalf("segment %d: bad TCP checksum", k)
	}
	if v6 {
		if l := int(binary.BigEndian.Uint16(seg[4:])); l != len(seg)-40 {
			t.Fatalf("segment %d: payload length %d, want %d", k, l, len(seg)-40)
		}
	} else {
		if l := int(binary.BigEndian.Uint16(seg[2:])); l != len(seg) {
			t.Fatalf("segment %d: total length %d, want %d", k, l, len(seg))
		}
		if Checksum(seg[:st.l4], 0) != 0 {
			t.Fatalf("segment %d: bad IPv4 header checksum", k)
		}
		if id, id0 := binary.BigEndian.Uint16(seg[4:]), binary.BigEndian.Uint16(super[4:]); id != id0+uint16(k) {
			t.Fatalf("segment %d: IPv4 id %#x, want %#x", k, id, id0+uint16(k))
		}
	}
	if k < segs-1 && len(seg)-st.hdrLen != mss {
		t.Fatalf("segment %d: %d payload bytes, want %d", k, len(seg)-st.hdrLen, mss)
	}
	if seq := binary.BigEndian.Uint32(seg[st.l4+4:]); seq != seq0+uint32(k*mss) {
		t.Fatalf("segment %d: seq %#x, want %#x", k, seq, seq0+uint32(k*mss))
	}
	want := flags
	if k != segs-1 {
		want &^= tcpFlagFIN | tcpFlagPSH
	}
	if k != 0 {
		want &^= tcpFlagCWR
	}
	if f := seg[st.l4+13]; f != want {
		t.Fatalf("segment %d: flags %#x, want %#x", k, f, want)
	}
	if !bytes.Equal(seg[st.l4+20:st.hdrLen], super[st.l4+20:st.hdrLen]) {
		t.Fatalf("segment %d: TCP options differ", k)
	}
}

func TestCompletePacketChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		p := buildPacket(v6, 1, tcpFlagACK|tcpFlagPSH, randBytes(777, 5), nil, true)
		h := packetVnet(p, 0)
		h.GSOType = GSONone
		if _, err := ParsePacketTSO(p, h); err != ErrGSOType {
			t.Fatalf("v6=%v: ParsePacketTSO of a non-GSO packet: %v", v6, err)
		}
		if err := CompleteChecksum(p, h); err != nil {
			t.Fatal(err)
		}
		st, _ := parsePacketTCP(p)
		if !st.tcpChecksumOK(p) {
			t.Fatalf("v6=%v: checksum not completed", v6)
		}
	}
}

func TestParsePacketTSORefuses(t *testing.T) {
	v4 := buildPacket(false, 1, tcpFlagACK, randBytes(3000, 1), nil, true)
	v6 := buildPacket(true, 1, tcpFlagACK, randBytes(3000, 1), nil, true)
	frag := append([]byte(nil), v4...)
	frag[6] |= 0x20 // MF
	udp := append([]byte(nil), v4...)
	udp[9] = 17
	tests := []struct {
		name string
		p    []byte
		h    VnetHdr
		want error
	}{
		{"v4 as TCPv6", v4, VnetHdr{GSOType: GSOTCPv6, GSOSize: 1000, CsumStart: 20}, ErrGSOType},
		{"v6 as TCPv4", v6, VnetHdr{GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: 40}, ErrGSOType},
		{"UDP GSO", v4, VnetHdr{GSOType: GSOUDPL4, GSOSize: 1000, CsumStart: 20}, ErrGSOType},
		{"zero size", v4, VnetHdr{GSOType: GSOTCPv4, CsumStart: 20}, ErrShort},
		{"csum start", v4, VnetHdr{GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: 34}, ErrShort},
		{"fragment", frag, VnetHdr{GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: 20}, ErrShort},
		{"not TCP", udp, VnetHdr{GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: 20}, ErrShort},
		{"truncated", v4[:30], VnetHdr{GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: 20}, ErrShort},
		{"empty", nil, VnetHdr{GSOType: GSOTCPv4, GSOSize: 1000}, ErrShort},
		{"Ethernet frame", buildTCP(false, 1, tcpFlagACK, randBytes(3000, 1), nil, true), VnetHdr{GSOType: GSOTCPv4, GSOSize: 1000, CsumStart: 34}, ErrShort},
	}
	for _, tc := range tests {
		if _, err := ParsePacketTSO(tc.p, tc.h); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzPacket feeds what a TUN with IFF_VNET_HDR reads (header and IP
// packet) to the code that handles it: it must never panic, and every
// super-packet's segments must carry its payload.
func FuzzPacket(f *testing.F) {
	for _, v6 := range []bool{false, true} {
		p := buildPacket(v6, 1, tcpFlagACK, randBytes(3000, 1), []byte{1, 1, 1, 1}, true)
		var b [VnetHdrLen]byte
		h := packetVnet(p, 1000)
		h.Encode(b[:])
		f.Add(append(b[:], p...))
		h.GSOType = GSONone
		h.Encode(b[:])
		f.Add(append(b[:], p...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeVnetHdr(b)
		if err != nil {
			return
		}
		p := b[VnetHdrLen:]
		// As received packets, they reach the merging code (covered
		// skips the TCP checksum).
		c := NewPacketCoalescer[int](2, discard{})
		c.Add(1, p, true)
		c.Add(1, p, true)
		c.Flush()
		if h.GSOType == GSONone {
			_ = CompleteChecksum(p, h)
			return
		}
		s, err := ParsePacketTSO(p, h)
		if err != nil {
			return
		}
		hdrs := make([]byte, 5*(8+s.HeaderLen()))
		payloads := make([][]byte, 5)
		total := 0
		for first := 0; first < s.Segments(); {
			n, stride := s.Segment(first, hdrs, 8, payloads)
			if n == 0 || stride != 8+s.HeaderLen() {
				t.Fatalf("%d segments of stride %d from %d of %d", n, stride, first, s.Segments())
			}
			for i := range n {
				total += len(payloads[i])
				if first+i < s.Segments()-1 && len(payloads[i]) != int(h.GSOSize) {
					t.Fatalf("segment %d: %d payload bytes, mss %d", first+i, len(payloads[i]), h.GSOSize)
				}
			}
			first += n
		}
		if total != len(p)-s.HeaderLen() {
			t.Fatalf("segments carry %d bytes of %d", total, len(p)-s.HeaderLen())
		}
	})
}

func BenchmarkSegmentPacket64K(b *testing.B) {
	super := buildPacket(false, 1, tcpFlagACK, randBytes(62000, 1), nil, true)
	h := packetVnet(super, 1448)
	hdrs := make([]byte, 64*(20+maxCoalesceHdr))
	payloads := make([][]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(super)))
	for i := 0; i < b.N; i++ {
		s, err := ParsePacketTSO(super, h)
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := s.Segment(0, hdrs, 20, payloads); n != s.Segments() {
			b.Fatal("short")
		}
	}
}

// TestCoalescePackets: the segments of a TUN's super-packet merge back
// into one, with a GSO virtio_net_hdr counting from the IP header; a
// packet that cannot merge goes after the pending super-packet, in order.
func TestCoalescePackets(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		payload := randBytes(10*1400, 9)
		super := buildPacket(v6, 5000, tcpFlagACK|tcpFlagPSH, payload, nil, true)
		h := packetVnet(super, 1400)
		s, err := ParsePacketTSO(super, h)
		if err != nil {
			t.Fatal(err)
		}
		hdrs := make([]byte, 16*s.HeaderLen())
		payloads := make([][]byte, 16)
		n, stride := s.Segment(0, hdrs, 0, payloads)
		rec := &recorder{}
		c := NewPacketCoalescer[int](4, rec)
		for i := range n {
			c.Add(1, append(append([]byte(nil), hdrs[i*stride:(i+1)*stride]...), payloads[i]...), false)
		}
		other := buildPacket(v6, 1, tcpFlagSYN, nil, nil, false) // not mergeable
		c.Add(1, other, false)
		c.Flush()
		if len(rec.writes) != 2 {
			t.Fatalf("v6=%v: %d writes, want the super-packet and the SYN", v6, len(rec.writes))
		}
		vh, _ := DecodeVnetHdr(rec.writes[0])
		p := rec.writes[0][VnetHdrLen:]
		pt, ok := parsePacketTCP(p)
		if !ok || vh.GSOType != h.GSOType || vh.GSOSize != 1400 || int(vh.CsumStart) != pt.l4 || vh.Flags != FlagNeedsCsum {
			t.Fatalf("v6=%v: merged vnet header %v", v6, vh)
		}
		if err := CompleteChecksum(p, vh); err != nil || !pt.tcpChecksumOK(p) {
			t.Fatalf("v6=%v: merged packet's checksum: %v", v6, err)
		}
		if !bytes.Equal(p[pt.hdrLen:], payload) || p[pt.l4+13] != tcpFlagACK|tcpFlagPSH {
			t.Fatalf("v6=%v: merged packet differs", v6)
		}
		if !bytes.Equal(rec.writes[1][VnetHdrLen:], other) {
			t.Fatalf("v6=%v: second write is not the SYN", v6)
		}
	}
}
