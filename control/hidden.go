package control

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"hash"
)

// Hidden AVPs (RFC 2661 section 4.3). The value is replaced by the
// subformat
//
//	original length (2) | original value | padding
//
// XORed 16 bytes at a time with a key stream: the first block with
// MD5(attribute type (2) | secret | random vector), each later block with
// MD5(secret | previous block of ciphertext). The random vector is the
// value of the last Random Vector AVP before the hidden one. A last block
// shorter than 16 bytes uses the start of its key.

// HiddenLen is the length of the hidden value of an n-byte value with pad
// bytes of padding.
func HiddenLen(n, pad int) int { return 2 + n + pad }

// Hide writes the hidden form of value into dst, which must hold
// HiddenLen(len(value), pad) bytes, and returns it. The padding is zeros
// before encryption.
func Hide(dst []byte, t AttrType, value, secret, rv []byte, pad int) ([]byte, error) {
	n := HiddenLen(len(value), pad)
	if len(value) > 0xffff || len(dst) < n {
		return nil, fmt.Errorf("hide %s: %w", t, ErrBufferFull)
	}
	hide(dst[:n], t, value, secret, rv)
	return dst[:n], nil
}

func hide(dst []byte, t AttrType, value, secret, rv []byte) {
	binary.BigEndian.PutUint16(dst, uint16(len(value)))
	copy(dst[2:], value)
	clear(dst[2+len(value):])
	var key [md5.Size]byte
	h := md5.New()
	firstKey(h, &key, t, secret, rv)
	for off := 0; off < len(dst); off += md5.Size {
		blk := dst[off:min(off+md5.Size, len(dst))]
		for i := range blk {
			blk[i] ^= key[i]
		}
		nextKey(h, &key, secret, blk)
	}
}

// Unhide decrypts a hidden AVP's value into dst (at least len(a.Value)
// bytes; a.Value itself decrypts in place, leaving the message's H bit
// set over plain bytes) with the shared secret and the Random Vector that preceded it
// (AVPIter.RandomVector), and returns the AVP with its H bit clear and
// its plain value in dst. A wrong secret shows as ErrValueLength when the
// recovered original length does not fit; it cannot always be detected.
func Unhide(dst []byte, a AVP, secret, rv []byte) (AVP, error) {
	if !a.Hidden() {
		return a, nil
	}
	c := a.Value
	if rv == nil {
		return AVP{}, fmt.Errorf("unhide %s: no Random Vector before it", a.name())
	}
	if len(c) < 2 || len(dst) < len(c) {
		return AVP{}, fmt.Errorf("unhide %s: %d bytes: %w", a.name(), len(c), ErrValueLength)
	}
	var key [md5.Size]byte
	h := md5.New()
	firstKey(h, &key, a.Type, secret, rv)
	for off := 0; off < len(c); off += md5.Size {
		end := min(off+md5.Size, len(c))
		cur := key
		nextKey(h, &key, secret, c[off:end]) // before dst may overwrite c
		for i := off; i < end; i++ {
			dst[i] = c[i] ^ cur[i-off]
		}
	}
	n := int(binary.BigEndian.Uint16(dst))
	if n > len(c)-2 {
		return AVP{}, fmt.Errorf("unhide %s: original length %d of %d bytes (wrong secret?): %w",
			a.name(), n, len(c)-2, ErrValueLength)
	}
	a.Flags &^= avpFlagH
	a.Value = dst[2 : 2+n : 2+n]
	return a, nil
}

func firstKey(h hash.Hash, key *[md5.Size]byte, t AttrType, secret, rv []byte) {
	var tb [2]byte
	binary.BigEndian.PutUint16(tb[:], uint16(t))
	h.Reset()
	h.Write(tb[:])
	h.Write(secret)
	h.Write(rv)
	h.Sum(key[:0])
}

func nextKey(h hash.Hash, key *[md5.Size]byte, secret, prev []byte) {
	h.Reset()
	h.Write(secret)
	h.Write(prev)
	h.Sum(key[:0])
}

// ChallengeResponse computes the Challenge Response AVP value for a
// Challenge (RFC 2661 sections 4.4.3 and 5.1.1): MD5 of the one-byte
// message type of the message carrying the response (MsgSCCRP or
// MsgSCCCN), the shared secret and the challenge, as in CHAP.
func ChallengeResponse(t MessageType, secret, challenge []byte) [16]byte {
	h := md5.New()
	h.Write([]byte{byte(t)})
	h.Write(secret)
	h.Write(challenge)
	var r [16]byte
	h.Sum(r[:0])
	return r
}
