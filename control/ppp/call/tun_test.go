package call

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/datapath/offload"
	"github.com/ul2tp/ul2tp/encap"
)

// tcpSuper is what a TUN with offloads reads for a TCP super-packet from
// 10.99.0.1 to 10.99.0.2 (or fd00::1 to fd00::2) with payload, cut at mss:
// headroom, the virtio_net_hdr and the packet, with the TCP checksum
// partial (the pseudo-header sum). mss 0 makes it a packet without GSO
// whose checksum is left to complete (NEEDS_CSUM).
func tcpSuper(v6 bool, payload []byte, mss int) []byte {
	var ip []byte
	l4 := 20 + len(payload)
	var pseudo uint64
	if v6 {
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4))
		ip[6], ip[7] = 6, 64
		ip[8], ip[23] = 0xfd, 1
		ip[24], ip[39] = 0xfd, 2
		pseudo = offload.Sum(ip[8:40], 0)
	} else {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+l4))
		binary.BigEndian.PutUint16(ip[4:], 0x100)
		ip[6], ip[8], ip[9] = 0x40, 64, 6
		copy(ip[12:], []byte{10, 99, 0, 1, 10, 99, 0, 2})
		binary.BigEndian.PutUint16(ip[10:], offload.Checksum(ip, 0))
		pseudo = offload.Sum(ip[12:20], 0)
	}
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], 1000)
	tcp[12], tcp[13] = 5<<4, 0x18 // ACK PSH
	binary.BigEndian.PutUint16(tcp[16:], offload.Fold(pseudo+6+uint64(l4)))
	h := offload.VnetHdr{Flags: offload.FlagNeedsCsum, CsumStart: uint16(len(ip)), CsumOffset: 16}
	if mss > 0 {
		h.GSOType, h.GSOSize, h.HdrLen = offload.GSOTCPv4, uint16(mss), uint16(len(ip)+20)
		if v6 {
			h.GSOType = offload.GSOTCPv6
		}
	}
	buf := make([]byte, headroom+offload.VnetHdrLen)
	h.Encode(buf[headroom:])
	buf = append(buf, ip...)
	buf = append(buf, tcp...)
	return append(buf, payload...)
}

// tcpOK checks an IP packet's TCP checksum (and IPv4 header checksum).
func tcpOK(p []byte) bool {
	if p[0]>>4 == 6 {
		return offload.Fold(offload.Sum(p[40:], offload.Sum(p[8:40], 0)+6+uint64(len(p)-40))) == 0xffff
	}
	ihl := int(p[0]&15) * 4
	return offload.Checksum(p[:ihl], 0) == 0 &&
		offload.Fold(offload.Sum(p[ihl:], offload.Sum(p[12:20], 0)+6+uint64(len(p)-ihl))) == 0xffff
}

// TestSendVnet: a TCP super-packet read from a TUN with offloads leaves as
// MSS-sized IP packets, each in its own datagram behind the L2TPv2 and
// PPP headers, with correct lengths, sequence numbers and checksums; a
// packet with a partial checksum leaves with it completed; nothing
// allocates.
func TestSendVnet(t *testing.T) {
	r := newRigOffload(t, true)
	c := r.c
	if !c.dev.VnetHdr() {
		t.Fatal("the rig's TUN has no virtio_net_hdr")
	}
	b := (&TUNBuffers{}).get()
	got := make([]byte, 4096)
	read := func() []byte {
		t.Helper()
		_ = r.sink.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := r.sink.Read(got)
		if err != nil {
			t.Fatalf("nothing sent: %v", err)
		}
		h, err := encap.ParseV2(got[:n])
		if err != nil || h.TunnelID != 2 || h.SessionID != 4 {
			t.Fatalf("datagram % x: not our L2TPv2 data (%v)", got[:min(n, 16)], err)
		}
		return got[h.PayloadOffset:n]
	}
	for _, tc := range []struct {
		name  string
		v6    bool
		size  int
		mss   int
		proto byte
	}{
		{"v4 super", false, 10000, 1400, 0x21},
		{"v6 super", true, 4321, 1380, 0x57},
		{"v4 one segment", false, 100, 1400, 0x21},
		{"v4 partial checksum", false, 1000, 0, 0x21},
		{"v6 partial checksum", true, 1000, 0, 0x57},
	} {
		payload := make([]byte, tc.size)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		buf := tcpSuper(tc.v6, payload, tc.mss)
		c.sendVnet(b, buf)
		segs, mss := 1, tc.size
		if tc.mss > 0 {
			segs, mss = (tc.size+tc.mss-1)/tc.mss, tc.mss
		}
		var all []byte
		for k := range segs {
			f := read()
			if f[0] != tc.proto {
				t.Fatalf("%s: segment %d: PPP protocol %#x, want %#x (ACFC, PFC)", tc.name, k, f[0], tc.proto)
			}
			p := f[1:]
			if !tcpOK(p) {
				t.Fatalf("%s: segment %d: bad checksum", tc.name, k)
			}
			hl := 40
			if !tc.v6 {
				hl = 20
				if int(binary.BigEndian.Uint16(p[2:])) != len(p) {
					t.Fatalf("%s: segment %d: IPv4 length %d of %d", tc.name, k, binary.BigEndian.Uint16(p[2:]), len(p))
				}
			}
			if seq := binary.BigEndian.Uint32(p[hl+4:]); seq != 1000+uint32(k*mss) {
				t.Fatalf("%s: segment %d: seq %d", tc.name, k, seq)
			}
			if psh := p[hl+13]&0x08 != 0; psh != (k == segs-1) {
				t.Fatalf("%s: segment %d: PSH %v", tc.name, k, psh)
			}
			all = append(all, p[hl+20:]...)
		}
		if !bytes.Equal(all, payload) {
			t.Fatalf("%s: payloads differ", tc.name)
		}
		_ = r.sink.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := r.sink.Read(got); err == nil {
			t.Fatalf("%s: a datagram of %d bytes too many", tc.name, n)
		}
	}
	// A super-packet of a version whose NCP is closed is dropped.
	c.ip6.Store(false)
	c.sendVnet(b, tcpSuper(true, make([]byte, 3000), 1000))
	c.ip6.Store(true)
	_ = r.sink.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := r.sink.Read(got); err == nil {
		t.Fatalf("IPv6 with IPv6CP closed: a datagram of %d bytes sent", n)
	}
	buf := tcpSuper(false, make([]byte, 8000), 1400)
	if a := testing.AllocsPerRun(100, func() { c.sendVnet(b, buf) }); a != 0 {
		t.Errorf("sendVnet allocates %v times per super-packet", a)
	}
	frame := append([]byte{0x21}, ipv4Packet(1400)...)
	if a := testing.AllocsPerRun(100, func() { c.Deliver(frame) }); a != 0 {
		t.Errorf("Deliver to a TUN with offloads allocates %v times", a)
	}
}

// BenchmarkSendVnet64K is the TUN-to-call direction with offloads: a
// 64 KiB TCP super-packet is cut into 1400-byte segments that leave
// behind their PPP and L2TPv2 headers in one SendSegments.
func BenchmarkSendVnet64K(b *testing.B) {
	c := newRigOffload(b, true).c
	tb := (&TUNBuffers{}).get()
	buf := tcpSuper(false, make([]byte, 65535-40), 1400)
	b.ReportAllocs()
	b.SetBytes(65535 - 40)
	for b.Loop() {
		c.sendVnet(tb, buf)
	}
}

// TestPacketOffset: with offloads, the receive pump takes the call's IPv4
// and IPv6 packets (its NCP open) for coalescing; everything else, and
// every frame of a TUN without offloads, goes to Deliver.
func TestPacketOffset(t *testing.T) {
	c := newRigOffload(t, true).c
	plain := newRig(t).c
	v4, v6 := append([]byte{0xff, 0x03, 0x00, 0x21}, ipv4Packet(100)...), append([]byte{0x57}, ipv6Packet(100, ll1, ll2, 9)...)
	lcp := []byte{0xc0, 0x21, 9, 1, 0, 4}
	for _, tc := range []struct {
		name  string
		c     *Call
		frame []byte
		want  int
	}{
		{"v4", c, v4, 4},
		{"v6", c, v6, 1},
		{"LCP", c, lcp, -1},
		{"no packet", c, []byte{0x21}, -1},
		{"v4 without offloads", plain, v4, -1},
	} {
		if got := tc.c.PacketOffset(tc.frame); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	c.ip6.Store(false)
	if got := c.PacketOffset(v6); got != -1 {
		t.Errorf("v6 with IPv6CP closed: %d, want -1", got)
	}
	// The written packet (to 10.99.0.1, no such address in the rig's
	// namespace) is accepted by the TUN behind its header.
	if err := c.WritePacket([][]byte{c.noVnet[:], ipv4Packet(100)}); err != nil {
		t.Errorf("WritePacket: %v", err)
	}
}

// FuzzSendVnet feeds the TUN reader's handling arbitrary reads (a
// virtio_net_hdr and a packet): it must never panic, whatever the header
// claims. Needs root (a TUN).
func FuzzSendVnet(f *testing.F) {
	f.Add(tcpSuper(false, make([]byte, 3000), 1000)[headroom:])
	f.Add(tcpSuper(true, make([]byte, 300), 100)[headroom:])
	f.Add(tcpSuper(false, make([]byte, 30), 0)[headroom:])
	f.Add([]byte{1, 1, 0, 0, 0, 0, 200, 0, 16, 0, 0x45})
	c := newRigOffload(f, true).c
	b := (&TUNBuffers{}).get()
	f.Fuzz(func(t *testing.T, read []byte) {
		buf := append(make([]byte, headroom), read...)
		c.sendVnet(b, buf)
	})
}
