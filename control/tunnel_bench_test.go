package control

import (
	"testing"
	"time"
)

// BenchmarkTunnelHello is the steady state of an idle tunnel: a HELLO
// from the peer received, handled and acked by a delayed ZLB.
func BenchmarkTunnelHello(b *testing.B) {
	l := newPair(&testing.T{}, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
	l.up()
	x := l.a
	hello := NewBuilder(make([]byte, 64), Header{Version: V2, TunnelID: 100}, MsgHELLO)
	pkt, _ := hello.Finish()
	now := l.now
	delay := x.cfg.Transport.AckDelay
	b.ReportAllocs()
	for b.Loop() {
		st := x.tr.State()
		SetNsNr(pkt, st.Nr, st.Ns)
		x.Receive(pkt, now)
		now = now.Add(delay)
		out := x.Tick(now)
		if len(out.Transmit) != 1 {
			b.Fatalf("%d packets, want the ZLB", len(out.Transmit))
		}
	}
}

// BenchmarkTunnelSendSLI is a message sent and acked: the copy the
// transport keeps until the ack is the one allocation.
func BenchmarkTunnelSendSLI(b *testing.B) {
	l := newPair(&testing.T{}, testConfig(100, "lac", 1), testConfig(200, "lns", 2))
	l.up()
	l.openCall(l.b, CallParams{Kind: OutgoingCall})
	l.run(time.Second)
	x := l.b
	id := x.Calls()[0].LocalID
	ack := AppendZLB(make([]byte, HeaderLen), V2, 200, 0, 0)
	now := l.now
	b.ReportAllocs()
	for b.Loop() {
		out, err := x.SendSLI(id, 1, 2, now)
		if err != nil || len(out.Transmit) != 1 {
			b.Fatal(err)
		}
		st := x.tr.State()
		SetNsNr(ack, st.Nr, st.Ns)
		x.Receive(ack, now)
	}
}
