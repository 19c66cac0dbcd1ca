package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ul2tp/ul2tp/control/engine"
	"github.com/ul2tp/ul2tp/control/ppp"
	pppauth "github.com/ul2tp/ul2tp/control/ppp/auth"
	pppcall "github.com/ul2tp/ul2tp/control/ppp/call"
)

// LNS is the [lns] table: the L2TPv2 LNS role.
type LNS struct {
	Line   int
	Config engine.LNSConfig
	ppp    string // the PPP keys, for SameL2TPv2
}

// LAC is a [tunnel.NAME] table with version = "l2tpv2": a tunnel our
// LAC dials to an LNS.
type LAC struct {
	Name   string
	Line   int
	Config engine.LACConfig
	ppp    string // the calls' PPP keys, for SameL2TPv2
}

type rawLNS struct {
	Listen        string   `toml:"listen"`
	Secret        string   `toml:"secret"`
	HideAVPs      bool     `toml:"hide_avps"`
	HostName      string   `toml:"host_name"`
	Peers         []string `toml:"peers"`
	PeerHostNames []string `toml:"peer_host_names"`
	HelloTimeout  int64    `toml:"hello_timeout"`
	RetryTimeout  int64    `toml:"retry_timeout"`
	MaxRetries    int64    `toml:"max_retries"`
	WindowSize    int64    `toml:"window_size"`
	MaxTunnels    int64    `toml:"max_tunnels"`
	MaxCalls      int64    `toml:"max_calls"`
	MaxPending    int64    `toml:"max_pending"`
	FramingCaps   []string `toml:"framing_caps"`
	// PPP on the calls (a TUN each).
	PPPAuth     string   `toml:"ppp_auth"`
	PPPName     string   `toml:"ppp_name"`
	ChapSecrets string   `toml:"chap_secrets"`
	LocalIP     string   `toml:"local_ip"`
	Pool        string   `toml:"pool"`
	DNS         []string `toml:"dns"`
	TUNName     string   `toml:"tun_name"`
	rawHooks
	rawPPPOptions
}

// rawPPPOptions are the PPP keys [lns] and a LAC's call share.
type rawPPPOptions struct {
	IPv6            *bool  `toml:"ipv6"`
	IPv6LocalID     string `toml:"ipv6_local_id"`
	LCPEchoInterval *int64 `toml:"lcp_echo_interval"`
	LCPEchoFailure  *int64 `toml:"lcp_echo_failure"`
	MTU             *int64 `toml:"mtu"`
	MRU             *int64 `toml:"mru"`
}

// The LCP keepalive defaults: an Echo-Request every 30 seconds, the call
// ended after 4 in a row go unanswered (pppd's lcp-echo-interval 30 and
// lcp-echo-failure 4, as xl2tpd setups commonly set them).
const (
	DefaultLCPEchoInterval = 30
	DefaultLCPEchoFailure  = 4
)

// DefaultMTU and DefaultMRU of a PPP call (pppd's mtu and mru): 1400, so
// that a frame and its L2TP, UDP, IP (v4 or v6) and IPsec ESP headers fit
// a 1500-byte path without fragments. PPP's own default, 1500, does not.
const (
	DefaultMTU = 1400
	DefaultMRU = 1400
)

// set reports whether any key is set.
func (r rawPPPOptions) set() string {
	switch {
	case r.IPv6 != nil:
		return "ipv6"
	case r.IPv6LocalID != "":
		return "ipv6_local_id"
	case r.LCPEchoInterval != nil:
		return "lcp_echo_interval"
	case r.LCPEchoFailure != nil:
		return "lcp_echo_failure"
	case r.MTU != nil:
		return "mtu"
	case r.MRU != nil:
		return "mru"
	}
	return ""
}

// String prints the keys as they were read, for SameL2TPv2.
func (r rawPPPOptions) String() string {
	f := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	ip6 := "-"
	if r.IPv6 != nil {
		ip6 = fmt.Sprint(*r.IPv6)
	}
	return fmt.Sprintf("%s %q %s %s %s %s", ip6, r.IPv6LocalID, f(r.LCPEchoInterval), f(r.LCPEchoFailure), f(r.MTU), f(r.MRU))
}

// convertOptions reads the PPP keys of [lns] or a LAC's call.
func convertOptions(r rawPPPOptions) (pppcall.Options, error) {
	var o pppcall.Options
	o.NoIPv6 = r.IPv6 != nil && !*r.IPv6
	if r.IPv6LocalID != "" {
		a, err := netip.ParseAddr(r.IPv6LocalID)
		b := a.As16()
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" || [8]byte(b[:8]) != [8]byte{} || [8]byte(b[8:]) == [8]byte{} {
			return o, keyErrorf("ipv6_local_id", "ipv6_local_id %q: want a non-zero interface identifier written ::X:X:X:X", r.IPv6LocalID)
		}
		if o.NoIPv6 {
			return o, keyErrorf("ipv6_local_id", "ipv6_local_id: set with ipv6 = false")
		}
		o.IPv6ID = [8]byte(b[8:])
	}
	iv, fl := int64(DefaultLCPEchoInterval), int64(DefaultLCPEchoFailure)
	if r.LCPEchoInterval != nil {
		iv = *r.LCPEchoInterval
	}
	if r.LCPEchoFailure != nil {
		fl = *r.LCPEchoFailure
	}
	if iv < 0 || iv > 3600 {
		return o, keyErrorf("lcp_echo_interval", "lcp_echo_interval %d: want 0..3600 seconds (0: no keepalives)", iv)
	}
	if fl < 1 || fl > 100 {
		return o, keyErrorf("lcp_echo_failure", "lcp_echo_failure %d: want 1..100 (lcp_echo_interval = 0 turns keepalives off)", fl)
	}
	o.EchoInterval, o.EchoFailures = time.Duration(iv)*time.Second, int(fl)
	for _, k := range []struct {
		key string
		v   *int64
		def int64
		to  *int
	}{{"mtu", r.MTU, DefaultMTU, &o.MTU}, {"mru", r.MRU, DefaultMRU, &o.MRU}} {
		n := k.def
		if k.v != nil {
			n = *k.v
		}
		if n < ppp.MinMRU || n > 65535 {
			return o, keyErrorf(k.key, "%s %d: want %d..65535 bytes", k.key, n, ppp.MinMRU)
		}
		*k.to = int(n)
	}
	return o, nil
}

// rawHooks are the ip-up, ip-down, ipv6-up and ipv6-down keys of [lns]
// and of a LAC's call.
type rawHooks struct {
	IPUp        string `toml:"ip_up"`
	IPDown      string `toml:"ip_down"`
	IPv6Up      string `toml:"ipv6_up"`
	IPv6Down    string `toml:"ipv6_down"`
	IPParam     string `toml:"ipparam"`
	HookTimeout int64  `toml:"hook_timeout"`
}

// params reads the control connection keys LNS and LAC share.
func params(secret string, hide bool, host string, hello, retry, retries, window, calls int64) (engine.Params, error) {
	p := engine.Params{Secret: secret, HideAVPs: hide, HostName: host}
	if hide && secret == "" {
		return p, keyErrorf("hide_avps", "hide_avps: needs a secret")
	}
	if p.HostName == "" {
		if h, err := os.Hostname(); err == nil {
			p.HostName = h
		}
	}
	if hello < 0 || hello > 3600_000 {
		return p, keyErrorf("hello_timeout", "hello_timeout %d: want 0..3600000 ms", hello)
	}
	p.HelloInterval = time.Duration(hello) * time.Millisecond
	if retry < 0 || retry > 60_000 {
		return p, keyErrorf("retry_timeout", "retry_timeout %d: want 0..60000 ms", retry)
	}
	p.RetryTimeout = time.Duration(retry) * time.Millisecond
	if retries < 0 || retries > 100 {
		return p, keyErrorf("max_retries", "max_retries %d: want 0..100", retries)
	}
	p.MaxRetries = int(retries)
	if window < 0 || window > 0xffff {
		return p, keyErrorf("window_size", "window_size %d: want 1..65535", window)
	}
	p.Window = uint16(window)
	if calls < 0 || calls > 0xffff {
		return p, keyErrorf("max_calls", "max_calls %d: want 1..65535", calls)
	}
	p.MaxCalls = int(calls)
	return p, nil
}

// addrPort reads "ADDR:PORT", "[V6]:PORT" or "ADDR" (port 1701).
func addrPort(field, s string) (netip.AddrPort, error) {
	a, port, err := hostPort(field, s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if port == 0 {
		port = engine.DefaultPort
	}
	return netip.AddrPortFrom(netip.MustParseAddr(a), port), nil
}

func convertLNS(r rawLNS) (*LNS, error) {
	p, err := params(r.Secret, r.HideAVPs, r.HostName, r.HelloTimeout, r.RetryTimeout, r.MaxRetries, r.WindowSize, r.MaxCalls)
	if err != nil {
		return nil, err
	}
	c := engine.LNSConfig{Params: p, PeerHostNames: r.PeerHostNames}
	if r.Listen == "" {
		r.Listen = "0.0.0.0:1701"
	}
	if c.Listen, err = addrPort("listen", r.Listen); err != nil {
		return nil, err
	}
	for _, s := range r.Peers {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, keyErrorf("peers", "peers %q: not an address or address range", s)
			}
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		c.Peers = append(c.Peers, pf.Masked())
	}
	for _, k := range []struct {
		key string
		v   int64
		to  *int
	}{{"max_tunnels", r.MaxTunnels, &c.MaxTunnels}, {"max_pending", r.MaxPending, &c.MaxPending}} {
		if k.v < 0 || k.v > 0xffff {
			return nil, keyErrorf(k.key, "%s %d: want 1..65535", k.key, k.v)
		}
		*k.to = int(k.v)
	}
	if err := checkFraming(r.FramingCaps); err != nil {
		return nil, err
	}
	if c.PPP, err = convertPPP(r); err != nil {
		return nil, err
	}
	h, err := hooks(r.rawHooks, false, "", c.PPP != nil)
	if err != nil {
		return nil, err
	}
	if c.PPP != nil {
		c.PPP.Hooks = h
	}
	c.TUNName = r.TUNName
	return &LNS{Config: c, ppp: fmt.Sprintf("%q %q %q %q %q %q %q %v %+v", r.PPPAuth, r.PPPName, r.ChapSecrets, r.LocalIP, r.Pool, r.DNS, r.TUNName, r.rawPPPOptions, r.rawHooks)}, nil
}

// convertPPP reads the [lns] keys of PPP: nil when neither local_ip nor
// pool is set (the calls record their frames, "ppp none").
func convertPPP(r rawLNS) (*pppcall.Server, error) {
	if r.LocalIP == "" && r.Pool == "" {
		for _, k := range []struct{ key, v string }{{"ppp_auth", r.PPPAuth}, {"chap_secrets", r.ChapSecrets}, {"ppp_name", r.PPPName}, {r.rawPPPOptions.set(), r.rawPPPOptions.set()}} {
			if k.v != "" {
				return nil, keyErrorf(k.key, "%s: PPP runs only with local_ip and pool", k.key)
			}
		}
		return nil, nil
	}
	s := &pppcall.Server{Name: r.PPPName}
	if s.Name == "" {
		s.Name = "*"
	}
	var err error
	if s.Options, err = convertOptions(r.rawPPPOptions); err != nil {
		return nil, err
	}
	if s.Local, err = netip.ParseAddr(r.LocalIP); err != nil || !s.Local.Is4() {
		return nil, keyErrorf("local_ip", "local_ip %q: want an IPv4 address", r.LocalIP)
	}
	if r.Pool == "" {
		return nil, keyErrorf("pool", "pool: required with local_ip")
	}
	if s.Pool, err = pppcall.ParsePool(r.Pool); err != nil {
		return nil, keyErrorf("pool", "%v", err)
	}
	if s.Pool.Contains(s.Local) {
		return nil, keyErrorf("local_ip", "local_ip %s: inside pool %s", s.Local, r.Pool)
	}
	if len(r.DNS) > 2 {
		return nil, keyErrorf("dns", "dns: at most two servers")
	}
	for i, d := range r.DNS {
		if s.DNS[i], err = netip.ParseAddr(d); err != nil || !s.DNS[i].Is4() {
			return nil, keyErrorf("dns", "dns %q: want an IPv4 address", d)
		}
	}
	auth := r.PPPAuth
	if auth == "" {
		auth = "none"
		if r.ChapSecrets != "" {
			auth = "mschap-v2"
		}
	}
	switch auth {
	case "none":
	case "pap":
		s.Method = &ppp.PAP
	case "chap":
		s.Method = &ppp.CHAPMD5
	case "mschap-v2":
		s.Method = &ppp.MSCHAPv2
	default:
		return nil, keyErrorf("ppp_auth", "ppp_auth %q: want pap, chap, mschap-v2 or none", r.PPPAuth)
	}
	if s.Method != nil {
		if r.ChapSecrets == "" {
			return nil, keyErrorf("chap_secrets", "chap_secrets: required with ppp_auth %s", auth)
		}
		if s.Secrets, err = pppauth.LoadSecrets(r.ChapSecrets); err != nil {
			return nil, keyErrorf("chap_secrets", "chap_secrets: %v", err)
		}
	}
	return s, nil
}

// hooks reads the ip-up/ip-down and ipv6-up/ipv6-down keys, and a LAC
// call's default_route and resolv_conf: nil when none is set. They need
// PPP on the calls.
func hooks(r rawHooks, defRoute bool, resolv string, isPPP bool) (*pppcall.Hooks, error) {
	h := &pppcall.Hooks{IPUp: r.IPUp, IPDown: r.IPDown, IPv6Up: r.IPv6Up, IPv6Down: r.IPv6Down, IPParam: r.IPParam,
		DefaultRoute: defRoute, ResolvConf: resolv}
	set := ""
	for _, k := range []struct {
		key string
		on  bool
	}{{"ip_up", r.IPUp != ""}, {"ip_down", r.IPDown != ""}, {"ipv6_up", r.IPv6Up != ""}, {"ipv6_down", r.IPv6Down != ""},
		{"ipparam", r.IPParam != ""}, {"hook_timeout", r.HookTimeout != 0}, {"default_route", defRoute}, {"resolv_conf", resolv != ""}} {
		if k.on && set == "" {
			set = k.key
		}
	}
	if set == "" {
		return nil, nil
	}
	if !isPPP {
		return nil, keyErrorf(set, "%s: needs PPP on the call (user and password; for [lns], local_ip and pool)", set)
	}
	for _, k := range []struct{ key, path string }{
		{"ip_up", r.IPUp}, {"ip_down", r.IPDown}, {"ipv6_up", r.IPv6Up}, {"ipv6_down", r.IPv6Down},
	} {
		if k.path == "" {
			continue
		}
		if !filepath.IsAbs(k.path) {
			return nil, keyErrorf(k.key, "%s %q: want an absolute path", k.key, k.path)
		}
		fi, err := os.Stat(k.path)
		if err != nil {
			return nil, keyErrorf(k.key, "%s: %v", k.key, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return nil, keyErrorf(k.key, "%s %q: not an executable file", k.key, k.path)
		}
	}
	if r.HookTimeout < 0 || r.HookTimeout > 3600_000 {
		return nil, keyErrorf("hook_timeout", "hook_timeout %d: want 0..3600000 ms", r.HookTimeout)
	}
	h.Timeout = time.Duration(r.HookTimeout) * time.Millisecond
	if resolv != "" {
		if !filepath.IsAbs(resolv) {
			return nil, keyErrorf("resolv_conf", "resolv_conf %q: want an absolute path", resolv)
		}
		if fi, err := os.Stat(filepath.Dir(resolv)); err != nil || !fi.IsDir() {
			return nil, keyErrorf("resolv_conf", "resolv_conf %q: no directory %s", resolv, filepath.Dir(resolv))
		}
	}
	return h, nil
}

func checkFraming(caps []string) error {
	for _, f := range caps {
		if f != "sync" && f != "async" {
			return keyErrorf("framing_caps", "framing_caps %q: want sync or async", f)
		}
	}
	return nil
}

// convertLAC reads an l2tpv2 tunnel table.
func convertLAC(name string, r rawTunnel) (LAC, error) {
	l := LAC{Name: name}
	switch {
	case r.TID != 0:
		return l, keyErrorf("tid", "tid: L2TPv2 tunnel ids are assigned by the daemon")
	case r.PTID != 0:
		return l, keyErrorf("ptid", "ptid: L2TPv2 tunnel ids are assigned by the daemon")
	case r.Encap != "" && r.Encap != "udp":
		return l, keyErrorf("encap", "encap %q: L2TPv2 runs over udp", r.Encap)
	case r.Peer == "":
		return l, keyErrorf("peer", "peer: required")
	}
	p, err := params(r.Secret, r.HideAVPs, r.HostName, r.HelloTimeout, r.RetryTimeout, r.MaxRetries, r.WindowSize, 0)
	if err != nil {
		return l, err
	}
	c := engine.LACConfig{Name: name, Params: p, NoRedial: r.Redial != nil && !*r.Redial}
	if c.Peer, err = addrPort("peer", r.Peer); err != nil {
		return l, err
	}
	if r.Local != "" {
		if c.Local, err = addrPort("local", r.Local); err != nil {
			return l, err
		}
		if c.Local.Addr().Is4() != c.Peer.Addr().Is4() {
			return l, keyErrorf("local", "local %s: not the same family as peer %s", c.Local, c.Peer)
		}
	}
	if err := checkFraming(r.FramingCaps); err != nil {
		return l, err
	}
	names := make([]string, 0, len(r.Session))
	for n := range r.Session {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rs := r.Session[n]
		if err := checkCall(rs); err != nil {
			return l, &sessionError{n, err}
		}
		c.Calls = append(c.Calls, n)
		isPPP := rs.User != "" || rs.Password != ""
		h, err := hooks(rs.rawHooks, rs.DefaultRoute, rs.ResolvConf, isPPP)
		if err != nil {
			return l, &sessionError{n, err}
		}
		if isPPP {
			if c.PPP == nil {
				c.PPP = make(map[string]*pppcall.Client)
			}
			if rs.MTU != 0 {
				// A session's mtu key (an L2TPv3 session's TAP MTU)
				// is the PPP call's mtu here.
				v := int64(rs.MTU)
				rs.rawPPPOptions.MTU = &v
			}
			o, err := convertOptions(rs.rawPPPOptions)
			if err != nil {
				return l, &sessionError{n, err}
			}
			c.PPP[n] = &pppcall.Client{User: rs.User, Password: rs.Password, Options: o, Hooks: h}
			l.ppp += fmt.Sprintf("%q %q %q %v %+v %v %q;", n, rs.User, rs.Password, rs.rawPPPOptions, rs.rawHooks, rs.DefaultRoute, rs.ResolvConf)
		} else if k := rs.rawPPPOptions.set(); k != "" {
			return l, &sessionError{n, keyErrorf(k, "%s: PPP runs on a call only with user and password", k)}
		}
	}
	c.TUNName = r.TUNName
	l.Config = c
	return l, nil
}

// checkCall refuses the static session keys in a call's table.
func checkCall(r rawSession) error {
	switch {
	case r.Pseudowire != "" && r.Pseudowire != "ppp":
		return keyErrorf("pseudowire", "pseudowire %q: an L2TPv2 call carries ppp", r.Pseudowire)
	case r.SID != 0:
		return keyErrorf("sid", "sid: L2TPv2 session ids are assigned by the daemon")
	case r.PSID != 0:
		return keyErrorf("psid", "psid: L2TPv2 session ids are assigned by the daemon")
	case len(r.Cookie) != 0 || len(r.PeerCookie) != 0:
		return keyErrorf("cookie", "cookie: L2TPv2 has no cookies")
	case r.InterfaceName != "":
		return keyErrorf("interface_name", "interface_name: an L2TPv2 call has no interface")
	}
	return nil
}

// SameL2TPv2 reports whether two files have the same L2TPv2 settings
// ([lns] and the l2tpv2 tunnels), which a reload cannot change.
func SameL2TPv2(a, b *File) error {
	la, lb := a.LNS != nil, b.LNS != nil
	if la != lb || (la && (lnsKey(a.LNS) != lnsKey(b.LNS) || a.LNS.ppp != b.LNS.ppp)) {
		return fmt.Errorf("[lns] changed: restart ul2tpd to change L2TPv2 settings")
	}
	if len(a.LACs) != len(b.LACs) {
		return fmt.Errorf("l2tpv2 tunnels changed: restart ul2tpd to change L2TPv2 settings")
	}
	for i := range a.LACs {
		if a.LACs[i].Name != b.LACs[i].Name || lacKey(&a.LACs[i]) != lacKey(&b.LACs[i]) || a.LACs[i].ppp != b.LACs[i].ppp {
			return fmt.Errorf("tunnel %q (l2tpv2) changed: restart ul2tpd to change L2TPv2 settings", b.LACs[i].Name)
		}
	}
	return nil
}

// lnsKey and lacKey print a configuration without its pointers (the PPP
// settings, compared as their keys' text).
func lnsKey(l *LNS) string {
	c := l.Config
	c.PPP = nil
	return fmt.Sprintf("%+v", c)
}

func lacKey(l *LAC) string {
	c := l.Config
	c.PPP = nil
	return fmt.Sprintf("%+v", c)
}
