package datapath

import "sync/atomic"

// Stats are the counters of a tunnel or session, named and meant as the
// kernel's L2TP_ATTR_STATS. Byte counts are of the tunnelled frames, without
// the L2TP header, as the kernel counts them.
type Stats struct {
	TxPackets        uint64 `json:"tx_packets"`
	TxBytes          uint64 `json:"tx_bytes"`
	TxErrors         uint64 `json:"tx_errors"`
	RxPackets        uint64 `json:"rx_packets"`
	RxBytes          uint64 `json:"rx_bytes"`
	RxErrors         uint64 `json:"rx_errors"`
	RxSeqDiscards    uint64 `json:"rx_seq_discards"`
	RxOOSPackets     uint64 `json:"rx_oos_packets"`
	RxCookieDiscards uint64 `json:"rx_cookie_discards"`
	RxInvalid        uint64 `json:"rx_invalid"`
	// ReorderQueueDepth is how many frames wait in the reorder queue now
	// (sessions only; not a kernel counter).
	ReorderQueueDepth int `json:"reorder_queue_depth,omitempty"`
	Offload
}

// Offload counts which offload paths a session's frames took (ours, not
// the kernel's): TSO super-frames read from the TAP and the segments they
// were cut into; UDP GSO sends and the datagrams they carried; datagrams
// that arrived in UDP GRO batches; super-frames coalesced for the TAP and
// the segments merged into them.
type Offload struct {
	TxTSOFrames         uint64 `json:"tx_tso_frames,omitempty"`
	TxTSOSegments       uint64 `json:"tx_tso_segments,omitempty"`
	TxGSOSends          uint64 `json:"tx_gso_sends,omitempty"`
	TxGSODatagrams      uint64 `json:"tx_gso_datagrams,omitempty"`
	RxGRODatagrams      uint64 `json:"rx_gro_datagrams,omitempty"`
	RxCoalescedFrames   uint64 `json:"rx_coalesced_frames,omitempty"`
	RxCoalescedSegments uint64 `json:"rx_coalesced_segments,omitempty"`
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
		Offload: Offload{
			TxTSOFrames:         c.txTSOFrames.Load(),
			TxTSOSegments:       c.txTSOSegments.Load(),
			TxGSOSends:          c.txGSOSends.Load(),
			TxGSODatagrams:      c.txGSODatagrams.Load(),
			RxGRODatagrams:      c.rxGRODatagrams.Load(),
			RxCoalescedFrames:   c.rxCoalescedFrames.Load(),
			RxCoalescedSegments: c.rxCoalescedSegments.Load(),
		},
	}
}
