package offload

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"
)

// buildTCP makes an Ethernet frame with a TCP segment of payload, with
// correct checksums (or, with partial, the pseudo-header sum a TSO frame
// carries).
func buildTCP(v6 bool, seq uint32, flags uint8, payload []byte, opts []byte, partial bool) []byte {
	var f []byte
	f = append(f, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2)
	l4 := 20 + len(opts) + len(payload)
	if v6 {
		f = append(f, 0x86, 0xdd)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4))
		ip[6], ip[7] = protoTCP, 64
		ip[8], ip[23] = 0xfd, 1
		ip[24], ip[39] = 0xfd, 2
		f = append(f, ip...)
	} else {
		f = append(f, 0x08, 0x00)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+l4))
		binary.BigEndian.PutUint16(ip[4:], 0x1234)
		ip[6] = 0x40 // DF
		ip[8], ip[9] = 64, protoTCP
		copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
		binary.BigEndian.PutUint16(ip[10:], Checksum(ip, 0))
		f = append(f, ip...)
	}
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], 777)
	tcp[12] = byte((20+len(opts))/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 500)
	f = append(f, tcp...)
	f = append(f, opts...)
	f = append(f, payload...)
	t, ok := parseTCP(f)
	if !ok {
		panic("buildTCP: unparsable")
	}
	src, dst := t.ipAddrs(f)
	ps := pseudoSum(src, dst, protoTCP, l4)
	if partial {
		binary.BigEndian.PutUint16(f[t.l4+16:], Fold(ps))
	} else {
		binary.BigEndian.PutUint16(f[t.l4+16:], ^Fold(Sum(f[t.l4:], ps)))
	}
	return f
}

func randBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestChecksum(t *testing.T) {
	// RFC 1071's example bytes.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Sum(b, 0)); got != 0xddf2 {
		t.Fatalf("sum %#x, want 0xddf2", got)
	}
	// Against a plain 16-bit loop, for every length up to 300, on random
	// bytes and on all-ones (every addition carries).
	data := randBytes(300, 1)
	ones := bytes.Repeat([]byte{0xff}, 300)
	for i := 0; i <= 2*len(data); i++ {
		data, n := data, i
		if i > len(data) {
			data, n = ones, i-len(data)-1
		}
		var ref uint32
		for i := 0; i+1 < n; i += 2 {
			ref += uint32(data[i])<<8 | uint32(data[i+1])
		}
		if n%2 == 1 {
			ref += uint32(data[n-1]) << 8
		}
		for ref > 0xffff {
			ref = ref>>16 + ref&0xffff
		}
		if got := Fold(Sum(data[:n], 0)); got != uint16(ref) {
			t.Fatalf("len %d: %#x, want %#x", n, got, ref)
		}
	}
}

func TestSegmentAndCoalesce(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, size := range []int{1, 1000, 1448, 1449, 14480, 60000} {
			opts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2} // NOP NOP timestamps
			payload := randBytes(size, int64(size))
			super := buildTCP(v6, 1000, tcpFlagACK|tcpFlagPSH, payload, opts, true)
			tf, _ := parseTCP(super)
			gso := uint8(GSOTCPv4)
			if v6 {
				gso = GSOTCPv6
			}
			h := VnetHdr{Flags: FlagNeedsCsum, GSOType: gso, HdrLen: uint16(tf.hdrLen), GSOSize: 1448,
				CsumStart: uint16(tf.l4), CsumOffset: 16}
			const prefix = 20
			hdrs := make([]byte, 64*(prefix+maxCoalesceHdr))
			payloads := make([][]byte, 64)
			n, stride, err := SegmentTCP(super, h, hdrs, prefix, payloads)
			if err != nil {
				t.Fatalf("v6=%v size %d: %v", v6, size, err)
			}
			if want := (size + 1447) / 1448; n != want {
				t.Fatalf("%d segments, want %d", n, want)
			}
			var got []byte
			rec := &recorder{}
			c := NewCoalescer[int](4, rec)
			for i := 0; i < n; i++ {
				seg := append(append([]byte(nil), hdrs[i*stride+prefix:(i+1)*stride]...), payloads[i]...)
				st, ok := parseTCP(seg)
				if !ok || !st.tcpChecksumOK(seg) {
					t.Fatalf("segment %d: bad TCP checksum", i)
				}
				if !v6 && Checksum(seg[st.l3:st.l4], 0) != 0 {
					t.Fatalf("segment %d: bad IPv4 header checksum", i)
				}
				if i < n-1 && len(payloads[i]) != 1448 {
					t.Fatalf("segment %d: %d payload bytes, want 1448", i, len(payloads[i]))
				}
				if seq := binary.BigEndian.Uint32(seg[st.l4+4:]); seq != 1000+uint32(i*1448) {
					t.Fatalf("segment %d: seq %d", i, seq)
				}
				psh := seg[st.l4+13]&tcpFlagPSH != 0
				if psh != (i == n-1) {
					t.Fatalf("segment %d: PSH %v", i, psh)
				}
				got = append(got, seg[st.hdrLen:]...)
				c.Add(7, seg, false)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("v6=%v size %d: payloads differ", v6, size)
			}
			c.Flush()
			// The segments merge back into super-frames equal to the input
			// (up to 64 segments of at most 64 KiB each).
			var merged []byte
			for _, w := range rec.writes {
				vh, _ := DecodeVnetHdr(w)
				f := w[VnetHdrLen:]
				ft, ok := parseTCP(f)
				if !ok {
					t.Fatal("merged frame unparsable")
				}
				if len(rec.writes) == 1 && n > 1 {
					if vh.GSOType != gso || vh.GSOSize != 1448 || vh.CsumStart != uint16(ft.l4) || vh.Flags != FlagNeedsCsum {
						t.Fatalf("merged vnet header %v", vh)
					}
					if !bytes.Equal(f[:ft.l4+16], super[:ft.l4+16]) && v6 {
						t.Fatalf("merged headers differ:\n%x\n%x", f[:ft.hdrLen], super[:ft.hdrLen])
					}
				}
				if vh.Flags&FlagNeedsCsum != 0 {
					// Complete it as the kernel would and check it.
					if err := CompleteChecksum(f, vh); err != nil {
						t.Fatal(err)
					}
				}
				if !ft.tcpChecksumOK(f) {
					t.Fatal("merged frame: bad checksum")
				}
				merged = append(merged, f[ft.hdrLen:]...)
			}
			if !bytes.Equal(merged, payload) {
				t.Fatalf("v6=%v size %d: merged payload differs (%d writes)", v6, size, len(rec.writes))
			}
		}
	}
}

type recorder struct{ writes [][]byte }

func (r *recorder) WriteParts(k int, parts [][]byte) error {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	r.writes = append(r.writes, b)
	return nil
}

func TestCoalesceRules(t *testing.T) {
	p := randBytes(1000, 3)
	seg := func(seq uint32, flags uint8, n int) []byte {
		return buildTCP(false, seq, flags, p[:n], nil, false)
	}
	corrupt := seg(2000, tcpFlagACK, 1000)
	corrupt[len(corrupt)-1] ^= 1
	for _, tc := range []struct {
		name    string
		frames  [][]byte
		writes  int  // frames written to the TAP
		covered bool // an outer checksum covered the frames
	}{
		{"in order", [][]byte{seg(0, tcpFlagACK, 1000), seg(1000, tcpFlagACK, 1000), seg(2000, tcpFlagACK, 1000)}, 1, false},
		{"gap", [][]byte{seg(0, tcpFlagACK, 1000), seg(2000, tcpFlagACK, 1000)}, 2, false},
		{"short ends it", [][]byte{seg(0, tcpFlagACK, 1000), seg(1000, tcpFlagACK, 500), seg(1500, tcpFlagACK, 500)}, 2, false},
		{"longer starts new", [][]byte{seg(0, tcpFlagACK, 500), seg(500, tcpFlagACK, 1000)}, 2, false},
		{"psh ends it", [][]byte{seg(0, tcpFlagACK|tcpFlagPSH, 1000), seg(1000, tcpFlagACK, 1000)}, 2, false},
		{"psh joins", [][]byte{seg(0, tcpFlagACK, 1000), seg(1000, tcpFlagACK|tcpFlagPSH, 1000)}, 1, false},
		{"fin passes", [][]byte{seg(0, tcpFlagACK, 1000), seg(1000, tcpFlagACK|tcpFlagFIN, 1000)}, 2, false},
		{"pure ack passes", [][]byte{seg(0, tcpFlagACK, 0), seg(0, tcpFlagACK, 0)}, 2, false},
		{"bad checksum passes", [][]byte{seg(0, tcpFlagACK, 1000), seg(1000, tcpFlagACK, 1000), corrupt}, 2, false},
		// Covered by the UDP checksum, the TCP checksum is not read.
		{"covered joins unread", [][]byte{seg(0, tcpFlagACK, 1000), seg(1000, tcpFlagACK, 1000), corrupt}, 1, true},
		{"not tcp", [][]byte{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06, 0, 1}}, 1, false},
	} {
		rec := &recorder{}
		c := NewCoalescer[int](2, rec)
		for _, f := range tc.frames {
			c.Add(1, f, tc.covered)
		}
		c.Flush()
		if len(rec.writes) != tc.writes {
			t.Errorf("%s: %d writes, want %d", tc.name, len(rec.writes), tc.writes)
		}
	}
	// Two owners never merge, and order within an owner holds across a
	// pass-through frame.
	rec := &recorder{}
	c := NewCoalescer[int](4, rec)
	c.Add(1, seg(0, tcpFlagACK, 1000), false)
	c.Add(2, seg(1000, tcpFlagACK, 1000), false)
	c.Add(1, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x06, 0, 1}, false)
	c.Flush()
	if len(rec.writes) != 3 || len(rec.writes[0]) != VnetHdrLen+len(seg(0, tcpFlagACK, 1000)) {
		t.Fatalf("writes %d", len(rec.writes))
	}
}

// TestCoalesceLoneSegmentFlags checks the virtio_net_hdr of a segment
// that merged with nothing: marked valid only if its checksum was verified
// here, else left for the kernel to verify.
func TestCoalesceLoneSegmentFlags(t *testing.T) {
	f := buildTCP(false, 0, tcpFlagACK, randBytes(1000, 5), nil, false)
	for _, tc := range []struct {
		covered bool
		flags   uint8
	}{{false, FlagDataValid}, {true, 0}} {
		rec := &recorder{}
		c := NewCoalescer[int](2, rec)
		c.Add(1, f, tc.covered)
		c.Flush()
		if len(rec.writes) != 1 {
			t.Fatalf("covered %v: %d writes, want 1", tc.covered, len(rec.writes))
		}
		h, err := DecodeVnetHdr(rec.writes[0])
		if err != nil {
			t.Fatal(err)
		}
		if h.Flags != tc.flags || h.GSOType != GSONone || !bytes.Equal(rec.writes[0][VnetHdrLen:], f) {
			t.Errorf("covered %v: header %+v, want flags %#x and the frame unchanged", tc.covered, h, tc.flags)
		}
	}
}

// TestCoalesceKeepsFlowOrder sends TSO-sized runs of one flow whose TCP
// timestamps differ from run to run (so runs never merge with each other),
// more runs than there are slots: the frames must reach the writer in
// sequence order.
func TestCoalesceKeepsFlowOrder(t *testing.T) {
	p := randBytes(1000, 4)
	rec := &recorder{}
	c := NewCoalescer[int](2, rec)
	var seq uint32
	for run := 0; run < 5; run++ {
		opts := []byte{1, 1, 8, 10, 0, 0, 0, byte(run), 0, 0, 0, 2}
		for i := 0; i < 3; i++ {
			flags := uint8(tcpFlagACK)
			if i == 2 {
				flags |= tcpFlagPSH
			}
			c.Add(1, buildTCP(false, seq, flags, p, opts, false), false)
			seq += uint32(len(p))
		}
	}
	c.Flush()
	var next uint32
	for i, w := range rec.writes {
		f := w[VnetHdrLen:]
		ft, _ := parseTCP(f)
		got := binary.BigEndian.Uint32(f[ft.l4+4:])
		if got != next {
			t.Fatalf("write %d: seq %d, want %d", i, got, next)
		}
		next += uint32(len(f) - ft.hdrLen)
	}
	if next != seq || len(rec.writes) != 5 {
		t.Fatalf("%d writes carrying %d bytes, want 5 carrying %d", len(rec.writes), next, seq)
	}
}

// TestVnetHdrLittleEndian pins the header's wire layout: little-endian on
// every host (run it on a big-endian one too, e.g. GOARCH=mips under
// qemu-mips).
func TestVnetHdrLittleEndian(t *testing.T) {
	h := VnetHdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv6, HdrLen: 0x0102, GSOSize: 0x0304, CsumStart: 0x0506, CsumOffset: 0x0708}
	want := []byte{FlagNeedsCsum, GSOTCPv6, 0x02, 0x01, 0x04, 0x03, 0x06, 0x05, 0x08, 0x07}
	b := make([]byte, VnetHdrLen)
	h.Encode(b)
	if !bytes.Equal(b, want) {
		t.Fatalf("Encode(%v) = % x, want % x", h, b, want)
	}
	got, err := DecodeVnetHdr(want)
	if err != nil || got != h {
		t.Fatalf("DecodeVnetHdr(% x) = %v, %v; want %v", want, got, err, h)
	}
}

func TestCompleteChecksum(t *testing.T) {
	f := buildTCP(false, 1, tcpFlagACK, randBytes(333, 9), nil, true)
	tf, _ := parseTCP(f)
	if err := CompleteChecksum(f, VnetHdr{Flags: FlagNeedsCsum, CsumStart: uint16(tf.l4), CsumOffset: 16}); err != nil {
		t.Fatal(err)
	}
	if !tf.tcpChecksumOK(f) {
		t.Fatal("checksum not completed")
	}
	if CompleteChecksum(f[:10], VnetHdr{Flags: FlagNeedsCsum, CsumStart: 30, CsumOffset: 16}) == nil {
		t.Fatal("no error for a short frame")
	}
}

func FuzzSegment(f *testing.F) {
	f.Add(buildTCP(false, 1, tcpFlagACK, randBytes(3000, 1), nil, true), uint16(1448), uint8(GSOTCPv4))
	f.Add(buildTCP(true, 1, tcpFlagACK, randBytes(100, 1), nil, true), uint16(10), uint8(GSOTCPv6))
	f.Fuzz(func(t *testing.T, frame []byte, mss uint16, gso uint8) {
		tf, _ := parseTCP(frame)
		h := VnetHdr{Flags: FlagNeedsCsum, GSOType: gso, GSOSize: mss, CsumStart: uint16(tf.l4), CsumOffset: 16}
		hdrs := make([]byte, 64*(16+maxCoalesceHdr))
		payloads := make([][]byte, 64)
		n, stride, err := SegmentTCP(frame, h, hdrs, 16, payloads)
		if err != nil {
			return
		}
		total := 0
		for i := 0; i < n; i++ {
			total += len(payloads[i])
			if i < n-1 && len(payloads[i]) != int(mss) {
				t.Fatalf("segment %d: %d payload bytes, mss %d", i, len(payloads[i]), mss)
			}
		}
		if tf2, _ := parseTCP(frame); n*stride > len(hdrs) || total != len(frame)-tf2.hdrLen {
			t.Fatalf("%d segments of stride %d carry %d bytes of %d", n, stride, total, len(frame))
		}
		_ = CompleteChecksum(frame, h)
		// The same in chunks of up to 7 segments, from wherever the
		// last chunk ended.
		s, err := ParseTSO(frame, h)
		if err != nil || s.Segments() != n {
			t.Fatalf("ParseTSO: %v, %d segments; SegmentTCP made %d", err, s.Segments(), n)
		}
		chunk := 0
		for first := 0; first < n; first += chunk {
			chunk, _ = s.Segment(first, hdrs, 16, payloads[:7])
			if chunk == 0 {
				t.Fatalf("no segment written from %d of %d", first, n)
			}
		}
	})
}

func FuzzCoalesce(f *testing.F) {
	a, b := buildTCP(false, 1, tcpFlagACK, randBytes(100, 1), nil, false), buildTCP(false, 101, tcpFlagACK, randBytes(100, 2), nil, false)
	f.Add(a, b, false)
	f.Add(a, b, true)
	f.Fuzz(func(t *testing.T, a, b []byte, covered bool) {
		// covered skips the TCP checksum, so arbitrary frames reach the
		// merging code too.
		rec := &recorder{}
		c := NewCoalescer[int](2, rec)
		c.Add(1, a, covered)
		c.Add(1, b, covered)
		c.Add(2, a, covered)
		c.Flush()
		for i, w := range rec.writes {
			if _, err := DecodeVnetHdr(w); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
	})
}

func BenchmarkSegment64K(b *testing.B) {
	super := buildTCP(false, 1, tcpFlagACK, randBytes(62000, 1), nil, true)
	tf, _ := parseTCP(super)
	h := VnetHdr{Flags: FlagNeedsCsum, GSOType: GSOTCPv4, GSOSize: 1448, CsumStart: uint16(tf.l4), CsumOffset: 16}
	hdrs := make([]byte, 64*(20+maxCoalesceHdr))
	payloads := make([][]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(super)))
	for i := 0; i < b.N; i++ {
		if _, _, err := SegmentTCP(super, h, hdrs, 20, payloads); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) WriteParts(int, [][]byte) error { return nil }

// BenchmarkCoalesce merges 32 full segments of one connection: "checked"
// verifies each segment's TCP checksum, as for a lone datagram; "covered"
// does not, as for the segments of a UDP GRO run.
func BenchmarkCoalesce(b *testing.B) {
	const n = 32
	segs := make([][]byte, n)
	for i := range segs {
		segs[i] = buildTCP(false, uint32(i*1448), tcpFlagACK, randBytes(1448, int64(i)), nil, false)
	}
	for _, covered := range []bool{false, true} {
		name := "checked"
		if covered {
			name = "covered"
		}
		b.Run(name, func(b *testing.B) {
			c := NewCoalescer[int](4, discard{})
			b.ReportAllocs()
			b.SetBytes(n * 1448)
			for i := 0; i < b.N; i++ {
				for _, s := range segs {
					c.Add(1, s, covered)
				}
				c.Flush()
			}
		})
	}
}

// TestSegmentInChunks cuts 64 KiB super-frames at small MSSs (536, and 88,
// Linux's TCP_MIN_MSS, and 36, what tcp_min_snd_mss lets a peer's MSS
// option force) in chunks of at most 64 segments, as the transmit pump
// does, and checks every segment: sequence number, length, checksums, and
// that the payloads put together are the frame's.
func TestSegmentInChunks(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		for _, mss := range []int{536, 88, 36} {
			payload := randBytes(65535-20-40-14, int64(mss))
			super := buildTCP(v6, 7, tcpFlagACK|tcpFlagPSH|tcpFlagFIN, payload, nil, true)
			tf, _ := parseTCP(super)
			gso := uint8(GSOTCPv4)
			if v6 {
				gso = GSOTCPv6
			}
			h := VnetHdr{Flags: FlagNeedsCsum, GSOType: gso, HdrLen: uint16(tf.hdrLen), GSOSize: uint16(mss),
				CsumStart: uint16(tf.l4), CsumOffset: 16}
			if _, _, err := SegmentTCP(super, h, make([]byte, 64*(16+maxCoalesceHdr)), 16, make([][]byte, 64)); err != ErrSpace {
				t.Fatalf("SegmentTCP with room for 64 segments: %v, want ErrSpace", err)
			}
			s, err := ParseTSO(super, h)
			if err != nil {
				t.Fatal(err)
			}
			want := (len(payload) + mss - 1) / mss
			if s.Segments() != want {
				t.Fatalf("mss %d: %d segments, want %d", mss, s.Segments(), want)
			}
			hdrs := make([]byte, 64*(16+maxCoalesceHdr))
			payloads := make([][]byte, 64)
			var got []byte
			for first := 0; first < s.Segments(); {
				n, stride := s.Segment(first, hdrs, 16, payloads)
				if n == 0 {
					t.Fatalf("mss %d: no segment written from %d", mss, first)
				}
				for i := 0; i < n; i++ {
					k := first + i
					seg := append(append([]byte(nil), hdrs[i*stride+16:(i+1)*stride]...), payloads[i]...)
					st, ok := parseTCP(seg)
					if !ok || !st.tcpChecksumOK(seg) || (!v6 && Checksum(seg[st.l3:st.l4], 0) != 0) {
						t.Fatalf("mss %d segment %d: bad checksum", mss, k)
					}
					if seq := binary.BigEndian.Uint32(seg[st.l4+4:]); seq != 7+uint32(k*mss) {
						t.Fatalf("mss %d segment %d: seq %d", mss, k, seq)
					}
					if fin := seg[st.l4+13]&tcpFlagFIN != 0; fin != (k == want-1) {
						t.Fatalf("mss %d segment %d: FIN %v", mss, k, fin)
					}
					if k < want-1 && len(payloads[i]) != mss {
						t.Fatalf("mss %d segment %d: %d bytes", mss, k, len(payloads[i]))
					}
					got = append(got, payloads[i]...)
				}
				first += n
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("mss %d: payloads put together differ from the frame's", mss)
			}
		}
	}
}
