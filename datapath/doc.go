// Package datapath moves Ethernet frames between TAP devices and L2TPv3
// tunnel sockets: the userspace equivalent of the kernel's l2tp_core,
// l2tp_eth, l2tp_ip and l2tp_ip6.
//
// A Plane holds tunnels and their sessions. Each session owns a TAP device;
// each tunnel sends through a socket that tunnels with the same local
// address, port and options share. Goroutines ("pumps") do the work: one per
// TAP queue reads frames in batches into buffers with headroom, writes the
// L2TP header in front of each in place and hands the batch to sendmmsg;
// one per socket reads datagrams with recvmmsg, finds the session by
// session id and source address, checks the header and writes the frame to
// the session's TAP. Neither direction copies a frame or allocates.
//
// The package does not parse configuration or speak the control protocol;
// cmd/ul2tpd drives it.
package datapath
