package offload

import "encoding/binary"

// SegmentTCP splits a TCP super-frame (h.GSOType TCPv4 or TCPv6, as a TAP
// with TSO hands it over) into Ethernet frames carrying at most h.GSOSize
// bytes of payload each, with their own IP lengths, IPv4 ids and checksum,
// TCP sequence numbers, flags and full TCP checksum.
//
// Segment i is written at dst[i*stride+prefix:], leaving prefix bytes in
// front of each for an encapsulation header, and its length stored in
// sizes[i]. Every segment but the last is stride-prefix bytes long, so the
// segments with their headers can go to the kernel as one UDP GSO send.
// It returns the number of segments and the stride.
func SegmentTCP(frame []byte, h VnetHdr, dst []byte, prefix int, sizes []int) (n, stride int, err error) {
	if h.GSOType&^GSOECN != GSOTCPv4 && h.GSOType&^GSOECN != GSOTCPv6 {
		return 0, 0, ErrGSOType
	}
	t, ok := parseTCP(frame)
	if !ok || t.l4 != int(h.CsumStart) || h.GSOSize == 0 {
		return 0, 0, ErrShort
	}
	mss := int(h.GSOSize)
	payload := frame[t.hdrLen:]
	segs := (len(payload) + mss - 1) / mss
	if segs == 0 {
		segs = 1
	}
	stride = prefix + t.hdrLen + mss
	if segs > len(sizes) || (segs-1)*stride+prefix+t.hdrLen+len(payload)-(segs-1)*mss > len(dst) {
		return 0, 0, ErrSpace
	}
	hdr := frame[:t.hdrLen]
	seq := binary.BigEndian.Uint32(frame[t.l4+4:])
	flags := frame[t.l4+13]
	var id uint16
	if !t.v6 {
		id = binary.BigEndian.Uint16(frame[t.l3+4:])
	}
	src, dst0 := t.ipAddrs(frame)
	// The pseudo-header without the length, shared by every segment.
	pseudo := pseudoSum(src, dst0, protoTCP, 0)
	for i := 0; i < segs; i++ {
		chunk := payload[min(i*mss, len(payload)):min((i+1)*mss, len(payload))]
		out := dst[i*stride+prefix:]
		copy(out, hdr)
		copy(out[t.hdrLen:], chunk)
		seg := out[:t.hdrLen+len(chunk)]
		l4len := len(seg) - t.l4
		t.setIPLengthID(seg, l4len, id+uint16(i))
		binary.BigEndian.PutUint32(seg[t.l4+4:], seq+uint32(i*mss))
		f := flags
		if i != segs-1 {
			f &^= tcpFlagFIN | tcpFlagPSH
		}
		if i != 0 {
			f &^= tcpFlagCWR
		}
		seg[t.l4+13] = f
		seg[t.l4+tcpCsumOff], seg[t.l4+tcpCsumOff+1] = 0, 0
		c := ^Fold(Sum(seg[t.l4:], pseudo+uint64(l4len)))
		binary.BigEndian.PutUint16(seg[t.l4+tcpCsumOff:], c)
		sizes[i] = len(seg)
	}
	return segs, stride, nil
}

func (t *tcpFrame) setIPLengthID(f []byte, l4len int, id uint16) {
	if !t.v6 {
		binary.BigEndian.PutUint16(f[t.l3+4:], id)
	}
	t.setIPLength(f, l4len)
}
