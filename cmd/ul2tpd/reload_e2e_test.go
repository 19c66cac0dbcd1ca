package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadFile is one version of a reload test's configuration file.
type reloadFile struct {
	// chgSend and chgRecv are session chg's cookie and peer_cookie.
	chgSend, chgRecv string
	// withNew and withOld put in sessions new and old; extra is appended.
	withNew, withOld bool
	extra            string
	// keepSeq is session keep's seq word, "" for none.
	keepSeq string
}

// text writes the file for side 0 (A, tunnel 100, sessions 1x) or 1 (B,
// tunnel 200, sessions 2x): one tunnel with sessions keep (11/21), chg
// (12/22) and, if asked, new (13/23) and old (14/24).
func (f reloadFile) text(e *env, side int) string {
	me, peer := e.outer4(1), e.outer4(2)
	tid, ptid, base, pbase := 100, 200, 10, 20
	if side == 1 {
		me, peer, tid, ptid, base, pbase = peer, me, ptid, tid, pbase, base
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[tunnel.t1]\nlocal = \"%s:1701\"\npeer = \"%s:1701\"\ntid = %d\nptid = %d\n", me, peer, tid, ptid)
	session := func(name string, n int, cookies string) {
		fmt.Fprintf(&b, "\n[tunnel.t1.session.%s]\nsid = %d\npsid = %d\ninterface_name = \"rl%s\"\n%s", name, base+n, pbase+n, name, cookies)
	}
	// keep has the default sublayer, which carries sequence numbers.
	keep := "cookie = [ 0x11, 0x11, 0x11, 0x11 ]\npeer_cookie = [ 0x11, 0x11, 0x11, 0x11 ]\nl2spec_type = \"default\"\n"
	if f.keepSeq != "" {
		keep += fmt.Sprintf("seq = %q\n", f.keepSeq)
	}
	session("keep", 1, keep)
	send, recv := f.chgSend, f.chgRecv
	if side == 1 {
		send, recv = recv, send
	}
	session("chg", 2, fmt.Sprintf("cookie = %s\npeer_cookie = %s\n", send, recv))
	if f.withNew {
		session("new", 3, "")
	}
	if f.withOld {
		session("old", 4, "")
	}
	b.WriteString(f.extra)
	return b.String()
}

func (f reloadFile) write(t *testing.T, e *env, side int, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(f.text(e, side)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ifindex is the index of interface name in ns.
func (e *env) ifindex(ns, name string) int {
	e.t.Helper()
	out := e.ip("-n", ns, "-o", "link", "show", "dev", name)
	i, err := strconv.Atoi(out[:strings.IndexByte(out, ':')])
	if err != nil {
		e.t.Fatalf("ifindex of %s in %s: %q", name, ns, out)
	}
	return i
}

// pingRun is a ping running in the background.
type pingRun struct {
	cmd  *exec.Cmd
	out  strings.Builder
	done chan error
}

// startPing starts "ping -i 0.02 -c count" from ns to dst.
func (e *env) startPing(ns, dst string, count int) *pingRun {
	e.t.Helper()
	p := &pingRun{done: make(chan error, 1)}
	p.cmd = exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-q", "-i", "0.02", "-W", "1", "-c", strconv.Itoa(count), dst)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("ping: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p
}

// running reports whether the ping has not ended yet.
func (p *pingRun) running() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// wait waits (at most a minute, killing it then) for the ping to end and
// fails the test unless every one of its count echoes was answered.
func (p *pingRun) wait(t *testing.T, count int, what string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	m := pingSummary.FindStringSubmatch(p.out.String())
	if m == nil || m[1] != strconv.Itoa(count) || m[2] != m[1] {
		t.Errorf("%s: ping lost echoes (want %d of %d):\n%s", what, count, count, p.out.String())
	}
}

// TestE2EReload reloads both daemons' configuration files while a ping
// runs on a session the new files leave alone: not one echo is lost and
// its TAP is the same device, while a session whose cookies changed is
// rebuilt (and passes traffic with the new cookies), one is added and one
// removed, and a session added over the socket stays. A file with a
// duplicate session id, a missing file and a file claiming the socket's
// session are refused, naming the file and line, and change nothing; a
// storm of SIGHUPs is absorbed without stopping traffic; and a change of
// the untouched session's seq is made in place, keeping its TAP and its
// ping.
func TestE2EReload(t *testing.T) {
	e := newEnv(t)
	ca, cb := filepath.Join(e.dir, "a.toml"), filepath.Join(e.dir, "b.toml")
	v1 := reloadFile{chgSend: "[ 1, 2, 3, 4 ]", chgRecv: "[ 5, 6, 7, 8 ]", withOld: true}
	v1.write(t, e, 0, ca)
	v1.write(t, e, 1, cb)
	a := e.startDaemon(e.nsA, "--config", ca)
	b := e.startDaemon(e.nsB, "--config", cb)
	taps := []string{"rlkeep", "rlchg", "rlnew", "rlold", "rlsock"}
	a.taps, b.taps = taps, taps
	keepA, keepB := fmt.Sprintf("10.214.%d.1", e.n), fmt.Sprintf("10.214.%d.2", e.n)
	chgA, chgB := fmt.Sprintf("10.215.%d.1", e.n), fmt.Sprintf("10.215.%d.2", e.n)
	a.upTAP("rlkeep", keepA+"/24")
	b.upTAP("rlkeep", keepB+"/24")
	a.upTAP("rlchg", chgA+"/24")
	b.upTAP("rlchg", chgB+"/24")
	e.ping(e.nsA, keepB)
	e.ping(e.nsA, chgB)
	// A session added over the socket, in the file's tunnel.
	a.mustCLI("add", "session", "name", "rlsock", "tunnel_id", "100", "session_id", "31", "peer_session_id", "41")
	b.mustCLI("add", "session", "name", "rlsock", "tunnel_id", "200", "session_id", "41", "peer_session_id", "31")
	idxA, idxB := e.ifindex(e.nsA, "rlkeep"), e.ifindex(e.nsB, "rlkeep")

	// v2: chg's cookies change (a rebuild), new comes, old goes.
	const count = 250
	ping := e.startPing(e.nsA, keepB, count)
	v2 := reloadFile{chgSend: "[ 9, 9, 9, 9 ]", chgRecv: "[ 8, 8, 8, 8, 8, 8, 8, 8 ]", withNew: true}
	v2.write(t, e, 0, ca)
	v2.write(t, e, 1, cb)
	out := a.mustCLI("reload")
	b.mustCLI("reload")
	if !ping.running() {
		t.Error("the ping ended before the reloads did: it says nothing about them")
	}
	ping.wait(t, count, "untouched session during the reload")
	t.Logf("ul2tp reload:\n%s", out)
	for _, want := range []string{"reload: 1 added, 1 removed, 1 rebuilt, 0 modified, 2 unchanged\n",
		"added session t1/new (100/13)", "removed session t1/old (100/14)", "rebuilt session t1/chg (100/12)"} {
		if !strings.Contains(out, want) {
			t.Errorf("ul2tp reload output lacks %q:\n%s", want, out)
		}
	}
	if i, j := e.ifindex(e.nsA, "rlkeep"), e.ifindex(e.nsB, "rlkeep"); i != idxA || j != idxB {
		t.Errorf("the untouched session's TAP changed: ifindex %d/%d, was %d/%d", i, j, idxA, idxB)
	}
	waitLinkGone(t, e, e.nsA, "rlold")
	if !e.linkExists(e.nsA, "rlnew") || !e.linkExists(e.nsB, "rlnew") {
		t.Error("session new has no TAP after the reload")
	}
	if s := a.session(100, 12); s.Cookie != "09090909" || s.PeerCookie != "0808080808080808" {
		t.Errorf("rebuilt session: cookie %s peer_cookie %s", s.Cookie, s.PeerCookie)
	}
	a.session(100, 31) // the socket's session stays
	// The rebuilt session's TAP is new: address it again, and it passes
	// traffic with the new cookies.
	a.upTAP("rlchg", chgA+"/24")
	b.upTAP("rlchg", chgB+"/24")
	e.ping(e.nsA, chgB)

	// Bad files are refused whole, and nothing changes.
	before := a.mustCLI("show", "session")
	dup := v2
	dup.extra = "\n[tunnel.t1.session.dup]\nsid = 11\npsid = 99\n"
	dup.write(t, e, 0, ca)
	dupLine := strings.Count(dup.text(e, 0)[:strings.Index(dup.text(e, 0), "sid = 11\npsid = 99")], "\n") + 1
	a.cliFails([]string{fmt.Sprintf(`%s:%d: tunnel "t1" session "dup": sid 11 duplicates session "keep" (line `, ca, dupLine)}, "reload")
	claim := v2
	claim.extra = "\n[tunnel.t1.session.claim]\nsid = 31\npsid = 98\n"
	claim.write(t, e, 0, ca)
	a.cliFails([]string{ca + ":", `session "claim": sid 31 is in use by a session added over the control socket`}, "reload")
	if err := os.Remove(ca); err != nil {
		t.Fatal(err)
	}
	a.cliFails([]string{ca, "no such file"}, "reload")
	if after := a.mustCLI("show", "session"); after != before {
		t.Errorf("refused reloads changed the sessions:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// A SIGHUP storm while a ping runs: absorbed, no echo lost.
	v2.write(t, e, 0, ca)
	ping = e.startPing(e.nsA, keepB, count)
	for i := 0; i < 50; i++ {
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
	}
	if after := a.mustCLI("show", "session"); after != before {
		t.Errorf("SIGHUPs changed the sessions:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	ping.wait(t, count, "untouched session during the SIGHUP storm")
	if !a.alive() {
		t.Fatalf("ul2tpd died of SIGHUPs:\n%s", a.log())
	}
	if after := a.mustCLI("show", "session"); after != before {
		t.Errorf("SIGHUPs changed the sessions:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	log := a.log()
	n := strings.Count(log, "SIGHUP: reloading")
	if n == 0 || n > 50 || !strings.Contains(log, "reload done") {
		t.Errorf("%d reloads for 50 SIGHUPs; log:\n%s", n, log)
	}
	t.Logf("50 SIGHUPs made %d reloads", n)
	if e.ifindex(e.nsA, "rlkeep") != idxA {
		t.Error("the SIGHUPs rebuilt the untouched session")
	}

	// v3: keep's sequencing changes, in place: same TAP, traffic flows.
	v3 := v2
	v3.keepSeq = "both"
	v3.write(t, e, 0, ca)
	v3.write(t, e, 1, cb)
	ping = e.startPing(e.nsA, keepB, count)
	out = a.mustCLI("reload")
	b.mustCLI("reload")
	ping.wait(t, count, "session modified in place")
	if !strings.Contains(out, "reload: 0 added, 0 removed, 0 rebuilt, 1 modified, 3 unchanged\n") ||
		!strings.Contains(out, "modified session t1/keep (100/11)") {
		t.Errorf("ul2tp reload after a change of seq:\n%s", out)
	}
	if s := a.session(100, 11); !s.SendSeq || !s.RecvSeq {
		t.Errorf("session keep after seq both: send_seq %v recv_seq %v", s.SendSeq, s.RecvSeq)
	}
	if i, j := e.ifindex(e.nsA, "rlkeep"), e.ifindex(e.nsB, "rlkeep"); i != idxA || j != idxB {
		t.Errorf("a change of seq rebuilt the TAP: ifindex %d/%d, was %d/%d", i, j, idxA, idxB)
	}
}

// TestE2EReloadNoConfig checks a daemon started without --config: ul2tp
// reload says so and fails, and SIGHUP is logged and otherwise ignored.
func TestE2EReloadNoConfig(t *testing.T) {
	e := newEnv(t)
	a := e.startDaemon(e.nsA)
	a.cliFails([]string{"ul2tpd was started without --config"}, "reload")
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(a.log(), "SIGHUP ignored") {
		if time.Now().After(deadline) || !a.alive() {
			t.Fatalf("no warning of the SIGHUP (alive %v):\n%s", a.alive(), a.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.mustCLI("show", "tunnel")
}
