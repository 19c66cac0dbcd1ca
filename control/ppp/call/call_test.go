package call

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/tap"
	"github.com/ul2tp/ul2tp/encap"
	"golang.org/x/sys/unix"
)

func TestPool(t *testing.T) {
	p, err := ParsePool("10.0.0.1-10.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	var got []netip.Addr
	for range 3 {
		a, err := p.Get()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if got[0].String() != "10.0.0.1" || got[2].String() != "10.0.0.3" {
		t.Errorf("addresses %v", got)
	}
	if _, err := p.Get(); !errors.Is(err, ErrPoolEmpty) {
		t.Errorf("4th Get: %v, want ErrPoolEmpty", err)
	}
	p.Put(got[1])
	if a, err := p.Get(); err != nil || a != got[1] || p.InUse() != 3 {
		t.Errorf("after Put: %v %v, in use %d", a, err, p.InUse())
	}
	for _, bad := range []string{"", "10.0.0.1", "10.0.0.3-10.0.0.1", "::1-::2", "x-y"} {
		if _, err := ParsePool(bad); err == nil {
			t.Errorf("ParsePool(%q) accepted", bad)
		}
	}
}

// benchCall is a Call with a TUN (made in a namespace of its own) and a
// datapath session to a UDP sink on loopback, ready to pass IPv4 both
// ways. It skips without root.
func benchCall(b testing.TB) *Call {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root for a TUN device")
	}
	devc := make(chan *tap.Device)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the namespace goes with the thread
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		d, err := tap.Create(tap.Config{Name: "bppp%d", TUN: true})
		if err == nil {
			err = tap.SetUp(d.Name())
		}
		if err != nil {
			errc <- err
			return
		}
		devc <- d
	}()
	var dev *tap.Device
	select {
	case dev = <-devc:
	case err := <-errc:
		b.Fatal(err)
	}
	b.Cleanup(func() { dev.Close() })
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := datapath.New(log, datapath.Options{SocketBuffer: -1})
	b.Cleanup(func() { p.Close() })
	l, err := p.Listen(datapath.ListenConfig{Local: netip.MustParseAddrPort("127.0.0.1:0"), UDPCsum: true})
	if err != nil {
		b.Fatal(err)
	}
	to := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := p.AddTunnel(datapath.TunnelConfig{Version: 2, ID: 1, PeerID: 2, Encap: encap.EncapUDP,
		Local: l.Local().Addr(), UDPSport: l.Local().Port(), Remote: to.Addr(), UDPDport: to.Port()}); err != nil {
		b.Fatal(err)
	}
	c := &Call{cfg: Config{Client: &Client{}}, log: log, dev: dev, q: dev.Queues()[0], ctl: make(chan []byte, QueueLen)}
	s, err := p.AddSession(datapath.SessionConfig{TunnelID: 1, ID: 3, PeerID: 4, Payload: c})
	if err != nil {
		b.Fatal(err)
	}
	c.sess.Store(s)
	c.ip4.Store(true)
	c.hdr.Store(3) // ACFC and PFC
	return c
}

// ipv4Packet is a UDP packet from 10.99.0.2 to 10.99.0.1.
func ipv4Packet(n int) []byte {
	p := make([]byte, n)
	p[0], p[9] = 0x45, 17
	p[2], p[3] = byte(n>>8), byte(n)
	copy(p[12:], []byte{10, 99, 0, 2, 10, 99, 0, 1})
	return p
}

// BenchmarkSendPacket is the TUN-to-call direction: an IP packet gets
// its PPP header and goes out through Session.Send.
func BenchmarkSendPacket(b *testing.B) {
	c := benchCall(b)
	buf := make([]byte, headroom+1400)
	copy(buf[headroom:], ipv4Packet(1400))
	b.ReportAllocs()
	b.SetBytes(1400)
	for b.Loop() {
		c.sendPacket(buf, 1400)
	}
}

// BenchmarkDeliverIPv4 is the call-to-TUN direction: a PPP frame with a
// compressed header carrying IPv4 is written to the TUN.
func BenchmarkDeliverIPv4(b *testing.B) {
	c := benchCall(b)
	frame := append([]byte{0x21}, ipv4Packet(1400)...)
	b.ReportAllocs()
	b.SetBytes(1400)
	for b.Loop() {
		c.Deliver(frame)
	}
}

// TestDataPathAllocs checks that neither data direction allocates per
// packet: Deliver of an IPv4 frame to the TUN, and an IPv4 packet from
// the TUN getting its PPP header and going out with Session.Send.
func TestDataPathAllocs(t *testing.T) {
	c := benchCall(t)
	frame := append([]byte{0x21}, ipv4Packet(1400)...)
	if n := testing.AllocsPerRun(1000, func() { c.Deliver(frame) }); n != 0 {
		t.Errorf("Deliver: %v allocs per IPv4 frame, want 0", n)
	}
	buf := make([]byte, headroom+1400)
	copy(buf[headroom:], ipv4Packet(1400))
	if n := testing.AllocsPerRun(1000, func() { c.sendPacket(buf, 1400) }); n != 0 {
		t.Errorf("sendPacket: %v allocs per IPv4 packet, want 0", n)
	}
}

func FuzzParsePool(f *testing.F) {
	f.Add("10.0.0.1-10.0.0.3")
	f.Add("10.0.0.1-")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePool(s)
		if err == nil && !p.Contains(p.first) {
			t.Fatalf("%q: pool without its first address", s)
		}
	})
}

// TestDeliverControlQueue checks that control frames go to the queue,
// and that a full queue drops and counts them instead of blocking.
func TestDeliverControlQueue(t *testing.T) {
	c := &Call{ctl: make(chan []byte, 2)}
	lcp := []byte{0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4}
	for range 3 {
		c.Deliver(lcp)
	}
	c.Deliver([]byte{0x21, 0x45}) // IPv4 before IPCP is open: dropped
	if len(c.ctl) != 2 || c.dropped.Load() != 1 {
		t.Fatalf("queued %d, dropped %d: want 2 and 1", len(c.ctl), c.dropped.Load())
	}
	f := <-c.ctl
	lcp[4] = 9
	if f[4] != 1 {
		t.Error("the queued frame shares the pump's buffer")
	}
}
