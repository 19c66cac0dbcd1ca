package offload

import (
	"encoding/binary"
	"math/bits"
)

// Sum adds b to the running one's-complement sum acc (RFC 1071), 8 bytes at
// a time with carries. Fold the result with Fold.
func Sum(b []byte, acc uint64) uint64 {
	var carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), carry)
		b = b[8:]
	}
	// Fold in the last bytes as one big-endian word padded with zeros.
	var tail uint64
	for i, c := range b {
		tail |= uint64(c) << (56 - 8*i)
	}
	acc, carry = bits.Add64(acc, tail, carry)
	acc, carry = bits.Add64(acc, carry, 0)
	return acc + carry
}

// Fold reduces a running sum to 16 bits (not complemented).
func Fold(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}

// Checksum is the Internet checksum of b with initial sum acc.
func Checksum(b []byte, acc uint64) uint16 { return ^Fold(Sum(b, acc)) }

// pseudoSum is the sum of the TCP/UDP pseudo-header for an IPv4 or IPv6
// packet: addresses, protocol and L4 length.
func pseudoSum(src, dst []byte, proto uint8, l4len int) uint64 {
	acc := Sum(src, 0)
	acc = Sum(dst, acc)
	return acc + uint64(proto) + uint64(l4len)
}
