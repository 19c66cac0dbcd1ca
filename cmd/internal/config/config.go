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
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/cmd/internal/apiserver"
)

// File is a parsed configuration file.
type File struct {
	Tunnels []Tunnel
}

// Tunnel is one [tunnel.NAME] table.
type Tunnel struct {
	Name     string
	Args     api.TunnelArgs
	Sessions []Session
}

// Session is one [tunnel.NAME.session.NAME] table.
type Session struct {
	Name string
	Args api.SessionArgs
}

type rawFile struct {
	Tunnel map[string]rawTunnel `toml:"tunnel"`
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
}

// Load reads and checks the file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return f, nil
}

// Parse reads a configuration from text.
func Parse(text string) (*File, error) {
	var raw rawFile
	md, err := toml.Decode(text, &raw)
	if err != nil {
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("unknown key %s", und[0])
	}
	f := &File{}
	names := make([]string, 0, len(raw.Tunnel))
	for n := range raw.Tunnel {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t, err := convertTunnel(name, raw.Tunnel[name])
		if err != nil {
			return nil, fmt.Errorf("tunnel %s: %w", name, err)
		}
		f.Tunnels = append(f.Tunnels, t)
	}
	return f, nil
}

func convertTunnel(name string, r rawTunnel) (Tunnel, error) {
	t := Tunnel{Name: name}
	switch r.Version {
	case "", "l2tpv3":
	case "l2tpv2":
		return t, fmt.Errorf("version l2tpv2: static L2TPv2 tunnels are not supported yet")
	default:
		return t, fmt.Errorf("version %q: want l2tpv3", r.Version)
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
		return t, fmt.Errorf("peer: required")
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
			return t, fmt.Errorf("session %s: %w", n, err)
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
		return s, fmt.Errorf("pseudowire %q: only eth is supported for static sessions", r.Pseudowire)
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
		return s, fmt.Errorf("reorder_timeout %d: must not be negative", r.ReorderTimeout)
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
		return 0, fmt.Errorf("%s %d: must be 1..4294967295", field, v)
	}
	return uint32(v), nil
}

func cookieHex(field string, b []int64) (string, error) {
	if len(b) != 0 && len(b) != 4 && len(b) != 8 {
		return "", fmt.Errorf("%s: %d bytes, want 4 or 8", field, len(b))
	}
	var sb strings.Builder
	for _, v := range b {
		if v < 0 || v > 255 {
			return "", fmt.Errorf("%s: byte %d out of range", field, v)
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
			return "", 0, fmt.Errorf("%s %q: not an IP address and port (host names are not resolved)", field, s)
		}
	}
	return "", 0, fmt.Errorf("%s %q: not an IP address", field, s)
}
