package datapath

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ul2tp/ul2tp/datapath/conn"
	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/datapath/tap"
	"github.com/ul2tp/ul2tp/encap"
	"github.com/ul2tp/ul2tp/reorder"
)

// Sizes of the pumps' buffers.
const (
	// Headroom is the space left in front of each frame read from a TAP for
	// the L2TP header to be written into.
	Headroom = 64
	// dgramBufSize holds the longest datagram (64 KiB less the headers),
	// or a UDP GRO receive, whatever the sessions' MTUs: a socket is
	// shared by tunnels and sessions, and frames of a session whose MTU
	// exceeds the path's arrive as IP fragments, put back together.
	dgramBufSize = 65536 + 64
	// batchSize is how many frames or datagrams one system call moves.
	batchSize = 32
	// DefaultSocketBuffer sizes each tunnel socket's kernel buffers
	// (SO_RCVBUF, SO_SNDBUF) unless Options say otherwise.
	DefaultSocketBuffer = 4 << 20

	// With offloads: a TAP read holds up to 64 KiB.
	superBufSize = 65536 + 64
	// offloadBatch is how many super-frames one TAP read pass takes.
	offloadBatch = 8
	// maxSegs is the room for TSO segments per super-frame of a batch: at
	// the usual MSS a super-frame of 64 KiB has 45 segments. The room is
	// shared by the batch's frames; a super-frame with more segments than
	// are left (a small MSS: TCP's may be as low as 36 bytes, which makes
	// over 1,800) sends the batch and goes on with the rest.
	maxSegs = 64
	// segHdrRoom holds one segment's headers: L2TP (at most Headroom) and
	// Ethernet with two VLAN tags, IP with options and TCP with options.
	segHdrRoom = Headroom + 14 + 8 + 60 + 60
	// maxGSOBytes and maxGSOSegs bound one UDP GSO send (the kernel
	// refuses more than 64 segments or a datagram over 64 KiB).
	maxGSOBytes = 65000
	maxGSOSegs  = 64
	// coalesceSlots is how many TCP flows a receive pump merges at once.
	coalesceSlots = 8
)

// Plane holds tunnels, sessions, their devices and sockets. Its methods are
// safe for concurrent use.
type Plane struct {
	log    *slog.Logger
	events *event.Hub // nil for none

	mu      sync.Mutex
	tunnels map[uint32]*Tunnel
	sockets map[sockKey]*socket
	wg      sync.WaitGroup
	closed  bool
	offload bool
	queues  int
	sockBuf int // SO_RCVBUF/SO_SNDBUF for each tunnel socket, 0 for the kernel's
	// free returns deleted sessions' memory to the OS (releaseLater).
	free *time.Timer
	// closing holds a token per session being closed (closeSessions).
	closing chan struct{}
}

// Options tune a Plane.
type Options struct {
	// NoOffload turns off TAP TSO/checksum offload and UDP GSO/GRO, so
	// every frame is handled at wire size (the fallback path).
	NoOffload bool
	// Queues is the number of queues (and transmit goroutines) each TAP
	// gets: IFF_MULTI_QUEUE lets the kernel spread flows over them. 0
	// means 1.
	Queues int
	// SocketBuffer is SO_RCVBUF and SO_SNDBUF for each tunnel socket, in
	// bytes (the FORCE variants when the process may, so past
	// net.core.rmem_max). 0 means DefaultSocketBuffer; negative leaves the
	// kernel's defaults (net.core.rmem_default, wmem_default).
	SocketBuffer int
	// Events, if not nil, receives the plane's events (events.go).
	Events *event.Hub
}

// New makes an empty Plane that logs to log.
func New(log *slog.Logger, o Options) *Plane {
	return &Plane{
		log:     log,
		events:  o.Events,
		offload: !o.NoOffload,
		queues:  max(1, o.Queues),
		sockBuf: socketBuffer(o.SocketBuffer),
		closing: make(chan struct{}, closeParallel),
		tunnels: make(map[uint32]*Tunnel),
		sockets: make(map[sockKey]*socket),
	}
}

// Offload reports whether the plane uses offloads: TAP TSO/checksum
// offload and UDP GSO/GRO (Options.NoOffload not set).
func (p *Plane) Offload() bool { return p.offload }

// socketBuffer turns Options.SocketBuffer into the SO_RCVBUF/SO_SNDBUF to
// set, 0 for none.
func socketBuffer(o int) int {
	switch {
	case o == 0:
		return DefaultSocketBuffer
	case o < 0:
		return 0
	}
	return o
}

// Tunnel is one L2TPv3 tunnel, or the data side of an L2TPv2 one.
type Tunnel struct {
	cfg      TunnelConfig
	remote   netip.AddrPort
	sock     *socket
	stats    counters
	sessions map[uint32]*Session // guarded by Plane.mu
}

// Config returns the tunnel's configuration.
func (t *Tunnel) Config() TunnelConfig { return t.cfg }

// Version is the tunnel's L2TP version, 2 or 3.
func (t *Tunnel) Version() int {
	if t.cfg.V2() {
		return 2
	}
	return 3
}

// Stats returns the tunnel's counters.
func (t *Tunnel) Stats() Stats { return t.stats.snapshot() }

// PeerAddr is the peer's address and port (0 over IP), as the tunnel
// sends to it and demultiplexes received datagrams by it.
func (t *Tunnel) PeerAddr() netip.AddrPort { return t.remote }

// Session is one Ethernet pseudowire in a tunnel.
type Session struct {
	cfg    SessionConfig
	tunnel *Tunnel
	log    *slog.Logger
	// dev is the TAP device; out is where received frames go (the TAP's
	// first queue). Both are replaced when the TAP is recreated after a
	// pump failure (see life.go), so the receive pump loads them per frame.
	dev  atomic.Pointer[tap.Device]
	out  atomic.Pointer[tapWriter]
	vnet bool // the TAP carries virtio_net_hdr (offloads)
	mtu  int
	// gsoMax is the longest datagram that may join a UDP GSO run: the
	// path MTU less the IP and UDP headers (the kernel refuses a GSO send
	// whose segments exceed the device's MTU). It is re-read from the
	// routing table at most once a second (gsoLimit).
	gsoMax     atomic.Int32
	pmtuReread atomic.Int64 // nanotime of the last re-read
	// drops limits the log lines about frames that could not be sent.
	drops  dropLog
	tx, rx encap.V3Layout
	stats  counters
	// payload takes an L2TPv2 session's received frames, and v2tx sends
	// its frames (nil for L2TPv3 sessions).
	payload Payload
	// packets is payload as a PacketPayload, if it is one.
	packets PacketPayload
	v2tx    *v2Sender
	life    lifecycle

	// Sequencing: seq is guarded by seqMu (taken by the one receive pump
	// of the session's socket and by ModifySession); its SendSeq,
	// NextNs and Idle (the pumps) and Config and Counters (show
	// session) are safe without it.
	seqMu sync.Mutex
	seq   *reorder.Receiver[rxItem]
	keep  [][]byte // free buffers for frames in the reorder queue
	// txSeqMu makes numbering and sending one step when several transmit
	// pumps (TAP queues) share a session with send_seq on, so datagrams
	// leave in the order of their Ns.
	txSeqMu sync.Mutex

	// maxFrame is the longest frame the TAP takes: MTU + Ethernet header +
	// a VLAN tag. It is re-read from the device when a longer frame comes,
	// in case someone raised the MTU.
	maxFrame  atomic.Int32
	mtuReread atomic.Int64 // nanotime of the last re-read

	// limits pace the session's events about packets, by reason.
	limits [event.NumReasons]event.Limiter
}

// fits re-reads the TAP's MTU (at most once a second) and reports whether
// a frame of n bytes fits it.
func (s *Session) fits(n int) bool {
	now := nanotime()
	if last := s.mtuReread.Load(); now-last > int64(time.Second) && s.mtuReread.CompareAndSwap(last, now) {
		if d := s.dev.Load(); d == nil {
			// no device (tests): keep the MTU it was created with
		} else if mtu, err := tap.MTU(d.Name()); err == nil {
			s.maxFrame.Store(maxFrameFor(mtu))
		}
	}
	return n <= int(s.maxFrame.Load())
}

// gsoLimit re-reads the path MTU toward the peer (at most once a second)
// and returns the longest datagram that may join a UDP GSO run.
func (s *Session) gsoLimit() int {
	now := nanotime()
	if last := s.pmtuReread.Load(); now-last > int64(time.Second) && s.pmtuReread.CompareAndSwap(last, now) {
		s.gsoMax.Store(int32(conn.PathMTU(s.tunnel.cfg.Remote) - underlayLen(&s.tunnel.cfg)))
	}
	return int(s.gsoMax.Load())
}

// dropLogEvery is the least time between two log lines of one session
// about frames it could not send (they are all counted in tx_errors).
const dropLogEvery = 10 * time.Second

// dropLog counts the frames a session could not send since it last
// logged about them, and when that was.
type dropLog struct {
	count atomic.Uint64
	last  atomic.Int64 // nanotime, 0 for never
}

// logDrop notes n frames (or segments) of size bytes that could not be
// sent, and why, and logs it unless the session did less than
// dropLogEvery ago.
func (s *Session) logDrop(n uint64, why string, err error, size int) {
	s.drops.count.Add(n)
	now := nanotime()
	last := s.drops.last.Load()
	if last != 0 && now-last < int64(dropLogEvery) || !s.drops.last.CompareAndSwap(last, now) {
		return
	}
	args := []any{"tunnel_id", s.cfg.TunnelID, "session_id", s.cfg.ID, "frames", s.drops.count.Swap(0),
		"reason", why, "bytes", size, "mtu", s.maxFrame.Load() - 18}
	if err != nil {
		args = append(args, "err", err.Error())
	}
	s.note(event.Drop, event.TxError, why, err)
	s.tunnel.sock.log.Warn("frames not sent (counted in tx_errors; logged at most every "+dropLogEvery.String()+")", args...)
}

// Config returns the session's configuration, with the sequencing options
// as they are now (a LAC's send_seq follows its peer).
func (s *Session) Config() SessionConfig {
	c := s.cfg
	sc := s.seq.Config()
	c.SendSeq, c.RecvSeq, c.LNSMode, c.ReorderTimeout = sc.SendSeq, sc.RecvSeq, sc.LNSMode, sc.Timeout
	return c
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	st := s.stats.snapshot()
	c := s.seq.Counters()
	st.RxSeqDiscards += c.RxSeqDiscards
	st.RxOOSPackets += c.RxOOSPackets
	st.RxErrors += c.RxErrors
	st.ReorderQueueDepth = c.QueueDepth
	return st
}

// SeqState returns the session's sequence numbers (the kernel's ns and
// nr) and reorder queue length, without a lock the pumps take.
func (s *Session) SeqState() reorder.State { return s.seq.State() }

// IfName is the name of the session's TAP device, "" for an L2TPv2
// session (it has none).
func (s *Session) IfName() string {
	if d := s.dev.Load(); d != nil {
		return d.Name()
	}
	return ""
}

// maxFrameFor is the longest frame a TAP with this MTU takes: the MTU, the
// Ethernet header and a VLAN tag.
func maxFrameFor(mtu int) int32 { return int32(mtu + 14 + 4) }

// MTU is the MTU the TAP device was created with.
func (s *Session) MTU() int { return s.mtu }

// frameWriter takes one received Ethernet frame, whole or in pieces (a
// TAP queue, or a recorder in tests).
type frameWriter interface {
	Write(frame []byte) error
	WriteParts(parts [][]byte) error
}

// tapWriter holds a frameWriter for an atomic.Pointer.
type tapWriter struct{ frameWriter }

// sockKey identifies a shareable socket.
type sockKey struct {
	kind  conn.Kind
	local netip.AddrPort
}

// AddTunnel creates a tunnel. A tunnel with the same id gives ErrExists.
func (p *Plane) AddTunnel(cfg TunnelConfig) (*Tunnel, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("tunnel %d: plane closed", cfg.ID)
	}
	if _, ok := p.tunnels[cfg.ID]; ok {
		return nil, fmt.Errorf("tunnel %d: %w", cfg.ID, ErrExists)
	}
	sock, err := p.socketFor(&cfg)
	if err != nil {
		return nil, fmt.Errorf("tunnel %d: %w", cfg.ID, err)
	}
	t := &Tunnel{cfg: cfg, remote: cfg.remoteAddrPort(), sessions: make(map[uint32]*Session), sock: sock}
	sock.refs++
	p.tunnels[cfg.ID] = t
	sock.rebuild(p)
	p.log.Info("tunnel created", "version", t.Version(), "tunnel_id", cfg.ID, "peer_tunnel_id", cfg.PeerID,
		"encap", cfg.Encap.String(), "local", sock.c.LocalAddr().String(), "remote", t.remote.String())
	p.publish(event.Event{Kind: event.TunnelAdded, TunnelID: cfg.ID,
		Detail: fmt.Sprintf("%s local %s remote %s peer_tunnel_id %d", cfg.Encap, sock.c.LocalAddr(), t.remote, cfg.PeerID)})
	return t, nil
}

// socketFor finds or opens the socket a tunnel sends and receives on: an
// L2TPv2 tunnel's is its Listener's. Called with p.mu held.
func (p *Plane) socketFor(cfg *TunnelConfig) (*socket, error) {
	if cfg.V2() {
		key := sockKey{kind: conn.UDP, local: cfg.localAddrPort()}
		s := p.sockets[key]
		if s == nil || s.ctrl.Load() == nil {
			return nil, &FieldError{"local", key.local.String(), "no Listener there: an L2TPv2 tunnel runs on its control connection's socket"}
		}
		cfg.UDPCsum, cfg.UDP6CsumTx, cfg.UDP6CsumRx = s.opts.UDPCsum, !s.opts.UDP6ZeroCsumTx, !s.opts.UDP6ZeroCsumRx
		return s, nil
	}
	kind := conn.UDP
	opts := p.udpOptions(cfg.UDPCsum, cfg.UDP6CsumTx, cfg.UDP6CsumRx)
	if cfg.Encap == encap.EncapIP {
		kind = conn.IP
		opts.UDPCsum, opts.UDP6ZeroCsumTx, opts.UDP6ZeroCsumRx = false, false, false
	}
	key := sockKey{kind: kind, local: cfg.localAddrPort()}
	if s, ok := p.sockets[key]; ok {
		if s.opts != opts {
			return nil, &FieldError{"udp_csum", cfg.UDPCsum,
				fmt.Sprintf("checksum options differ from the other tunnels sharing %s %s", kind, key.local)}
		}
		return s, nil
	}
	return p.openSocket(key, opts)
}

// udpOptions are the options of a UDP tunnel socket with these checksum
// settings.
func (p *Plane) udpOptions(csum, csum6Tx, csum6Rx bool) conn.Options {
	return conn.Options{
		UDPCsum:        csum,
		UDP6ZeroCsumTx: !csum6Tx,
		UDP6ZeroCsumRx: !csum6Rx,
		BufBytes:       p.sockBuf,
		Offload:        p.offload,
	}
}

// openSocket opens a socket, adds it to the plane under its bound address
// (a port of 0 becomes the one the kernel picked) and starts its receive
// pump. Called with p.mu held.
func (p *Plane) openSocket(key sockKey, opts conn.Options) (*socket, error) {
	c, err := conn.Listen(key.kind, key.local, opts)
	if err != nil {
		return nil, err
	}
	if c.BufCapped() {
		p.log.Warn("socket buffers capped at net.core.rmem_max and wmem_max: SO_RCVBUFFORCE and SO_SNDBUFFORCE need CAP_NET_ADMIN",
			"encap", key.kind.String(), "local", key.local.String(), "sockbuf", p.sockBuf)
	}
	if key.kind == conn.UDP {
		key.local = c.LocalAddr()
	}
	s := &socket{c: c, key: key, opts: opts, log: p.log, events: p.events}
	s.demux.Store(&demux{})
	p.sockets[key] = s
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s.receive()
	}()
	return s, nil
}

// DelTunnel deletes a tunnel and every session in it.
func (p *Plane) DelTunnel(id uint32) error {
	p.mu.Lock()
	sessions, sock, err := p.detachTunnel(id)
	if err == nil {
		p.releaseLater()
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.closeSessions(sessions)
	if sock != nil {
		sock.c.Close()
	}
	p.log.Info("tunnel deleted", "tunnel_id", id, "sessions", len(sessions))
	p.publish(event.Event{Kind: event.TunnelDeleted, TunnelID: id, Detail: fmt.Sprintf("%d sessions", len(sessions))})
	return nil
}

// detachTunnel takes tunnel id and its sessions out of the plane and
// returns the sessions, to be closed, and its socket if no other tunnel
// uses it, to be closed after them. Called with p.mu held.
func (p *Plane) detachTunnel(id uint32) ([]*Session, *socket, error) {
	t, ok := p.tunnels[id]
	if !ok {
		return nil, nil, fmt.Errorf("tunnel %d: %w", id, ErrNotFound)
	}
	sessions := make([]*Session, 0, len(t.sessions))
	for _, s := range t.sessions {
		sessions = append(sessions, s)
	}
	t.sessions = map[uint32]*Session{}
	delete(p.tunnels, id)
	t.sock.rebuild(p)
	t.sock.refs--
	if t.sock.refs > 0 {
		return sessions, nil, nil
	}
	delete(p.sockets, t.sock.key)
	return sessions, t.sock, nil
}

// Tunnel returns the tunnel with id, or nil.
func (p *Plane) Tunnel(id uint32) *Tunnel {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tunnels[id]
}

// Tunnels returns every tunnel, by id.
func (p *Plane) Tunnels() []*Tunnel {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := make([]*Tunnel, 0, len(p.tunnels))
	for _, t := range p.tunnels {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].cfg.ID < ts[j].cfg.ID })
	return ts
}

// Sessions returns the sessions of tunnel id (every tunnel when id is 0),
// by tunnel and session id.
func (p *Plane) Sessions(id uint32) []*Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ss []*Session
	for tid, t := range p.tunnels {
		if id != 0 && tid != id {
			continue
		}
		for _, s := range t.sessions {
			ss = append(ss, s)
		}
	}
	sort.Slice(ss, func(i, j int) bool {
		a, b := ss[i].cfg, ss[j].cfg
		if a.TunnelID != b.TunnelID {
			return a.TunnelID < b.TunnelID
		}
		return a.ID < b.ID
	})
	return ss
}

// AddSession creates an Ethernet session and its TAP device in a tunnel.
func (p *Plane) AddSession(cfg SessionConfig) (*Session, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tunnels[cfg.TunnelID]
	if !ok {
		return nil, fmt.Errorf("tunnel %d: %w", cfg.TunnelID, ErrNotFound)
	}
	if t.cfg.V2() != (cfg.Payload != nil) {
		return nil, &FieldError{"payload", nil, fmt.Sprintf("tunnel %d is L2TPv%d: an L2TPv2 session needs a Payload, an L2TPv3 one has none",
			t.cfg.ID, t.Version())}
	}
	if _, ok := t.sessions[cfg.ID]; ok {
		return nil, fmt.Errorf("session %d in tunnel %d: %w", cfg.ID, cfg.TunnelID, ErrExists)
	}
	if t.cfg.V2() {
		return p.addSessionV2(t, cfg), nil
	}
	if err := p.checkSessionID(t, cfg.ID); err != nil {
		return nil, err
	}
	if err := cfg.setAddress(&t.cfg); err != nil {
		return nil, err
	}
	s := &Session{
		cfg:    cfg,
		tunnel: t,
		log:    p.log,
		tx:     encap.V3Layout{Encap: t.cfg.Encap, Cookie: cfg.Cookie, L2Spec: cfg.L2Spec},
		rx:     encap.V3Layout{Encap: t.cfg.Encap, Cookie: cfg.PeerCookie, L2Spec: cfg.L2Spec},
		seq:    reorder.New[rxItem](seqConfig(&cfg)),
	}
	pmtu := conn.PathMTU(t.cfg.Remote)
	s.mtu = cfg.MTU
	if s.mtu == 0 {
		s.mtu = pmtu - Overhead(&t.cfg, &cfg)
	}
	s.gsoMax.Store(int32(pmtu - underlayLen(&t.cfg)))
	s.pmtuReread.Store(nanotime())
	s.life.tapCfg = tap.Config{Name: cfg.Name, MTU: s.mtu, Offload: p.offload, Queues: p.queues, MAC: cfg.Address}
	dev, err := tap.Create(s.life.tapCfg)
	if err != nil {
		return nil, fmt.Errorf("session %d: %w", cfg.ID, err)
	}
	s.vnet = dev.VnetHdr()
	s.maxFrame.Store(maxFrameFor(s.mtu))
	t.sessions[cfg.ID] = s
	t.sock.rebuildPeer(p, t.remote)
	s.start(dev)
	p.log.Info("session created", "tunnel_id", cfg.TunnelID, "session_id", cfg.ID,
		"peer_session_id", cfg.PeerID, "ifname", dev.Name(), "mtu", s.mtu, "address", cfg.Address.String())
	p.publish(event.Event{Kind: event.SessionAdded, TunnelID: cfg.TunnelID, SessionID: cfg.ID, Interface: dev.Name(),
		Detail: fmt.Sprintf("peer_session_id %d mtu %d", cfg.PeerID, s.mtu)})
	return s, nil
}

// checkSessionID refuses a session id the receive side could not tell
// apart: L2TPv3 over IP demultiplexes by session id alone across every IP
// tunnel (as the kernel does), UDP by session id and peer on a socket.
func (p *Plane) checkSessionID(t *Tunnel, id uint32) error {
	for _, o := range p.tunnels {
		if o == t || o.cfg.Encap != t.cfg.Encap || o.cfg.V2() {
			continue
		}
		if _, ok := o.sessions[id]; !ok {
			continue
		}
		if t.cfg.Encap == encap.EncapIP || (o.sock == t.sock && o.remote == t.remote) {
			return fmt.Errorf("session %d: %w in tunnel %d", id, ErrExists, o.cfg.ID)
		}
	}
	return nil
}

// lookup finds a session, with p.mu held.
func (p *Plane) lookup(tunnelID, id uint32) (*Tunnel, *Session, error) {
	t, ok := p.tunnels[tunnelID]
	if !ok {
		return nil, nil, fmt.Errorf("tunnel %d: %w", tunnelID, ErrNotFound)
	}
	s, ok := t.sessions[id]
	if !ok {
		return nil, nil, fmt.Errorf("session %d in tunnel %d: %w", id, tunnelID, ErrNotFound)
	}
	return t, s, nil
}

// DelSession deletes a session and its TAP device.
func (p *Plane) DelSession(tunnelID, id uint32) error {
	p.mu.Lock()
	t, s, err := p.lookup(tunnelID, id)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	delete(t.sessions, id)
	t.sock.rebuildPeer(p, t.remote)
	p.releaseLater()
	p.mu.Unlock()
	name := s.ifName()
	s.close()
	p.log.Info("session deleted", "tunnel_id", tunnelID, "session_id", id)
	p.publish(event.Event{Kind: event.SessionDeleted, TunnelID: tunnelID, SessionID: id, Interface: name})
	return nil
}

// Close deletes every tunnel, session, device and socket and waits for the
// pumps to stop. The sessions of every tunnel close together.
func (p *Plane) Close() error {
	p.mu.Lock()
	p.closed = true
	var sessions []*Session
	var socks []*socket
	for id := range p.tunnels {
		ss, sock, _ := p.detachTunnel(id)
		sessions = append(sessions, ss...)
		if sock != nil {
			socks = append(socks, sock)
		}
	}
	for key, s := range p.sockets { // the Listeners' sockets
		if q := s.ctrl.Swap(nil); q != nil {
			q.close()
			s.refs--
		}
		if s.refs <= 0 {
			delete(p.sockets, key)
			socks = append(socks, s)
		}
	}
	if p.free != nil {
		p.free.Stop()
	}
	p.mu.Unlock()
	p.closeSessions(sessions)
	for _, s := range socks {
		s.c.Close()
	}
	p.wg.Wait()
	return nil
}
