package call

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultHookTimeout bounds an ip-up, ip-down, ipv6-up or ipv6-down
// program: its process group is killed after it.
const DefaultHookTimeout = 30 * time.Second

// hookPath is the PATH the programs get: pppd clears the environment;
// we set a PATH so that a script need not.
const hookPath = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"

// hookOutputMax bounds the output of a program that is logged.
const hookOutputMax = 4096

// Hooks are what a call does as its IPv4 and IPv6 links come up and go
// down, beyond configuring the TUN.
//
// IPUp and IPDown are run as pppd runs /etc/ppp/ip-up and ip-down, with
// the arguments interface-name tty-device speed local-IP-address
// remote-IP-address ipparam, and an environment holding only pppd's
// variables (IFNAME, DEVICE, SPEED, IPLOCAL, IPREMOTE, PEERNAME, DNS1,
// DNS2, USEPEERDNS, ORIG_UID, PPPLOGNAME; ip-down adds CONNECT_TIME,
// BYTES_SENT and BYTES_RCVD), PATH, and UL2TP_TUNNEL_ID and
// UL2TP_SESSION_ID. The device is /dev/net/tun and the speed 0: there is
// no serial line. ip-up runs once the TUN has its addresses and is up;
// ip-down when the call ends, before the TUN is removed (as pppd runs it
// while the interface still exists), and never before ip-up has ended.
//
// IPv6Up and IPv6Down are run likewise, as pppd runs /etc/ppp/ipv6-up
// and ipv6-down, for IPv6: once the TUN has the link-local addresses
// IPv6CP agreed, and when the call ends. Their fourth and fifth arguments
// are the local and remote link-local addresses, written as pppd writes
// them (fe80:: and the four groups of the interface identifier in full,
// fe80::0000:0000:0000:0001), and their environment has them as LLLOCAL
// and LLREMOTE instead of IPLOCAL and IPREMOTE (DNS1 and DNS2 only if
// IPCP gave them before). A call whose IPv6 never came up runs neither;
// ip-down runs before ipv6-down.
//
// None blocks PPP: they run on a goroutine of their own, stdin from
// /dev/null, their output logged, a non-zero exit logged as a warning,
// and their process group killed after Timeout.
//
// DefaultRoute and ResolvConf are the LAC's: see Config.
type Hooks struct {
	IPUp, IPDown     string // programs; "": none
	IPv6Up, IPv6Down string // programs; "": none
	IPParam          string // the sixth argument
	Timeout          time.Duration
	// DefaultRoute routes all of IPv4 through the TUN once IPCP is
	// open: 0.0.0.0/0, or 0.0.0.0/1 and 128.0.0.0/1 when a default route
	// exists already (it stays, less specific). A host route to the LNS
	// through the path it had keeps the tunnel's own packets off the
	// TUN. The routes added are deleted when the call ends.
	DefaultRoute bool
	// ResolvConf is a file to write the DNS servers IPCP gave to, as
	// "nameserver" lines (atomically: a temporary file renamed); at the
	// end of the call its former contents come back (or it is removed if
	// it did not exist), unless something else has rewritten it since.
	ResolvConf string
}

// upInfo is what the hooks learn when IPv4 or IPv6 comes up.
type upInfo struct {
	iface       string
	local, peer netip.Addr // IPv6: the link-local addresses
	peerName    string     // the authenticated peer (LNS)
	dns         [2]netip.Addr
}

// hookStage is one address family's programs: ip-up and ip-down, or
// ipv6-up and ipv6-down.
type hookStage struct {
	name      string // "ip" or "ipv6": the programs are name-up and name-down
	up, down  string // their paths; "": none
	localVar  string // the environment's names of the local and remote addresses
	remoteVar string
	done      chan struct{} // nil until up; closed when the up work has ended
	info      upInfo        // set by the up goroutine, read by the down one after done
}

// hookRun runs a call's Hooks. up, up6 and down may be called once
// each, up and up6 before down (down without them is fine), from the
// Call's goroutine.
type hookRun struct {
	h        Hooks
	log      *slog.Logger
	tid, sid uint32
	lns      netip.Addr // the LAC's peer, for DefaultRoute
	start    time.Time
	wg       sync.WaitGroup
	v4, v6   hookStage
	// Set by v4's up goroutine, read by the down one after v4.done.
	routes []route // added by us, deleted at the end in reverse
	resolv *resolvBackup
}

func newHookRun(cfg *Config, log *slog.Logger) *hookRun {
	r := &hookRun{log: log, tid: cfg.TunnelID, sid: cfg.SessionID, lns: cfg.Peer, start: time.Now()}
	switch {
	case cfg.Server != nil && cfg.Server.Hooks != nil:
		r.h = *cfg.Server.Hooks
		r.h.DefaultRoute, r.h.ResolvConf = false, ""
	case cfg.Client != nil && cfg.Client.Hooks != nil:
		r.h = *cfg.Client.Hooks
	}
	if r.h.Timeout <= 0 {
		r.h.Timeout = DefaultHookTimeout
	}
	r.v4 = hookStage{name: "ip", up: r.h.IPUp, down: r.h.IPDown, localVar: "IPLOCAL", remoteVar: "IPREMOTE"}
	r.v6 = hookStage{name: "ipv6", up: r.h.IPv6Up, down: r.h.IPv6Down, localVar: "LLLOCAL", remoteVar: "LLREMOTE"}
	return r
}

// up runs the up hooks for IPv4 now configured on the TUN: the routes,
// the resolv.conf, then ip-up.
func (r *hookRun) up(info upInfo) {
	if r == nil {
		return
	}
	var first func()
	if r.h.DefaultRoute || r.h.ResolvConf != "" {
		first = func() {
			if r.h.DefaultRoute {
				r.addRoutes()
			}
			if r.h.ResolvConf != "" {
				r.writeResolv()
			}
		}
	}
	r.begin(&r.v4, info, first)
}

// up6 runs ipv6-up for IPv6 now configured on the TUN.
func (r *hookRun) up6(info upInfo) {
	if r != nil {
		r.begin(&r.v6, info, nil)
	}
}

// begin runs first, if any, then s's up program, on a goroutine of
// their own; s.done is closed when they have ended. With nothing to run
// up or down for s, it does nothing.
func (r *hookRun) begin(s *hookStage, info upInfo, first func()) {
	if s.up == "" && s.down == "" && first == nil {
		return
	}
	s.done = make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(s.done)
		s.info = info
		if first != nil {
			first()
		}
		if s.up != "" {
			r.run(s, s.name+"-up", s.up, nil)
		}
	}()
}

// down runs the down hooks, then then (the TUN's removal), off the
// caller's goroutine when there is anything to run; wait waits for it.
// IPv4's come first: ip-down, the resolv.conf restored, the routes
// deleted; then ipv6-down. Each family waits for its up work to end.
func (r *hookRun) down(stats func() (sent, rcvd uint64), then func()) {
	if r == nil || r.v4.done == nil && r.v6.done == nil {
		then()
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer then()
		if r.v4.done != nil {
			r.end(&r.v4, stats)
			if r.resolv != nil {
				r.restoreResolv()
			}
			r.delRoutes()
		}
		if r.v6.done != nil {
			r.end(&r.v6, stats)
		}
	}()
}

// end waits for s's up work to end, then runs its down program with
// the connection's statistics.
func (r *hookRun) end(s *hookStage, stats func() (sent, rcvd uint64)) {
	<-s.done
	if s.down == "" {
		return
	}
	sent, rcvd := stats()
	r.run(s, s.name+"-down", s.down, []string{
		"CONNECT_TIME=" + strconv.FormatInt(int64(time.Since(r.start)/time.Second), 10),
		"BYTES_SENT=" + strconv.FormatUint(sent, 10),
		"BYTES_RCVD=" + strconv.FormatUint(rcvd, 10),
	})
}

// delRoutes deletes the routes addRoutes added, last first.
func (r *hookRun) delRoutes() {
	for i := len(r.routes) - 1; i >= 0; i-- {
		if err := routeDel(r.routes[i]); err != nil && !errors.Is(err, unix.ESRCH) {
			r.warn("default route", err)
		}
	}
	r.routes = nil
}

func (r *hookRun) wait() {
	if r != nil {
		r.wg.Wait()
	}
}

// hookInfo is what the hooks are told of the link, read on the Call's
// goroutine when IPCP or IPv6CP has opened.
func (c *Call) hookInfo(iface string, local, peer netip.Addr) upInfo {
	i := upInfo{iface: iface, local: local, peer: peer}
	if c.cfg.Server != nil {
		i.peerName = c.link.User()
	} else {
		i.dns = c.link.DNS()
	}
	return i
}

// sessionBytes is the call's data counters for ip-down and ipv6-down.
func (c *Call) sessionBytes() (sent, rcvd uint64) {
	if s := c.sess.Load(); s != nil {
		st := s.Stats()
		return st.TxBytes, st.RxBytes
	}
	return 0, 0
}

// warn logs a failure of IPv4's up or down work.
func (r *hookRun) warn(what string, err error) {
	r.log.Warn("ppp "+what, "tunnel_id", r.tid, "session_id", r.sid, "interface", r.v4.info.iface, "err", err)
}

// hookAddr is an address as pppd gives it to its programs: IPv4 dotted,
// a link-local IPv6 address as fe80:: and the interface identifier's
// four groups in full (pppd's llv6_ntoa).
func hookAddr(a netip.Addr) string {
	b := a.As16()
	if !a.Is6() || a.Zone() != "" || [8]byte(b[:8]) != [8]byte{0xfe, 0x80} {
		return a.String()
	}
	return fmt.Sprintf("fe80::%02x%02x:%02x%02x:%02x%02x:%02x%02x", b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
}

// args and env are pppd's for s's programs.
func (r *hookRun) args(s *hookStage) []string {
	i := s.info
	return []string{i.iface, "/dev/net/tun", "0", hookAddr(i.local), hookAddr(i.peer), r.h.IPParam}
}

func (r *hookRun) env(s *hookStage, extra []string) []string {
	i := s.info
	env := []string{
		"PATH=" + hookPath,
		"IFNAME=" + i.iface,
		"DEVICE=/dev/net/tun",
		"SPEED=0",
		s.localVar + "=" + hookAddr(i.local),
		s.remoteVar + "=" + hookAddr(i.peer),
		"ORIG_UID=" + strconv.Itoa(os.Getuid()),
		"PPPLOGNAME=" + logName(),
		"UL2TP_TUNNEL_ID=" + strconv.FormatUint(uint64(r.tid), 10),
		"UL2TP_SESSION_ID=" + strconv.FormatUint(uint64(r.sid), 10),
	}
	if i.peerName != "" {
		env = append(env, "PEERNAME="+i.peerName)
	}
	if i.dns[0].IsValid() || i.dns[1].IsValid() {
		env = append(env, "USEPEERDNS=1")
		for n, d := range i.dns {
			if d.IsValid() {
				env = append(env, fmt.Sprintf("DNS%d=%s", n+1, d))
			}
		}
	}
	return append(env, extra...)
}

func logName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// run runs one of s's programs to its end or its timeout, and logs the
// outcome.
func (r *hookRun) run(s *hookStage, what, path string, extra []string) {
	ctx, cancel := context.WithTimeout(context.Background(), r.h.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, r.args(s)...)
	cmd.Env = r.env(s, extra)
	cmd.Dir = "/"
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child left in the background holding the output open does not
	// hold us past this.
	cmd.WaitDelay = time.Second
	began := time.Now()
	err := cmd.Run()
	attrs := []any{"tunnel_id", r.tid, "session_id", r.sid, "interface", s.info.iface, "program", path,
		"duration", time.Since(began).Round(time.Millisecond).String()}
	if out.Len() > 0 {
		attrs = append(attrs, "output", out.String())
	}
	switch {
	case ctx.Err() != nil:
		r.log.Warn("ppp "+what+" timed out: process group killed", append(attrs, "timeout", r.h.Timeout.String())...)
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		r.log.Warn("ppp "+what+" failed", append(attrs, "err", err.Error())...)
	default:
		r.log.Info("ppp "+what, attrs...)
	}
}

// limitedBuffer keeps the first hookOutputMax bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	cut bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := hookOutputMax - l.b.Len(); room < len(p) {
		l.b.Write(p[:max(room, 0)])
		l.cut = true
	} else {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *limitedBuffer) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if l.cut {
		s += "..."
	}
	return s
}

// addRoutes routes IPv4 through the TUN, the LNS through its old path.
func (r *hookRun) addRoutes() {
	ifi, err := net.InterfaceByName(r.v4.info.iface)
	if err != nil {
		r.warn("default route", err)
		return
	}
	if r.lns.IsValid() && r.lns.Unmap().Is4() {
		via, err := routeGet(r.lns.Unmap())
		if err != nil {
			r.warn("default route: route to the LNS", err)
			return
		}
		if via.Dev == ifi.Index {
			r.warn("default route", fmt.Errorf("the LNS %s is reached through %s itself", r.lns, r.v4.info.iface))
			return
		}
		switch err := routeAdd(via); {
		case err == nil:
			r.routes = append(r.routes, via)
		case !errors.Is(err, unix.EEXIST): // a host route there already: kept
			r.warn("default route: host route to the LNS", err)
			return
		}
	}
	def := route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Dev: ifi.Index}
	err = routeAdd(def)
	if err == nil {
		r.routes = append(r.routes, def)
		r.log.Info("ppp default route", "tunnel_id", r.tid, "session_id", r.sid, "interface", r.v4.info.iface, "routes", "0.0.0.0/0")
		return
	}
	if !errors.Is(err, unix.EEXIST) {
		r.warn("default route", err)
		return
	}
	// A default route exists: the two halves of IPv4 are more specific.
	for _, p := range []string{"0.0.0.0/1", "128.0.0.0/1"} {
		h := route{Dst: netip.MustParsePrefix(p), Dev: ifi.Index}
		if err := routeAdd(h); err != nil {
			r.warn("default route", err)
			return
		}
		r.routes = append(r.routes, h)
	}
	r.log.Info("ppp default route", "tunnel_id", r.tid, "session_id", r.sid, "interface", r.v4.info.iface,
		"routes", "0.0.0.0/1 128.0.0.0/1")
}

// resolvBackup is what ResolvConf held before the call wrote it.
type resolvBackup struct {
	existed bool
	old     []byte
	mode    os.FileMode
	ours    []byte
}

// writeResolv writes the DNS servers to ResolvConf.
func (r *hookRun) writeResolv() {
	var b bytes.Buffer
	for _, d := range r.v4.info.dns {
		if d.IsValid() {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
	}
	path := r.h.ResolvConf
	if b.Len() == 0 {
		r.log.Info("ppp resolv_conf: the LNS gave no DNS servers; not written", "tunnel_id", r.tid, "session_id", r.sid, "path", path)
		return
	}
	bk := &resolvBackup{mode: 0o644, ours: b.Bytes()}
	if fi, err := os.Stat(path); err == nil {
		old, err := os.ReadFile(path)
		if err != nil {
			r.warn("resolv_conf", err)
			return
		}
		bk.existed, bk.old, bk.mode = true, old, fi.Mode().Perm()
	}
	if err := writeAtomic(path, bk.ours, bk.mode); err != nil {
		r.warn("resolv_conf", err)
		return
	}
	r.resolv = bk
}

// restoreResolv puts ResolvConf back as it was, if it still holds what
// we wrote.
func (r *hookRun) restoreResolv() {
	bk, path := r.resolv, r.h.ResolvConf
	now, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(now, bk.ours) {
		r.log.Info("ppp resolv_conf changed since the call wrote it: left as it is", "tunnel_id", r.tid, "session_id", r.sid, "path", path)
		return
	}
	if !bk.existed {
		err = os.Remove(path)
	} else {
		err = writeAtomic(path, bk.old, bk.mode)
	}
	if err != nil {
		r.warn("resolv_conf", err)
	}
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over it.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".ul2tp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
