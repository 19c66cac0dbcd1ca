package main

import (
	"fmt"
	"strconv"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

// usageError is a command line that does not parse.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// parse turns "add tunnel ...", "del session ...", etc. into a request.
func parse(args []string) (api.Request, error) {
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

func parseTunnel(words []string) (*api.TunnelArgs, error) {
	t := &api.TunnelArgs{}
	for i := 0; i < len(words); i += 2 {
		v, err := value(words, i)
		if err != nil {
			return nil, err
		}
		switch words[i] {
		case "tunnel_id", "tid":
			t.TunnelID, err = parseID("tunnel_id", v)
		case "peer_tunnel_id", "ptid":
			t.PeerTunnelID, err = parseID("peer_tunnel_id", v)
		case "encap":
			if v != "udp" && v != "ip" {
				err = fmt.Errorf("invalid encap %q: want ip or udp", v)
			}
			t.Encap = v
		case "local":
			t.Local = v
		case "remote":
			t.Remote = v
		case "udp_sport":
			t.UDPSport, err = parsePort("udp_sport", v)
		case "udp_dport":
			t.UDPDport, err = parsePort("udp_dport", v)
		case "udp_csum":
			var b bool
			b, err = parseOnOff("udp_csum", v)
			t.UDPCsum = &b
		case "udp6_csum_tx":
			var b bool
			b, err = parseOnOff("udp6_csum_tx", v)
			t.UDP6CsumTx = &b
		case "udp6_csum_rx":
			var b bool
			b, err = parseOnOff("udp6_csum_rx", v)
			t.UDP6CsumRx = &b
		default:
			return nil, usagef("unknown tunnel argument %q", words[i])
		}
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

func parseSession(words []string) (*api.SessionArgs, error) {
	s := &api.SessionArgs{}
	for i := 0; i < len(words); i += 2 {
		v, err := value(words, i)
		if err != nil {
			return nil, err
		}
		switch words[i] {
		case "name":
			s.Name = v
		case "tunnel_id", "tid":
			s.TunnelID, err = parseID("tunnel_id", v)
		case "session_id", "sid":
			s.SessionID, err = parseID("session_id", v)
		case "peer_session_id", "psid":
			s.PeerSessionID, err = parseID("peer_session_id", v)
		case "cookie":
			s.Cookie = v
		case "peer_cookie":
			s.PeerCookie = v
		case "l2spec_type":
			if v != "none" && v != "default" {
				err = fmt.Errorf("invalid l2spec_type %q: want none or default", v)
			}
			s.L2SpecType = v
		case "seq":
			if _, _, perr := api.ParseSeq(v); perr != nil {
				err = perr
			}
			s.Seq = v
		case "reorder_timeout":
			s.ReorderTimeout, err = parseMillis("reorder_timeout", v)
		case "lns_mode":
			s.LNSMode, err = parseOnOff("lns_mode", v)
		case "mtu":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 16)
			if err != nil {
				err = fmt.Errorf("invalid mtu %q", v)
			}
			s.MTU = int(n)
		case "offset", "peer_offset":
			if v != "0" {
				err = fmt.Errorf("invalid %s %q: only 0 is supported (the kernel ignores it too)", words[i], v)
			}
		default:
			return nil, usagef("unknown session argument %q", words[i])
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func parseSet(words []string) (*api.SetSessionArgs, error) {
	a := &api.SetSessionArgs{}
	for i := 0; i < len(words); i += 2 {
		v, err := value(words, i)
		if err != nil {
			return nil, err
		}
		switch words[i] {
		case "tunnel_id", "tid":
			a.TunnelID, err = parseID("tunnel_id", v)
		case "session_id", "sid":
			a.SessionID, err = parseID("session_id", v)
		case "seq":
			_, _, err = api.ParseSeq(v)
			a.Seq = v
		case "reorder_timeout":
			var n uint64
			n, err = parseMillis("reorder_timeout", v)
			a.ReorderTimeout = &n
		case "lns_mode":
			var b bool
			b, err = parseOnOff("lns_mode", v)
			a.LNSMode = &b
		default:
			return nil, usagef("unknown set session argument %q", words[i])
		}
		if err != nil {
			return nil, err
		}
	}
	if a.TunnelID == 0 || a.SessionID == 0 {
		return nil, usagef("tunnel_id and session_id: required")
	}
	return a, nil
}
