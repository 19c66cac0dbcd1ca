package auth

import (
	"fmt"
	"time"
)

// PAP codes (RFC 1334 section 2.2).
const (
	papRequest = 1
	papAck     = 2
	papNak     = 3
)

// parsePAPRequest returns the Peer-ID and Password of an
// Authenticate-Request's data.
func parsePAPRequest(data []byte) (user, password []byte, ok bool) {
	if len(data) < 1 || len(data) < 1+int(data[0])+1 {
		return nil, nil, false
	}
	user, data = data[1:1+int(data[0])], data[1+int(data[0]):]
	if len(data) < 1+int(data[0]) {
		return nil, nil, false
	}
	return user, data[1 : 1+int(data[0])], true
}

// parsePAPMessage returns the Message of an Authenticate-Ack or -Nak; a
// missing or truncated one reads as what is there.
func parsePAPMessage(data []byte) string {
	if len(data) == 0 {
		return ""
	}
	n := min(int(data[0]), len(data)-1)
	return string(data[1 : 1+n])
}

// lenPrefixed returns s as a one-octet length and at most 255 octets.
func lenPrefixed(s string) []byte {
	s = s[:min(len(s), 255)]
	return append([]byte{byte(len(s))}, s...)
}

// PAPAuthenticator is the authenticator role of PAP: it waits for an
// Authenticate-Request, checks it with AuthenticatorConfig.Verify and
// answers Authenticate-Ack or -Nak. It answers a repeated Request (its
// reply was lost) with the same verdict.
type PAPAuthenticator struct {
	cfg   AuthenticatorConfig
	timer timer
	res   Result
	reply []byte
	out   [1][]byte
}

// Method returns PAP.
func (a *PAPAuthenticator) Method() Method { return PAP }

// Start arms the wait for the peer's Authenticate-Request.
func (a *PAPAuthenticator) Start(now time.Time) [][]byte {
	a.timer.set(now.Add(a.cfg.Timeout))
	return nil
}

// Receive handles an Authenticate-Request; other frames are ignored.
func (a *PAPAuthenticator) Receive(frame []byte, now time.Time) [][]byte {
	code, id, data, ok := header(frame)
	if !ok || code != papRequest {
		return nil
	}
	user, password, ok := parsePAPRequest(data)
	if !ok {
		return nil
	}
	if !a.res.Done {
		a.res = Result{Done: true, User: string(user)}
		switch {
		case a.cfg.Verify == nil:
			a.res.Err = ErrNoSecret
		case a.cfg.Verify(string(user), a.cfg.Name, string(password)):
			a.res.OK = true
		default:
			a.res.Err = fmt.Errorf("%w: PAP user %q", ErrBadCredentials, user)
		}
		a.timer.stop()
	}
	code, msg := byte(papAck), a.cfg.SuccessMessage
	if !a.res.OK {
		code, msg = papNak, a.cfg.FailureMessage
	}
	a.reply = build(a.reply, code, id, lenPrefixed(msg))
	a.out[0] = a.reply
	return a.out[:]
}

// Tick ends the wait when the peer sent no Authenticate-Request in time.
func (a *PAPAuthenticator) Tick(now time.Time) [][]byte {
	if a.timer.expired(now) && !a.res.Done {
		a.timer.stop()
		a.res = Result{Done: true, Err: fmt.Errorf("%w: no PAP Authenticate-Request", ErrTimeout)}
	}
	return nil
}

// Deadline returns when Tick has work, if it has.
func (a *PAPAuthenticator) Deadline() (time.Time, bool) { return a.timer.deadline() }

// Result reports the outcome.
func (a *PAPAuthenticator) Result() Result { return a.res }

// PAPPeer is the peer role of PAP: it sends Authenticate-Requests with
// the user name and password, a new identifier each time, until an
// Authenticate-Ack or -Nak answers one of them or MaxTransmits ran out.
type PAPPeer struct {
	cfg       PeerConfig
	timer     timer
	res       Result
	id        uint8 // identifier of the last Request
	transmits int
	req       []byte
	out       [1][]byte
}

// Method returns PAP.
func (p *PAPPeer) Method() Method { return PAP }

// Start sends the first Authenticate-Request.
func (p *PAPPeer) Start(now time.Time) [][]byte {
	p.res = Result{User: p.cfg.User}
	p.transmits = 0
	return p.send(now)
}

func (p *PAPPeer) send(now time.Time) [][]byte {
	p.id++
	p.transmits++
	p.req = build(p.req, papRequest, p.id, lenPrefixed(p.cfg.User), lenPrefixed(p.cfg.Password))
	p.timer.set(now.Add(p.cfg.RestartTimer))
	p.out[0] = p.req
	return p.out[:]
}

// Receive handles the Authenticate-Ack or -Nak answering one of our
// Requests; other frames are ignored.
func (p *PAPPeer) Receive(frame []byte, now time.Time) [][]byte {
	code, id, data, ok := header(frame)
	if !ok || (code != papAck && code != papNak) || p.res.Done || p.transmits == 0 {
		return nil
	}
	// Each retransmission took a new identifier: accept an answer to any
	// of them.
	if uint8(p.id-id) >= uint8(min(p.transmits, 255)) {
		return nil
	}
	p.timer.stop()
	p.res.Done = true
	if code == papAck {
		p.res.OK = true
		return nil
	}
	p.res.Err = fmt.Errorf("%w: PAP Authenticate-Nak %q", ErrRefused, parsePAPMessage(data))
	return nil
}

// Tick retransmits the Authenticate-Request, or gives up after
// MaxTransmits.
func (p *PAPPeer) Tick(now time.Time) [][]byte {
	if !p.timer.expired(now) || p.res.Done {
		return nil
	}
	if p.transmits >= p.cfg.MaxTransmits {
		p.timer.stop()
		p.res.Done = true
		p.res.Err = fmt.Errorf("%w: %d PAP Authenticate-Requests unanswered", ErrTimeout, p.transmits)
		return nil
	}
	return p.send(now)
}

// Deadline returns when Tick has work, if it has.
func (p *PAPPeer) Deadline() (time.Time, bool) { return p.timer.deadline() }

// Result reports the outcome.
func (p *PAPPeer) Result() Result { return p.res }
