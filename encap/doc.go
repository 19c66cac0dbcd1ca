// Package encap reads and writes L2TP data headers in place.
//
// It covers the L2TPv3 session header over UDP and over IP protocol 115
// (RFC 3931 section 4.1), with a 0, 4 or 8 byte cookie and the L2-specific
// sublayer "none" or "default" (RFC 4719: S bit and 24-bit sequence number),
// the L2TPv2 header (RFC 2661 section 3.1), and the header of the PPP frames
// L2TPv2 carries (ParsePPP, EncodePPP).
//
// Every function works on the caller's buffer: a header is written into the
// headroom in front of a payload and parsed where it lies, so the datapath
// neither copies nor allocates per packet. Parsers return an error (one of
// the Err values below, possibly wrapped) for any malformed input; they never
// panic. The package does no I/O and knows nothing of sockets or devices.
package encap
