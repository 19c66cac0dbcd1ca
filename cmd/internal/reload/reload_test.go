package reload

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ul2tp/ul2tp/cmd/internal/apiserver"
	"github.com/ul2tp/ul2tp/cmd/internal/config"
	"github.com/ul2tp/ul2tp/datapath"
)

const base = `[tunnel.t1]
peer = "10.0.0.2:1701"
local = "10.0.0.1:1701"
tid = 1
ptid = 11

[tunnel.t1.session.a]
sid = 1
psid = 1
interface_name = "ea"

[tunnel.t1.session.b]
sid = 2
psid = 2
interface_name = "eb"
l2spec_type = "default"

[tunnel.t2]
peer = "10.0.0.3:1701"
tid = 2
ptid = 12

[tunnel.t2.session.c]
sid = 3
psid = 3
`

func parse(t *testing.T, text string) *config.File {
	t.Helper()
	f, err := config.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// runningOf is the plane after f was applied, plus extra sessions added
// over the socket.
func runningOf(t *testing.T, f *config.File, extra ...RunningSession) Running {
	t.Helper()
	r := Running{Tunnels: map[uint32]bool{}, Sessions: map[SessionKey]RunningSession{}}
	for _, tn := range f.Tunnels {
		r.Tunnels[tn.Args.TunnelID] = true
		for _, s := range tn.Sessions {
			c, err := apiserver.SessionConfig(&s.Args)
			if err != nil {
				t.Fatal(err)
			}
			r.Sessions[SessionKey{c.TunnelID, c.ID}] = RunningSession{Config: c, IfName: strings.Replace(c.Name, "%d", "0", 1)}
		}
	}
	for _, rs := range extra {
		r.Sessions[SessionKey{rs.Config.TunnelID, rs.Config.ID}] = rs
	}
	return r
}

var reportNames = [...]string{"", "added", "removed", "rebuilt", "modified"}

// describe writes a plan as "op item [report] (+also)" lines.
func describe(p *Plan) []string {
	var out []string
	for _, st := range p.Steps {
		s := fmt.Sprintf("%s %s", st.Op, st.Item)
		if st.Report != None {
			s += " " + reportNames[st.Report]
		}
		for _, it := range st.Also {
			s += " +" + it.String()
		}
		out = append(out, s)
	}
	return out
}

func sockSession(tid, sid uint32, name string) RunningSession {
	return RunningSession{Config: sessionCfg(tid, sid), IfName: name}
}

func TestDiff(t *testing.T) {
	prev := parse(t, base)
	for _, tc := range []struct {
		name      string
		prev      *config.File // nil: nothing applied yet
		next      string
		run       Running
		want      []string
		unchanged int
	}{
		{name: "untouched", prev: prev, next: base, run: runningOf(t, prev), unchanged: 5},
		{name: "first apply", next: base, run: Running{}, want: []string{
			"add tunnel t1 (1) added", "add tunnel t2 (2) added",
			"add session t1/a (1/1) added", "add session t1/b (1/2) added",
			"add session t2/c (2/3) added"}},
		{name: "session added", prev: prev, next: base + "[tunnel.t2.session.d]\nsid = 4\npsid = 4\n", run: runningOf(t, prev),
			want: []string{"add session t2/d (2/4) added"}, unchanged: 5},
		{name: "session removed", prev: prev, next: strings.Replace(base, "[tunnel.t1.session.b]\nsid = 2\npsid = 2\ninterface_name = \"eb\"\nl2spec_type = \"default\"\n", "", 1),
			run: runningOf(t, prev), want: []string{"delete session t1/b (1/2) removed"}, unchanged: 4},
		{name: "modified in place", prev: prev, next: strings.Replace(base, "sid = 2\n", "sid = 2\nseq = \"both\"\nreorder_timeout = 100\nlns_mode = true\n", 1),
			run: runningOf(t, prev), want: []string{"modify session t1/b (1/2) modified"}, unchanged: 4},
		{name: "seq turned off in place", prev: parse(t, strings.Replace(base, "sid = 2\n", "sid = 2\nseqnum = true\n", 1)), next: base,
			run: runningOf(t, prev), want: []string{"modify session t1/b (1/2) modified"}, unchanged: 4},
		{name: "cookie rebuilds", prev: prev, next: strings.Replace(base, "sid = 2\n", "sid = 2\ncookie = [1, 2, 3, 4]\n", 1),
			run: runningOf(t, prev), want: []string{"delete session t1/b (1/2)", "add session t1/b (1/2) rebuilt"}, unchanged: 4},
		{name: "interface name rebuilds", prev: prev, next: strings.Replace(base, `"eb"`, `"eb2"`, 1),
			run: runningOf(t, prev), want: []string{"delete session t1/b (1/2)", "add session t1/b (1/2) rebuilt"}, unchanged: 4},
		{name: "tunnel change rebuilds its sessions", prev: prev, next: strings.Replace(base, "ptid = 11", "ptid = 99", 1),
			run: runningOf(t, prev), want: []string{"delete tunnel t1 (1)", "add tunnel t1 (1) rebuilt",
				"add session t1/a (1/1) rebuilt", "add session t1/b (1/2) rebuilt"}, unchanged: 2},
		{name: "tunnel change drops a session", prev: prev,
			next: strings.Replace(strings.Replace(base, "ptid = 11", "ptid = 99", 1), "[tunnel.t1.session.a]\nsid = 1\npsid = 1\ninterface_name = \"ea\"\n", "", 1),
			run:  runningOf(t, prev), want: []string{"delete tunnel t1 (1) +session t1/a (1/1)", "add tunnel t1 (1) rebuilt",
				"add session t1/b (1/2) rebuilt"}, unchanged: 2},
		{name: "tunnel removed", prev: prev, next: base[:strings.Index(base, "[tunnel.t2]")], run: runningOf(t, prev),
			want: []string{"delete tunnel t2 (2) removed +session t2/c (2/3)"}, unchanged: 3},
		{name: "session deleted over the socket comes back", prev: prev, next: base,
			run:  func() Running { r := runningOf(t, prev); delete(r.Sessions, SessionKey{1, 1}); return r }(),
			want: []string{"add session t1/a (1/1) added"}, unchanged: 4},
		{name: "socket session left alone", prev: prev, next: strings.Replace(base, "sid = 2\n", "sid = 2\nseq = \"send\"\n", 1),
			run:  runningOf(t, prev, sockSession(1, 9, "sock9"), sockSession(2, 8, "sock8")),
			want: []string{"modify session t1/b (1/2) modified"}, unchanged: 4},
		{name: "socket session re-added after its tunnel's rebuild", prev: prev, next: strings.Replace(base, "ptid = 12", "ptid = 98", 1),
			run: runningOf(t, prev, sockSession(2, 9, "sock9")), want: []string{"delete tunnel t2 (2)",
				"add tunnel t2 (2) rebuilt", "add session t2/(socket) (2/9) rebuilt", "add session t2/c (2/3) rebuilt"}, unchanged: 3},
		{name: "socket session removed with its tunnel", prev: prev, next: base[:strings.Index(base, "[tunnel.t2]")],
			run:  runningOf(t, prev, sockSession(2, 9, "sock9")),
			want: []string{"delete tunnel t2 (2) removed +session t2/c (2/3) +session t2/(socket) (2/9)"}, unchanged: 3},
		{name: "name freed by a rebuild is taken", prev: prev,
			next: strings.Replace(strings.Replace(base, `"ea"`, `"ex"`, 1), `"eb"`, `"ea"`, 1), run: runningOf(t, prev),
			want: []string{"delete session t1/a (1/1)", "delete session t1/b (1/2)",
				"add session t1/a (1/1) rebuilt", "add session t1/b (1/2) rebuilt"}, unchanged: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Diff(tc.prev, parse(t, tc.next), tc.run)
			if err != nil {
				t.Fatal(err)
			}
			got := describe(p)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if p.Unchanged != tc.unchanged {
				t.Errorf("unchanged %d, want %d", p.Unchanged, tc.unchanged)
			}
		})
	}
}

// TestDiffRefuses checks that a file claiming what was added over the
// socket is refused, naming the line and key.
func TestDiffRefuses(t *testing.T) {
	prev := parse(t, base)
	for _, tc := range []struct {
		name, next string
		run        Running
		want       string
	}{
		{"tunnel id", base + "[tunnel.t3]\npeer = \"10.0.0.4\"\nptid = 3\ntid = 7\n",
			func() Running { r := runningOf(t, prev); r.Tunnels[7] = true; return r }(),
			`config:29: tunnel "t3": tid 7 is in use by a tunnel added over the control socket`},
		{"session id", base + "[tunnel.t2.session.d]\npsid = 4\nsid = 9\n", runningOf(t, prev, sockSession(2, 9, "sock9")),
			`config:28: tunnel "t2" session "d": sid 9 is in use by a session added over the control socket in tunnel 2`},
		{"interface name", base + "[tunnel.t2.session.d]\nsid = 4\npsid = 4\ninterface_name = \"sock9\"\n",
			runningOf(t, prev, sockSession(2, 9, "sock9")),
			`config:29: tunnel "t2" session "d": interface_name "sock9" is in use by session 9 in tunnel 2, added over the control socket`},
		{"interface name kept by the file", base + "[tunnel.t2.session.d]\nsid = 4\npsid = 4\ninterface_name = \"l2tpeth0\"\n",
			runningOf(t, prev), // c runs as l2tpeth0, named by the kernel's %d
			`config:29: tunnel "t2" session "d": interface_name "l2tpeth0" is in use by session 3 in tunnel 2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Diff(prev, parse(t, tc.next), tc.run)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Diff = %v\nwant %s", err, tc.want)
			}
		})
	}
}

func sessionCfg(tid, sid uint32) datapath.SessionConfig {
	return datapath.SessionConfig{TunnelID: tid, ID: sid, PeerID: sid}
}
