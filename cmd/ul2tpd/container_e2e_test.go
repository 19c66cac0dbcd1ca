package main

// The container of docs/container.md: ul2tpd as an L2TPv2 LNS with PPP on
// TUN devices, holding CAP_NET_ADMIN and /dev/net/tun only. The files the
// image ships (docs/container/ul2tpd.toml and chap-secrets) run here in a
// namespace as user nobody with that one capability (CI's default path);
// with UL2TP_CONTAINER_TEST=1 (make container-test) the image itself is
// built and run with docker.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// containerDir holds the image's Dockerfile and files, from this package.
const containerDir = "../../docs/container"

// The example users of docs/container/chap-secrets.
const (
	alicePassword = "correct horse battery staple"
	bobPassword   = "bobs-password"
	bobAddress    = "10.99.0.5"
)

// shippedAuth is the ppp_auth line of docs/container/ul2tpd.toml.
const shippedAuth = `ppp_auth = "mschap-v2"`

// containerFiles copies the image's ul2tpd.toml and chap-secrets into a
// new directory, owned by nobody as a volume's files would be the
// daemon's, and returns it. method other than "mschap-v2" replaces the
// file's ppp_auth, the one line changed; the rest is the file as shipped.
func containerFiles(t *testing.T, method string) string {
	t.Helper()
	// Not t.TempDir: its parent is mode 0700, which nobody cannot cross.
	dir, err := os.MkdirTemp("", "ul2tp-e2e-ctr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ul2tpd.toml", "chap-secrets"} {
		b, err := os.ReadFile(filepath.Join(containerDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "ul2tpd.toml" && method != "mschap-v2" {
			if strings.Count(string(b), shippedAuth) != 1 {
				t.Fatalf("%s/ul2tpd.toml: want one line %s", containerDir, shippedAuth)
			}
			b = []byte(strings.Replace(string(b), shippedAuth, fmt.Sprintf("ppp_auth = %q", method), 1))
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeLAC writes the configuration of our LAC dialling the LNS at lns:
// alice's and bob's calls, with the example passwords.
func writeLAC(t *testing.T, e *env, lns netip.Addr) string {
	t.Helper()
	f := filepath.Join(e.dir, "lac.toml")
	conf := fmt.Sprintf(`[tunnel.lac1]
version = "l2tpv2"
peer = "%s:1701"
retry_timeout = 200

[tunnel.lac1.session.alice]
pseudowire = "ppp"
user = "alice"
password = %q

[tunnel.lac1.session.bob]
pseudowire = "ppp"
user = "bob"
password = %q
`, lns, alicePassword, bobPassword)
	if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// checkCalls waits for the LAC's calls to open and checks their
// addresses: alice's from the pool, bob's his fixed one.
func checkCalls(t *testing.T, lac *daemon) {
	t.Helper()
	named := func(name string) func(c *api.CallInfo) bool {
		return func(c *api.CallInfo) bool { return c.Name == name }
	}
	var alice, bob api.SessionInfo
	until(t, "alice's and bob's PPP links open", func() bool {
		var ok1, ok2 bool
		alice, ok1 = pppCall(lac, named("alice"))
		bob, ok2 = pppCall(lac, named("bob"))
		return ok1 && ok2 && alice.Call.PPP == "open" && bob.Call.PPP == "open"
	})
	if a, err := netip.ParseAddr(alice.Call.PPPLocal); err != nil || a.Less(netip.MustParseAddr("10.99.0.10")) ||
		netip.MustParseAddr("10.99.0.250").Less(a) || alice.Call.PPPPeer != "10.99.0.1" {
		t.Errorf("alice's call %+v: want an address of the pool 10.99.0.10-10.99.0.250, peer 10.99.0.1", alice.Call)
	}
	if bob.Call.PPPLocal != bobAddress {
		t.Errorf("bob's call %+v: want his fixed address %s", bob.Call, bobAddress)
	}
}

// TestE2EContainerCaps runs the container's configuration, as shipped
// (ppp_auth changed for PAP and CHAP-MD5), as docs/container.md runs the
// image: ul2tpd as user nobody holding only CAP_NET_ADMIN (checked in
// /proc), with /dev/net/tun, in a namespace of its own, its working
// directory the configuration's. Our LAC, an ordinary daemon in another
// namespace, opens alice's call (an address from the pool) and bob's (his
// fixed address) with each method, and ping crosses them both ways.
func TestE2EContainerCaps(t *testing.T) {
	for _, method := range []string{"pap", "chap", "mschap-v2"} {
		t.Run(method, func(t *testing.T) {
			e := newEnv(t)
			u := newUnprivileged(t, e.bin, 0o666, "net_admin")
			u.dir = containerFiles(t, method)
			lns := e.startDaemonAs(e.nsB, u, "--config", filepath.Join(u.dir, "ul2tpd.toml"))
			u.checkCreds(t, lns)
			lac := e.startDaemon(e.nsA, "--config", writeLAC(t, e, e.outer4(2)))
			checkCalls(t, lac)
			until(t, "the LNS's call of alice open", func() bool {
				s, ok := pppCall(lns, func(c *api.CallInfo) bool { return c.PPPUser == "alice" && c.PPP == "open" })
				return ok && s.Call.PPPLocal == "10.99.0.1"
			})
			e.ping(e.nsA, "10.99.0.1")
			e.ping(e.nsB, bobAddress)
			lac.stop(true)
			lns.stop(true)
			for _, ns := range []string{e.nsA, e.nsB} {
				if out := e.ip("-n", ns, "-o", "link", "show"); strings.Contains(out, "ppp") {
					t.Errorf("TUN devices left in %s:\n%s", ns, out)
				}
			}
		})
	}
}

// TestE2EContainerCapsMissing starts the container's configuration short
// of what it needs: without CAP_NET_ADMIN, and without /dev/net/tun (a
// tmpfs over /dev/net, as a container not given the device sees it).
// ul2tpd refuses to start, saying what is missing and how to give it.
func TestE2EContainerCapsMissing(t *testing.T) {
	e := newEnv(t)
	dir := containerFiles(t, "mschap-v2")
	conf := filepath.Join(dir, "ul2tpd.toml")
	for _, c := range []struct {
		name  string
		caps  []string
		noTUN bool
		want  string
	}{
		{"no-cap", nil, false, "create TUN/TAP devices: operation not permitted (needs CAP_NET_ADMIN; in a container, docker run --cap-add NET_ADMIN)"},
		{"no-tun", []string{"net_admin"}, true, "open /dev/net/tun: no such file or directory (no device node: in a container, give it the device with docker run --device /dev/net/tun)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := newUnprivileged(t, e.bin, 0o666, c.caps...)
			argv := u.command()
			if c.noTUN {
				// The same steps, but a tmpfs over /dev/net instead of the node.
				bind := `mount --bind "$tun" /dev/net/tun`
				if !strings.Contains(argv[4], bind) {
					t.Fatalf("unprivileged.command's script has no %q:\n%s", bind, argv[4])
				}
				argv[4] = strings.Replace(argv[4], bind, "mount -t tmpfs tmpfs /dev/net", 1)
			}
			argv = append(append([]string{"netns", "exec", e.nsB}, argv...),
				"--socket", filepath.Join(u.runDir, "lns.sock"), "--config", conf)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ip", argv...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("ul2tpd: %v, want exit status 1:\n%s", err, out)
			}
			want := "ul2tpd: " + conf + ":5: lns runs PPP on TUN devices, which this daemon cannot create: " + c.want
			if !strings.Contains(string(out), want) {
				t.Errorf("ul2tpd's output does not contain\n%s\n%s", want, out)
			}
		})
	}
}

// TestE2EContainerDocker builds the image from the test's ul2tpd and ul2tp
// (the Dockerfile's runtime target: FROM scratch, no pull) and runs it as
// docs/container.md says, with --cap-drop ALL --cap-add NET_ADMIN --device
// /dev/net/tun and nothing else, on a veth from our LAC's namespace
// (--network none; docker's own port publishing is not under test), its
// root file system read-only but for a tmpfs on /run (the control socket). It
// checks the container's capabilities in /proc, opens alice's and bob's
// calls, pings the LNS, and checks that the image, started without the
// device or the capability, refuses to start saying so. It needs a
// running docker daemon and runs only with UL2TP_CONTAINER_TEST=1 (make
// container-test): CI has no docker daemon.
func TestE2EContainerDocker(t *testing.T) {
	if os.Getenv("UL2TP_CONTAINER_TEST") == "" {
		t.Skip("builds and runs the image with docker: set UL2TP_CONTAINER_TEST=1 (make container-test)")
	}
	if os.Getenv("E2E_RACE") != "" {
		t.Skip("the image needs static binaries: run without E2E_RACE")
	}
	e := newEnv(t)
	if out, err := runCmd(30*time.Second, "docker", "version"); err != nil {
		t.Fatalf("UL2TP_CONTAINER_TEST is set but docker does not answer (dockerd running? DOCKER_HOST?): %v\n%s", err, out)
	}
	docker := func(limit time.Duration, args ...string) string {
		t.Helper()
		out, err := runCmd(limit, "docker", args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(out)
	}

	// The build context: bin/ and docs/container/ as in the repository.
	ctxDir := t.TempDir()
	for _, f := range []struct{ from, to string }{
		{filepath.Join(e.bin, "ul2tpd"), "bin/ul2tpd"},
		{filepath.Join(e.bin, "ul2tp"), "bin/ul2tp"},
		{filepath.Join(containerDir, "ul2tpd.toml"), "docs/container/ul2tpd.toml"},
		{filepath.Join(containerDir, "chap-secrets"), "docs/container/chap-secrets"},
	} {
		to := filepath.Join(ctxDir, f.to)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(f.from, to, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dockerfile, err := filepath.Abs(filepath.Join(containerDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	image := fmt.Sprintf("ul2tp-e2e:%d-%d", os.Getpid(), e.n)
	docker(5*time.Minute, "build", "-q", "-f", dockerfile, "--target", "runtime", "-t", image, ctxDir)
	t.Cleanup(func() { _, _ = runCmd(time.Minute, "docker", "rmi", "-f", image) })

	// Short of the device or the capability it refuses to start.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cap-add", "NET_ADMIN"}, "open /dev/net/tun: no such file or directory (no device node: in a container, give it the device with docker run --device /dev/net/tun)"},
		{[]string{"--device", "/dev/net/tun"}, "create TUN/TAP devices: operation not permitted (needs CAP_NET_ADMIN; in a container, docker run --cap-add NET_ADMIN)"},
	} {
		args := append(append([]string{"run", "--rm", "--network", "none", "--cap-drop", "ALL"}, c.args...), image)
		out, err := runCmd(time.Minute, "docker", args...)
		if err == nil || !strings.Contains(out, "/etc/ul2tp/ul2tpd.toml:5: lns runs PPP on TUN devices, which this daemon cannot create: "+c.want) {
			t.Errorf("docker %s: %v, want a refusal saying %q:\n%s", strings.Join(args, " "), err, c.want, out)
		}
	}

	name := fmt.Sprintf("ul2tp-e2e-%d-%d", os.Getpid(), e.n)
	docker(time.Minute, "run", "-d", "--name", name, "--network", "none", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN",
		"--device", "/dev/net/tun", "--security-opt", "no-new-privileges", "--read-only", "--tmpfs", "/run", image)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := runCmd(time.Minute, "docker", "logs", name)
			t.Logf("docker logs %s:\n%s", name, out)
		}
		_, _ = runCmd(time.Minute, "docker", "rm", "-f", name)
	})
	pid := docker(time.Minute, "inspect", "-f", "{{.State.Pid}}", name)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CapEff:\t0000000000001000", "CapBnd:\t0000000000001000", "CapAmb:\t0000000000000000"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("container's ul2tpd (pid %s): want %q (CAP_NET_ADMIN only) in\n%s", pid, want, status)
		}
	}

	// The container's network namespace, named for ip(8), on a veth from A.
	ns := fmt.Sprintf("%s%d-c", nsPrefix, e.n)
	e.ip("netns", "attach", ns, pid)
	t.Cleanup(func() { _, _ = runCmd(10*time.Second, "ip", "netns", "del", ns) })
	vA, vC := fmt.Sprintf("uc%da", e.n), fmt.Sprintf("uc%dc", e.n)
	lnsAddr := netip.AddrFrom4([4]byte{10, 215, byte(e.n), 2})
	for _, args := range [][]string{
		{"link", "add", vA, "netns", e.nsA, "type", "veth", "peer", "name", vC, "netns", ns},
		{"-n", e.nsA, "addr", "add", fmt.Sprintf("10.215.%d.1/24", e.n), "dev", vA},
		{"-n", ns, "addr", "add", lnsAddr.String() + "/24", "dev", vC},
		{"-n", e.nsA, "link", "set", vA, "up"},
		{"-n", ns, "link", "set", vC, "up"},
	} {
		e.ip(args...)
	}
	lac := e.startDaemon(e.nsA, "--config", writeLAC(t, e, lnsAddr))
	checkCalls(t, lac)
	e.ping(e.nsA, "10.99.0.1")
	if out := docker(time.Minute, "exec", name, "ul2tp", "show", "session"); !strings.Contains(out, `user "alice" local 10.99.0.1`) ||
		!strings.Contains(out, `user "bob" local 10.99.0.1 peer `+bobAddress) {
		t.Errorf("docker exec %s ul2tp show session: want alice's and bob's calls:\n%s", name, out)
	}
	lac.stop(true)
	// docker stop: SIGTERM to ul2tpd, PID 1 in the container; it exits 0.
	docker(time.Minute, "stop", name)
	if code := docker(time.Minute, "inspect", "-f", "{{.State.ExitCode}}", name); code != "0" {
		t.Errorf("the container's ul2tpd exited %s after docker stop, want 0", code)
	}
}
