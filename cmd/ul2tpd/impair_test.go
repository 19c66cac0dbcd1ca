package main

// Helpers of the sequencing tests in seq_e2e_test.go: a third network
// namespace M between A and B holding an impairment relay
// (internal/impair) that reorders, delays, drops and duplicates the
// tunnel's datagrams on a repeatable schedule, since the host has no netem;
// numbered UDP streams through the pseudowire; and sequencing counters.
//
//	A (ul2tpd) --veth-- M (relay) --veth-- B (ul2tpd)
//	10.220.N.1      10.220.N.254
//	                10.221.N.254     10.221.N.2
//
// A's tunnel has remote 10.220.N.254:1701 and B's 10.221.N.254:1701: each
// daemon's peer is the relay, whose two sockets forward A's datagrams to B
// and B's to A, so the daemons' strict source checks hold. The
// pseudowire's TAPs (imp0) have 10.222.N.1 and .2, no IPv6 and static ARP
// entries: nothing but the test's own frames crosses the tunnel, so the
// relay's datagram indices are exactly the test's stream.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ul2tp/ul2tp/cmd/ul2tpd/internal/impair"
)

// impTAP is the pseudowire's interface name on both ends.
const impTAP = "imp0"

// impStreamPort is the UDP port numbered streams go to.
const impStreamPort = 9000

// impMarker starts every numbered datagram's payload; the number follows
// as 4 bytes, big-endian.
var impMarker = []byte("ul2tp-seq:")

// impWarm starts the payload of warm-up datagrams (not numbered).
var impWarm = []byte("ul2tp-warm:")

// relayEnv is an env whose A and B talk through a relay in namespace M.
type relayEnv struct {
	*env
	nsM            string
	a, b           *daemon
	relay          *impair.Relay
	innerA, innerB netip.Addr

	obsMu sync.Mutex
	obs   [2][]relayObs // what the relay saw, per direction, since the last reset
	sent  [2][]int      // stream numbers (-1: other) the relay forwarded, likewise
}

// relayObs is one datagram the relay received: its index in its
// direction, the L2TP Ns it carried (-1: none) and the stream number of
// its payload (-1: not a numbered datagram).
type relayObs struct {
	i      int
	ns     int
	stream int
}

// relayOpts configures a relayEnv.
type relayOpts struct {
	// sessionA and sessionB are words added to "add session" on A and B
	// (seq, reorder_timeout, lns_mode).
	sessionA, sessionB []string
	// flags are ul2tpd's flags on both ends.
	flags []string
	// maxHold is the relay's MaxHold (0: 20 ms).
	maxHold time.Duration
}

func (re *relayEnv) am(host byte) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 220, byte(re.n), host})
}
func (re *relayEnv) bm(host byte) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 221, byte(re.n), host})
}

// newRelayNet builds A, M and B and starts the relay (passing
// everything) between A's 10.220.N.1:1701 and B's 10.221.N.2:1701, with
// MaxHold maxHold (0: 20 ms); no daemons yet. t's cleanup stops the
// daemons the caller puts in re.a and re.b, closes the relay and removes M.
func newRelayNet(t *testing.T, maxHold time.Duration) *relayEnv {
	t.Helper()
	e := newEnv(t)
	re := &relayEnv{env: e, nsM: fmt.Sprintf("%s%d-m", nsPrefix, e.n)}
	re.innerA = netip.AddrFrom4([4]byte{10, 222, byte(e.n), 1})
	re.innerB = netip.AddrFrom4([4]byte{10, 222, byte(e.n), 2})
	// Registered after newEnv's cleanup, so it runs before it: stop the
	// daemons (newEnv's cleanup then finds them stopped), the relay, and
	// remove M.
	t.Cleanup(re.cleanupRelay)

	vA, vMA := fmt.Sprintf("ima%d", e.n), fmt.Sprintf("mia%d", e.n)
	vB, vMB := fmt.Sprintf("imb%d", e.n), fmt.Sprintf("mib%d", e.n)
	for _, args := range [][]string{
		{"netns", "add", re.nsM},
		{"-n", re.nsM, "link", "set", "lo", "up"},
		{"link", "add", vA, "netns", e.nsA, "type", "veth", "peer", "name", vMA, "netns", re.nsM},
		{"link", "add", vB, "netns", e.nsB, "type", "veth", "peer", "name", vMB, "netns", re.nsM},
		{"-n", e.nsA, "addr", "add", re.am(1).String() + "/24", "dev", vA},
		{"-n", re.nsM, "addr", "add", re.am(254).String() + "/24", "dev", vMA},
		{"-n", e.nsB, "addr", "add", re.bm(2).String() + "/24", "dev", vB},
		{"-n", re.nsM, "addr", "add", re.bm(254).String() + "/24", "dev", vMB},
		{"-n", e.nsA, "link", "set", vA, "up"},
		{"-n", re.nsM, "link", "set", vMA, "up"},
		{"-n", e.nsB, "link", "set", vB, "up"},
		{"-n", re.nsM, "link", "set", vMB, "up"},
	} {
		e.ip(args...)
	}

	// The relay's sockets, opened in M.
	var ca, cb *net.UDPConn
	if err := inNetns(re.nsM, func() error {
		var err error
		if ca, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(re.am(254), 1701))); err != nil {
			return err
		}
		cb, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(re.bm(254), 1701)))
		return err
	}); err != nil {
		if ca != nil {
			ca.Close()
		}
		t.Fatalf("relay sockets in %s: %v", re.nsM, err)
	}
	for _, c := range []*net.UDPConn{ca, cb} {
		bigBuffers(t, c)
	}
	if maxHold == 0 {
		maxHold = 20 * time.Millisecond
	}
	re.relay = impair.Start(impair.Config{
		A: ca, B: cb,
		PeerA:   netip.AddrPortFrom(re.am(1), 1701),
		PeerB:   netip.AddrPortFrom(re.bm(2), 1701),
		MaxHold: maxHold,
		Observe: re.observe,
		Sent:    re.sentHook,
	})
	return re
}

// newRelayEnv builds A, M and B, starts the relay (passing everything) and
// the daemons, and makes the pseudowire: tunnel tidA/tidB, session
// sidA/sidB, TAP imp0 on both ends, up, with addresses, no IPv6 and static
// neighbours. It checks that a warm-up datagram goes through both ways.
func newRelayEnv(t *testing.T, o relayOpts) *relayEnv {
	t.Helper()
	re := newRelayNet(t, o.maxHold)
	e := re.env
	re.a = e.startDaemon(e.nsA, o.flags...)
	re.b = e.startDaemon(e.nsB, o.flags...)
	re.a.mustCLI("add", "tunnel", "tunnel_id", fmt.Sprint(tidA), "peer_tunnel_id", fmt.Sprint(tidB), "encap", "udp",
		"local", re.am(1).String(), "remote", re.am(254).String(), "udp_sport", "1701", "udp_dport", "1701")
	re.b.mustCLI("add", "tunnel", "tunnel_id", fmt.Sprint(tidB), "peer_tunnel_id", fmt.Sprint(tidA), "encap", "udp",
		"local", re.bm(2).String(), "remote", re.bm(254).String(), "udp_sport", "1701", "udp_dport", "1701")
	re.a.mustCLI(append([]string{"add", "session", "name", impTAP, "tunnel_id", fmt.Sprint(tidA),
		"session_id", fmt.Sprint(sidA), "peer_session_id", fmt.Sprint(sidB), "l2spec_type", "default"}, o.sessionA...)...)
	re.b.mustCLI(append([]string{"add", "session", "name", impTAP, "tunnel_id", fmt.Sprint(tidB),
		"session_id", fmt.Sprint(sidB), "peer_session_id", fmt.Sprint(sidA), "l2spec_type", "default"}, o.sessionB...)...)
	re.a.taps = append(re.a.taps, impTAP)
	re.b.taps = append(re.b.taps, impTAP)
	quietTAPs(e, re.a, re.b, impTAP, re.innerA, re.innerB)
	return re
}

// quietTAPs readies the pseudowire's TAPs so that only the test's frames
// cross it: IPv6 off before the link comes up (no ND, MLD, router
// solicitations), static ARP entries for each other, then addresses (/24)
// and up.
func quietTAPs(e *env, a, b *daemon, tap string, innerA, innerB netip.Addr) {
	e.t.Helper()
	for _, d := range []*daemon{a, b} {
		if err := inNetns(d.ns, func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/"+tap+"/disable_ipv6", []byte("1\n"), 0o644)
		}); err != nil {
			e.t.Fatalf("disable IPv6 on %s in %s: %v", tap, d.ns, err)
		}
	}
	macA, macB := e.macOf(a.ns, tap), e.macOf(b.ns, tap)
	e.ip("-n", a.ns, "neigh", "add", innerB.String(), "lladdr", macB.String(), "dev", tap, "nud", "permanent")
	e.ip("-n", b.ns, "neigh", "add", innerA.String(), "lladdr", macA.String(), "dev", tap, "nud", "permanent")
	a.upTAP(tap, innerA.String()+"/24")
	b.upTAP(tap, innerB.String()+"/24")
}

// bigBuffers gives a relay socket 4 MB buffers each way (beyond
// net.core.rmem_max: we are root), so bulk TCP is not lost in the relay.
func bigBuffers(t *testing.T, c *net.UDPConn) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = errors.Join(
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20))
	}); err != nil || serr != nil {
		t.Fatalf("relay socket buffers: %v %v", err, serr)
	}
}

func (re *relayEnv) cleanupRelay() {
	t := re.t
	// Daemons first, while their addresses still exist.
	for _, d := range []*daemon{re.a, re.b} {
		if d != nil {
			d.stop(true)
		}
	}
	if re.relay != nil {
		if err := re.relay.Close(); err != nil {
			t.Errorf("relay close: %v", err)
		}
	}
	if _, err := os.Stat("/run/netns/" + re.nsM); err == nil {
		if out, err := runCmd(10*time.Second, "ip", "netns", "del", re.nsM); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", re.nsM, err, out)
		}
	}
}

// observe records what the relay receives (called from its goroutines).
func (re *relayEnv) observe(d impair.Dir, i int, b []byte) {
	o := relayObs{i: i, ns: -1, stream: -1}
	// L2TPv3 over UDP, no cookie, default sublayer: flags/version,
	// reserved, session id, then the sublayer with S (0x40) and Ns.
	if len(b) >= 12 && b[8]&0x40 != 0 {
		o.ns = int(binary.BigEndian.Uint32(b[8:12]) & 0xffffff)
	}
	if k := bytes.Index(b, impMarker); k >= 0 && k+len(impMarker)+4 <= len(b) {
		o.stream = int(binary.BigEndian.Uint32(b[k+len(impMarker):]))
	}
	re.obsMu.Lock()
	if len(re.obs[d]) < 1<<20 {
		re.obs[d] = append(re.obs[d], o)
	}
	re.obsMu.Unlock()
}

// sentHook records the stream numbers the relay forwards.
func (re *relayEnv) sentHook(d impair.Dir, b []byte) {
	s := -1
	if k := bytes.Index(b, impMarker); k >= 0 && k+len(impMarker)+4 <= len(b) {
		s = int(binary.BigEndian.Uint32(b[k+len(impMarker):]))
	}
	re.obsMu.Lock()
	if len(re.sent[d]) < 1<<20 {
		re.sent[d] = append(re.sent[d], s)
	}
	re.obsMu.Unlock()
}

// forwarded returns the stream numbers the relay forwarded in direction
// d since schedule, in order. Other datagrams are left out: the hook runs
// after the send, so the warm-up's can land after schedule.
func (re *relayEnv) forwarded(d impair.Dir) []int {
	re.obsMu.Lock()
	defer re.obsMu.Unlock()
	var s []int
	for _, n := range re.sent[d] {
		if n >= 0 {
			s = append(s, n)
		}
	}
	return s
}

// schedule gives direction d of the relay a schedule (restarting its
// numbering) and forgets what the relay saw that way.
func (re *relayEnv) schedule(d impair.Dir, s impair.Schedule) {
	re.obsMu.Lock()
	re.obs[d], re.sent[d] = nil, nil
	re.relay.SetSchedule(d, s)
	re.obsMu.Unlock()
}

// observed returns what the relay saw in direction d since schedule.
func (re *relayEnv) observed(d impair.Dir) []relayObs {
	re.obsMu.Lock()
	defer re.obsMu.Unlock()
	return append([]relayObs(nil), re.obs[d]...)
}

// streamRecv is a UDP socket receiving numbered datagrams in a namespace.
type streamRecv struct {
	c      *net.UDPConn
	mu     sync.Mutex
	got    []int // stream numbers, in arrival order
	warm   int   // warm-up datagrams
	other  int   // anything else
	notify chan struct{}
	done   chan struct{}
}

// listenStream opens a streamRecv on addr:impStreamPort in ns; t's cleanup
// closes it.
func listenStream(t *testing.T, ns string, addr netip.Addr) *streamRecv {
	t.Helper()
	r := &streamRecv{notify: make(chan struct{}, 1), done: make(chan struct{})}
	if err := inNetns(ns, func() error {
		var err error
		r.c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, impStreamPort)))
		return err
	}); err != nil {
		t.Fatalf("listen UDP in %s: %v", ns, err)
	}
	go func() {
		defer close(r.done)
		buf := make([]byte, 2048)
		for {
			n, _, err := r.c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b := buf[:n]
			r.mu.Lock()
			switch {
			case bytes.HasPrefix(b, impMarker) && n == len(impMarker)+4:
				r.got = append(r.got, int(binary.BigEndian.Uint32(b[len(impMarker):])))
			case bytes.HasPrefix(b, impWarm):
				r.warm++
			default:
				r.other++
			}
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		r.c.Close()
		<-r.done
	})
	return r
}

// snapshot returns the stream numbers received so far, and the counts of
// warm-up and other datagrams.
func (r *streamRecv) snapshot() (got []int, warm, other int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.got...), r.warm, r.other
}

// waitFor waits (at most limit) until cond holds for what has arrived.
func (r *streamRecv) waitFor(limit time.Duration, cond func(got []int, warm int) bool) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		got, warm, _ := r.snapshot()
		if cond(got, warm) {
			return true
		}
		select {
		case <-r.notify:
		case <-deadline.C:
			got, warm, _ = r.snapshot()
			return cond(got, warm)
		}
	}
}

// dialStream opens a UDP socket in ns from src to dst:impStreamPort; t's
// cleanup closes it.
func dialStream(t *testing.T, ns string, src, dst netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := inNetns(ns, func() error {
		var err error
		c, err = net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, impStreamPort)))
		return err
	}); err != nil {
		t.Fatalf("UDP socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func streamDatagram(i int) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), impMarker...), uint32(i))
}

// warmUp sends warm-up datagrams on c until r has one (at most 5 tries,
// 1 s each) and fails the test otherwise.
func warmUp(t *testing.T, c *net.UDPConn, r *streamRecv) {
	t.Helper()
	for try := 0; try < 5; try++ {
		_, before, _ := r.snapshot()
		if _, err := c.Write(append(append([]byte(nil), impWarm...), byte(try))); err != nil {
			t.Fatalf("warm-up send: %v", err)
		}
		if r.waitFor(time.Second, func(_ []int, warm int) bool { return warm > before }) {
			return
		}
	}
	t.Fatalf("no warm-up datagram got through the pseudowire in 5 tries")
}

// seqStatsJSON adds the reorder queue depth to statsJSON.
type seqStatsJSON struct {
	statsJSON
	ReorderQueueDepth int `json:"reorder_queue_depth"`
}

// seqSessionJSON is the sequencing part of "ul2tp -j -s show session".
type seqSessionJSON struct {
	SessionID      uint32        `json:"session_id"`
	TunnelID       uint32        `json:"tunnel_id"`
	SendSeq        bool          `json:"send_seq"`
	RecvSeq        bool          `json:"recv_seq"`
	LNSMode        bool          `json:"lns_mode"`
	ReorderTimeout uint64        `json:"reorder_timeout"`
	Stats          *seqStatsJSON `json:"stats"`
	// Details is show -d's dump of the sequencing state.
	Details *struct {
		Ns                 uint32 `json:"ns"`
		Nr                 uint32 `json:"nr"`
		NrValid            bool   `json:"nr_valid"`
		ReorderQueueLength int    `json:"reorder_queue_length"`
	} `json:"details"`
}

// seqSession reads one session's sequencing state, counters and dump.
func (d *daemon) seqSession(tid, sid uint32) seqSessionJSON {
	d.e.t.Helper()
	out := d.mustCLI("-j", "-s", "-d", "show", "session", "tunnel_id", fmt.Sprint(tid), "session_id", fmt.Sprint(sid))
	var ss []seqSessionJSON
	if err := json.Unmarshal([]byte(out), &ss); err != nil || len(ss) != 1 || ss[0].Stats == nil || ss[0].Details == nil ||
		ss[0].TunnelID != tid || ss[0].SessionID != sid {
		d.e.t.Fatalf("ul2tp -j -s -d show session tunnel_id %d session_id %d: %v\n%s", tid, sid, err, out)
	}
	return ss[0]
}

// seqCounts are the counters the sequencing tests predict.
type seqCounts struct {
	RxPackets, RxSeqDiscards, RxOOSPackets, RxErrors uint64
	QueueDepth                                       int
}

func countsOf(st *seqStatsJSON) seqCounts {
	return seqCounts{st.RxPackets, st.RxSeqDiscards, st.RxOOSPackets, st.RxErrors, st.ReorderQueueDepth}
}

// minus is c less an earlier reading (the queue depth is c's).
func (c seqCounts) minus(b seqCounts) seqCounts {
	return seqCounts{c.RxPackets - b.RxPackets, c.RxSeqDiscards - b.RxSeqDiscards,
		c.RxOOSPackets - b.RxOOSPackets, c.RxErrors - b.RxErrors, c.QueueDepth}
}

// tcpExt reads a TcpExt counter of /proc/net/netstat in ns.
func tcpExt(t *testing.T, ns, name string) (uint64, bool) {
	t.Helper()
	c := netCounters(t, ns)
	v, ok := c["TcpExt:"+name]
	return v, ok
}

// netCounters reads the counters of /proc/net/netstat and /proc/net/snmp
// in ns, named "TcpExt:TCPOFOQueue", "Ip:InDiscards" and so on (nil if
// they cannot be read).
func netCounters(t *testing.T, ns string) map[string]uint64 {
	t.Helper()
	var files [][]byte
	if err := inNetns(ns, func() error {
		// /proc/thread-self: this thread's namespace, not the process's.
		for _, f := range []string{"netstat", "snmp"} {
			b, err := os.ReadFile("/proc/thread-self/net/" + f)
			if err != nil {
				return err
			}
			files = append(files, b)
		}
		return nil
	}); err != nil {
		t.Logf("netstat in %s: %v", ns, err)
		return nil
	}
	c := make(map[string]uint64)
	for _, b := range files {
		lines := bytes.Split(b, []byte("\n"))
		for i := 0; i+1 < len(lines); i++ {
			keys, vals := bytes.Fields(lines[i]), bytes.Fields(lines[i+1])
			if len(keys) < 2 || len(vals) < 2 || !bytes.Equal(keys[0], vals[0]) || !bytes.HasSuffix(keys[0], []byte(":")) {
				continue
			}
			for k := 1; k < len(keys) && k < len(vals); k++ {
				var v uint64
				if _, err := fmt.Sscan(string(vals[k]), &v); err == nil {
					c[string(keys[0])+string(keys[k])] = v
				}
			}
			i++
		}
	}
	return c
}

// counterDeltas lists the counters that grew from before to after, as
// "name +n", sorted.
func counterDeltas(before, after map[string]uint64) []string {
	var d []string
	for k, v := range after {
		if v > before[k] {
			d = append(d, fmt.Sprintf("%s +%d", k, v-before[k]))
		}
	}
	slices.Sort(d)
	return d
}

// devDrops reads a device's receive and transmit drop counters from
// /proc/net/dev in ns (a TAP counts in tx_dropped the frames its queue
// to ul2tpd had no room for).
func devDrops(t *testing.T, ns, dev string) (rx, tx uint64, ok bool) {
	t.Helper()
	var b []byte
	if err := inNetns(ns, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/dev")
		return err
	}); err != nil {
		t.Logf("net/dev in %s: %v", ns, err)
		return 0, 0, false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		name, rest, found := bytes.Cut(line, []byte(":"))
		if !found || string(bytes.TrimSpace(name)) != dev {
			continue
		}
		// rx: bytes packets errs drop fifo frame compressed multicast;
		// tx: bytes packets errs drop ...
		f := bytes.Fields(rest)
		if len(f) < 12 {
			return 0, 0, false
		}
		_, err1 := fmt.Sscan(string(f[3]), &rx)
		_, err2 := fmt.Sscan(string(f[11]), &tx)
		return rx, tx, err1 == nil && err2 == nil
	}
	return 0, 0, false
}
