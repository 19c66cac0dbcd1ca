package offload

import "encoding/binary"

// SegmentTCP splits a TCP super-frame (h.GSOType TCPv4 or TCPv6, as a TAP
// with TSO hands it over) into segments carrying at most h.GSOSize bytes of
// payload each, without copying the payload.
//
// For segment i it writes the headers (Ethernet, IP and TCP, with the
// segment's own IP length, IPv4 id and header checksum, TCP sequence number,
// flags and full TCP checksum) at hdrs[i*stride+prefix:(i+1)*stride],
// leaving prefix bytes in front for an encapsulation header, and sets
// payloads[i] to the segment's payload, a slice of frame. The segment on the
// wire is hdrs[i*stride:(i+1)*stride] followed by payloads[i]; every one but
// the last is stride+h.GSOSize bytes long, so a run of them can go to the
// kernel as one UDP GSO send. It returns the number of segments and the
// stride.
func SegmentTCP(frame []byte, h VnetHdr, hdrs []byte, prefix int, payloads [][]byte) (n, stride int, err error) {
	if h.GSOType&^GSOECN != GSOTCPv4 && h.GSOType&^GSOECN != GSOTCPv6 {
		return 0, 0, ErrGSOType
	}
	t, ok := parseTCP(frame)
	if !ok || t.l4 != int(h.CsumStart) || h.GSOSize == 0 || prefix < 0 {
		return 0, 0, ErrShort
	}
	mss := int(h.GSOSize)
	payload := frame[t.hdrLen:]
	segs := max(1, (len(payload)+mss-1)/mss)
	stride = prefix + t.hdrLen
	if segs > len(payloads) || segs*stride > len(hdrs) {
		return 0, 0, ErrSpace
	}
	hdr := frame[:t.hdrLen]
	seq := binary.BigEndian.Uint32(frame[t.l4+4:])
	flags := frame[t.l4+13]
	var id uint16
	if !t.v6 {
		id = binary.BigEndian.Uint16(frame[t.l3+4:])
	}
	src, dst := t.ipAddrs(frame)
	// The pseudo-header without the length, shared by every segment.
	pseudo := pseudoSum(src, dst, protoTCP, 0)
	for i := 0; i < segs; i++ {
		chunk := payload[min(i*mss, len(payload)):min((i+1)*mss, len(payload))]
		out := hdrs[i*stride+prefix : (i+1)*stride]
		copy(out, hdr)
		l4len := t.hdrLen - t.l4 + len(chunk)
		t.setIPLengthID(out, l4len, id+uint16(i))
		binary.BigEndian.PutUint32(out[t.l4+4:], seq+uint32(i*mss))
		f := flags
		if i != segs-1 {
			f &^= tcpFlagFIN | tcpFlagPSH
		}
		if i != 0 {
			f &^= tcpFlagCWR
		}
		out[t.l4+13] = f
		out[t.l4+tcpCsumOff], out[t.l4+tcpCsumOff+1] = 0, 0
		// The TCP header is a whole number of 32-bit words, so the
		// payload's sum continues the header's.
		sum := Sum(chunk, Sum(out[t.l4:], pseudo+uint64(l4len)))
		binary.BigEndian.PutUint16(out[t.l4+tcpCsumOff:], ^Fold(sum))
		payloads[i] = chunk
	}
	return segs, stride, nil
}

func (t *tcpFrame) setIPLengthID(f []byte, l4len int, id uint16) {
	if !t.v6 {
		binary.BigEndian.PutUint16(f[t.l3+4:], id)
	}
	t.setIPLength(f, l4len)
}
