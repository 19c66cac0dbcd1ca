// Package control reads and writes L2TP control messages and carries them
// reliably: the protocol core shared by the L2TPv2 (RFC 2661) and L2TPv3
// (RFC 3931) control planes.
//
// It holds:
//
//   - the control message header of both versions (ParseHeader,
//     Builder), which differ only in the width of the tunnel (control
//     connection) id;
//   - AVP iteration as a view over the received buffer (AVPIter), typed
//     accessors for the RFC 2661 attributes, and the hidden AVP algorithm
//     of RFC 2661 section 4.3 (Hide, Unhide);
//   - the unknown-AVP rule (FirstUnknownMandatory) and the tunnel
//     authentication digest (ChallengeResponse);
//   - reliable delivery (Transport): Ns/Nr, the peer's receive window,
//     retransmission with backoff, ZLB acks, duplicate and out-of-window
//     detection, in-order delivery and the slow start of RFC 2661
//     Appendix A, as a pure state machine driven by Send, Receive and Tick
//     with the time passed in.
//
// Parsers return an error naming the bad field for malformed input and
// never panic; parsing and building allocate nothing. The package does no
// I/O: no sockets, no goroutines, no timers.
//
// Still to come (issue 13): the tunnel and call state machines built on
// this core, the socket integration in ul2tpd, and the L2TPv3 specifics
// (Message Digest AVP, pseudowire AVPs).
package control
