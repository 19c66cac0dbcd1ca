package main

// Least privilege: ul2tpd as an unprivileged user holding only
// CAP_NET_ADMIN (and CAP_NET_RAW for encap ip), as docs/ul2tpd.service
// runs it.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the user and group the unprivileged daemons run as.
const nobody = 65534

// unprivileged says how to run ul2tpd as user nobody with only some
// capabilities. Its files are in a directory the test removes afterwards.
type unprivileged struct {
	caps   []string // setpriv's names: "net_admin", "net_raw"
	bin    string   // a copy of ul2tpd nobody may run
	tun    string   // a node of /dev/net/tun's device, bind-mounted over it
	runDir string   // owned by nobody: the control sockets
	dir    string   // the daemon's working directory; "": the test's
}

// newUnprivileged prepares a daemon run as nobody holding caps. Its
// /dev/net/tun is a node of the same device with mode tunMode, mounted in
// the daemon's own mount namespace: distributions ship the node 0666, some
// test machines have it 0600, and the host's node is never changed.
func newUnprivileged(t *testing.T, bin string, tunMode uint32, caps ...string) *unprivileged {
	t.Helper()
	for _, c := range []string{"unshare", "mount", "setpriv"} {
		if _, err := exec.LookPath(c); err != nil {
			cannot := t.Skipf
			if os.Getenv("CI") != "" {
				cannot = t.Fatalf
			}
			cannot("needs %s in $PATH (make deps installs util-linux, mount): %v", c, err)
		}
	}
	// Not t.TempDir: its parent is mode 0700, which nobody cannot cross.
	dir, err := os.MkdirTemp("", "ul2tp-e2e-priv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	u := &unprivileged{
		caps:   caps,
		bin:    filepath.Join(dir, "ul2tpd"),
		tun:    filepath.Join(dir, "tun"),
		runDir: filepath.Join(dir, "run"),
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(filepath.Join(bin, "ul2tpd"), u.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(u.tun, unix.S_IFCHR|tunMode, int(unix.Mkdev(10, 200))); err != nil {
		t.Fatalf("mknod %s c 10 200: %v", u.tun, err)
	}
	if err := os.Chmod(u.tun, os.FileMode(tunMode)); err != nil { // past the umask
		t.Fatal(err)
	}
	if err := os.Mkdir(u.runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(u.runDir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return u
}

// command is the argv that runs ul2tpd as u says; the daemon's own
// arguments follow it. Every step execs the next, so the PID is ul2tpd's:
// unshare makes a mount namespace, sh bind-mounts the node there (private,
// so nothing reaches the host), setpriv drops to nobody keeping only
// u.caps (ambient, so they survive the exec) and execs ul2tpd.
func (u *unprivileged) command() []string {
	set := "-all"
	for _, c := range u.caps {
		set += ",+" + c
	}
	script := fmt.Sprintf(`tun=$1; shift
mount --make-rprivate / && mount --bind "$tun" /dev/net/tun &&
exec setpriv --reuid=%d --regid=%d --clear-groups --no-new-privs --pdeathsig SIGTERM \
	--inh-caps=%s --ambient-caps=%s --bounding-set=%s "$@"`, nobody, nobody, set, set, set)
	return []string{"unshare", "-m", "sh", "-c", script, "sh", u.tun, u.bin}
}

// checkCreds checks from /proc that d runs as nobody with exactly u.caps
// effective and in its bounding set.
func (u *unprivileged) checkCreds(t *testing.T, d *daemon) {
	t.Helper()
	var want uint64
	for _, c := range u.caps {
		switch c {
		case "net_admin":
			want |= 1 << unix.CAP_NET_ADMIN
		case "net_raw":
			want |= 1 << unix.CAP_NET_RAW
		default:
			t.Fatalf("capability %q: not known to the test", c)
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			for _, id := range f {
				if id != strconv.Itoa(nobody) {
					t.Errorf("ul2tpd in %s: %s %s, want %d throughout", d.ns, k, v, nobody)
					break
				}
			}
		case "CapEff", "CapBnd", "CapAmb":
			if got, err := strconv.ParseUint(f[0], 16, 64); err != nil || got != want {
				t.Errorf("ul2tpd in %s: %s %s, want %016x", d.ns, k, f[0], want)
			}
		}
	}
}

func copyFile(from, to string, mode os.FileMode) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// TestE2ENonRoot runs both daemons as nobody holding only CAP_NET_ADMIN
// (and CAP_NET_RAW for encap ip): a session with its own MTU and MAC
// address comes up, and ping passes through it both ways.
func TestE2ENonRoot(t *testing.T) {
	for _, c := range []struct {
		encap string
		caps  []string
	}{
		{"udp", []string{"net_admin"}},
		{"ip", []string{"net_admin", "net_raw"}},
	} {
		t.Run(c.encap, func(t *testing.T) {
			e := newEnv(t)
			u := newUnprivileged(t, e.bin, 0o666, c.caps...)
			a := e.startDaemonAs(e.nsA, u)
			b := e.startDaemonAs(e.nsB, u)
			for i, x := range []struct {
				d             *daemon
				local, remote string
			}{
				{a, e.outer4(1).String(), e.outer4(2).String()},
				{b, e.outer4(2).String(), e.outer4(1).String()},
			} {
				u.checkCreds(t, x.d)
				tid, ptid := fmt.Sprint(10+i), fmt.Sprint(11-i)
				w := []string{"add", "tunnel", "tunnel_id", tid, "peer_tunnel_id", ptid,
					"encap", c.encap, "local", x.local, "remote", x.remote}
				if c.encap == "udp" {
					w = append(w, "udp_sport", "1701", "udp_dport", "1701")
				}
				x.d.mustCLI(w...)
				mac := fmt.Sprintf("02:00:00:00:00:%02x", 0xa+i)
				x.d.mustCLI("add", "session", "name", "l2t0", "tunnel_id", tid, "session_id", tid,
					"peer_session_id", ptid, "mtu", "1400", "address", mac)
				x.d.taps = append(x.d.taps, "l2t0")
				if got := e.macOf(x.d.ns, "l2t0").String(); got != mac {
					t.Errorf("%s: l2t0 has address %s, want %s", x.d.ns, got, mac)
				}
				if s := x.d.session(uint32(10+i), uint32(10+i)); s.MTU != 1400 {
					t.Errorf("%s: session mtu %d, want 1400", x.d.ns, s.MTU)
				}
				x.d.upTAP("l2t0", fmt.Sprintf("10.211.0.%d/24", i+1))
			}
			e.ping(e.nsA, "10.211.0.2")
			e.ping(e.nsB, "10.211.0.1")
		})
	}
}

// TestE2ENonRootMissing runs daemons as nobody short of what they need: the
// requests that need it fail naming the capability, or the access to
// /dev/net/tun, that is missing; the rest work.
func TestE2ENonRootMissing(t *testing.T) {
	e := newEnv(t)
	// A holds no capability at all.
	a := e.startDaemonAs(e.nsA, newUnprivileged(t, e.bin, 0o666))
	a.mustCLI("add", "tunnel", "tunnel_id", "1", "peer_tunnel_id", "2", "encap", "udp",
		"local", e.outer4(1).String(), "remote", e.outer4(2).String(), "udp_sport", "1701", "udp_dport", "1701")
	a.cliFails([]string{"create TAP l2t0: operation not permitted (needs CAP_NET_ADMIN)"},
		"add", "session", "name", "l2t0", "tunnel_id", "1", "session_id", "1", "peer_session_id", "2")
	a.cliFails([]string{"operation not permitted (needs CAP_NET_RAW)"},
		"add", "tunnel", "tunnel_id", "3", "peer_tunnel_id", "4", "encap", "ip",
		"local", e.outer4(1).String(), "remote", e.outer4(2).String())
	if !strings.Contains(a.log(), "SO_RCVBUFFORCE and SO_SNDBUFFORCE need CAP_NET_ADMIN") {
		t.Errorf("ul2tpd without CAP_NET_ADMIN did not log that its socket buffers are capped:\n%s", a.log())
	}
	// B holds CAP_NET_ADMIN but sees /dev/net/tun as mode 0600.
	b := e.startDaemonAs(e.nsB, newUnprivileged(t, e.bin, 0o600, "net_admin"))
	b.mustCLI("add", "tunnel", "tunnel_id", "2", "peer_tunnel_id", "1", "encap", "udp",
		"local", e.outer4(2).String(), "remote", e.outer4(1).String(), "udp_sport", "1701", "udp_dport", "1701")
	b.cliFails([]string{"open /dev/net/tun: permission denied (the daemon's user needs read and write access"},
		"add", "session", "name", "l2t0", "tunnel_id", "2", "session_id", "2", "peer_session_id", "1")
	for _, d := range []*daemon{a, b} {
		if e.linkExists(d.ns, "l2t0") {
			t.Errorf("%s: l2t0 exists after its session failed", d.ns)
		}
	}
}
