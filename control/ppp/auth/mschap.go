package auth

import (
	"crypto/des"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //lint:ignore SA1019 RFC 2759 section 8.3 defines the NT password hash with MD4
)

// The MS-CHAPv2 computations of RFC 2759 section 8.

// ntPasswordHash is NtPasswordHash (section 8.3): MD4 of the password in
// UTF-16 little endian.
func ntPasswordHash(password string) [16]byte {
	h := md4.New()
	var b [2]byte
	for _, u := range utf16.Encode([]rune(password)) {
		b[0], b[1] = byte(u), byte(u>>8)
		h.Write(b[:])
	}
	var sum [16]byte
	h.Sum(sum[:0])
	return sum
}

// hashNTPasswordHash is HashNtPasswordHash (section 8.4).
func hashNTPasswordHash(hash [16]byte) [16]byte {
	h := md4.New()
	h.Write(hash[:])
	var sum [16]byte
	h.Sum(sum[:0])
	return sum
}

// msUserName is the user name the hashes take: the name without a
// "DOMAIN\" prefix (section 8.2).
func msUserName(name string) string {
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// challengeHash is ChallengeHash (section 8.2).
func challengeHash(peerChallenge, authChallenge []byte, user string) [8]byte {
	h := sha1.New()
	h.Write(peerChallenge)
	h.Write(authChallenge)
	h.Write([]byte(msUserName(user)))
	var sum [sha1.Size]byte
	h.Sum(sum[:0])
	return [8]byte(sum[:8])
}

// desKey spreads 7 key octets over the 8 of a DES key (the parity bits,
// which crypto/des ignores, stay zero).
func desKey(k []byte) [8]byte {
	var out [8]byte
	out[0] = k[0]
	for i := 1; i < 7; i++ {
		out[i] = k[i-1]<<(8-i) | k[i]>>i
	}
	out[7] = k[6] << 1
	return out
}

// challengeResponse is ChallengeResponse (section 8.5): the challenge
// encrypted with the three DES keys of the zero-padded password hash.
func challengeResponse(challenge [8]byte, hash [16]byte) [24]byte {
	var z [21]byte
	copy(z[:], hash[:])
	var resp [24]byte
	for i := range 3 {
		key := desKey(z[7*i : 7*i+7])
		c, _ := des.NewCipher(key[:]) // the key is 8 octets: no error
		c.Encrypt(resp[8*i:8*i+8], challenge[:])
	}
	return resp
}

// generateNTResponse is GenerateNTResponse (section 8.1).
func generateNTResponse(authChallenge, peerChallenge []byte, user, password string) [24]byte {
	return challengeResponse(challengeHash(peerChallenge, authChallenge, user), ntPasswordHash(password))
}

// The constants of GenerateAuthenticatorResponse (section 8.7).
var (
	magic1 = []byte("Magic server to client signing constant")
	magic2 = []byte("Pad to make it do more than one iteration")
)

// generateAuthenticatorResponse is GenerateAuthenticatorResponse (section
// 8.7): the "S=" and 40 upper case hex digits of a Success packet.
func generateAuthenticatorResponse(password string, ntResponse, peerChallenge, authChallenge []byte, user string) string {
	hh := hashNTPasswordHash(ntPasswordHash(password))
	h := sha1.New()
	h.Write(hh[:])
	h.Write(ntResponse)
	h.Write(magic1)
	var digest [sha1.Size]byte
	h.Sum(digest[:0])
	ch := challengeHash(peerChallenge, authChallenge, user)
	h.Reset()
	h.Write(digest[:])
	h.Write(ch[:])
	h.Write(magic2)
	h.Sum(digest[:0])
	return "S=" + strings.ToUpper(hex.EncodeToString(digest[:]))
}

// msFailure is an MS-CHAPv2 Failure packet's message (RFC 2759 section 6):
// "E=eeeeeeeeee R=r C=cccccccccccccccccccccccccccccccc V=vvvvvvvvvv M=<msg>".
type msFailure struct {
	Code    int    // E: 691 for a wrong password
	Retry   bool   // R
	Message string // M
}

// parseMSFailure reads the fields it knows; unknown or malformed fields
// are skipped (the message is for a person and the code for a log).
func parseMSFailure(s string) msFailure {
	var f msFailure
	if i := strings.Index(s, "M="); i >= 0 {
		f.Message, s = s[i+2:], s[:i]
	}
	for _, field := range strings.Fields(s) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		switch k {
		case "E":
			f.Code, _ = strconv.Atoi(v)
		case "R":
			f.Retry = v == "1"
		}
	}
	return f
}

// parseMSSuccess splits an MS-CHAPv2 Success message (RFC 2759 section
// 5): "S=<40 hex digits>" then optionally " M=<msg>".
func parseMSSuccess(s string) (authResponse [20]byte, msg string, ok bool) {
	if len(s) < 42 || s[:2] != "S=" {
		return authResponse, "", false
	}
	if _, err := hex.Decode(authResponse[:], []byte(s[2:42])); err != nil {
		return authResponse, "", false
	}
	rest := strings.TrimLeft(s[42:], " ")
	msg, _ = strings.CutPrefix(rest, "M=")
	return authResponse, msg, true
}
