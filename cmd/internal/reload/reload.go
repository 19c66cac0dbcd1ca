// Package reload makes ul2tpd's tunnels and sessions match its --config
// file again. It reads and checks the whole file first, then works out
// what changed since the file it applied last (Diff) and applies only
// that (Apply): tunnels and sessions the file left alone are not touched,
// and a session whose only changes are to sequencing is changed in place,
// keeping its TAP. Tunnels and sessions added over the control socket are
// not the file's and are left alone.
package reload

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/cmd/internal/apiserver"
	"github.com/ul2tp/ul2tp/cmd/internal/config"
	"github.com/ul2tp/ul2tp/datapath"
)

// Reloader applies a configuration file to a plane, at start and again on
// each Reload. Its methods are safe for concurrent use; reloads run one at
// a time.
type Reloader struct {
	Path  string
	Plane *datapath.Plane
	Log   *slog.Logger

	mu sync.Mutex
	// applied is the file applied last, nil before the first: what is
	// in it is the file's, the rest of the plane the control socket's.
	applied *config.File
}

// Reload reads the file and makes the plane match it. A file that does
// not read or check is refused whole, changing nothing. Otherwise every
// change is tried; the error, if any, names each that failed, and the
// result says what was done. A change that failed is tried again by the
// next reload, as the file's object is then missing from the plane.
func (r *Reloader) Reload() (*api.ReloadResult, error) {
	f, err := config.Load(r.Path)
	if err != nil {
		r.Log.Error("reload refused; nothing changed", "config", r.Path, "err", err)
		return nil, err
	}
	return r.Apply(f)
}

// Apply makes the plane match f, as Reload does with the file it reads:
// the daemon applies its file at start with it.
func (r *Reloader) Apply(f *config.File) (*api.ReloadResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applied != nil {
		if err := config.SameL2TPv2(r.applied, f); err != nil {
			r.Log.Error("reload refused; nothing changed", "config", r.Path, "err", err)
			return nil, err
		}
	}
	plan, err := Diff(r.applied, f, RunningOf(r.Plane))
	if err != nil {
		r.Log.Error("reload refused; nothing changed", "config", r.Path, "err", err)
		return nil, err
	}
	res, err := Apply(r.Plane, plan)
	r.applied = f
	r.log(res, err)
	return res, err
}

func (r *Reloader) log(res *api.ReloadResult, err error) {
	args := []any{"config", r.Path, "added", len(res.Added), "removed", len(res.Removed),
		"rebuilt", len(res.Rebuilt), "modified", len(res.Modified), "unchanged", res.Unchanged}
	if err != nil {
		r.Log.Error("reload done with errors", append(args, "err", err)...)
		return
	}
	r.Log.Info("reload done", args...)
}

// SessionKey identifies a session.
type SessionKey struct{ TunnelID, SessionID uint32 }

// Running is the state of the plane a reload is planned against.
type Running struct {
	Tunnels  map[uint32]bool
	Sessions map[SessionKey]RunningSession
}

// RunningSession is a session in the plane.
type RunningSession struct {
	Config datapath.SessionConfig
	IfName string
}

// RunningOf reads p's tunnels and sessions.
func RunningOf(p *datapath.Plane) Running {
	r := Running{Tunnels: map[uint32]bool{}, Sessions: map[SessionKey]RunningSession{}}
	for _, t := range p.Tunnels() {
		r.Tunnels[t.Config().ID] = true
	}
	for _, s := range p.Sessions(0) {
		c := s.Config()
		r.Sessions[SessionKey{c.TunnelID, c.ID}] = RunningSession{Config: c, IfName: s.IfName()}
	}
	return r
}

// Op is what a step does.
type Op int

// Steps.
const (
	DelTunnel Op = iota
	DelSession
	ModifySession
	AddTunnel
	AddSession
)

func (o Op) String() string {
	return [...]string{"delete", "delete", "modify", "add", "add"}[o]
}

// Report is the list of api.ReloadResult a step's item goes to when the
// step is done.
type Report int

// Lists.
const (
	// None: the first half of a rebuild, reported by the second.
	None Report = iota
	Added
	Removed
	Rebuilt
	Modified
)

// Step is one change to the plane.
type Step struct {
	Op      Op
	Report  Report
	Item    api.ReloadItem
	Tunnel  datapath.TunnelConfig  // AddTunnel
	Session datapath.SessionConfig // AddSession
	Modify  datapath.SessionModify // ModifySession
	// Also are sessions removed with a deleted tunnel.
	Also []api.ReloadItem
}

// Plan is the steps of a reload, in order: deletions, changes in place,
// then additions (tunnels, then sessions with a fixed interface name,
// then those named by the kernel's %d), so a name or port freed by one
// item is free for another.
type Plan struct {
	Steps     []Step
	Unchanged int
}

// socketNote marks what was added over the control socket in errors.
const socketNote = "added over the control socket"

// socketSession names a session added over the socket in a result.
const socketSession = "(socket)"

// Diff plans the change from prev, the file applied last (nil for none),
// to next, given what runs. It refuses, as a *config.Error naming the
// line and key, a next that claims an id or interface name in use by a
// tunnel or session that is not the file's.
func Diff(prev, next *config.File, run Running) (*Plan, error) {
	d := differ{next: next, run: run, prevT: map[uint32]*config.Tunnel{}, prevS: map[SessionKey]*config.Session{}}
	if prev != nil {
		for i := range prev.Tunnels {
			t := &prev.Tunnels[i]
			d.prevT[t.Args.TunnelID] = t
			for j := range t.Sessions {
				d.prevS[key(&t.Sessions[j])] = &t.Sessions[j]
			}
		}
	}
	if err := d.checkIDs(); err != nil {
		return nil, err
	}
	nextT := map[uint32]bool{}
	for i := range next.Tunnels {
		nextT[next.Tunnels[i].Args.TunnelID] = true
	}
	if prev != nil {
		for i := range prev.Tunnels {
			if t := &prev.Tunnels[i]; !nextT[t.Args.TunnelID] && run.Tunnels[t.Args.TunnelID] {
				d.delTunnel(t, Removed, nil)
			}
		}
	}
	for i := range next.Tunnels {
		if err := d.tunnel(&next.Tunnels[i]); err != nil {
			return nil, err
		}
	}
	if err := d.checkNames(); err != nil {
		return nil, err
	}
	p := &Plan{Unchanged: d.unchanged}
	p.Steps = append(append(append(append(d.dels, d.mods...), d.addT...), d.addS...), d.addAuto...)
	return p, nil
}

// differ holds Diff's work.
type differ struct {
	next  *config.File
	run   Running
	prevT map[uint32]*config.Tunnel
	prevS map[SessionKey]*config.Session

	dels, mods, addT, addS, addAuto []Step
	unchanged                       int
	// gone are the tunnels deleted by the plan (their sessions go too).
	gone map[uint32]bool
	// delS are the sessions deleted by the plan.
	delS map[SessionKey]bool
}

func key(s *config.Session) SessionKey { return SessionKey{s.Args.TunnelID, s.Args.SessionID} }

func tunnelItem(t *config.Tunnel) api.ReloadItem {
	return api.ReloadItem{Tunnel: t.Name, TunnelID: t.Args.TunnelID}
}

func sessionItem(t *config.Tunnel, s *config.Session) api.ReloadItem {
	return api.ReloadItem{Tunnel: t.Name, Session: s.Name, TunnelID: t.Args.TunnelID, SessionID: s.Args.SessionID}
}

// errorAt is a refusal at a key of the next file.
func (d *differ) errorAt(t *config.Tunnel, s *config.Session, k string, format string, a ...any) error {
	e := &config.Error{Path: d.next.Path, Tunnel: t.Name, Err: fmt.Errorf(format, a...)}
	if s == nil {
		e.Line = d.next.LineOf("tunnel", t.Name, k)
	} else {
		e.Session = s.Name
		e.Line = d.next.LineOf("tunnel", t.Name, "session", s.Name, k)
	}
	return e
}

// checkIDs refuses ids the next file claims that are in use by objects
// added over the socket.
func (d *differ) checkIDs() error {
	for i := range d.next.Tunnels {
		t := &d.next.Tunnels[i]
		if d.run.Tunnels[t.Args.TunnelID] && d.prevT[t.Args.TunnelID] == nil {
			return d.errorAt(t, nil, "tid", "tid %d is in use by a tunnel %s", t.Args.TunnelID, socketNote)
		}
		for j := range t.Sessions {
			s := &t.Sessions[j]
			if _, ok := d.run.Sessions[key(s)]; ok && d.prevS[key(s)] == nil {
				return d.errorAt(t, s, "sid", "sid %d is in use by a session %s in tunnel %d",
					s.Args.SessionID, socketNote, t.Args.TunnelID)
			}
		}
	}
	return nil
}

// tunnel plans one tunnel of the next file.
func (d *differ) tunnel(t *config.Tunnel) error {
	tid := t.Args.TunnelID
	cfg, err := apiserver.TunnelConfig(&t.Args)
	if err != nil {
		return d.errorAt(t, nil, "", "%v", err)
	}
	old := d.prevT[tid]
	switch {
	case old == nil || !d.run.Tunnels[tid]:
		return d.addTunnel(t, cfg, Added)
	case !sameTunnel(old, cfg):
		sockets := d.socketSessions(tid)
		d.delTunnel(old, None, t)
		if err := d.addTunnel(t, cfg, Rebuilt); err != nil {
			return err
		}
		for _, rs := range sockets {
			c := rs.Config
			c.Name = rs.IfName
			d.addS = append(d.addS, Step{Op: AddSession, Report: Rebuilt, Session: c, Item: api.ReloadItem{
				Tunnel: t.Name, Session: socketSession, TunnelID: tid, SessionID: c.ID}})
		}
		return nil
	}
	d.unchanged++
	next := map[SessionKey]bool{}
	for i := range t.Sessions {
		next[key(&t.Sessions[i])] = true
	}
	for i := range old.Sessions {
		s := &old.Sessions[i]
		if _, running := d.run.Sessions[key(s)]; running && !next[key(s)] {
			d.delSession(old, s, Removed)
		}
	}
	for i := range t.Sessions {
		if err := d.session(old, t, &t.Sessions[i]); err != nil {
			return err
		}
	}
	return nil
}

// sameTunnel reports whether a tunnel of the file applied last has the
// configuration cfg.
func sameTunnel(old *config.Tunnel, cfg datapath.TunnelConfig) bool {
	c, err := apiserver.TunnelConfig(&old.Args)
	return err == nil && c == cfg
}

// socketSessions are the running sessions of tunnel tid that are not the
// file's, by id.
func (d *differ) socketSessions(tid uint32) []RunningSession {
	var ss []RunningSession
	for k, rs := range d.run.Sessions {
		if k.TunnelID == tid && d.prevS[k] == nil {
			ss = append(ss, rs)
		}
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].Config.ID < ss[j].Config.ID })
	return ss
}

// session plans a session of an unchanged tunnel; old is the tunnel in
// the file applied last.
func (d *differ) session(old, t *config.Tunnel, s *config.Session) error {
	prev := d.prevS[key(s)]
	if _, running := d.run.Sessions[key(s)]; prev == nil || !running {
		return d.addSession(t, s, Added)
	}
	switch {
	case prev.Args == s.Args:
		d.unchanged++
	case sameButSequencing(prev.Args, s.Args):
		m, err := modify(&s.Args)
		if err != nil {
			return d.errorAt(t, s, "seq", "%v", err)
		}
		d.mods = append(d.mods, Step{Op: ModifySession, Report: Modified, Item: sessionItem(t, s), Modify: m})
	default:
		d.delSession(old, prev, None)
		return d.addSession(t, s, Rebuilt)
	}
	return nil
}

// sameButSequencing reports whether a and b differ at most in what
// ModifySession changes: seq, reorder_timeout, lns_mode.
func sameButSequencing(a, b api.SessionArgs) bool {
	a.Seq, a.ReorderTimeout, a.LNSMode = "", 0, false
	b.Seq, b.ReorderTimeout, b.LNSMode = "", 0, false
	return a == b
}

// modify is the in-place change that gives a session a's sequencing.
func modify(a *api.SessionArgs) (datapath.SessionModify, error) {
	rt := a.ReorderTimeout
	lns := a.LNSMode
	return apiserver.SessionModify(&api.SetSessionArgs{TunnelID: a.TunnelID, SessionID: a.SessionID,
		Seq: seqWord(a.Seq), ReorderTimeout: &rt, LNSMode: &lns})
}

// seqWord is a session's seq word with "" spelled out, so a change to no
// sequencing is made.
func seqWord(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (d *differ) addTunnel(t *config.Tunnel, cfg datapath.TunnelConfig, r Report) error {
	d.addT = append(d.addT, Step{Op: AddTunnel, Report: r, Item: tunnelItem(t), Tunnel: cfg})
	for i := range t.Sessions {
		s := &t.Sessions[i]
		sr := Added
		if _, running := d.run.Sessions[key(s)]; running && r == Rebuilt && d.prevS[key(s)] != nil {
			sr = Rebuilt
		}
		if err := d.addSession(t, s, sr); err != nil {
			return err
		}
	}
	return nil
}

func (d *differ) addSession(t *config.Tunnel, s *config.Session, r Report) error {
	cfg, err := apiserver.SessionConfig(&s.Args)
	if err != nil {
		return d.errorAt(t, s, "", "%v", err)
	}
	st := Step{Op: AddSession, Report: r, Item: sessionItem(t, s), Session: cfg}
	if strings.Contains(s.Args.Name, "%") || s.Args.Name == "" {
		d.addAuto = append(d.addAuto, st)
	} else {
		d.addS = append(d.addS, st)
	}
	return nil
}

// delTunnel deletes a tunnel of the file applied last with its sessions.
// When the tunnel is rebuilt as next, its sessions that next keeps and
// those added over the socket are added again; the others are reported
// removed with it.
func (d *differ) delTunnel(t *config.Tunnel, r Report, next *config.Tunnel) {
	st := Step{Op: DelTunnel, Report: r, Item: tunnelItem(t)}
	kept := map[SessionKey]bool{}
	if next != nil {
		for i := range next.Sessions {
			kept[key(&next.Sessions[i])] = true
		}
	}
	for i := range t.Sessions {
		s := &t.Sessions[i]
		if _, running := d.run.Sessions[key(s)]; running && !kept[key(s)] {
			st.Also = append(st.Also, sessionItem(t, s))
		}
	}
	if next == nil {
		for _, rs := range d.socketSessions(t.Args.TunnelID) {
			st.Also = append(st.Also, api.ReloadItem{Tunnel: t.Name, Session: socketSession,
				TunnelID: rs.Config.TunnelID, SessionID: rs.Config.ID})
		}
	}
	if d.gone == nil {
		d.gone = map[uint32]bool{}
	}
	d.gone[t.Args.TunnelID] = true
	d.dels = append(d.dels, st)
}

func (d *differ) delSession(t *config.Tunnel, s *config.Session, r Report) {
	if d.delS == nil {
		d.delS = map[SessionKey]bool{}
	}
	d.delS[key(s)] = true
	d.dels = append(d.dels, Step{Op: DelSession, Report: r, Item: sessionItem(t, s)})
}

// checkNames refuses a session added with a fixed interface name that a
// running session keeps (one not deleted by the plan), or that a session
// re-added after its tunnel's rebuild takes.
func (d *differ) checkNames() error {
	taken := map[string]string{}
	for k, rs := range d.run.Sessions {
		if d.gone[k.TunnelID] || d.delS[k] {
			continue
		}
		owner := fmt.Sprintf("session %d in tunnel %d", k.SessionID, k.TunnelID)
		if d.prevS[k] == nil {
			owner += ", " + socketNote
		}
		taken[rs.IfName] = owner
	}
	for _, st := range d.addS {
		if st.Item.Session == socketSession {
			taken[st.Session.Name] = fmt.Sprintf("session %d in tunnel %d, %s", st.Session.ID, st.Session.TunnelID, socketNote)
		}
	}
	for _, st := range d.addS {
		if st.Item.Session == socketSession {
			continue
		}
		if owner, ok := taken[st.Session.Name]; ok {
			t, s := d.find(st.Item)
			return d.errorAt(t, s, "interface_name", "interface_name %q is in use by %s", st.Session.Name, owner)
		}
	}
	return nil
}

// find is the next file's tunnel and session of an item.
func (d *differ) find(it api.ReloadItem) (*config.Tunnel, *config.Session) {
	for i := range d.next.Tunnels {
		t := &d.next.Tunnels[i]
		if t.Name != it.Tunnel {
			continue
		}
		for j := range t.Sessions {
			if t.Sessions[j].Name == it.Session {
				return t, &t.Sessions[j]
			}
		}
		return t, nil
	}
	return &config.Tunnel{Name: it.Tunnel}, nil
}

// Apply carries out a plan, going on past a step that fails (a port in
// use, a TAP that cannot be made), and returns what was done, with an
// error naming every step that failed. Deleting what is already gone is
// not a failure; the sessions of a tunnel that could not be added are
// not tried.
func Apply(p *datapath.Plane, plan *Plan) (*api.ReloadResult, error) {
	res := &api.ReloadResult{Added: []api.ReloadItem{}, Removed: []api.ReloadItem{}, Rebuilt: []api.ReloadItem{},
		Modified: []api.ReloadItem{}, Unchanged: plan.Unchanged}
	failedTunnels := map[uint32]bool{}
	for _, st := range plan.Steps {
		var err error
		switch st.Op {
		case DelTunnel:
			if err = p.DelTunnel(st.Item.TunnelID); errors.Is(err, datapath.ErrNotFound) {
				err = nil
			}
		case DelSession:
			if err = p.DelSession(st.Item.TunnelID, st.Item.SessionID); errors.Is(err, datapath.ErrNotFound) {
				err = nil
			}
		case ModifySession:
			err = p.ModifySession(st.Item.TunnelID, st.Item.SessionID, st.Modify)
		case AddTunnel:
			if _, err = p.AddTunnel(st.Tunnel); err != nil {
				failedTunnels[st.Item.TunnelID] = true
			}
		case AddSession:
			if failedTunnels[st.Item.TunnelID] {
				err = fmt.Errorf("not added: tunnel %s was not added", st.Item.Tunnel)
			} else {
				_, err = p.AddSession(st.Session)
			}
		}
		if err != nil {
			res.Failed = append(res.Failed, fmt.Sprintf("%s %s: %v", st.Op, st.Item, err))
			continue
		}
		note(res, st.Report, st.Item)
		for _, it := range st.Also {
			note(res, Removed, it)
		}
	}
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("reload: %d of %d changes failed: %s", len(res.Failed), len(plan.Steps), strings.Join(res.Failed, "; "))
	}
	return res, nil
}

// note adds an item to res's list r.
func note(res *api.ReloadResult, r Report, it api.ReloadItem) {
	switch r {
	case Added:
		res.Added = append(res.Added, it)
	case Removed:
		res.Removed = append(res.Removed, it)
	case Rebuilt:
		res.Rebuilt = append(res.Rebuilt, it)
	case Modified:
		res.Modified = append(res.Modified, it)
	}
}
