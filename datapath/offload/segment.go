package offload

import "encoding/binary"

// TSO is a TCP super-frame (h.GSOType TCPv4 or TCPv6, as a TAP with TSO
// hands it over) to be cut into segments carrying at most h.GSOSize bytes
// of payload each, without copying the payload. The segments may be
// written in several calls to Segment, as much as the caller's room takes
// each time: a 64 KiB super-frame at the smallest MSS Linux lets TCP use
// has over a thousand.
type TSO struct {
	frame  []byte
	t      tcpFrame
	mss    int
	segs   int
	seq    uint32
	flags  byte
	id     uint16
	pseudo uint64 // the pseudo-header sum without the length
}

// ParseTSO checks a super-frame against its virtio_net_hdr.
func ParseTSO(frame []byte, h VnetHdr) (TSO, error) {
	if h.GSOType&^GSOECN != GSOTCPv4 && h.GSOType&^GSOECN != GSOTCPv6 {
		return TSO{}, ErrGSOType
	}
	t, ok := parseTCP(frame)
	return newTSO(frame, t, ok, h)
}

// ParsePacketTSO checks a TCP super-packet with no Ethernet header, as a
// TUN device with IFF_VNET_HDR hands it over (its h.CsumStart counts from
// the IP header), against its virtio_net_hdr. Its segments are IP packets.
func ParsePacketTSO(packet []byte, h VnetHdr) (TSO, error) {
	if h.GSOType&^GSOECN != GSOTCPv4 && h.GSOType&^GSOECN != GSOTCPv6 {
		return TSO{}, ErrGSOType
	}
	t, ok := parsePacketTCP(packet)
	return newTSO(packet, t, ok, h)
}

// newTSO is the TSO of frame, whose headers parsing found (ok) at t.
func newTSO(frame []byte, t tcpFrame, ok bool, h VnetHdr) (TSO, error) {
	if !ok || t.l4 != int(h.CsumStart) || h.GSOSize == 0 {
		return TSO{}, ErrShort
	}
	if t.v6 != (h.GSOType&^GSOECN == GSOTCPv6) {
		return TSO{}, ErrGSOType
	}
	s := TSO{frame: frame, t: t, mss: int(h.GSOSize)}
	s.segs = max(1, (len(frame)-t.hdrLen+s.mss-1)/s.mss)
	s.seq = binary.BigEndian.Uint32(frame[t.l4+4:])
	s.flags = frame[t.l4+13]
	if !t.v6 {
		s.id = binary.BigEndian.Uint16(frame[t.l3+4:])
	}
	src, dst := t.ipAddrs(frame)
	s.pseudo = pseudoSum(src, dst, protoTCP, 0)
	return s, nil
}

// Segments is how many segments the super-frame makes.
func (s *TSO) Segments() int { return s.segs }

// HeaderLen is the length of each segment's headers: Ethernet (unless
// the super-frame is a bare IP packet), IP and TCP.
func (s *TSO) HeaderLen() int { return s.t.hdrLen }

// Segment writes segments first, first+1, ... as many as are left and
// fit: for segment first+i, the headers (Ethernet, IP and TCP, with the
// segment's own IP length, IPv4 id and header checksum, TCP sequence
// number, flags and full TCP checksum) at hdrs[i*stride+prefix:(i+1)*stride],
// leaving prefix bytes in front for an encapsulation header, and
// payloads[i], the segment's payload (a slice of the frame). The segment on
// the wire is hdrs[i*stride:(i+1)*stride] followed by payloads[i]; every
// one but the super-frame's last is stride+h.GSOSize bytes long, so a run
// of them can go to the kernel as one UDP GSO send. It returns the number
// of segments written (0 if none fits) and the stride.
func (s *TSO) Segment(first int, hdrs []byte, prefix int, payloads [][]byte) (n, stride int) {
	t, frame, mss := &s.t, s.frame, s.mss
	if first < 0 || prefix < 0 {
		return 0, 0
	}
	stride = prefix + t.hdrLen
	n = min(s.segs-first, len(payloads), len(hdrs)/stride)
	if n <= 0 {
		return 0, stride
	}
	hdr, payload := frame[:t.hdrLen], frame[t.hdrLen:]
	for i := 0; i < n; i++ {
		k := first + i
		chunk := payload[min(k*mss, len(payload)):min((k+1)*mss, len(payload))]
		out := hdrs[i*stride+prefix : (i+1)*stride]
		copy(out, hdr)
		l4len := t.hdrLen - t.l4 + len(chunk)
		t.setIPLengthID(out, l4len, s.id+uint16(k))
		binary.BigEndian.PutUint32(out[t.l4+4:], s.seq+uint32(k*mss))
		f := s.flags
		if k != s.segs-1 {
			f &^= tcpFlagFIN | tcpFlagPSH
		}
		if k != 0 {
			f &^= tcpFlagCWR
		}
		out[t.l4+13] = f
		out[t.l4+tcpCsumOff], out[t.l4+tcpCsumOff+1] = 0, 0
		// The TCP header is a whole number of 32-bit words, so the
		// payload's sum continues the header's.
		sum := Sum(chunk, Sum(out[t.l4:], s.pseudo+uint64(l4len)))
		binary.BigEndian.PutUint16(out[t.l4+tcpCsumOff:], ^Fold(sum))
		payloads[i] = chunk
	}
	return n, stride
}

// SegmentTCP cuts a super-frame into all its segments at once, as
// TSO.Segment does from the first; it returns ErrSpace if they do not all
// fit in hdrs and payloads.
func SegmentTCP(frame []byte, h VnetHdr, hdrs []byte, prefix int, payloads [][]byte) (n, stride int, err error) {
	if prefix < 0 {
		return 0, 0, ErrShort
	}
	s, err := ParseTSO(frame, h)
	if err != nil {
		return 0, 0, err
	}
	stride = prefix + s.t.hdrLen
	if s.segs > len(payloads) || s.segs*stride > len(hdrs) {
		return 0, 0, ErrSpace
	}
	n, stride = s.Segment(0, hdrs, prefix, payloads)
	return n, stride, nil
}

func (t *tcpFrame) setIPLengthID(f []byte, l4len int, id uint16) {
	if !t.v6 {
		binary.BigEndian.PutUint16(f[t.l3+4:], id)
	}
	t.setIPLength(f, l4len)
}
