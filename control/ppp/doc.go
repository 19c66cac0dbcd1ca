// Package ppp runs PPP (RFC 1661) over an L2TPv2 call, in user space and
// as pure protocol: no devices, no sockets, no goroutines. Time is passed
// into every call, so tests drive it with a fake clock.
//
// One option negotiation automaton (RFC 1661 section 4: states Initial to
// Opened, the restart timer and the Max-Configure, Max-Terminate and
// Max-Failure counters) serves every control protocol through the Options
// interface:
//
//   - LCP: MRU, Async-Control-Character-Map (accepted, ignored: L2TP has
//     no async framing), Authentication-Protocol (PAP, CHAP with MD5 or
//     MS-CHAPv2), Magic-Number with loop detection, PFC and ACFC; Echo
//     keepalives with a failure count, Terminate, Code-Reject,
//     Protocol-Reject (of CCP among others: no compression) and
//     Discard-Request.
//   - IPCP (RFC 1332, with DNS from RFC 1877): the LNS assigns the peer's
//     address from a callback and pushes DNS; the LAC asks for 0.0.0.0 and
//     takes what it is given.
//   - IPv6CP (RFC 5072): interface identifiers; LinkLocal derives the
//     link-local address.
//
// A Link ties them together per call: Dead, Establish (LCP), Authenticate
// (through the Authenticator interface, implemented elsewhere), Network
// (the NCPs), Open, Terminate. Link.Receive classifies each PPP frame of
// the call: IPv4 and IPv6 packets come back for the TUN device without
// allocation; control packets go to the state machines, which send their
// answers through Config.Send. Link.Tick, at Link.Deadline, runs the timers.
package ppp
