package datapath

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync/atomic"

	"github.com/ul2tp/ul2tp/datapath/conn"
	"github.com/ul2tp/ul2tp/datapath/tap"
	"github.com/ul2tp/ul2tp/encap"
)

// socket is a tunnel socket shared by the tunnels with the same local
// address, port and encapsulation.
type socket struct {
	c    *conn.Conn
	key  sockKey
	opts conn.Options
	log  *slog.Logger
	refs int // tunnels using it, guarded by Plane.mu

	// demux is replaced whole whenever a tunnel or session comes or goes,
	// so the receive pump reads it without a lock.
	demux atomic.Pointer[demux]
	// unmatched counts datagrams from no configured peer.
	unmatched atomic.Uint64
}

type demuxKey struct {
	sid  uint32
	peer netip.AddrPort
}

// demux is an immutable lookup table for one socket.
type demux struct {
	sessions map[demuxKey]*Session
	tunnels  map[netip.AddrPort]*Tunnel
}

// rebuild makes a new demux table from the plane's tunnels. Called with
// Plane.mu held.
func (s *socket) rebuild(p *Plane) {
	d := &demux{sessions: map[demuxKey]*Session{}, tunnels: map[netip.AddrPort]*Tunnel{}}
	for _, t := range p.tunnels {
		if t.sock != s {
			continue
		}
		d.tunnels[t.remote] = t
		for id, ss := range t.sessions {
			d.sessions[demuxKey{id, t.remote}] = ss
		}
	}
	s.demux.Store(d)
}

// receive is the socket's receive pump: datagrams in, frames out to TAPs.
func (s *socket) receive() {
	b := s.c.NewBatch(batchSize)
	for i := range b.Msgs {
		b.Msgs[i].Buf = make([]byte, dgramBufSize)
	}
	kind := encap.EncapUDP
	if s.key.kind == conn.IP {
		kind = encap.EncapIP
	}
	for {
		n, err := s.c.Recv(b)
		if err != nil {
			if !conn.IsClosed(err) {
				s.log.Error("socket receive stopped", "local", s.key.local.String(), "err", err)
			}
			return
		}
		d := s.demux.Load()
		for i := 0; i < n; i++ {
			s.deliver(d, &b.Msgs[i], kind)
		}
	}
}

// deliver checks one datagram and writes its frame to its session's TAP.
func (s *socket) deliver(d *demux, m *conn.Msg, kind encap.Encap) {
	pkt := m.Buf[m.Off:m.N]
	sid, err := encap.PeekV3SessionID(pkt, kind)
	if err != nil || m.Truncated {
		if t := d.tunnels[m.Addr]; t != nil {
			if err != encap.ErrControl {
				t.stats.rxInvalid.Add(1)
			}
		} else {
			s.unmatched.Add(1)
		}
		return
	}
	ss := d.sessions[demuxKey{sid, m.Addr}]
	if ss == nil {
		if t := d.tunnels[m.Addr]; t != nil {
			t.stats.rxInvalid.Add(1)
		} else {
			s.unmatched.Add(1)
		}
		return
	}
	data, err := ss.rx.Decode(pkt)
	if err != nil {
		if errors.Is(err, encap.ErrCookie) {
			ss.stats.rxCookieDiscards.Add(1)
		} else {
			ss.stats.rxInvalid.Add(1)
		}
		ss.stats.rxErrors.Add(1)
		return
	}
	frame := pkt[data.PayloadOffset:]
	if len(frame) < 14 {
		ss.stats.rxInvalid.Add(1)
		ss.stats.rxErrors.Add(1)
		return
	}
	if ss.cfg.RecvSeq && !data.HasSeq {
		// The kernel drops data without sequence numbers when recv_seq is
		// on, as an error.
		ss.stats.rxErrors.Add(1)
		return
	}
	t := ss.tunnel
	if err := ss.out.Write(frame); err != nil {
		ss.stats.rxErrors.Add(1)
		t.stats.rxErrors.Add(1)
		return
	}
	ss.stats.rxPackets.Add(1)
	ss.stats.rxBytes.Add(uint64(len(frame)))
	t.stats.rxPackets.Add(1)
	t.stats.rxBytes.Add(uint64(len(frame)))
}

// transmit is a TAP queue's pump: frames in, datagrams out.
func (s *Session) transmit(q *tap.Queue) {
	t := s.tunnel
	sock := t.sock
	b := sock.c.NewBatch(batchSize)
	bufs := make([][]byte, batchSize)
	sizes := make([]int, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, frameBufSize)
	}
	for {
		n, err := q.Read(bufs, sizes, Headroom)
		if err != nil {
			if !conn.IsClosed(err) {
				sock.log.Error("tap read stopped", "ifname", s.ifname, "err", err)
			}
			return
		}
		bytes := s.encapsulate(b.Msgs[:n], bufs[:n], sizes[:n])
		sent, err := sock.c.Send(b, n)
		if err != nil && conn.IsClosed(err) {
			return
		}
		if failed := uint64(n - sent); failed > 0 {
			s.stats.txErrors.Add(failed)
			t.stats.txErrors.Add(failed)
			bytes = 0
			for i := 0; i < n; i++ {
				// Only count the bytes of datagrams that went out; when
				// some failed, recount by message (rare path).
				if i < sent {
					bytes += uint64(sizes[i])
				}
			}
		}
		s.stats.txPackets.Add(uint64(sent))
		s.stats.txBytes.Add(bytes)
		t.stats.txPackets.Add(uint64(sent))
		t.stats.txBytes.Add(bytes)
	}
}

// encapsulate writes the L2TP header into the headroom of each frame and
// points msgs at the results, addressed to the tunnel's peer. It returns the
// frames' total length.
func (s *Session) encapsulate(msgs []conn.Msg, bufs [][]byte, sizes []int) uint64 {
	start := Headroom - s.tx.HeaderLen()
	remote := s.tunnel.remote
	var bytes uint64
	for i := range msgs {
		ns := uint32(0)
		if s.cfg.SendSeq {
			ns = s.ns.Add(1) - 1
		}
		s.tx.Encode(bufs[i][start:Headroom], s.cfg.PeerID, ns, s.cfg.SendSeq)
		msgs[i].Buf = bufs[i][start : Headroom+sizes[i]]
		msgs[i].Addr = remote
		bytes += uint64(sizes[i])
	}
	return bytes
}

// Unmatched reports datagrams received from no configured peer, per socket.
func (p *Plane) Unmatched() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, s := range p.sockets {
		n += s.unmatched.Load()
	}
	return n
}
