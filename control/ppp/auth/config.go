package auth

import (
	"crypto/rand"
	"io"
	"time"
)

// AuthenticatorConfig sets up the authenticator role (the side that asks
// for credentials: an LNS). Zero durations and counts take the defaults.
type AuthenticatorConfig struct {
	// Name is our name: the Name of CHAP Challenges and the server column
	// of a secrets file.
	Name string
	// Verify checks a PAP peer's user name (client) and password against
	// our name (server). Required for PAP.
	Verify func(client, server, password string) bool
	// Secret returns the secret a CHAP or MS-CHAPv2 peer named client
	// shares with us (server). Required for CHAP and MS-CHAPv2.
	Secret func(client, server string) (secret string, ok bool)
	// Rand is the source of challenges; default crypto/rand.Reader.
	Rand io.Reader
	// RestartTimer is the Challenge retransmission interval.
	RestartTimer time.Duration
	// MaxTransmits bounds the Challenges sent without a Response.
	MaxTransmits int
	// Timeout bounds the wait for a PAP Authenticate-Request.
	Timeout time.Duration
	// SuccessMessage and FailureMessage are the texts of the verdicts;
	// defaults "Access granted" and "Access denied".
	SuccessMessage, FailureMessage string
}

func (c *AuthenticatorConfig) setDefaults() {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	c.RestartTimer = orDefault(c.RestartTimer, DefaultRestartTimer)
	c.MaxTransmits = orDefault(c.MaxTransmits, DefaultMaxTransmits)
	c.Timeout = orDefault(c.Timeout, DefaultTimeout)
	if c.SuccessMessage == "" {
		c.SuccessMessage = "Access granted"
	}
	if c.FailureMessage == "" {
		c.FailureMessage = "Access denied"
	}
}

// PeerConfig sets up the peer role (the side that proves who it is: a
// LAC). Zero durations and counts take the defaults.
type PeerConfig struct {
	User     string // PAP Peer-ID, CHAP Name
	Password string // PAP Password, CHAP secret
	// Rand is the source of MS-CHAPv2 peer challenges; default
	// crypto/rand.Reader.
	Rand io.Reader
	// RestartTimer is the PAP Authenticate-Request retransmission
	// interval.
	RestartTimer time.Duration
	// MaxTransmits bounds the PAP Authenticate-Requests sent without an
	// answer.
	MaxTransmits int
	// Timeout bounds the wait for a CHAP Challenge and for the verdict on
	// our Response.
	Timeout time.Duration
}

func (c *PeerConfig) setDefaults() {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	c.RestartTimer = orDefault(c.RestartTimer, DefaultRestartTimer)
	c.MaxTransmits = orDefault(c.MaxTransmits, DefaultMaxTransmits)
	c.Timeout = orDefault(c.Timeout, DefaultTimeout)
}

// NewAuthenticator returns the authenticator role of method m. It returns
// nil for an unknown method.
func NewAuthenticator(m Method, cfg AuthenticatorConfig) Protocol {
	cfg.setDefaults()
	switch m {
	case PAP:
		return &PAPAuthenticator{cfg: cfg}
	case CHAPMD5, MSCHAPv2:
		return &CHAPAuthenticator{cfg: cfg, method: m}
	}
	return nil
}

// NewPeer returns the peer role of method m. It returns nil for an unknown
// method.
func NewPeer(m Method, cfg PeerConfig) Protocol {
	cfg.setDefaults()
	switch m {
	case PAP:
		return &PAPPeer{cfg: cfg}
	case CHAPMD5, MSCHAPv2:
		return &CHAPPeer{cfg: cfg, method: m}
	}
	return nil
}
