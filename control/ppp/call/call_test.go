package call

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/control/ppp"
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

// rig is a Call with a TUN (made in a namespace of its own) and a
// datapath session to a UDP sink on loopback, ready to pass IPv4 and IPv6
// both ways.
type rig struct {
	c    *Call
	sink *net.UDPConn
	// in runs f on the thread in the TUN's namespace.
	in func(f func() error) error
}

// benchCall is newRig's Call.
func benchCall(b testing.TB) *Call { return newRig(b).c }

// newRig makes a rig. It skips without root.
func newRig(b testing.TB) *rig { return newRigOffload(b, false) }

// newRigOffload makes a rig whose TUN has offloads (a virtio_net_hdr and
// TSO) if offload.
func newRigOffload(b testing.TB, offload bool) *rig {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root for a TUN device")
	}
	devc := make(chan *tap.Device)
	errc := make(chan error)
	work := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the namespace goes with the thread
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		d, err := tap.Create(tap.Config{Name: "bppp%d", TUN: true, Offload: offload})
		if err == nil {
			err = tap.SetNoLinkLocal(d.Name())
		}
		if err == nil {
			err = tap.SetUp(d.Name())
		}
		if err != nil {
			errc <- err
			return
		}
		devc <- d
		for f := range work {
			f()
		}
	}()
	var dev *tap.Device
	select {
	case dev = <-devc:
	case err := <-errc:
		b.Fatal(err)
	}
	b.Cleanup(func() { close(work); dev.Close() })
	r := &rig{in: func(f func() error) error {
		done := make(chan error)
		work <- func() { done <- f() }
		return <-done
	}}
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	r.sink = sink
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
	c.ip6.Store(true)
	c.hdr.Store(3) // ACFC and PFC
	r.c = c
	return r
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

var (
	ll1 = netip.MustParseAddr("fe80::1")
	ll2 = netip.MustParseAddr("fe80::2")
)

// ipv6Packet is a UDP packet of n bytes (n >= 48) from src to dst port
// port, with a correct checksum.
func ipv6Packet(n int, src, dst netip.Addr, port uint16) []byte {
	p := make([]byte, n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(n-40))
	p[6], p[7] = unix.IPPROTO_UDP, 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	u := p[40:]
	binary.BigEndian.PutUint16(u[0:], 9999)
	binary.BigEndian.PutUint16(u[2:], port)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	for i := 8; i < len(u); i++ {
		u[i] = byte(i)
	}
	// The checksum over the pseudo-header (addresses, length, next
	// header) and the datagram.
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(p[8:40])
	sum += uint32(len(u)) + unix.IPPROTO_UDP
	add(u)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(u[6:], ^uint16(sum))
	return p
}

// TestDeliverIPv6 passes a PPP frame carrying IPv6 to the TUN once IPv6CP
// is open: a UDP socket on our link-local address gets the datagram.
// Before, the frame is dropped (not queued as control).
func TestDeliverIPv6(t *testing.T) {
	r := newRig(t)
	c := r.c
	var ln *net.UDPConn
	if err := r.in(func() (err error) {
		if err = tap.SetPointToPoint6(c.dev.Name(), ll1, ll2); err == nil {
			ln, err = net.ListenUDP("udp6", &net.UDPAddr{IP: ll1.AsSlice(), Zone: c.dev.Name()})
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.LocalAddr().(*net.UDPAddr).Port)
	pkt := ipv6Packet(200, ll2, ll1, port)
	frame := append([]byte{0xff, 0x03, 0x00, 0x57}, pkt...)

	c.ip6.Store(false)
	c.Deliver(frame)
	if len(c.ctl) != 0 {
		t.Fatal("IPv6 data before IPv6CP is open was queued as control")
	}
	c.ip6.Store(true)
	// The kernel makes a new address routable a moment after adding it
	// (in a work queue): deliver until one arrives, a bounded number of
	// times.
	buf := make([]byte, 2048)
	var n int
	var from netip.AddrPort
	var err error
	for range 50 {
		c.Deliver(frame)
		_ = ln.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, from, err = ln.ReadFromUDPAddrPort(buf); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no datagram arrived: %v", err)
	}
	if !bytes.Equal(buf[:n], pkt[48:]) || from.Addr().WithZone("") != ll2 {
		t.Errorf("got %d bytes from %v, want %d from %v", n, from, len(pkt)-48, ll2)
	}
	if a := testing.AllocsPerRun(100, func() { c.Deliver(frame) }); a != 0 {
		t.Errorf("Deliver of IPv6 allocates %v times", a)
	}
}

// TestSendPacketVersions checks that the TUN reader picks PPP's protocol
// by the IP version nibble (0x21 IPv4, 0x57 IPv6, as PFC allows here),
// sends a version only while its NCP is open, and allocates nothing.
func TestSendPacketVersions(t *testing.T) {
	r := newRig(t)
	c := r.c
	for _, tc := range []struct {
		name  string
		pkt   []byte
		proto byte
		open  *atomic.Bool
	}{
		{"ipv4", ipv4Packet(300), 0x21, &c.ip4},
		{"ipv6", ipv6Packet(300, ll1, ll2, 9), 0x57, &c.ip6},
	} {
		buf := make([]byte, headroom+len(tc.pkt))
		copy(buf[headroom:], tc.pkt)
		tc.open.Store(false)
		c.sendPacket(buf, len(tc.pkt))
		tc.open.Store(true)
		c.sendPacket(buf, len(tc.pkt))
		_ = r.sink.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 2048)
		n, err := r.sink.Read(got)
		if err != nil {
			t.Fatalf("%s: nothing sent: %v", tc.name, err)
		}
		got = got[:n]
		if !bytes.HasSuffix(got, tc.pkt) || len(got) <= len(tc.pkt) || got[len(got)-len(tc.pkt)-1] != tc.proto {
			t.Errorf("%s: sent % x, want the packet behind protocol %#x", tc.name, got, tc.proto)
		}
		// The packet sent while its NCP was closed would have come first.
		_ = r.sink.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := r.sink.Read(got[:cap(got)]); err == nil {
			t.Errorf("%s: a second datagram of %d bytes", tc.name, n)
		}
		if a := testing.AllocsPerRun(100, func() { c.sendPacket(buf, len(tc.pkt)) }); a != 0 {
			t.Errorf("%s: sendPacket allocates %v times", tc.name, a)
		}
		for { // drain what AllocsPerRun sent
			_ = r.sink.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := r.sink.Read(got[:cap(got)]); err != nil {
				break
			}
		}
	}
}

// BenchmarkDeliverIPv6 is BenchmarkDeliverIPv4 for IPv6.
func BenchmarkDeliverIPv6(b *testing.B) {
	c := benchCall(b)
	frame := append([]byte{0x57}, ipv6Packet(1400, ll2, ll1, 9)...)
	b.ReportAllocs()
	b.SetBytes(1400)
	for b.Loop() {
		c.Deliver(frame)
	}
}

// BenchmarkSendPacketIPv6 is BenchmarkSendPacket for IPv6.
func BenchmarkSendPacketIPv6(b *testing.B) {
	c := benchCall(b)
	buf := make([]byte, headroom+1400)
	copy(buf[headroom:], ipv6Packet(1400, ll1, ll2, 9))
	b.ReportAllocs()
	b.SetBytes(1400)
	for b.Loop() {
		c.sendPacket(buf, 1400)
	}
}

// TestLinkConfigOptions checks that a role's Options reach its Link: LCP
// keepalives, and IPv6CP unless turned off.
func TestLinkConfigOptions(t *testing.T) {
	o := Options{IPv6ID: [8]byte{7: 9}, EchoInterval: 5 * time.Second, EchoFailures: 2}
	for _, cfg := range []Config{{Server: &Server{Options: o}}, {Client: &Client{Options: o}}} {
		c := &Call{cfg: cfg}
		lc, err := c.linkConfig()
		if err != nil {
			t.Fatal(err)
		}
		if lc.LCP.EchoInterval != 5*time.Second || lc.LCP.EchoFailures != 2 || lc.IPv6CP == nil || lc.IPv6CP.Local != o.IPv6ID {
			t.Errorf("server %v: LCP %+v IPv6CP %+v", cfg.Server != nil, lc.LCP, lc.IPv6CP)
		}
	}
	c := &Call{cfg: Config{Client: &Client{Options: Options{NoIPv6: true}}}}
	if lc, _ := c.linkConfig(); lc.IPv6CP != nil || lc.LCP.EchoInterval != 0 {
		t.Errorf("NoIPv6: IPv6CP %+v, echo %v", lc.IPv6CP, lc.LCP.EchoInterval)
	}
}

// linked is a rig's Call whose Link runs against a peer Link (an LNS
// with IPCP and IPv6CP) back to back, frames passed by exchange.
type linked struct {
	*rig
	peer           *ppp.Link
	toPeer, toCall [][]byte
	now            time.Time
	silent         bool // the peer's frames are lost
	ended          []error
}

func newLinked(t *testing.T, o Options) *linked { return newLinkedHooks(t, o, nil) }

// newLinkedHooks is newLinked with the Call's hooks h.
func newLinkedHooks(t *testing.T, o Options, h *Hooks) *linked {
	r := newRig(t)
	l := &linked{rig: r, now: time.Now()}
	c := r.c
	c.ip4.Store(false)
	c.ip6.Store(false)
	c.cfg.Client = &Client{Options: o, Hooks: h}
	c.hooks = newHookRun(&c.cfg, c.log)
	c.cfg.OnEnd = func(err error) { l.ended = append(l.ended, err) }
	lc, err := c.linkConfig()
	if err != nil {
		t.Fatal(err)
	}
	lc.Send = func(f []byte) { l.toPeer = append(l.toPeer, bytes.Clone(f)) }
	if c.link, err = ppp.New(lc); err != nil {
		t.Fatal(err)
	}
	l.peer, err = ppp.New(ppp.Config{
		IPCP: &ppp.IPCPConfig{Local: netip.MustParseAddr("10.9.0.1"),
			Assign: func() (netip.Addr, error) { return netip.MustParseAddr("10.9.0.2"), nil }},
		IPv6CP: &ppp.IPv6CPConfig{Local: [8]byte{7: 0x1}},
		Send: func(f []byte) {
			if !l.silent {
				l.toCall = append(l.toCall, bytes.Clone(f))
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.link.Open(l.now)
	l.peer.Open(l.now)
	l.exchange(t)
	return l
}

// exchange passes frames until none are left, then settles the Call in
// its TUN's namespace (settle configures the TUN).
func (l *linked) exchange(t *testing.T) {
	t.Helper()
	for range 100 {
		if len(l.toPeer) == 0 && len(l.toCall) == 0 {
			break
		}
		a, b := l.toPeer, l.toCall
		l.toPeer, l.toCall = nil, nil
		for _, f := range a {
			l.peer.Receive(l.now, f)
		}
		for _, f := range b {
			l.c.link.Receive(l.now, f)
		}
	}
	if err := l.in(func() error { l.c.settle(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestCallIPv6CP checks a Call's IPv6: when IPv6CP opens, the TUN gets
// the link-local addresses and IPv6 data passes; when the peer closes
// IPv6CP alone (Terminate-Request), IPv6 data stops while IPv4 goes on.
func TestCallIPv6CP(t *testing.T) {
	l := newLinked(t, Options{IPv6ID: [8]byte{7: 0xc}})
	c := l.c
	st := c.Status()
	if st.Phase != "open" || st.Local6 != netip.MustParseAddr("fe80::c") || st.Peer6 != netip.MustParseAddr("fe80::1") ||
		!c.ip6.Load() || !c.ip4.Load() {
		t.Fatalf("status %+v, ip4 %v ip6 %v: want open with fe80::c and fe80::1", st, c.ip4.Load(), c.ip6.Load())
	}
	if err := l.in(func() error {
		ifi, err := net.InterfaceByName(c.dev.Name())
		if err != nil {
			return err
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if strings.HasPrefix(a.String(), "fe80::c/") {
				return nil
			}
		}
		return fmt.Errorf("addresses %v: no fe80::c", addrs)
	}); err != nil {
		t.Fatal(err)
	}
	// The peer's IPv6CP Terminate-Request.
	c.link.Receive(l.now, []byte{0xff, 0x03, 0x80, 0x57, 5, 0x42, 0, 4})
	l.exchange(t)
	if c.ip6.Load() || !c.ip4.Load() || c.Status().Phase != "open" {
		t.Errorf("after IPv6CP closed: ip6 %v ip4 %v phase %s; want IPv4 only", c.ip6.Load(), c.ip4.Load(), c.Status().Phase)
	}
}

// TestCallIPv6Hooks: a Call runs ipv6-up once IPv6CP has opened and the
// TUN has the link-local addresses, with those addresses, and ipv6-down
// at its end; a call whose TUN cannot carry IPv6 (an MTU below 1280) or
// without IPv6CP runs neither, and ip-up as before.
func TestCallIPv6Hooks(t *testing.T) {
	id := [8]byte{7: 0xc}
	for _, tc := range []struct {
		name string
		o    Options
		v6   bool
	}{
		{"ipv6", Options{IPv6ID: id}, true},
		{"mtu below 1280", Options{IPv6ID: id, MTU: 1200}, false},
		{"no ipv6", Options{NoIPv6: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			trace := filepath.Join(dir, "trace")
			rec := `echo "${0##*/} $*" >> ` + trace + "\n"
			h := &Hooks{IPUp: script(t, dir, "ip-up", rec), IPv6Up: script(t, dir, "ipv6-up", rec),
				IPv6Down: script(t, dir, "ipv6-down", rec), IPParam: "p"}
			l := newLinkedHooks(t, tc.o, h)
			c := l.c
			if c.ip6.Load() != tc.v6 || !c.ip4.Load() {
				t.Fatalf("ip4 %v ip6 %v, want IPv4 and IPv6 %v", c.ip4.Load(), c.ip6.Load(), tc.v6)
			}
			c.hooks.down(c.sessionBytes, func() {})
			c.hooks.wait()
			name := c.dev.Name()
			want := []string{"ip-up " + name + " /dev/net/tun 0 10.9.0.2 10.9.0.1 p"}
			if tc.v6 {
				ll := " /dev/net/tun 0 fe80::0000:0000:0000:000c fe80::0000:0000:0000:0001 p"
				want = append(want, "ipv6-up "+name+ll, "ipv6-down "+name+ll)
			}
			got := readFields(t, trace, "\n")
			slices.Sort(got) // ip-up and ipv6-up run side by side
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("hooks ran\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestCallEchoLoss checks a Call's keepalives: with the peer gone silent,
// EchoFailures unanswered Echo-Requests end the link, counted in Status,
// and OnEnd hears why (the engine's CDN message).
func TestCallEchoLoss(t *testing.T) {
	l := newLinked(t, Options{NoIPv6: true, EchoInterval: 5 * time.Second, EchoFailures: 2})
	c := l.c
	if st := c.Status(); st.Phase != "open" || st.EchoMissed != 0 {
		t.Fatalf("status %+v: want open, no echo missed", st)
	}
	l.silent = true
	for range 10 {
		d := c.link.Deadline()
		if d.IsZero() || len(l.ended) > 0 {
			break
		}
		l.now = d
		c.link.Tick(l.now)
		l.exchange(t)
	}
	st := c.Status()
	if len(l.ended) != 1 || !errors.Is(l.ended[0], ppp.ErrEchoTimeout) || st.EchoMissed != 2 ||
		!strings.Contains(st.Failure, "no reply to echo requests") {
		t.Errorf("ended %v, status %+v: want one end by echo timeout, 2 missed", l.ended, st)
	}
}

// startedLAC runs a rig's Call as a LAC, its goroutine waiting up to
// wait for the LNS's first frame before it opens LCP.
func startedLAC(t *testing.T, wait time.Duration) *rig {
	r := newRig(t)
	c := r.c
	c.cfg.Client = &Client{User: "alice", Password: "pw"}
	c.openWait = wait
	lc, err := c.linkConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.link, err = ppp.New(lc); err != nil {
		t.Fatal(err)
	}
	c.start, c.quit, c.done = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go c.run()
	close(c.start)
	t.Cleanup(func() { c.Stop(); <-c.done })
	return r
}

// readLCP reads the next LCP packet code the Call sent, or 0 when none
// came within d.
func readLCP(t *testing.T, sink *net.UDPConn, d time.Duration) byte {
	t.Helper()
	buf := make([]byte, 2048)
	sink.SetReadDeadline(time.Now().Add(d))
	for {
		n, err := sink.Read(buf)
		if err != nil {
			return 0
		}
		h, err := encap.ParseV2(buf[:n])
		if err != nil {
			t.Fatalf("from the call: %v", err)
		}
		pl := buf[h.PayloadOffset:n]
		proto, off, err := encap.ParsePPP(pl)
		if err == nil && proto == encap.PPPLCP && off < len(pl) {
			return pl[off]
		}
	}
}

// TestLACOpensOnLNSFrame: a LAC's first Configure-Request would be lost
// while the LNS still sets the call up (its session exists only once it
// has processed the ICCN), costing a 3 s restart timeout; so the LAC
// sends nothing until the LNS's first frame arrives, then answers it
// with its own request and the Ack.
func TestLACOpensOnLNSFrame(t *testing.T) {
	r := startedLAC(t, time.Hour)
	if code := readLCP(t, r.sink, 300*time.Millisecond); code != 0 {
		t.Fatalf("the LAC sent LCP code %d before the LNS's first frame", code)
	}
	// The LNS's Configure-Request: MRU 1400, magic number.
	r.c.Deliver([]byte{0xff, 0x03, 0xc0, 0x21, ppp.ConfReq, 1, 0, 14, 1, 4, 0x05, 0x78, 5, 6, 1, 2, 3, 4})
	var got []byte
	for range 2 {
		got = append(got, readLCP(t, r.sink, 5*time.Second))
	}
	if !bytes.Equal(got, []byte{ppp.ConfReq, ppp.ConfAck}) {
		t.Fatalf("LAC sent LCP codes %v, want its Configure-Request and the Ack", got)
	}
}

// TestLACOpensAfterWait: an LNS that waits for the LAC (pppd "passive",
// ours) still gets the LAC's Configure-Request once the wait is over.
func TestLACOpensAfterWait(t *testing.T) {
	r := startedLAC(t, 10*time.Millisecond)
	if code := readLCP(t, r.sink, 5*time.Second); code != ppp.ConfReq {
		t.Fatalf("LAC sent LCP code %d, want a Configure-Request", code)
	}
}

// TestMTUAndMRU: a call announces Options.MRU, and its TUN's MTU is the
// smaller of the peer's MRU and Options.MTU, so a peer that announces
// PPP's 1500 does not make us send frames the underlay must fragment.
func TestMTUAndMRU(t *testing.T) {
	for _, tc := range []struct {
		mtu, mru, peerMRU, want int
	}{
		{1400, 1400, 1500, 1400},
		{1400, 1400, 1300, 1300},
		{0, 0, 1500, 1500},
		{0, 0, 1460, 1460},
	} {
		o := Options{MTU: tc.mtu, MRU: tc.mru}
		c := &Call{cfg: Config{Client: &Client{Options: o}}}
		lc, err := c.linkConfig()
		if err != nil {
			t.Fatal(err)
		}
		if lc.LCP.MRU != tc.mru {
			t.Errorf("%+v: LCP MRU %d, want %d", tc, lc.LCP.MRU, tc.mru)
		}
		if got := c.tunMTU(tc.peerMRU); got != tc.want {
			t.Errorf("%+v: TUN MTU %d, want %d", tc, got, tc.want)
		}
	}
}

// TestCloseSlots: a Call's TUN is closed only with a slot of
// Config.CloseSlots, so an owner ending a thousand calls at once has at
// most that many closes (each holding an OS thread in the kernel's
// unregister) in progress.
func TestCloseSlots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a TUN device")
	}
	slots := make(chan struct{}, 1)
	slots <- struct{}{} // the only slot is taken
	c, err := New(Config{Client: &Client{User: "u", Password: "p"}, Name: "ucs%d", CloseSlots: slots,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	name := c.Interface()
	c.Stop()
	exists := func() bool { _, err := net.InterfaceByName(name); return err == nil }
	time.Sleep(200 * time.Millisecond)
	if !exists() {
		<-slots
		c.Wait()
		t.Fatalf("%s closed without a close slot", name)
	}
	<-slots // free it: the close goes ahead
	c.Wait()
	if exists() {
		t.Fatalf("%s still there after Wait", name)
	}
	if len(slots) != 0 {
		t.Fatalf("the close kept its slot")
	}
}

// TestReadSize: the TUN reader's buffer fits the TUN's MTU, not 64 KiB
// per call, when Options.MTU caps it.
func TestReadSize(t *testing.T) {
	for _, tc := range []struct{ mtu, want int }{{1400, 1500}, {9000, 9000}, {0, 65535}} {
		c := &Call{cfg: Config{Server: &Server{Options: Options{MTU: tc.mtu}}}}
		if got := c.readSize(); got != tc.want {
			t.Errorf("mtu %d: read size %d, want %d", tc.mtu, got, tc.want)
		}
	}
}

// TestOpenWaits: both roles wait for the peer's first frame, the LAC the
// longer (a slow LNS's session), so two of ours open after the LNS's.
func TestOpenWaits(t *testing.T) {
	lns, lac := openWait(Config{Server: &Server{}}), openWait(Config{Client: &Client{}})
	if lns <= 0 || lac <= lns {
		t.Fatalf("LNS waits %v, LAC %v: want 0 < LNS < LAC", lns, lac)
	}
}
