// Package auth implements the PPP authentication protocols an L2TPv2 call
// runs after LCP: PAP (RFC 1334), CHAP with MD5 (RFC 1994) and MS-CHAPv2
// (RFC 2759), each in both roles, and pppd's secrets file format
// (chap-secrets, pap-secrets) to look the credentials up.
//
// The package is pure protocol: no devices, sockets or goroutines. Every
// state machine implements [Protocol] and is driven by its owner (the PPP
// link of package control/ppp) with the time passed in:
//
//	p := auth.NewAuthenticator(auth.MSCHAPv2, cfg) // LNS side
//	out := p.Start(now)                            // send each frame of out
//	...
//	out = p.Receive(frame, now)                    // a frame of p.Method().Protocol()
//	out = p.Tick(now)                              // when p.Deadline() has passed
//	if r := p.Result(); r.Done { ... }             // r.OK: authentication phase over
//
// A frame, in and out, is the PPP information field after the protocol
// number: code, identifier, length and data. Frames returned by a call
// belong to the state machine and stay valid until its next call. The
// authenticator role (what an LNS runs) checks the peer's credentials with
// callbacks (AuthenticatorConfig.Verify for PAP, AuthenticatorConfig.Secret
// for CHAP and MS-CHAPv2, both served by [Secrets]); the peer role (what a
// LAC runs) answers with a user name and password. A refused peer is told
// why (PAP Authenticate-Nak, CHAP Failure, MS-CHAPv2 "E=691 R=0 ...
// V=3"); the owner ends the link when Result reports Done without OK.
//
// MS-CHAPv2 uses MD4 from golang.org/x/crypto/md4 for the NT password hash
// (RFC 2759 section 8.3) and crypto/des for the challenge response.
package auth
