// Command ul2tp drives ul2tpd with the words of iproute2's "ip l2tp", so a
// script written for the kernel ports by renaming the command:
//
//	ul2tp add tunnel tunnel_id 100 peer_tunnel_id 200 encap udp \
//		local 10.0.0.1 remote 10.0.0.2 udp_sport 1701 udp_dport 1701
//	ul2tp add session tunnel_id 100 session_id 101 peer_session_id 201
//	ul2tp -s show session
//	ul2tp -j show tunnel
//	ul2tp -j monitor
//	ul2tp reload
//
// Flags: -j (JSON), -p (pretty JSON), -s (statistics), -d (details: the
// dump of socket addresses and sequencing state), --socket PATH (or
// $UL2TP_SOCKET; default /run/ul2tp/ul2tpd.sock).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	json, pretty, stats bool
	details             bool
	socket              string
}

func run(args []string, stdout, stderr io.Writer) int {
	o := options{socket: os.Getenv("UL2TP_SOCKET")}
	if o.socket == "" {
		o.socket = api.DefaultSocket
	}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := strings.TrimLeft(args[0], "-")
		switch {
		case a == "j" || a == "json":
			o.json = true
		case a == "p" || a == "pretty":
			o.json, o.pretty = true, true
		case a == "s" || a == "stats" || a == "statistics":
			o.stats = true
		case a == "d" || a == "details":
			o.details = true
		case a == "socket":
			if len(args) < 2 {
				fmt.Fprintln(stderr, "ul2tp: --socket needs a path")
				return 2
			}
			o.socket = args[1]
			args = args[1:]
		case strings.HasPrefix(a, "socket="):
			o.socket = strings.TrimPrefix(a, "socket=")
		case a == "h" || a == "help":
			usage(stdout)
			return 0
		default:
			fmt.Fprintf(stderr, "ul2tp: unknown option %q\n", args[0])
			usage(stderr)
			return 2
		}
		args = args[1:]
	}
	if len(args) > 0 && args[0] == "l2tp" {
		args = args[1:] // accept "ul2tp l2tp add ..." as pasted from ip(8)
	}
	if len(args) == 0 || args[0] == "help" {
		usage(stdout)
		return 0
	}
	if args[0] == "monitor" {
		return monitor(o, args[1:], stdout, stderr)
	}
	req, err := parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "ul2tp:", err)
		var ue usageError
		if errors.As(err, &ue) {
			usage(stderr)
		}
		return 1
	}
	req.Stats = o.stats
	req.Details = o.details
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := api.Do(ctx, o.socket, req)
	if err != nil {
		fmt.Fprintln(stderr, "ul2tp:", err)
		return 1
	}
	if resp.Error != "" {
		if resp.Reload != nil { // what a reload did despite the error
			writeReload(stdout, stderr, resp.Reload, o)
		}
		fmt.Fprintf(stderr, "ul2tp: %s\n", resp.Error)
		return 1
	}
	switch req.Op {
	case api.OpShowTunnel:
		if o.json {
			return writeJSON(stdout, stderr, nonNil(resp.Tunnels), o.pretty)
		}
		for _, t := range resp.Tunnels {
			printTunnel(stdout, t)
		}
	case api.OpShowSession:
		if o.json {
			return writeJSON(stdout, stderr, nonNil(resp.Sessions), o.pretty)
		}
		for _, s := range resp.Sessions {
			printSession(stdout, s)
		}
	case api.OpReload:
		return writeReload(stdout, stderr, resp.Reload, o)
	}
	return 0
}

// writeReload writes what a reload did, as text or JSON.
func writeReload(stdout, stderr io.Writer, r *api.ReloadResult, o options) int {
	if r == nil {
		r = &api.ReloadResult{}
	}
	if o.json {
		return writeJSON(stdout, stderr, r, o.pretty)
	}
	printReload(stdout, r)
	return 0
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(stdout, stderr io.Writer, v any, pretty bool) int {
	var b []byte
	var err error
	if pretty {
		b, err = json.MarshalIndent(v, "", "    ")
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		fmt.Fprintln(stderr, "ul2tp:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: ul2tp [-j] [-p] [-s] [-d] [--socket PATH] OBJECT COMMAND
       ul2tp add tunnel tunnel_id ID peer_tunnel_id ID [ encap { ip | udp } ]
                  [ local ADDR ] remote ADDR [ udp_sport PORT ] [ udp_dport PORT ]
                  [ udp_csum { on | off } ] [ udp6_csum_tx { on | off } ]
                  [ udp6_csum_rx { on | off } ]
       ul2tp add session [ name NAME ] tunnel_id ID session_id ID peer_session_id ID
                  [ cookie HEXSTR ] [ peer_cookie HEXSTR ] [ l2spec_type { none | default } ]
                  [ seq { none | send | recv | both } ] [ reorder_timeout MS ]
                  [ lns_mode { on | off } ] [ mtu MTU ] [ address LLADDR ]
       ul2tp set session tunnel_id ID session_id ID [ seq { none | send | recv | both } ]
                  [ reorder_timeout MS ] [ lns_mode { on | off } ]
       ul2tp del tunnel tunnel_id ID
       ul2tp del session tunnel_id ID session_id ID
       ul2tp show tunnel [ tunnel_id ID ]
       ul2tp show session [ tunnel_id ID ] [ session_id ID ]
       ul2tp monitor [ -j ]
       ul2tp reload       (reread the daemon's --config file)

Where: NAME   := STRING
       ADDR   := { IP_ADDRESS | any }
       PORT   := { 0..65535 }
       ID     := { 1..4294967295 }
       HEXSTR := { 8 or 16 hex digits (4 / 8 bytes) }
       LLADDR := { unicast Ethernet address, as 02:00:00:00:00:01 }
The daemon's socket is --socket, else $UL2TP_SOCKET, else /run/ul2tp/ul2tpd.sock.
`)
}
