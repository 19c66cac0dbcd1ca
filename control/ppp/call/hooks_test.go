package call

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/datapath/tap"
	"golang.org/x/sys/unix"
)

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// logBuffer is a slog handler's output, safe to read while written.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testRun(h Hooks, server bool) (*hookRun, *logBuffer) {
	var lb logBuffer
	cfg := Config{TunnelID: 7, SessionID: 9}
	if server {
		cfg.Server = &Server{Hooks: &h}
	} else {
		cfg.Client = &Client{Hooks: &h}
	}
	return newHookRun(&cfg, slog.New(slog.NewTextHandler(&lb, nil))), &lb
}

// readLines reads a file of NUL- or newline-separated fields.
func readFields(t *testing.T, path string, sep string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), sep), sep)
}

// TestHooksArgsEnv: ip-up and ip-down, ipv6-up and ipv6-down get
// pppd's six arguments (IPv6's addresses the link-local ones, written as
// pppd writes them) and an environment of pppd's variables only (plus
// PATH and ours): IPLOCAL and IPREMOTE for IPv4, LLLOCAL and LLREMOTE
// for IPv6; the down programs with the connection's statistics; the
// LNS's hooks name the authenticated peer, the LAC's the DNS servers.
func TestHooksArgsEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("UL2TP_TEST_LEAK", "1") // not passed on: pppd clears the environment
	dump := `for a in "$@"; do printf '%s\n' "$a"; done > "$0.args"; env | sort > "$0.env"` + "\n"
	for _, server := range []bool{true, false} {
		up, down := script(t, dir, "ip-up", dump), script(t, dir, "ip-down", dump)
		up6, down6 := script(t, dir, "ipv6-up", dump), script(t, dir, "ipv6-down", dump)
		r, log := testRun(Hooks{IPUp: up, IPDown: down, IPv6Up: up6, IPv6Down: down6, IPParam: "office"}, server)
		info := upInfo{iface: "ppp3", local: netip.MustParseAddr("10.99.0.1"), peer: netip.MustParseAddr("10.99.0.10")}
		if server {
			info.peerName = "alice"
		} else {
			info.dns = [2]netip.Addr{netip.MustParseAddr("10.99.0.53"), netip.MustParseAddr("10.99.0.54")}
		}
		info6 := info
		info6.local, info6.peer = netip.MustParseAddr("fe80::c"), netip.MustParseAddr("fe80::1:a2:3b4:c5d6")
		removed := false
		r.up(info)
		r.up6(info6)
		r.down(func() (uint64, uint64) { return 1234, 5678 }, func() { removed = true })
		r.wait()
		if !removed {
			t.Fatal("the TUN was not removed after the down hooks")
		}
		common := []string{
			"DEVICE=/dev/net/tun", "IFNAME=ppp3",
			"ORIG_UID=" + strconv.Itoa(os.Getuid()), "PATH=" + hookPath, "PPPLOGNAME=" + logName(), "SPEED=0",
			"UL2TP_SESSION_ID=9", "UL2TP_TUNNEL_ID=7",
		}
		if server {
			common = append(common, "PEERNAME=alice")
		} else {
			common = append(common, "DNS1=10.99.0.53", "DNS2=10.99.0.54", "USEPEERDNS=1")
		}
		envOf := func(p string) []string {
			var got []string
			for _, kv := range readFields(t, p+".env", "\n") {
				if k, _, _ := strings.Cut(kv, "="); k != "PWD" && k != "SHLVL" && k != "_" && k != "OLDPWD" {
					got = append(got, kv) // the shell's own variables aside
				}
			}
			return got
		}
		for _, f := range []struct {
			up, down    string
			local, peer string // as the arguments give them
			env         []string
		}{
			{up, down, "10.99.0.1", "10.99.0.10", []string{"IPLOCAL=10.99.0.1", "IPREMOTE=10.99.0.10"}},
			{up6, down6, "fe80::0000:0000:0000:000c", "fe80::0001:00a2:03b4:c5d6",
				[]string{"LLLOCAL=fe80::0000:0000:0000:000c", "LLREMOTE=fe80::0001:00a2:03b4:c5d6"}},
		} {
			wantArgs := []string{"ppp3", "/dev/net/tun", "0", f.local, f.peer, "office"}
			for _, p := range []string{f.up, f.down} {
				if got := readFields(t, p+".args", "\n"); !slices.Equal(got, wantArgs) {
					t.Errorf("server %v: %s args %q, want %q", server, filepath.Base(p), got, wantArgs)
				}
			}
			want := append(slices.Clone(common), f.env...)
			slices.Sort(want)
			if got := envOf(f.up); !slices.Equal(got, want) {
				t.Errorf("server %v: %s env\n%q\nwant\n%q", server, filepath.Base(f.up), got, want)
			}
			wantDown := append(want, "BYTES_RCVD=5678", "BYTES_SENT=1234", "CONNECT_TIME=0")
			slices.Sort(wantDown)
			if got := envOf(f.down); !slices.Equal(got, wantDown) {
				t.Errorf("server %v: %s env\n%q\nwant\n%q", server, filepath.Base(f.down), got, wantDown)
			}
		}
		l := log.String()
		for _, m := range []string{"ppp ip-up", "ppp ip-down", "ppp ipv6-up", "ppp ipv6-down"} {
			if !strings.Contains(l, "msg=\""+m+"\"") {
				t.Errorf("no %q in the log:\n%s", m, l)
			}
		}
		if strings.Contains(l, "WARN") {
			t.Errorf("log:\n%s", l)
		}
	}
}

// TestHooksOrder: ip-down waits for a slow ip-up, ipv6-down for a slow
// ipv6-up, and the TUN goes only after the down programs; a call whose
// IPv6 never came up runs neither ipv6-up nor ipv6-down; a failing
// program is logged as a warning with its output.
func TestHooksOrder(t *testing.T) {
	v4 := upInfo{iface: "ppp0", local: netip.MustParseAddr("10.0.0.1"), peer: netip.MustParseAddr("10.0.0.2")}
	v6 := upInfo{iface: "ppp0", local: netip.MustParseAddr("fe80::1"), peer: netip.MustParseAddr("fe80::2")}
	for _, tc := range []struct {
		name       string
		ip, ipv6   bool // which hooks are configured
		up6        bool // IPv6 came up
		want       []string
		downFailed bool
	}{
		{"ipv4", true, false, true, []string{"up", "down", "tun removed"}, true},
		{"ipv6", false, true, true, []string{"up6", "down6", "tun removed"}, false},
		{"both", true, true, true, nil, true},
		{"ipv6 never up", true, true, false, []string{"up", "down", "tun removed"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			trace := filepath.Join(dir, "trace")
			var h Hooks
			if tc.ip {
				h.IPUp = script(t, dir, "ip-up", "sleep 0.3; echo up >> "+trace+"\n")
				h.IPDown = script(t, dir, "ip-down", "echo down >> "+trace+"; echo oops; exit 3\n")
			}
			if tc.ipv6 {
				h.IPv6Up = script(t, dir, "ipv6-up", "sleep 0.3; echo up6 >> "+trace+"\n")
				h.IPv6Down = script(t, dir, "ipv6-down", "echo down6 >> "+trace+"\n")
			}
			r, log := testRun(h, true)
			r.up(v4)
			if tc.up6 {
				r.up6(v6)
			}
			r.down(func() (uint64, uint64) { return 0, 0 }, func() {
				f, err := os.OpenFile(trace, os.O_APPEND|os.O_WRONLY, 0)
				if err == nil {
					f.WriteString("tun removed\n")
					f.Close()
				}
			})
			r.wait()
			got := readFields(t, trace, "\n")
			if tc.want != nil && !slices.Equal(got, tc.want) {
				t.Errorf("order %q, want %q", got, tc.want)
			}
			if tc.want == nil { // the two families' up programs run side by side
				at := func(s string) int { return slices.Index(got, s) }
				if len(got) != 5 || at("tun removed") != 4 || at("up") < 0 || at("up") > at("down") || at("up6") < 0 || at("up6") > at("down6") {
					t.Errorf("order %q: want each up before its down, the TUN removed last", got)
				}
			}
			l := log.String()
			if tc.downFailed && (!strings.Contains(l, "level=WARN msg=\"ppp ip-down failed\"") || !strings.Contains(l, "exit status 3") ||
				!strings.Contains(l, `output="oops\n"`)) {
				t.Errorf("log:\n%s", l)
			}
			if !tc.up6 && strings.Contains(l, "ppp ipv6-") {
				t.Errorf("IPv6 never came up, yet its hooks ran:\n%s", l)
			}
		})
	}
}

// TestHooksNone: without hooks, down removes the TUN at once, on the
// caller's goroutine, as before hooks existed; down without up too, and
// with hooks for the other family only.
func TestHooksNone(t *testing.T) {
	r, _ := testRun(Hooks{}, false)
	r.up(upInfo{iface: "ppp0"})
	done := false
	r.down(nil, func() { done = true })
	if !done {
		t.Fatal("TUN not removed synchronously")
	}
	r2, _ := testRun(Hooks{IPUp: "/nonexistent"}, false)
	done = false
	r2.down(nil, func() { done = true })
	if !done {
		t.Fatal("down without up: TUN not removed synchronously")
	}
	// IPv6 hooks only: IPv4 coming up starts nothing to wait for.
	r3, _ := testRun(Hooks{IPv6Up: "/nonexistent", IPv6Down: "/nonexistent"}, true)
	r3.up(upInfo{iface: "ppp0"})
	done = false
	r3.down(nil, func() { done = true })
	if !done {
		t.Fatal("IPv6 hooks, IPv6 never up: TUN not removed synchronously")
	}
	// IPv4 hooks only: IPv6 coming up neither.
	r4, _ := testRun(Hooks{IPUp: "/nonexistent"}, true)
	r4.up6(upInfo{iface: "ppp0"})
	done = false
	r4.down(nil, func() { done = true })
	if !done {
		t.Fatal("IPv4 hooks, IPv4 never up: TUN not removed synchronously")
	}
	var nilRun *hookRun
	nilRun.up(upInfo{})
	nilRun.up6(upInfo{})
	nilRun.down(nil, func() {})
	nilRun.wait()
}

// TestHooksTimeout: a program that outlives its timeout is killed with
// its whole process group, children included, and ip-down still runs.
func TestHooksTimeout(t *testing.T) {
	dir := t.TempDir()
	pidf := filepath.Join(dir, "child.pid")
	up := script(t, dir, "ip-up", "sleep 60 &\necho $! > "+pidf+"\nsleep 60\n")
	downRan := filepath.Join(dir, "down")
	down := script(t, dir, "ip-down", "touch "+downRan+"\n")
	r, log := testRun(Hooks{IPUp: up, IPDown: down, Timeout: 300 * time.Millisecond}, true)
	r.up(upInfo{iface: "ppp0", local: netip.MustParseAddr("10.0.0.1"), peer: netip.MustParseAddr("10.0.0.2")})
	r.down(func() (uint64, uint64) { return 0, 0 }, func() {})
	r.wait()
	if !strings.Contains(log.String(), "ppp ip-up timed out: process group killed") {
		t.Errorf("log:\n%s", log.String())
	}
	if _, err := os.Stat(downRan); err != nil {
		t.Errorf("ip-down did not run after ip-up timed out: %v", err)
	}
	b, err := os.ReadFile(pidf)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The killed child is a zombie until init reaps it, or gone.
	for range 100 {
		if !alive(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("the script's background child %d survived its process group's kill", pid)
}

// alive reports whether pid is a process that has not exited.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// TestResolvConf: the DNS servers replace the file's contents for the
// call, which come back at its end; a file that did not exist is
// removed; a file rewritten by someone else meanwhile is left alone.
func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	dns := [2]netip.Addr{netip.MustParseAddr("10.99.0.53"), netip.MustParseAddr("10.99.0.54")}
	want := "nameserver 10.99.0.53\nnameserver 10.99.0.54\n"
	cases := []struct {
		name   string
		before *string // nil: no file
		meddle bool
	}{{"existing", ptr("nameserver 192.0.2.1\n"), false}, {"absent", nil, false}, {"rewritten", ptr("x\n"), true}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".conf")
			if tc.before != nil {
				if err := os.WriteFile(path, []byte(*tc.before), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			r, _ := testRun(Hooks{ResolvConf: path}, false)
			r.up(upInfo{iface: "ppp0", dns: dns})
			<-r.v4.done
			b, err := os.ReadFile(path)
			if err != nil || string(b) != want {
				t.Fatalf("during the call: %q %v, want %q", b, err, want)
			}
			if tc.meddle {
				os.WriteFile(path, []byte("mine\n"), 0o644)
			}
			r.down(nil, func() {})
			r.wait()
			b, err = os.ReadFile(path)
			switch {
			case tc.meddle:
				if string(b) != "mine\n" {
					t.Errorf("after: %q, want the other writer's", b)
				}
			case tc.before == nil:
				if !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after: %q %v, want the file removed", b, err)
				}
			default:
				fi, _ := os.Stat(path)
				if string(b) != *tc.before || fi.Mode().Perm() != 0o640 {
					t.Errorf("after: %q %v, want %q 0640", b, fi.Mode(), *tc.before)
				}
			}
			if ents, _ := filepath.Glob(filepath.Join(dir, ".*ul2tp-*")); len(ents) != 0 {
				t.Errorf("temporary files left: %v", ents)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestRoutes adds, reads and deletes routes with routeAdd, routeGet and
// routeDel, in a network namespace of its own (root only).
func TestRoutes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the namespace goes with the thread
		errc <- routesInNetns()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func routesInNetns() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return err
	}
	// lo up with 127.0.0.1: a route to 10.1.2.3 via nothing fails,
	// then one through lo is found.
	if err := setUpLo(); err != nil {
		return err
	}
	dst := netip.MustParseAddr("10.1.2.3")
	if _, err := routeGet(dst); err == nil {
		return errors.New("routeGet found a route in an empty table")
	}
	def := route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: 1}
	if err := routeAdd(def); err != nil {
		return err
	}
	if err := routeAdd(def); !errors.Is(err, unix.EEXIST) {
		return errors.New("second routeAdd: " + errString(err) + ", want EEXIST")
	}
	r, err := routeGet(dst)
	if err != nil || r.Dev != 1 || r.Gateway.IsValid() || r.Dst != netip.PrefixFrom(dst, 32) {
		return errors.New("routeGet " + r.String() + ": " + errString(err))
	}
	host := route{Dst: netip.PrefixFrom(dst, 32), Dev: 1}
	if err := routeAdd(host); err != nil {
		return err
	}
	for _, x := range []route{host, def} {
		if err := routeDel(x); err != nil {
			return err
		}
	}
	if _, err := routeGet(dst); err == nil {
		return errors.New("routes still there after routeDel")
	}
	if err := routeDel(def); !errors.Is(err, unix.ESRCH) {
		return errors.New("routeDel of a route not there: " + errString(err) + ", want ESRCH")
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// setUpLo brings lo up in the current namespace.
func setUpLo() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// FuzzParseAttrs: the route attribute parser never panics, and what it
// returns lies inside its input.
func FuzzParseAttrs(f *testing.F) {
	r := rtRequest(unix.RTM_NEWROUTE, 0, route{Dst: netip.MustParsePrefix("10.0.0.0/8"),
		Gateway: netip.MustParseAddr("10.0.0.1"), Dev: 3})
	f.Add(r[unix.SizeofNlMsghdr+unix.SizeofRtMsg:])
	f.Add([]byte{4, 0, 1, 0})
	f.Add([]byte{3, 0, 1, 0, 0})
	f.Add([]byte{255, 255, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		as, err := parseAttrs(b)
		n := 0
		for _, a := range as {
			n += len(a.val)
		}
		if err == nil && n > len(b) {
			t.Fatalf("attributes of %d bytes from %d", n, len(b))
		}
	})
}

// TestDefaultRoute: with a default route in place, DefaultRoute routes
// the two halves of IPv4 through the TUN and the LNS through its old
// path, and takes both away again; without one, 0.0.0.0/0 (root only:
// a network namespace and a TUN of its own).
func TestDefaultRoute(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and a TUN")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the namespace goes with the thread
		errc <- defaultRouteInNetns()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func defaultRouteInNetns() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return err
	}
	if err := setUpLo(); err != nil {
		return err
	}
	d, err := tap.Create(tap.Config{Name: "uht%d", TUN: true})
	if err != nil {
		return err
	}
	defer d.Close()
	local, peer := netip.MustParseAddr("10.99.0.10"), netip.MustParseAddr("10.99.0.1")
	if err := tap.SetPointToPoint4(d.Name(), local, peer); err != nil {
		return err
	}
	if err := tap.SetUp(d.Name()); err != nil {
		return err
	}
	tun, err := net.InterfaceByName(d.Name())
	if err != nil {
		return err
	}
	lns, far := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.9")
	dev := func(a netip.Addr) int {
		r, err := routeGet(a)
		if err != nil {
			return -1
		}
		return r.Dev
	}
	for _, existing := range []bool{true, false} {
		oldDef := route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: 1} // via lo
		if existing {
			if err := routeAdd(oldDef); err != nil {
				return err
			}
		} else if err := routeAdd(route{Dst: netip.MustParsePrefix("10.1.0.0/16"), Dev: 1}); err != nil {
			return err
		}
		var lb logBuffer
		r := &hookRun{h: Hooks{DefaultRoute: true}, log: slog.New(slog.NewTextHandler(&lb, nil)), lns: lns,
			v4: hookStage{info: upInfo{iface: d.Name(), local: local, peer: peer}}}
		r.addRoutes()
		want := 2 // the LNS's host route, 0.0.0.0/0
		if existing {
			want = 3 // and the halves
		}
		if len(r.routes) != want || dev(far) != tun.Index || dev(lns) != 1 {
			return fmt.Errorf("existing default %v: routes %v, %s via #%d, the LNS via #%d; want %d routes, %s via the TUN #%d, the LNS via lo\n%s",
				existing, r.routes, far, dev(far), dev(lns), want, far, tun.Index, lb.String())
		}
		r.delRoutes()
		if existing && dev(far) != 1 || !existing && dev(far) != -1 {
			return fmt.Errorf("existing default %v: after the call %s goes via #%d", existing, far, dev(far))
		}
		if existing {
			if err := routeDel(oldDef); err != nil {
				return err
			}
		}
	}
	return nil
}
