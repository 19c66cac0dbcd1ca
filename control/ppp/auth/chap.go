package auth

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// CHAP codes (RFC 1994 section 4).
const (
	chapChallenge = 1
	chapResponse  = 2
	chapSuccess   = 3
	chapFailure   = 4
)

// Sizes of the CHAP values.
const (
	md5ChallengeLen = 16 // ours; a peer answers any length
	msChallengeLen  = 16 // RFC 2759 section 3
	msResponseLen   = 49 // peer challenge 16, reserved 8, NT-Response 24, flags 1
)

// parseCHAPValue returns the Value and Name of a Challenge's or Response's
// data.
func parseCHAPValue(data []byte) (value, name []byte, ok bool) {
	if len(data) < 1 || int(data[0]) == 0 || len(data) < 1+int(data[0]) {
		return nil, nil, false
	}
	return data[1 : 1+int(data[0])], data[1+int(data[0]):], true
}

// chapMD5 is the MD5 response of RFC 1994 section 2.
func chapMD5(id uint8, secret string, challenge []byte) [md5.Size]byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	var sum [md5.Size]byte
	h.Sum(sum[:0])
	return sum
}

// CHAPAuthenticator is the authenticator role of CHAP with MD5 and of
// MS-CHAPv2: it sends a Challenge (retransmitted every RestartTimer up to
// MaxTransmits), checks the Response with the secret
// AuthenticatorConfig.Secret returns and answers Success or Failure. A
// repeated Response (our verdict was lost) gets the same verdict again.
// MS-CHAPv2's Success carries the authenticator response that proves we
// know the password too; its Failure is "E=691 R=0 C=<challenge> V=3
// M=<FailureMessage>".
type CHAPAuthenticator struct {
	cfg       AuthenticatorConfig
	method    Method
	timer     timer
	res       Result
	id        uint8
	challenge [md5ChallengeLen]byte
	transmits int
	chal      []byte // the Challenge frame
	reply     []byte // the Success or Failure frame, once decided
	out       [1][]byte
}

// Method returns CHAPMD5 or MSCHAPv2.
func (a *CHAPAuthenticator) Method() Method { return a.method }

// Start sends the Challenge.
func (a *CHAPAuthenticator) Start(now time.Time) [][]byte {
	var id [1]byte
	if _, err := io.ReadFull(a.cfg.Rand, id[:]); err != nil {
		return a.fail(fmt.Errorf("auth: reading challenge: %w", err))
	}
	if _, err := io.ReadFull(a.cfg.Rand, a.challenge[:]); err != nil {
		return a.fail(fmt.Errorf("auth: reading challenge: %w", err))
	}
	a.id = id[0]
	a.res = Result{}
	a.reply = a.reply[:0]
	a.chal = build(a.chal, chapChallenge, a.id, []byte{byte(len(a.challenge))}, a.challenge[:], []byte(a.cfg.Name))
	a.transmits = 0
	return a.sendChallenge(now)
}

func (a *CHAPAuthenticator) fail(err error) [][]byte {
	a.timer.stop()
	a.res = Result{Done: true, Err: err}
	return nil
}

func (a *CHAPAuthenticator) sendChallenge(now time.Time) [][]byte {
	a.transmits++
	a.timer.set(now.Add(a.cfg.RestartTimer))
	a.out[0] = a.chal
	return a.out[:]
}

// Receive handles a Response to our Challenge; other frames are ignored.
func (a *CHAPAuthenticator) Receive(frame []byte, now time.Time) [][]byte {
	code, id, data, ok := header(frame)
	if !ok || code != chapResponse || id != a.id || len(a.chal) == 0 {
		return nil
	}
	value, name, ok := parseCHAPValue(data)
	if !ok {
		return nil
	}
	if a.res.Done {
		if len(a.reply) == 0 {
			return nil // failed before a verdict (no randomness)
		}
		a.out[0] = a.reply
		return a.out[:]
	}
	if a.method == MSCHAPv2 && len(value) != msResponseLen {
		return nil // malformed: keep waiting, the Challenge goes again
	}
	a.timer.stop()
	a.res = Result{Done: true, User: string(name)}
	secret, found := "", false
	if a.cfg.Secret != nil {
		secret, found = a.cfg.Secret(string(name), a.cfg.Name)
	}
	if a.method == MSCHAPv2 {
		a.verifyMSCHAPv2(value, string(name), secret, found)
	} else {
		a.verifyMD5(value, secret, found)
	}
	a.out[0] = a.reply
	return a.out[:]
}

func (a *CHAPAuthenticator) verifyMD5(value []byte, secret string, found bool) {
	want := chapMD5(a.id, secret, a.challenge[:])
	if found && subtle.ConstantTimeCompare(value, want[:]) == 1 {
		a.res.OK = true
		a.reply = build(a.reply, chapSuccess, a.id, []byte(a.cfg.SuccessMessage))
		return
	}
	a.res.Err = fmt.Errorf("%w: CHAP user %q", ErrBadCredentials, a.res.User)
	a.reply = build(a.reply, chapFailure, a.id, []byte(a.cfg.FailureMessage))
}

func (a *CHAPAuthenticator) verifyMSCHAPv2(value []byte, name, secret string, found bool) {
	peerChallenge, ntResponse := value[:16], value[24:48]
	want := generateNTResponse(a.challenge[:], peerChallenge, name, secret)
	if found && subtle.ConstantTimeCompare(ntResponse, want[:]) == 1 {
		a.res.OK = true
		s := generateAuthenticatorResponse(secret, ntResponse, peerChallenge, a.challenge[:], name)
		a.reply = build(a.reply, chapSuccess, a.id, []byte(s), []byte(" M="), []byte(a.cfg.SuccessMessage))
		return
	}
	a.res.Err = fmt.Errorf("%w: MS-CHAPv2 user %q (E=691)", ErrBadCredentials, name)
	msg := "E=691 R=0 C=" + strings.ToUpper(hex.EncodeToString(a.challenge[:])) + " V=3 M=" + a.cfg.FailureMessage
	a.reply = build(a.reply, chapFailure, a.id, []byte(msg))
}

// Tick retransmits the Challenge, or gives up after MaxTransmits.
func (a *CHAPAuthenticator) Tick(now time.Time) [][]byte {
	if !a.timer.expired(now) || a.res.Done {
		return nil
	}
	if a.transmits >= a.cfg.MaxTransmits {
		return a.fail(fmt.Errorf("%w: %d CHAP Challenges unanswered", ErrTimeout, a.transmits))
	}
	return a.sendChallenge(now)
}

// Deadline returns when Tick has work, if it has.
func (a *CHAPAuthenticator) Deadline() (time.Time, bool) { return a.timer.deadline() }

// Result reports the outcome.
func (a *CHAPAuthenticator) Result() Result { return a.res }

// CHAPPeer is the peer role of CHAP with MD5 and of MS-CHAPv2: it answers
// each Challenge with a Response (the same Response to a retransmitted
// Challenge) and takes the Success or Failure answering it. Under
// MS-CHAPv2 it checks the authenticator response of the Success: a wrong
// one fails with ErrBadAuthenticator. It waits Timeout for the Challenge
// and for the verdict. After a Success it still answers new Challenges
// (RFC 1994 section 2.3): a Failure to one of those turns Result from OK
// to failed, so the owner looks at Result after every call.
type CHAPPeer struct {
	cfg           PeerConfig
	method        Method
	timer         timer
	res           Result
	answered      bool // resp answers the Challenge id / challenge
	pending       bool // resp awaits its Success or Failure
	id            uint8
	challenge     []byte
	peerChallenge [16]byte
	ntResponse    [24]byte
	resp          []byte
	out           [1][]byte
}

// Method returns CHAPMD5 or MSCHAPv2.
func (p *CHAPPeer) Method() Method { return p.method }

// Start arms the wait for the authenticator's Challenge.
func (p *CHAPPeer) Start(now time.Time) [][]byte {
	p.res = Result{User: p.cfg.User}
	p.answered, p.pending = false, false
	p.timer.set(now.Add(p.cfg.Timeout))
	return nil
}

// Receive handles Challenge, Success and Failure; other frames are
// ignored.
func (p *CHAPPeer) Receive(frame []byte, now time.Time) [][]byte {
	code, id, data, ok := header(frame)
	if !ok {
		return nil
	}
	switch code {
	case chapChallenge:
		return p.receiveChallenge(id, data, now)
	case chapSuccess, chapFailure:
		if p.pending && id == p.id {
			p.verdict(code == chapSuccess, string(data))
		}
	}
	return nil
}

func (p *CHAPPeer) receiveChallenge(id uint8, data []byte, now time.Time) [][]byte {
	value, _, ok := parseCHAPValue(data)
	if !ok || (p.method == MSCHAPv2 && len(value) != msChallengeLen) {
		return nil
	}
	if p.res.Done && !p.res.OK {
		return nil
	}
	if !p.answered || id != p.id || string(value) != string(p.challenge) {
		if err := p.answer(id, value); err != nil {
			p.timer.stop()
			p.res = Result{Done: true, User: p.cfg.User, Err: err}
			return nil
		}
	}
	if p.pending {
		p.timer.set(now.Add(p.cfg.Timeout))
	}
	p.out[0] = p.resp
	return p.out[:]
}

// answer builds the Response to Challenge id with value.
func (p *CHAPPeer) answer(id uint8, value []byte) error {
	p.id, p.challenge, p.answered, p.pending = id, append(p.challenge[:0], value...), true, true
	if p.method != MSCHAPv2 {
		sum := chapMD5(id, p.cfg.Password, value)
		p.resp = build(p.resp, chapResponse, id, []byte{md5.Size}, sum[:], []byte(p.cfg.User))
		return nil
	}
	if _, err := io.ReadFull(p.cfg.Rand, p.peerChallenge[:]); err != nil {
		return fmt.Errorf("auth: reading peer challenge: %w", err)
	}
	p.ntResponse = generateNTResponse(value, p.peerChallenge[:], p.cfg.User, p.cfg.Password)
	var reserved [8]byte
	p.resp = build(p.resp, chapResponse, id, []byte{msResponseLen}, p.peerChallenge[:], reserved[:],
		p.ntResponse[:], []byte{0}, []byte(p.cfg.User))
	return nil
}

// verdict takes the Success or Failure answering our Response.
func (p *CHAPPeer) verdict(success bool, msg string) {
	p.timer.stop()
	p.pending = false
	p.res = Result{Done: true, User: p.cfg.User}
	switch {
	case !success && p.method == MSCHAPv2:
		f := parseMSFailure(msg)
		p.res.Err = fmt.Errorf("%w: MS-CHAPv2 Failure E=%d %q", ErrRefused, f.Code, f.Message)
	case !success:
		p.res.Err = fmt.Errorf("%w: CHAP Failure %q", ErrRefused, msg)
	case p.method == MSCHAPv2:
		got, _, ok := parseMSSuccess(msg)
		want := generateAuthenticatorResponse(p.cfg.Password, p.ntResponse[:], p.peerChallenge[:], p.challenge, p.cfg.User)
		if !ok || !strings.EqualFold("S="+hex.EncodeToString(got[:]), want) {
			p.res.Err = fmt.Errorf("%w: Success %q", ErrBadAuthenticator, msg)
			return
		}
		p.res.OK = true
	default:
		p.res.OK = true
	}
}

// Tick ends the wait for a Challenge or a verdict.
func (p *CHAPPeer) Tick(now time.Time) [][]byte {
	if !p.timer.expired(now) {
		return nil
	}
	p.timer.stop()
	if p.res.Done && !p.pending {
		return nil
	}
	what := "Challenge"
	if p.answered {
		what = "Success or Failure"
	}
	p.pending = false
	p.res = Result{Done: true, User: p.cfg.User, Err: fmt.Errorf("%w: no CHAP %s", ErrTimeout, what)}
	return nil
}

// Deadline returns when Tick has work, if it has.
func (p *CHAPPeer) Deadline() (time.Time, bool) { return p.timer.deadline() }

// Result reports the outcome.
func (p *CHAPPeer) Result() Result { return p.res }
