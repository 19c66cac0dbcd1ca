// Package offload does in user space what a NIC's offloads would: it splits
// the TCP super-frames a TAP device with IFF_VNET_HDR hands over (TSO) into
// wire-sized Ethernet frames, completes partial checksums, and coalesces
// received TCP segments of one flow back into super-frames for the TAP
// (the reverse, as GRO does). It works on the caller's buffers and does no
// I/O; the virtio_net_hdr is the contract with the kernel.
package offload

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// VnetHdrLen is the size of struct virtio_net_hdr as TAP devices use it.
const VnetHdrLen = 10

// virtio_net_hdr flags and GSO types.
const (
	FlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	FlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID

	GSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	GSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	GSOUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP
	GSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	GSOUDPL4 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4
	GSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN
)

// VnetHdr is struct virtio_net_hdr. Offsets count from the start of the
// Ethernet header. Multi-byte fields are little-endian on every host:
// package tap sets TUNSETVNETLE, so the kernel reads them in that order on
// big-endian hosts too (a TAP's default is the host's order).
type VnetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16
	GSOSize    uint16
	CsumStart  uint16
	CsumOffset uint16
}

// Errors for frames the offload code cannot handle.
var (
	ErrShort   = errors.New("frame shorter than its headers")
	ErrGSOType = errors.New("unsupported GSO type")
	ErrSpace   = errors.New("segments do not fit the destination")
)

// DecodeVnetHdr reads a header from b.
func DecodeVnetHdr(b []byte) (VnetHdr, error) {
	if len(b) < VnetHdrLen {
		return VnetHdr{}, ErrShort
	}
	return VnetHdr{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}, nil
}

// Encode writes the header into b[:VnetHdrLen].
func (h *VnetHdr) Encode(b []byte) {
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
}

func (h VnetHdr) String() string {
	return fmt.Sprintf("vnet{flags %#x gso %d hdr %d size %d csum %d+%d}",
		h.Flags, h.GSOType, h.HdrLen, h.GSOSize, h.CsumStart, h.CsumOffset)
}

// CompleteChecksum finishes a partial checksum in place: the kernel left
// the pseudo-header sum at CsumStart+CsumOffset and expects the sum from
// CsumStart to the end of the frame to be folded in.
func CompleteChecksum(frame []byte, h VnetHdr) error {
	if h.Flags&FlagNeedsCsum == 0 {
		return nil
	}
	start, field := int(h.CsumStart), int(h.CsumStart)+int(h.CsumOffset)
	if start > len(frame) || field+2 > len(frame) {
		return ErrShort
	}
	c := Checksum(frame[start:], 0)
	// A UDP checksum of zero means "none"; the kernel writes 0xffff.
	if c == 0 && h.CsumOffset == 6 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[field:], c)
	return nil
}
