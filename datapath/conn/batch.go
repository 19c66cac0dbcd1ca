package conn

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Msg is one datagram in a batch.
type Msg struct {
	// Buf is the datagram to send, or the space to receive into.
	Buf []byte
	// Parts, when not empty, is the datagram to send in pieces (one I/O
	// vector each, so nothing is copied to join them); Buf is then unused.
	Parts [][]byte
	// Off and N locate a received datagram's L2TP part: Buf[Off:N]. For raw
	// IPv4 sockets Off skips the IP header the kernel hands up.
	Off, N int
	// Addr is the peer: the destination to send to, or the source received
	// from (the port is 0 for IP encapsulation).
	Addr netip.AddrPort
	// Truncated is set when the datagram did not fit in Buf.
	Truncated bool
	// Err is set by Send when the kernel refused the datagram: it was not
	// sent.
	Err error
	// GSOSize, when not zero, says Buf holds several datagrams of GSOSize
	// bytes each (the last may be shorter): on send, for the kernel to
	// segment (UDP GSO: check Conn.GSO first; a socket without it refuses
	// the message); on receive, as the kernel coalesced them (UDP GRO).
	GSOSize int
}

// Len is the length of the datagram to send.
func (m *Msg) Len() int {
	if len(m.Parts) == 0 {
		return len(m.Buf)
	}
	n := 0
	for _, p := range m.Parts {
		n += len(p)
	}
	return n
}

// ctrlLen is the room for one UDP_SEGMENT or UDP_GRO control message.
const ctrlLen = 32

// Batch is the per-goroutine state of batched I/O: the kernel's message
// headers, I/O vectors and address storage, allocated once. A Batch must not
// be used by two goroutines at once.
type Batch struct {
	Msgs  []Msg
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	piovs []unix.Iovec // I/O vectors of the messages sent in Parts
	addrs []rawAddr
	ctrl  [][ctrlLen]byte

	// For sending a refused GSO message as single datagrams (sendSplit).
	split      *Batch
	splitParts [][]byte
	one        [1][]byte

	c     *Conn
	n     int // messages to send or received
	sent  int
	err   error
	recvF func(fd uintptr) bool
	sendF func(fd uintptr) bool
}

// NewBatch makes a batch of up to n messages for c. The caller fills each
// Msgs[i].Buf with its own buffers.
func (c *Conn) NewBatch(n int) *Batch {
	b := &Batch{
		Msgs:  make([]Msg, n),
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		addrs: make([]rawAddr, n),
		ctrl:  make([][ctrlLen]byte, n),
		c:     c,
	}
	b.recvF = b.recvmmsg
	b.sendF = b.sendmmsg
	return b
}

// Recv blocks until at least one datagram arrives and fills up to
// len(b.Msgs) of them. It returns how many.
func (c *Conn) Recv(b *Batch) (int, error) {
	n := len(b.Msgs)
	for i := 0; i < n; i++ {
		m := &b.Msgs[i]
		b.iovs[i].Base = unsafe.SliceData(m.Buf)
		b.iovs[i].SetLen(cap(m.Buf))
		h := &b.hdrs[i].Hdr
		h.Name = &b.addrs[i].b[0]
		h.Namelen = uint32(len(b.addrs[i].b))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
		h.Control = nil
		h.SetControllen(0)
		if c.gro {
			h.Control = &b.ctrl[i][0]
			h.SetControllen(ctrlLen)
		}
		h.Flags = 0
		b.hdrs[i].Len = 0
	}
	b.n, b.err = n, nil
	if err := c.rc.Read(b.recvF); err != nil {
		return 0, c.closedErr(err)
	}
	if b.err != nil {
		return 0, b.err
	}
	for i := 0; i < b.n; i++ {
		m := &b.Msgs[i]
		m.N = int(b.hdrs[i].Len)
		m.Off = 0
		m.Truncated = b.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0
		if m.N > cap(m.Buf) {
			m.N = cap(m.Buf)
		}
		m.Addr = b.addrs[i].get()
		m.GSOSize = 0
		if c.gro {
			m.GSOSize = groSize(b.ctrl[i][:b.hdrs[i].Hdr.Controllen])
		}
		if c.kind == IP && !c.v6 {
			// Raw IPv4 sockets deliver the IP header too.
			m.Off = ipv4HeaderLen(m.Buf[:m.N])
		}
	}
	return b.n, nil
}

func ipv4HeaderLen(b []byte) int {
	if len(b) < 20 {
		return len(b)
	}
	hl := int(b[0]&0x0f) * 4
	if hl < 20 || hl > len(b) {
		return len(b)
	}
	return hl
}

// recvmmsg and sendmmsg use RawSyscall: the socket is non-blocking, so the
// call never sleeps, and skipping the scheduler's syscall bookkeeping keeps
// the runtime from handing the pump's P to another thread while the kernel
// works on a batch (measured: half the context switches, +15 % TCP
// throughput through the tunnel).
func (b *Batch) recvmmsg(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.n), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	if e != 0 {
		b.err = e
		b.n = 0
		return true
	}
	b.n = int(r)
	return true
}

// Send sends b.Msgs[:n], each Buf to its Addr, blocking while the socket
// buffer is full. A datagram the kernel refuses is skipped, with its Err
// set, and the rest are still sent; Send returns how many went out and the
// first error.
//
// A UDP GSO send the kernel refuses as too big for the path (a segment
// above the device's MTU: EMSGSIZE, or EINVAL from older kernels) is sent
// again as single datagrams, which the kernel fragments as it does any
// datagram above the MTU. When the kernel refuses a GSO send for another
// reason (EIO or EINVAL: a path whose device or kernel cannot segment
// UDP), the datagrams are sent the same way and GSO is turned off for the
// socket: GSO reports false from then on, and the error is an
// ErrGSORefused.
func (c *Conn) Send(b *Batch, n int) (int, error) {
	if n == 0 {
		return 0, nil
	}
	b.growPartIovecs(n)
	for i := 0; i < n; i++ {
		c.prepareSend(b, i)
	}
	b.n, b.sent = n, 0
	ok := 0
	var first error
	for b.sent < n {
		b.err = nil
		before := b.sent
		if err := c.rc.Write(b.sendF); err != nil {
			return ok, c.closedErr(err)
		}
		ok += b.sent - before
		if b.err == nil {
			continue
		}
		i := b.sent
		b.sent++ // go on after the message the kernel refused
		sent, err := c.refused(b, i, b.err)
		if sent {
			ok++
		} else {
			b.Msgs[i].Err = err
		}
		if first == nil {
			first = err
		}
	}
	return ok, first
}

// growPartIovecs makes room for the I/O vectors of the messages sent in
// parts: the batch's largest, once.
func (b *Batch) growPartIovecs(n int) {
	parts := 0
	for i := 0; i < n; i++ {
		parts += len(b.Msgs[i].Parts)
	}
	if cap(b.piovs) < parts {
		b.piovs = make([]unix.Iovec, parts)
	}
	b.piovs = b.piovs[:0]
}

// prepareSend fills the kernel's message header for b.Msgs[i]: its I/O
// vectors, address, and the UDP_SEGMENT control message of a GSO send.
func (c *Conn) prepareSend(b *Batch, i int) {
	m := &b.Msgs[i]
	m.Err = nil
	h := &b.hdrs[i].Hdr
	size := len(m.Buf) // the datagram's length, summed once here
	if len(m.Parts) == 0 {
		b.iovs[i].Base = unsafe.SliceData(m.Buf)
		b.iovs[i].SetLen(len(m.Buf))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
	} else {
		start := len(b.piovs)
		size = 0
		for _, p := range m.Parts {
			var v unix.Iovec
			v.Base = unsafe.SliceData(p)
			v.SetLen(len(p))
			b.piovs = append(b.piovs, v)
			size += len(p)
		}
		h.Iov = &b.piovs[start]
		h.SetIovlen(len(m.Parts))
	}
	h.Name = &b.addrs[i].b[0]
	h.Namelen = b.addrs[i].set(m.Addr, c.kind)
	h.Control = nil
	h.SetControllen(0)
	// A GSO message always goes with UDP_SEGMENT, even if GSO was turned
	// off since the caller built it (another pump's send was refused):
	// then the kernel refuses this one too and it is sent split, rather
	// than as one oversized datagram.
	if m.GSOSize > 0 && c.kind == UDP && m.GSOSize < size {
		h.Control = &b.ctrl[i][0]
		h.SetControllen(putSegment(b.ctrl[i][:], m.GSOSize))
	}
	h.Flags = 0
}

// refused deals with b.Msgs[i], which the kernel refused with err: a GSO
// send refused as too big or for want of GSO goes again as single
// datagrams (see Send). It reports whether the message went out after
// all, and the error to report: nil, the kernel's, or ErrGSORefused.
func (c *Conn) refused(b *Batch, i int, err error) (sent bool, _ error) {
	if b.hdrs[i].Hdr.Controllen == 0 || (err != unix.EMSGSIZE && err != unix.EINVAL && err != unix.EIO) {
		return false, err
	}
	report := error(nil)
	if err == unix.EIO || (err == unix.EINVAL && !c.segmentTooBig(&b.Msgs[i])) {
		report = err
		if c.gso.Swap(false) {
			report = &ErrGSORefused{Err: err}
		}
	}
	if serr := c.sendSplit(b, i); serr != nil {
		return false, serr
	}
	return true, report
}

// segmentTooBig reports whether a GSO message's segments exceed the path
// MTU toward its peer, which is why kernels before 6.x refuse a GSO send
// with EINVAL (later ones say EMSGSIZE).
func (c *Conn) segmentTooBig(m *Msg) bool {
	hdr := 20 + 8
	if c.v6 {
		hdr = 40 + 8
	}
	return m.GSOSize+hdr > PathMTU(m.Addr.Addr())
}

// sendSplit sends the GSO message b.Msgs[i] as one datagram per GSOSize
// bytes, without UDP_SEGMENT. Its scratch batch and parts are made on the
// first call and kept.
func (c *Conn) sendSplit(b *Batch, i int) error {
	m := &b.Msgs[i]
	parts := m.Parts
	if len(parts) == 0 {
		b.one[0] = m.Buf
		parts = b.one[:]
	}
	size := m.Len()
	segs := (size + m.GSOSize - 1) / m.GSOSize
	if b.split == nil || len(b.split.Msgs) < segs {
		b.split = c.NewBatch(segs)
	}
	if cap(b.splitParts) < len(parts)+segs {
		b.splitParts = make([][]byte, 0, len(parts)+segs)
	}
	sp := b.splitParts[:0]
	k, start, left := 0, 0, m.GSOSize
	for _, p := range parts {
		for len(p) > 0 {
			take := min(len(p), left)
			sp = append(sp, p[:take])
			p, left = p[take:], left-take
			if left == 0 {
				b.split.Msgs[k] = Msg{Parts: sp[start:len(sp):len(sp)], Addr: m.Addr}
				k, start, left = k+1, len(sp), m.GSOSize
			}
		}
	}
	if start < len(sp) {
		b.split.Msgs[k] = Msg{Parts: sp[start:len(sp):len(sp)], Addr: m.Addr}
		k++
	}
	b.one[0] = nil
	sent, err := c.Send(b.split, k)
	if err == nil && sent < k {
		err = unix.EMSGSIZE
	}
	return err
}

func (b *Batch) sendmmsg(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.sent])), uintptr(b.n-b.sent), 0, 0, 0)
	if e == unix.EAGAIN || e == unix.EINTR {
		return false
	}
	if e != 0 {
		b.err = e
		return true
	}
	b.sent += int(r)
	return true
}

// ErrGSORefused reports that the kernel refused a UDP GSO send, and that
// the socket sends without GSO from now on.
type ErrGSORefused struct{ Err error }

func (e *ErrGSORefused) Error() string {
	return "UDP GSO send refused (" + e.Err.Error() + "): sending one datagram per segment from now on"
}

func (e *ErrGSORefused) Unwrap() error { return e.Err }

// putSegment writes a UDP_SEGMENT control message and returns its length.
func putSegment(b []byte, size int) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = uint16(size)
	return unix.CmsgSpace(2)
}

// groSize finds a UDP_GRO control message and returns its segment size.
func groSize(b []byte) int {
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(b) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(*(*int32)(unsafe.Pointer(&b[unix.CmsgLen(0)])))
		}
		sp := (l + 7) &^ 7
		if sp > len(b) {
			return 0
		}
		b = b[sp:]
	}
	return 0
}
