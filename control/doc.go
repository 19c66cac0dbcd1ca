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
//     with the time passed in;
//   - the tunnel and call state machines of RFC 2661 (Tunnel), built on
//     the Transport: initiator (Open sends the SCCRQ) or responder (fed a
//     received SCCRQ), tunnel authentication with Challenge / Challenge
//     Response, hidden AVPs, HELLO after idle, StopCCN with a linger that
//     re-acks the peer's retransmissions, peer loss, the setup timeout;
//     incoming (ICRQ/ICRP/ICCN) and outgoing (OCRQ/OCRP/OCCN) calls in
//     both roles, CDN, WEN and SLI; the unknown mandatory AVP rule (StopCCN
//     or CDN, result 2, error 8); the tie breaker (TieBreak, PeekSCCRQ).
//
// A Tunnel is driven like the Transport: Receive, Tick and the commands
// (Open, Close, OpenCall, CloseCall, SendWEN, SendSLI) take the time and
// return a TunnelOutput of packets to send and Events (tunnel and call up
// and down, WEN, SLI) for the owner; Deadline is when Tick is next due,
// so an owner of many tunnels sleeps until the earliest. The owner does
// the demultiplexing: by the header's tunnel id, and for an SCCRQ (tunnel
// id 0) by the peer's address and Assigned Tunnel ID from PeekSCCRQ. It
// forgets a Tunnel when Done.
//
// What differs between L2TPv2 and L2TPv3 for the state machines (the id
// attributes and their width, the known and hideable attributes) is in
// one table (dialect); only the L2TPv2 one exists.
//
// Parsers return an error naming the bad field for malformed input and
// never panic; parsing and building allocate nothing, nor does a Tunnel
// receiving and acking a message; sending one costs the copy the
// Transport keeps until it is acked. The package does no I/O: no
// sockets, no goroutines, no timers.
//
// The sockets, the LNS and LAC roles and ul2tpd's use of them are in
// control/engine. Still to come (issue 13): the L2TPv3 specifics
// (Message Digest AVP, pseudowire AVPs, a v3 dialect).
package control
