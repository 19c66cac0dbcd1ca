package datapath

import "sync/atomic"

// Stats are the counters of a tunnel or session, named and meant as the
// kernel's L2TP_ATTR_STATS. Byte counts are of the tunnelled frames, without
// the L2TP header, as the kernel counts them. The control socket sends them
// as api.Stats (cmd/internal/api).
type Stats struct {
	TxPackets        uint64
	TxBytes          uint64
	TxErrors         uint64
	RxPackets        uint64
	RxBytes          uint64
	RxErrors         uint64
	RxSeqDiscards    uint64
	RxOOSPackets     uint64
	RxCookieDiscards uint64
	RxInvalid        uint64
	// ReorderQueueDepth is how many frames wait in the reorder queue now
	// (sessions only; not a kernel counter).
	ReorderQueueDepth int

	// Which offload paths a session's frames took (ours, not the kernel's):
	// TSO super-frames read from the TAP and the segments cut from them;
	// UDP GSO sends and the datagrams they carried; datagrams that arrived
	// in UDP GRO batches; super-frames coalesced for the TAP and the
	// segments merged into them.
	TxTSOFrames, TxTSOSegments, TxGSOSends, TxGSODatagrams uint64
	RxGRODatagrams, RxCoalescedFrames, RxCoalescedSegments uint64
}

// counters is the live, atomically updated form of Stats.
type counters struct {
	txPackets, txBytes, txErrors                             atomic.Uint64
	rxPackets, rxBytes, rxErrors                             atomic.Uint64
	rxSeqDiscards, rxOOSPackets, rxCookieDiscards, rxInvalid atomic.Uint64

	txTSOFrames, txTSOSegments, txGSOSends, txGSODatagrams atomic.Uint64
	rxGRODatagrams, rxCoalescedFrames, rxCoalescedSegments atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		TxPackets:        c.txPackets.Load(),
		TxBytes:          c.txBytes.Load(),
		TxErrors:         c.txErrors.Load(),
		RxPackets:        c.rxPackets.Load(),
		RxBytes:          c.rxBytes.Load(),
		RxErrors:         c.rxErrors.Load(),
		RxSeqDiscards:    c.rxSeqDiscards.Load(),
		RxOOSPackets:     c.rxOOSPackets.Load(),
		RxCookieDiscards: c.rxCookieDiscards.Load(),
		RxInvalid:        c.rxInvalid.Load(),

		TxTSOFrames:         c.txTSOFrames.Load(),
		TxTSOSegments:       c.txTSOSegments.Load(),
		TxGSOSends:          c.txGSOSends.Load(),
		TxGSODatagrams:      c.txGSODatagrams.Load(),
		RxGRODatagrams:      c.rxGRODatagrams.Load(),
		RxCoalescedFrames:   c.rxCoalescedFrames.Load(),
		RxCoalescedSegments: c.rxCoalescedSegments.Load(),
	}
}
