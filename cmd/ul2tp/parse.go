package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// usageError is a command line that does not parse.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// parse turns "add tunnel ...", "del session ...", etc. into a request.
func parse(args []string) (api.Request, error) {
	if len(args) > 0 && args[0] == "reload" {
		if len(args) > 1 {
			return api.Request{}, usagef("reload: unexpected argument %q", args[1])
		}
		return api.Request{Op: api.OpReload}, nil
	}
	if len(args) < 2 {
		return api.Request{}, usagef("expected COMMAND OBJECT, as in \"add tunnel\"")
	}
	verb, object, words := args[0], args[1], args[2:]
	switch verb {
	case "add", "a":
		verb = "add"
	case "del", "delete", "d":
		verb = "del"
	case "show", "list", "ls", "lst", "s":
		verb = "show"
	case "set", "change", "modify":
		verb = "set"
	default:
		return api.Request{}, usagef("unknown command %q: want add, del, set or show", verb)
	}
	if verb == "set" {
		if object != "session" && object != "s" {
			return api.Request{}, usagef("set: only sessions can be changed")
		}
		a, err := parseSet(words)
		if err != nil {
			return api.Request{}, err
		}
		return api.Request{Op: api.OpSetSession, Set: a}, nil
	}
	switch object {
	case "tunnel", "t":
		t, err := parseTunnel(words)
		if err != nil {
			return api.Request{}, err
		}
		switch verb {
		case "add":
			if t.TunnelID == 0 {
				return api.Request{}, usagef("tunnel_id: required")
			}
			if t.PeerTunnelID == 0 {
				return api.Request{}, usagef("peer_tunnel_id: required")
			}
			if t.Remote == "" {
				return api.Request{}, usagef("remote: required")
			}
			return api.Request{Op: api.OpAddTunnel, Tunnel: t}, nil
		case "del":
			if t.TunnelID == 0 {
				return api.Request{}, usagef("tunnel_id: required")
			}
			return api.Request{Op: api.OpDelTunnel, Tunnel: t}, nil
		default:
			return api.Request{Op: api.OpShowTunnel, Tunnel: t}, nil
		}
	case "session", "s":
		s, err := parseSession(words)
		if err != nil {
			return api.Request{}, err
		}
		switch verb {
		case "add":
			if s.TunnelID != 0 && s.SessionID == 0 && s.PeerSessionID == 0 {
				// A call on an L2TPv2 tunnel, whose ids the control
				// protocol assigns; the daemon refuses it on L2TPv3.
				return api.Request{Op: api.OpAddSession, Session: s}, nil
			}
			for _, f := range []struct {
				name string
				v    uint32
			}{{"tunnel_id", s.TunnelID}, {"session_id", s.SessionID}, {"peer_session_id", s.PeerSessionID}} {
				if f.v == 0 {
					return api.Request{}, usagef("%s: required", f.name)
				}
			}
			return api.Request{Op: api.OpAddSession, Session: s}, nil
		case "del":
			if s.TunnelID == 0 || s.SessionID == 0 {
				return api.Request{}, usagef("tunnel_id and session_id: required")
			}
			return api.Request{Op: api.OpDelSession, Session: s}, nil
		default:
			return api.Request{Op: api.OpShowSession, Session: s}, nil
		}
	}
	return api.Request{}, usagef("unknown object %q: want tunnel or session", object)
}

// value returns the word after words[i] or an error naming it.
func value(words []string, i int) (string, error) {
	if i+1 >= len(words) {
		return "", usagef("%s: needs a value", words[i])
	}
	return words[i+1], nil
}

func parseID(name, v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 0, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid %s %q: want 1..4294967295", name, v)
	}
	return uint32(n), nil
}

func parsePort(name, v string) (uint16, error) {
	n, err := strconv.ParseUint(v, 0, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q: want 0..65535", name, v)
	}
	return uint16(n), nil
}

func parseMillis(name, v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid %s %q: want milliseconds", name, v)
	}
	return n, nil
}

func parseOnOff(name, v string) (bool, error) {
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid %s %q: want on or off", name, v)
}

// setters maps an argument's word (and its aliases) to what parses and
// stores its value.
type setters map[string]func(v string) error

// alias makes each of names another word for the argument word.
func (s setters) alias(word string, names ...string) {
	for _, n := range names {
		s[n] = s[word]
	}
}

// parseWords parses "WORD VALUE" pairs with set; what names the object in
// the error for an unknown word.
func parseWords(what string, words []string, set setters) error {
	for i := 0; i < len(words); i += 2 {
		v, err := value(words, i)
		if err != nil {
			return err
		}
		f, ok := set[words[i]]
		if !ok {
			return usagef("unknown %s argument %q", what, words[i])
		}
		if err := f(v); err != nil {
			return err
		}
	}
	return nil
}

func setID(name string, p *uint32) func(string) error {
	return func(v string) (err error) { *p, err = parseID(name, v); return err }
}

func setPort(name string, p *uint16) func(string) error {
	return func(v string) (err error) { *p, err = parsePort(name, v); return err }
}

func setString(p *string) func(string) error {
	return func(v string) error { *p = v; return nil }
}

// setOneOf stores a value that must be one of want, listed in the error.
func setOneOf(name string, p *string, want ...string) func(string) error {
	return func(v string) error {
		for _, w := range want {
			if v == w {
				*p = v
				return nil
			}
		}
		return fmt.Errorf("invalid %s %q: want %s or %s", name, v, strings.Join(want[:len(want)-1], ", "), want[len(want)-1])
	}
}

func setOnOff(name string, p *bool) func(string) error {
	return func(v string) (err error) { *p, err = parseOnOff(name, v); return err }
}

// setOnOffPtr stores an on/off value that may be left unset.
func setOnOffPtr(name string, p **bool) func(string) error {
	return func(v string) error {
		b, err := parseOnOff(name, v)
		*p = &b
		return err
	}
}

func setSeq(p *string) func(string) error {
	return func(v string) error {
		_, _, err := api.ParseSeq(v)
		*p = v
		return err
	}
}

func parseTunnel(words []string) (*api.TunnelArgs, error) {
	t := &api.TunnelArgs{}
	set := setters{
		"tunnel_id":      setID("tunnel_id", &t.TunnelID),
		"peer_tunnel_id": setID("peer_tunnel_id", &t.PeerTunnelID),
		"encap":          setOneOf("encap", &t.Encap, "ip", "udp"),
		"local":          setString(&t.Local),
		"remote":         setString(&t.Remote),
		"udp_sport":      setPort("udp_sport", &t.UDPSport),
		"udp_dport":      setPort("udp_dport", &t.UDPDport),
		"udp_csum":       setOnOffPtr("udp_csum", &t.UDPCsum),
		"udp6_csum_tx":   setOnOffPtr("udp6_csum_tx", &t.UDP6CsumTx),
		"udp6_csum_rx":   setOnOffPtr("udp6_csum_rx", &t.UDP6CsumRx),
	}
	set.alias("tunnel_id", "tid")
	set.alias("peer_tunnel_id", "ptid")
	if err := parseWords("tunnel", words, set); err != nil {
		return nil, err
	}
	return t, nil
}

func parseSession(words []string) (*api.SessionArgs, error) {
	s := &api.SessionArgs{}
	set := setters{
		"name":            setString(&s.Name),
		"tunnel_id":       setID("tunnel_id", &s.TunnelID),
		"session_id":      setID("session_id", &s.SessionID),
		"peer_session_id": setID("peer_session_id", &s.PeerSessionID),
		"cookie":          setString(&s.Cookie),
		"peer_cookie":     setString(&s.PeerCookie),
		"l2spec_type":     setOneOf("l2spec_type", &s.L2SpecType, "none", "default"),
		"seq":             setSeq(&s.Seq),
		"reorder_timeout": func(v string) (err error) {
			s.ReorderTimeout, err = parseMillis("reorder_timeout", v)
			return err
		},
		"lns_mode": setOnOff("lns_mode", &s.LNSMode),
		"mtu": func(v string) error {
			// The daemon's range (datapath.SessionConfig.Check); 0 is
			// the default, derived from the path MTU.
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n != 0 && (n < 68 || n > 65471) {
				return fmt.Errorf("invalid mtu %q: want 68..65471, or 0 for the path MTU less the overhead", v)
			}
			s.MTU = int(n)
			return nil
		},
		"address": func(v string) error {
			mac, err := net.ParseMAC(v)
			if err != nil || len(mac) != 6 {
				return fmt.Errorf("invalid address %q: want an Ethernet address, as 02:00:00:00:00:01", v)
			}
			s.Address = mac.String()
			return nil
		},
	}
	for _, w := range []string{"offset", "peer_offset"} {
		set[w] = func(v string) error {
			if v != "0" {
				return fmt.Errorf("invalid %s %q: only 0 is supported (the kernel ignores it too)", w, v)
			}
			return nil
		}
	}
	set.alias("tunnel_id", "tid")
	set.alias("session_id", "sid")
	set.alias("peer_session_id", "psid")
	if err := parseWords("session", words, set); err != nil {
		return nil, err
	}
	return s, nil
}

func parseSet(words []string) (*api.SetSessionArgs, error) {
	a := &api.SetSessionArgs{}
	set := setters{
		"tunnel_id":  setID("tunnel_id", &a.TunnelID),
		"session_id": setID("session_id", &a.SessionID),
		"seq":        setSeq(&a.Seq),
		"reorder_timeout": func(v string) error {
			n, err := parseMillis("reorder_timeout", v)
			a.ReorderTimeout = &n
			return err
		},
		"lns_mode": setOnOffPtr("lns_mode", &a.LNSMode),
	}
	set.alias("tunnel_id", "tid")
	set.alias("session_id", "sid")
	if err := parseWords("set session", words, set); err != nil {
		return nil, err
	}
	if a.TunnelID == 0 || a.SessionID == 0 {
		return nil, usagef("tunnel_id and session_id: required")
	}
	return a, nil
}
