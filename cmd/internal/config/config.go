// Package config reads ul2tpd's TOML configuration file.
//
// The file uses go-l2tp's keys unchanged, so a static-tunnel file written for
// ql2tpd or kl2tpd runs as it is:
//
//	[tunnel.t1]
//	local = "10.0.0.1:1701"
//	peer = "10.0.0.2:1701"
//	version = "l2tpv3"
//	encap = "udp"
//	tid = 100
//	ptid = 200
//
//	[tunnel.t1.session.s1]
//	sid = 101
//	psid = 201
//	pseudowire = "eth"
//	cookie = [ 0x11, 0x22, 0x33, 0x44 ]
//	peer_cookie = [ 0x55, 0x66, 0x77, 0x88 ]
//	interface_name = "l2tpeth0"
//	l2spec_type = "default"
//	seqnum = false
//	reorder_timeout = 0
//
// An absent l2spec_type means none, as in go-l2tp (the ul2tp CLI follows
// iproute2, whose default is default). Keys of ours, documented in
// docs/config.md: udp_csum, udp6_csum_tx,
// udp6_csum_rx on a tunnel; seq, lns_mode, mtu and address on a session. go-l2tp's
// control-protocol keys (hello_timeout, window_size, ...) are accepted and
// ignored by static tunnels.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/cmd/internal/apiserver"
	"github.com/ul2tp/ul2tp/datapath"
)

// File is a parsed configuration file.
type File struct {
	// Path is the file Load read, "" from Parse.
	Path    string
	Tunnels []Tunnel
	// LNS is the [lns] table, nil if none; LACs are the tunnels with
	// version = "l2tpv2" (l2tpv2.go). Neither is in Tunnels.
	LNS   *LNS
	LACs  []LAC
	lines lines
}

// LineOf is the line of a key (as "tunnel", "t1", "tid"), else of the
// nearest table holding it, else 0.
func (f *File) LineOf(key ...string) int { return f.lines.lineOf(key...) }

// Tunnel is one [tunnel.NAME] table.
type Tunnel struct {
	Name string
	// Line is where the table starts, 0 if not known.
	Line     int
	Args     api.TunnelArgs
	Sessions []Session
}

// Session is one [tunnel.NAME.session.NAME] table.
type Session struct {
	Name string
	Line int
	Args api.SessionArgs
}

// Error is a mistake in a configuration file, with where it is: the file,
// the line (0 if not known) and the tunnel and session tables.
type Error struct {
	Path            string
	Line            int
	Tunnel, Session string
	Err             error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Path == "" {
		b.WriteString("config")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Tunnel != "" {
		fmt.Fprintf(&b, "tunnel %q", e.Tunnel)
		if e.Session != "" {
			fmt.Fprintf(&b, " session %q", e.Session)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// keyError is an error about one key of a table.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

func keyErrorf(key, format string, a ...any) error {
	return &keyError{key, fmt.Errorf(format, a...)}
}

// fileKeys names the file's key for an api field that differs from it.
var fileKeys = map[string]string{
	"tunnel_id": "tid", "peer_tunnel_id": "ptid", "remote": "peer", "udp_sport": "local", "udp_dport": "peer",
	"session_id": "sid", "peer_session_id": "psid", "name": "interface_name",
}

// keyOf is the file key an error is about, "" if not known.
func keyOf(err error) string {
	var ke *keyError
	if errors.As(err, &ke) {
		return ke.key
	}
	var fe *datapath.FieldError
	if errors.As(err, &fe) {
		if k, ok := fileKeys[fe.Field]; ok {
			return k
		}
		return fe.Field
	}
	return ""
}

type rawFile struct {
	Tunnel map[string]rawTunnel `toml:"tunnel"`
	LNS    *rawLNS              `toml:"lns"`
}

type rawTunnel struct {
	Local   string `toml:"local"`
	Peer    string `toml:"peer"`
	Version string `toml:"version"`
	Encap   string `toml:"encap"`
	TID     int64  `toml:"tid"`
	PTID    int64  `toml:"ptid"`
	// go-l2tp control protocol keys, ignored by static tunnels.
	WindowSize   int64    `toml:"window_size"`
	HelloTimeout int64    `toml:"hello_timeout"`
	RetryTimeout int64    `toml:"retry_timeout"`
	MaxRetries   int64    `toml:"max_retries"`
	HostName     string   `toml:"host_name"`
	FramingCaps  []string `toml:"framing_caps"`
	// Ours.
	UDPCsum    *bool `toml:"udp_csum"`
	UDP6CsumTx *bool `toml:"udp6_csum_tx"`
	UDP6CsumRx *bool `toml:"udp6_csum_rx"`

	// L2TPv2 (l2tpv2.go).
	Secret   string `toml:"secret"`
	HideAVPs bool   `toml:"hide_avps"`
	Redial   *bool  `toml:"redial"`
	TUNName  string `toml:"tun_name"` // PPP calls' TUN name pattern

	Session map[string]rawSession `toml:"session"`
}

type rawSession struct {
	SID            int64   `toml:"sid"`
	PSID           int64   `toml:"psid"`
	Pseudowire     string  `toml:"pseudowire"`
	SeqNum         bool    `toml:"seqnum"`
	ReorderTimeout int64   `toml:"reorder_timeout"`
	Cookie         []int64 `toml:"cookie"`
	PeerCookie     []int64 `toml:"peer_cookie"`
	InterfaceName  string  `toml:"interface_name"`
	L2SpecType     string  `toml:"l2spec_type"`
	// Ours.
	Seq     string `toml:"seq"`
	LNSMode bool   `toml:"lns_mode"`
	MTU     int    `toml:"mtu"`
	Address string `toml:"address"`
	// L2TPv2 LAC calls: PPP credentials (l2tpv2.go).
	User     string `toml:"user"`
	Password string `toml:"password"`
	rawPPPOptions
	// and their hooks (l2tpv2.go: hooks).
	rawHooks
	DefaultRoute bool   `toml:"default_route"`
	ResolvConf   string `toml:"resolv_conf"`
}

// Load reads and checks the file at path. A mistake in it is an *Error
// naming path and the line.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(string(b))
	var ce *Error
	if errors.As(err, &ce) {
		ce.Path = path
	}
	if err != nil {
		return nil, err
	}
	f.Path = path
	return f, nil
}

// Parse reads a configuration from text and checks it: every value, and
// that no two tunnels share a tid, no two sessions of a tunnel a sid, and
// no two sessions an interface_name. A mistake is an *Error.
func Parse(text string) (*File, error) {
	var raw rawFile
	md, err := toml.Decode(text, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Line: pe.Position.Line, Err: fmt.Errorf("toml: %s", pe.Message)}
		}
		return nil, &Error{Err: err}
	}
	pos := keyLines(text)
	if und := md.Undecoded(); len(und) > 0 {
		return nil, &Error{Line: pos.lineOf(und[0]...), Err: fmt.Errorf("unknown key %s", und[0])}
	}
	f := &File{lines: pos}
	names := make([]string, 0, len(raw.Tunnel))
	for n := range raw.Tunnel {
		names = append(names, n)
	}
	sort.Strings(names)
	if raw.LNS != nil {
		lns, err := convertLNS(*raw.LNS)
		if err != nil {
			return nil, &Error{Line: pos.lineOf("lns", keyOf(err)), Err: fmt.Errorf("lns: %w", err)}
		}
		lns.Line = pos.lineOf("lns")
		f.LNS = lns
	}
	for _, name := range names {
		if raw.Tunnel[name].Version == "l2tpv2" {
			lac, err := convertLAC(name, raw.Tunnel[name])
			if err != nil {
				return nil, tunnelError(pos, name, err)
			}
			lac.Line = pos.lineOf("tunnel", name)
			f.LACs = append(f.LACs, lac)
			continue
		}
		t, err := convertTunnel(name, raw.Tunnel[name])
		if err != nil {
			return nil, tunnelError(pos, name, err)
		}
		t.Line = pos.lineOf("tunnel", name)
		for i := range t.Sessions {
			t.Sessions[i].Line = pos.lineOf("tunnel", name, "session", t.Sessions[i].Name)
		}
		f.Tunnels = append(f.Tunnels, t)
	}
	if err := f.checkUnique(pos); err != nil {
		return nil, err
	}
	return f, nil
}

// sessionError is an error in a session's table.
type sessionError struct {
	name string
	err  error
}

func (e *sessionError) Error() string { return fmt.Sprintf("session %s: %v", e.name, e.err) }
func (e *sessionError) Unwrap() error { return e.err }

// checkUnique refuses a tid used by two tunnels, a sid by two sessions of
// a tunnel, or an interface_name by two sessions, naming the second (in
// file order) and the line of the first.
func (f *File) checkUnique(pos lines) error {
	tunnels := make(map[uint32]*Tunnel)
	ifnames := make(map[string]*Session)
	ifnameTunnel := make(map[*Session]string)
	for _, t := range f.byLine() {
		if o, ok := tunnels[t.Args.TunnelID]; ok {
			return &Error{Line: pos.lineOf("tunnel", t.Name, "tid"), Tunnel: t.Name,
				Err: fmt.Errorf("tid %d duplicates tunnel %q (line %d)", t.Args.TunnelID, o.Name, pos.lineOf("tunnel", o.Name, "tid"))}
		}
		tunnels[t.Args.TunnelID] = t
		sessions := make(map[uint32]*Session)
		for _, s := range sessionsByLine(t) {
			if o, ok := sessions[s.Args.SessionID]; ok {
				return &Error{Line: pos.lineOf("tunnel", t.Name, "session", s.Name, "sid"), Tunnel: t.Name, Session: s.Name,
					Err: fmt.Errorf("sid %d duplicates session %q (line %d)", s.Args.SessionID, o.Name,
						pos.lineOf("tunnel", t.Name, "session", o.Name, "sid"))}
			}
			sessions[s.Args.SessionID] = s
			if n := s.Args.Name; n != "" && !strings.Contains(n, "%") {
				if o, ok := ifnames[n]; ok {
					ot := ifnameTunnel[o]
					return &Error{Line: pos.lineOf("tunnel", t.Name, "session", s.Name, "interface_name"), Tunnel: t.Name, Session: s.Name,
						Err: fmt.Errorf("interface_name %q duplicates tunnel %q session %q (line %d)", n, ot, o.Name,
							pos.lineOf("tunnel", ot, "session", o.Name, "interface_name"))}
				}
				ifnames[n], ifnameTunnel[s] = s, t.Name
			}
		}
	}
	return nil
}

// byLine is f's tunnels in file order.
func (f *File) byLine() []*Tunnel {
	ts := make([]*Tunnel, len(f.Tunnels))
	for i := range f.Tunnels {
		ts[i] = &f.Tunnels[i]
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Line < ts[j].Line })
	return ts
}

// sessionsByLine is t's sessions in file order.
func sessionsByLine(t *Tunnel) []*Session {
	ss := make([]*Session, len(t.Sessions))
	for i := range t.Sessions {
		ss[i] = &t.Sessions[i]
	}
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].Line < ss[j].Line })
	return ss
}

func convertTunnel(name string, r rawTunnel) (Tunnel, error) {
	t := Tunnel{Name: name}
	switch r.Version {
	case "", "l2tpv3":
	default:
		return t, keyErrorf("version", "version %q: want l2tpv3 or l2tpv2", r.Version)
	}
	tid, err := id32("tid", r.TID)
	if err != nil {
		return t, err
	}
	ptid, err := id32("ptid", r.PTID)
	if err != nil {
		return t, err
	}
	a := api.TunnelArgs{TunnelID: tid, PeerTunnelID: ptid, Encap: r.Encap,
		UDPCsum: r.UDPCsum, UDP6CsumTx: r.UDP6CsumTx, UDP6CsumRx: r.UDP6CsumRx}
	if a.Local, a.UDPSport, err = hostPort("local", r.Local); err != nil {
		return t, err
	}
	if r.Peer == "" {
		return t, keyErrorf("peer", "peer: required")
	}
	if a.Remote, a.UDPDport, err = hostPort("peer", r.Peer); err != nil {
		return t, err
	}
	t.Args = a
	if _, err := apiserver.TunnelConfig(&a); err != nil {
		return t, err
	}
	names := make([]string, 0, len(r.Session))
	for n := range r.Session {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s, err := convertSession(n, tid, r.Session[n])
		if err != nil {
			return t, &sessionError{n, err}
		}
		t.Sessions = append(t.Sessions, s)
	}
	return t, nil
}

func convertSession(name string, tid uint32, r rawSession) (Session, error) {
	s := Session{Name: name}
	switch r.Pseudowire {
	case "", "eth":
	default:
		return s, keyErrorf("pseudowire", "pseudowire %q: only eth is supported for static sessions", r.Pseudowire)
	}
	sid, err := id32("sid", r.SID)
	if err != nil {
		return s, err
	}
	psid, err := id32("psid", r.PSID)
	if err != nil {
		return s, err
	}
	if r.ReorderTimeout < 0 {
		return s, keyErrorf("reorder_timeout", "reorder_timeout %d: must not be negative", r.ReorderTimeout)
	}
	// go-l2tp's default sublayer is none; the CLI's (iproute2's) is default.
	l2spec := r.L2SpecType
	if l2spec == "" {
		l2spec = "none"
	}
	a := api.SessionArgs{TunnelID: tid, SessionID: sid, PeerSessionID: psid,
		Name: r.InterfaceName, L2SpecType: l2spec, Seq: r.Seq, LNSMode: r.LNSMode,
		MTU: r.MTU, ReorderTimeout: uint64(r.ReorderTimeout), Address: r.Address}
	if r.SeqNum && a.Seq == "" {
		a.Seq = "both"
	}
	if a.Cookie, err = cookieHex("cookie", r.Cookie); err != nil {
		return s, err
	}
	if a.PeerCookie, err = cookieHex("peer_cookie", r.PeerCookie); err != nil {
		return s, err
	}
	s.Args = a
	if _, err := apiserver.SessionConfig(&a); err != nil {
		return s, err
	}
	return s, nil
}

func id32(field string, v int64) (uint32, error) {
	if v <= 0 || v > 0xffffffff {
		return 0, keyErrorf(field, "%s %d: must be 1..4294967295", field, v)
	}
	return uint32(v), nil
}

func cookieHex(field string, b []int64) (string, error) {
	if len(b) != 0 && len(b) != 4 && len(b) != 8 {
		return "", keyErrorf(field, "%s: %d bytes, want 4 or 8", field, len(b))
	}
	var sb strings.Builder
	for _, v := range b {
		if v < 0 || v > 255 {
			return "", keyErrorf(field, "%s: byte %d out of range", field, v)
		}
		fmt.Fprintf(&sb, "%02x", v)
	}
	return sb.String(), nil
}

// hostPort reads "ADDR", "ADDR:PORT" or "[V6ADDR]:PORT".
func hostPort(field, s string) (string, uint16, error) {
	if s == "" {
		return "", 0, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String(), ap.Port(), nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.String(), 0, nil
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			return "", 0, keyErrorf(field, "%s %q: not an IP address and port (host names are not resolved)", field, s)
		}
	}
	return "", 0, keyErrorf(field, "%s %q: not an IP address", field, s)
}

// tunnelError places an error converting tunnel name (or one of its
// sessions) at the line of the key it is about.
func tunnelError(pos lines, name string, err error) *Error {
	e := &Error{Tunnel: name, Err: err}
	var se *sessionError
	if errors.As(err, &se) {
		e.Session, e.Err = se.name, se.err
		e.Line = pos.sessionLine(name, se.name, keyOf(se.err))
	} else {
		e.Line = pos.lineOf("tunnel", name, keyOf(err))
	}
	return e
}
