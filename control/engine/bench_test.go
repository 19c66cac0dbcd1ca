package engine

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/control"
	"github.com/ul2tp/ul2tp/datapath"
)

// benchTunnels sets up n tunnels on an LNS engine, driving their
// initiators in memory through a UDP socket (sink) that reads the
// engine's answers. It returns, per tunnel, the SCCCN the peer sent:
// replayed, it is a duplicate the engine acks.
func benchTunnels(b *testing.B, s *side, n int) [][]byte {
	b.Helper()
	sink, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(loopback))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	from := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	feed := func(data []byte) {
		s.e.do(func() {
			now := s.e.now()
			s.e.receive(s.e.lnsL, datapath.ControlPacket{From: from, Data: data}, now)
			s.e.settle(now)
		})
	}
	buf := make([]byte, 2048)
	sccns := make([][]byte, 0, n)
	for i := range n {
		peer, err := control.NewTunnel(control.TunnelConfig{LocalID: uint32(i + 1), HostName: "bench"}, control.Initiator)
		if err != nil {
			b.Fatal(err)
		}
		out, err := peer.Open(time.Now())
		if err != nil {
			b.Fatal(err)
		}
		feed(out.Transmit[0])
		// Skip the delayed acks of the tunnels before.
		for peer.State() != control.StateEstablished {
			sink.SetReadDeadline(time.Now().Add(5 * time.Second))
			m, _, err := sink.ReadFromUDPAddrPort(buf)
			if err != nil {
				b.Fatalf("tunnel %d: no SCCRP: %v", i, err)
			}
			if h, err := control.ParseHeader(buf[:m]); err == nil && h.TunnelID == uint32(i+1) {
				out = peer.Receive(buf[:m], time.Now())
			}
		}
		if len(out.Transmit) == 0 {
			b.Fatalf("tunnel %d: no SCCCN", i)
		}
		sccn := append([]byte(nil), out.Transmit[0]...)
		feed(sccn)
		sccns = append(sccns, sccn)
	}
	if st := s.e.Stats(); st.TunnelsUp != uint64(n) {
		b.Fatalf("%d tunnels up, want %d", st.TunnelsUp, n)
	}
	return sccns
}

// BenchmarkEngineReceive is the engine's cost of one control packet
// (a duplicate SCCCN, acked) with 10 to 1,000 established tunnels: the
// routing, the state machine, the send of the ack and the rescheduling
// of the tunnel's deadline in the timer heap. It should stay flat as
// the tunnel count grows.
func BenchmarkEngineReceive(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("tunnels=%d", n), func(b *testing.B) {
			s := newSide(b)
			if err := s.e.StartLNS(LNSConfig{Listen: loopback, MaxTunnels: 2 * n}); err != nil {
				b.Fatal(err)
			}
			pkts := benchTunnels(b, s, n)
			b.ReportAllocs()
			b.ResetTimer()
			s.e.do(func() {
				for i := range b.N {
					e := s.e
					now := e.now()
					p := datapath.ControlPacket{From: e.tunnels[uint32(i%n)+1].peer, Data: pkts[i%n]}
					e.receive(e.lnsL, p, now)
					e.settle(now)
					e.timers.next()
				}
			})
		})
	}
}
