#!/usr/bin/env bash
# v2-interop.sh — ul2tpd's L2TPv2 control plane (LNS and LAC roles) against
# two implementations nobody on the project wrote, xl2tpd and l2tpns, each
# run in a network namespace by the v2-peers harness
# (shared/harness/v2-peers, see its README.md).
#
#   bash cmd/interop/v2-interop.sh [BINDIR] [HARNESSDIR]      (make interop-v2)
#
# BINDIR holds ul2tpd and ul2tp [./bin]. HARNESSDIR is shared/harness or
# shared/harness/v2-peers [../shared/harness]. Skips (exit 0) when not root
# or when the harness is missing.
#
# Namespaces PREFIX-a (10.203.0.1, the LAC side) and PREFIX-b (10.203.0.2,
# the LNS side), one veth pair between them, nothing in the root namespace.
# Every case starts its peer, ul2tpd and a tcpdump on the veth, and tears
# them down (by PID, or the harness' `down NS`) before the next one.
#
# Cases (a = 10.203.0.1, b = 10.203.0.2):
#   xlac-plain        xl2tpd LAC (a) -> our LNS (b), no secret: tunnel, call
#                     up, xl2tpd's CDN when its pppd dies, tunnel stays,
#                     xl2tpd's StopCCN removes it
#   xlac-secret       the same with a tunnel secret, both sides challenge
#   xlac-hidden-shim  secret, xl2tpd's "hidden bit" (Random Vectors),
#                     PPPD_MODE=shim: the call stays up; our `ul2tp del
#                     session` sends the CDN
#   xlac-badsecret    our LNS challenges, xl2tpd answers with a wrong secret:
#                     we refuse (StopCCN result 4) and say so
#   xlac-badsecret-peer  xl2tpd challenges us, our secret is wrong for it:
#                     xl2tpd refuses (StopCCN result 2), our log reports it
#   lac-xlns          our LAC (a) -> xl2tpd LNS (b): tunnel, call up,
#                     xl2tpd's CDN; `ul2tp del tunnel` sends StopCCN
#   lac-xlns-shim     the same with PPPD_MODE=shim: the call stays up, our
#                     HELLO (hello_timeout 2 s) is acked; xl2tpd's StopCCN
#                     (its control pipe, "d TID") removes tunnel and call
#   lac-l2tpns        our LAC -> l2tpns: tunnel, call, HELLO after idle,
#                     `ul2tp del tunnel`; then a new tunnel that l2tpns
#                     drops (its CLI "drop tunnel") and we remove
#
# Environment:
#   V2_PREFIX   namespace prefix [ul2v2]
#   V2_OUT      results dir: per case ul2tpd log, config, events, pcap and
#               the control messages as hex in control/testdata/golden's
#               format (CASE.txt) [/tmp/ul2tp-v2interop/DATE]
#   V2_ONLY     comma-separated case names to run (default: all)
# The last line is "N passed, M failed" (counting checks); exit 1 if M > 0.
set -uo pipefail

BIN=$(cd "${1:-./bin}" 2>/dev/null && pwd) || { echo "v2-interop: no such BINDIR: ${1:-./bin}" >&2; exit 1; }
HDIR=${2:-../shared/harness}
if [ -f "$HDIR/xl2tpd-peer.sh" ]; then H=$HDIR
elif [ -f "$HDIR/v2-peers/xl2tpd-peer.sh" ]; then H=$HDIR/v2-peers
else echo "v2-interop: skipped: v2-peers harness not found under $HDIR"; exit 0; fi
H=$(cd "$H" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "v2-interop: skipped: needs root (network namespaces, port 1701)"; exit 0; }
for b in ul2tpd ul2tp; do [ -x "$BIN/$b" ] || { echo "v2-interop: $BIN/$b missing: make build" >&2; exit 1; }; done
for c in jq tcpdump tshark python3; do
	command -v $c >/dev/null || { echo "v2-interop: $c missing (bash $H/setup.sh installs tshark and tcpdump; apt-get install jq)" >&2; exit 1; }
done

P=${V2_PREFIX:-ul2v2}
NSA=$P-a NSB=$P-b A=10.203.0.1 B=10.203.0.2
OUT=${V2_OUT:-/tmp/ul2tp-v2interop/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
export V2P_RUN=$OUT/peers # the harness' state, configs and logs

DPID="" MPID="" TPID="" CASE="" SOCK="" DLOG="" PEERS=()
stop_pid() { # PID: TERM, wait (bounded), then KILL; only that PID
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
stop_daemon() { stop_pid "$MPID"; MPID=""; stop_pid "$DPID"; DPID=""; }
stop_peers() { # the harness' own down, per namespace we started it in
	local p
	for p in "${PEERS[@]}"; do
		bash "$H/${p%% *}-peer.sh" down "${p#* }" >/dev/null 2>&1
		# the harness reuses its state dir per namespace: keep this case's log
		cp "$V2P_RUN/${p%% *}.${p#* }/${p%% *}.log" "$OUT/$CASE.${p%% *}.log" 2>/dev/null
	done
	PEERS=()
}
stop_capture() { stop_pid "$TPID"; TPID=""; }
cleanup() {
	stop_daemon
	stop_peers
	stop_capture
	bash "$H/netns.sh" down "$P" >/dev/null 2>&1 || echo "v2-interop: WARNING: netns.sh down $P failed" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASS=0 FAIL=0 CASEFAIL=0
SUMMARY=()
ok()  { PASS=$((PASS + 1)); printf '   PASS  %s: %s\n' "$CASE" "$*"; }
bad() { # also keeps our view at that moment in NAME.fail
	FAIL=$((FAIL + 1)) CASEFAIL=$((CASEFAIL + 1))
	printf '   FAIL  %s: %s\n' "$CASE" "$*"
	[ -S "${SOCK:-}" ] && { echo "== $*"; ul -j show tunnel; ul -j show session; } >>"$OUT/$CASE.fail" 2>&1
}
check() { # DESCRIPTION CMD... : PASS if CMD succeeds
	local d=$1; shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}
wait_until() { # SECONDS CMD... : poll CMD every 0.2 s
	local n=$(($1 * 5)); shift
	while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; n=$((n - 1)); done
	return 1
}

ul() { ip netns exec "$UNS" "$BIN/ul2tp" --socket "$SOCK" "$@"; }
# v2t JQ: JQ applied to the array of our L2TPv2 tunnels
v2t() { ul -j show tunnel 2>/dev/null | jq -e "[.[] | select(.version == 2)] | $1"; }
v2s() { ul -j show session 2>/dev/null | jq -e "[.[] | select(.version == 2)] | $1"; }
tunnel_up() { # ROLE HOST: one established tunnel, of ROLE, to HOST
	v2t "map(select(.control.state == \"established\")) | length == 1 and .[0].control.role == \"$1\" and .[0].control.peer_host_name == \"$2\"" >/dev/null
}
# no_tunnel: none left, or only a LAC's idle/closed entry (a LAC that does
# not redial stays listed with its last result)
no_tunnel() { v2t 'all(.[]; .control.state == "idle" or .control.state == "closed")' >/dev/null; }
# live TUNNEL-JQ: JQ on the established tunnel
live() { v2t "map(select(.control.state == \"established\")) | .[0] | $1"; }
call_up() { v2s 'length == 1 and .[0].call.state == "established"' >/dev/null; }
no_call() { v2s 'length == 0' >/dev/null; }
# peer_closed WHO: after the peer's StopCCN our tunnel is down at once (log
# "l2tpv2 tunnel down ... by=peer"), lingers closing one retransmission
# cycle to re-ack (RFC 2661 5.7), then is forgotten
peer_closed() {
	check "$1's StopCCN: our tunnel is down (log 'l2tpv2 tunnel down ... by=peer', no longer established)" \
		wait_until 5 eval "logged 'l2tpv2 tunnel down.*by=peer' && ! v2t 'any(.[]; .control.state == \"established\")'"
	check "and forgotten after the closing linger" wait_until 30 no_tunnel
}
logged() { grep -qiE "$1" "$DLOG"; } # ERE in ul2tpd's log
peer_log() { grep -qE "$2" "$V2P_RUN/xl2tpd.$1/xl2tpd.log"; }
show_state() {
	ul show tunnel 2>&1 | sed 's/^/      /'
	ul show session 2>&1 | sed 's/^/      /'
}

# start_case NAME: capture on the veth (LNS side) into NAME.pcap
start_case() {
	CASE=$1 CASEFAIL=0 STARTED=0 SOCK=$OUT/$1.sock DLOG=$OUT/$1.ul2tpd.log
	printf '\n== %s\n' "$1"
	ip netns exec "$NSB" tcpdump -q -U -i "${P}b0" -w "$OUT/$1.pcap" udp port 1701 >"$OUT/$1.tcpdump.log" 2>&1 &
	TPID=$!
	wait_until 5 grep -q "listening on" "$OUT/$1.tcpdump.log"
}
# start_daemon NS CONFIG-TEXT: ul2tpd in NS with that config, debug log,
# `ul2tp monitor -j` into NAME.events
start_daemon() {
	UNS=$1
	printf '%s\n' "$2" >"$OUT/$CASE.toml"
	ip netns exec "$UNS" "$BIN/ul2tpd" --socket "$SOCK" --config "$OUT/$CASE.toml" --log-level debug 2>>"$DLOG" &
	DPID=$! STARTED=1
	if ! wait_until 5 test -S "$SOCK"; then bad "ul2tpd did not start"; tail -5 "$DLOG"; return 1; fi
	ip netns exec "$UNS" "$BIN/ul2tp" --socket "$SOCK" monitor -j >>"$OUT/$CASE.events" 2>&1 &
	MPID=$!
}
# peer KIND NS ARGS... : the harness' KIND-peer.sh up NS ARGS (environment passes)
peer() {
	local kind=$1 ns=$2; shift 2
	PEERS+=("$kind $ns")
	printf '   + %s\n' "${PEER_ENV:+$PEER_ENV }$kind-peer.sh up $ns $*"
	env ${PEER_ENV:-} bash "$H/$kind-peer.sh" up "$ns" "$@" >>"$OUT/$CASE.peer.log" 2>&1 ||
		{ bad "$kind-peer.sh up failed: $(tail -1 "$OUT/$CASE.peer.log")"; return 1; }
}
# end_case: stop everything, write the control messages as hex (golden
# format) and decoded (NAME.msgs), check ul2tpd's log for errors
end_case() {
	stop_daemon
	stop_peers
	sleep 0.5
	stop_capture
	msgs
	echo "      messages: $(awk '{printf "%s ", $1}' "$OUT/$CASE.msgs")"
	if [ "$STARTED" = 0 ]; then
		:
	elif grep -E 'level=ERROR|panic|DATA RACE' "$DLOG" >/dev/null; then
		bad "ul2tpd log has errors: $(grep -m1 -E 'level=ERROR|panic|DATA RACE' "$DLOG" | cut -c1-160)"
	else
		ok "ul2tpd log has no ERROR/panic (shutdown included)"
	fi
	if [ $CASEFAIL -eq 0 ]; then SUMMARY+=("$CASE PASS"); else SUMMARY+=("$CASE FAIL($CASEFAIL)"); fi
}
# msgs: the control messages captured so far, as hex in
# control/testdata/golden's format (NAME.txt) and decoded (NAME.msgs)
msgs() {
	{
		echo "# $CASE: a $A ($(sed -n 's/^# a: //p' "$OUT/$CASE.toml")) <-> b $B ($(sed -n 's/^# b: //p' "$OUT/$CASE.toml"))"
		echo "# cmd/interop/v2-interop.sh, V2_ONLY=$CASE, $(date -u '+%Y-%m-%d')"
		tshark -r "$OUT/$CASE.pcap" -T fields -e ip.src -e udp.payload 2>/dev/null |
			awk -v a="$A" '{d = ($1 == a) ? "a>b" : "b>a"; gsub(":", "", $2)
			  if (substr($2, 1, 1) ~ /[89a-f]/) print d, $2}'
	} >"$OUT/$CASE.txt"
	decode "$OUT/$CASE.txt" >"$OUT/$CASE.msgs"
}
# decode FILE.txt: one line per control message,
#   a:SCCRQ avp:2 avp:3 ... hid:36 res:4/0
# (from a or b, its AVP types, hidden ones as hid:, Result Code as res:R/E)
decode() {
	python3 - "$1" <<'PY'
import sys
names = {1: "SCCRQ", 2: "SCCRP", 3: "SCCCN", 4: "StopCCN", 6: "HELLO", 7: "OCRQ", 8: "OCRP",
         9: "OCCN", 10: "ICRQ", 11: "ICRP", 12: "ICCN", 14: "CDN", 15: "WEN", 16: "SLI"}
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    d, h = line.split()
    b = bytes.fromhex(h)
    flags = b[0] << 8 | b[1]
    off = 2 + (2 if flags & 0x4000 else 0) + 4 + (4 if flags & 0x0800 else 0)
    if flags & 0x0200:
        off += 2 + (b[off] << 8 | b[off + 1])
    toks, name = [], "ZLB"
    while off + 6 <= len(b):
        ln = (b[off] << 8 | b[off + 1]) & 0x3ff
        hidden = b[off] & 0x40
        vendor, typ = b[off + 2] << 8 | b[off + 3], b[off + 4] << 8 | b[off + 5]
        val = b[off + 6:off + ln]
        if ln < 6:
            toks.append("bad-avp")
            break
        t = str(typ) if vendor == 0 else "%d.%d" % (vendor, typ)
        if vendor == 0 and typ == 0 and not hidden and len(val) == 2:
            name = names.get(val[0] << 8 | val[1], "type%d" % (val[0] << 8 | val[1]))
        elif hidden:
            toks.append("hid:" + t)
        else:
            toks.append("avp:" + t)
            if vendor == 0 and typ == 1 and len(val) >= 2:
                toks.append("res:%d/%s" % (val[0] << 8 | val[1], (val[2] << 8 | val[3]) if len(val) >= 4 else "-"))
        off += ln
    print(" ".join([d[0] + ":" + name] + toks))
PY
}
msg() { msgs; grep -qE "$1" "$OUT/$CASE.msgs"; } # ERE over the messages so far

# ------------------------------------------------------------- configs
lns_conf() { # SECRET HIDE [extra lines]
	cat <<EOF
# a: xl2tpd LAC
# b: ul2tpd LNS
[lns]
listen = "$B:1701"
host_name = "ul2tp-lns"
secret = "$1"
hide_avps = $2
hello_timeout = 60000
retry_timeout = 500
max_retries = 4
${3:-}
EOF
}
lac_conf() { # PEER-NAME SECRET HELLO_MS
	cat <<EOF
# a: ul2tpd LAC
# b: $1 LNS
[tunnel.lac1]
version = "l2tpv2"
peer = "$B:1701"
local = "$A:1701"
host_name = "ul2tp-lac"
secret = "$2"
hello_timeout = $3
retry_timeout = 500
max_retries = 4
redial = false

[tunnel.lac1.session.call1]
pseudowire = "ppp"
EOF
}

# ------------------------------------------------------------- cases
# xl2tpd's LAC dials our LNS and its pppd dies (PPPD_MODE real): the call
# comes up and goes down with the CDN, the tunnel stays; xl2tpd's
# "d v2p" (hangup) sends StopCCN.
xlac_real() { # SECRET CHALLENGE(yes|no)
	local secret=$1 chal=$2
	start_daemon "$NSB" "$(lns_conf "$secret" false)" || return
	PEER_ENV="XL2TPD_SECRET=${secret:-secret} XL2TPD_CHALLENGE=$chal" peer xl2tpd "$NSA" $A lac $B || return
	check "tunnel established (version 2, role lns, peer_host_name xl2tpd-lac)" wait_until 10 tunnel_up lns xl2tpd-lac
	show_state
	check "the call came up (ICRQ/ICRP/ICCN; log 'l2tpv2 call up')" wait_until 10 logged 'l2tpv2 call up'
	check "xl2tpd's CDN (its pppd exited) arrived: log 'l2tpv2 call down', no call left" \
		wait_until 10 eval "logged 'l2tpv2 call down' && no_call"
	sleep 2
	check "the tunnel stays established after the CDN" tunnel_up lns xl2tpd-lac
	if [ -n "$secret" ]; then
		check "Challenge in SCCRQ and SCCRP, Challenge Response in SCCRP and SCCCN" \
			eval "msg '^a:SCCRQ .*avp:11( |$)' && msg '^b:SCCRP .*avp:11( |$)' && msg '^b:SCCRP .*avp:13( |$)' && msg '^a:SCCCN .*avp:13( |$)'"
	fi
	printf '   + xl2tpd-peer.sh hangup %s   (StopCCN from xl2tpd)\n' "$NSA"
	bash "$H/xl2tpd-peer.sh" hangup "$NSA" >>"$OUT/$CASE.peer.log" 2>&1
	peer_closed xl2tpd
}

case_xlac_plain() { xlac_real "" no; }
case_xlac_secret() { xlac_real secret yes; }

case_xlac_hidden_shim() {
	# Our hide_avps stays off: xl2tpd 1.3.18 cannot unhide an AVP in SCCRP
	# (its log: "decrypt_avp: Decrypted length is too long", then StopCCN
	# 2/6 "Invalid Hidden AVP"; docs/interop.md). XL2TPD_HIDDEN=yes makes it
	# send a Random Vector in every message, which we must take.
	start_daemon "$NSB" "$(lns_conf secret false)" || return
	PEER_ENV="PPPD_MODE=shim XL2TPD_SECRET=secret XL2TPD_CHALLENGE=yes XL2TPD_HIDDEN=yes" peer xl2tpd "$NSA" $A lac $B || return
	check "tunnel established with secret, xl2tpd's Random Vector AVPs" wait_until 10 tunnel_up lns xl2tpd-lac
	check "xl2tpd sent Random Vectors" msg '^a:.*avp:36'
	check "the call is up" wait_until 10 call_up
	sleep 3
	check "the call stays up (pppd shim)" call_up
	show_state
	local t s
	t=$(v2s '.[0].tunnel_id') s=$(v2s '.[0].session_id')
	printf '   + ul2tp del session tunnel_id %s session_id %s   (our CDN)\n' "$t" "$s"
	ul del session tunnel_id "$t" session_id "$s"
	check "our CDN: the call is gone on our side" wait_until 5 no_call
	check "xl2tpd got our CDN (its log: call disconnected)" \
		wait_until 5 peer_log "$NSA" 'Connection closed to .*, serial'
	check "the tunnel stays established" tunnel_up lns xl2tpd-lac
}

case_xlac_badsecret() { # we challenge, xl2tpd answers with the wrong secret
	start_daemon "$NSB" "$(lns_conf right-secret false)" || return
	PEER_ENV="XL2TPD_SECRET=wrong-secret XL2TPD_CHALLENGE=no" peer xl2tpd "$NSA" $A lac $B || return
	check "we sent StopCCN with Result Code 4 (not authorized)" wait_until 10 msg '^b:StopCCN .*res:4/'
	check "ul2tpd reports it (log: not authorized / result 4)" \
		wait_until 5 logged 'not authori|result[^0-9]{0,16}4([^0-9]|$)'
	sleep 1
	check "no tunnel left on our side" no_tunnel
	check "no tunnel ever established" eval "! logged 'l2tpv2 tunnel up'"
}

case_xlac_badsecret_peer() { # xl2tpd challenges us; our answer is wrong for it
	start_daemon "$NSB" "$(lns_conf right-secret false)" || return
	PEER_ENV="XL2TPD_SECRET=wrong-secret XL2TPD_CHALLENGE=yes" peer xl2tpd "$NSA" $A lac $B || return
	check "xl2tpd refused us with StopCCN (Result Code 2)" wait_until 10 msg '^a:StopCCN .*res:2/'
	check "ul2tpd reports the peer's StopCCN (log 'l2tpv2 tunnel down' or 'refused')" \
		wait_until 5 logged 'l2tpv2 tunnel down|refus|not authori|challenge'
	check "no tunnel left on our side (after the closing linger)" wait_until 30 no_tunnel
}

case_lac_xlns() {
	PEER_ENV="XL2TPD_SECRET=secret" peer xl2tpd "$NSB" $B lns || return
	start_daemon "$NSA" "$(lac_conf xl2tpd "" 60000)" || return
	check "tunnel established (version 2, role lac, peer_host_name xl2tpd-lns)" wait_until 10 tunnel_up lac xl2tpd-lns
	show_state
	check "the call came up (log 'l2tpv2 call up')" wait_until 10 logged 'l2tpv2 call up'
	check "xl2tpd's CDN (its pppd exited) arrived: call gone" \
		wait_until 10 eval "logged 'l2tpv2 call down' && no_call"
	check "the CDN came from xl2tpd with Result Code 1" msg '^b:CDN .*res:1/'
	sleep 2
	check "the tunnel stays established" tunnel_up lac xl2tpd-lns
	local t; t=$(live .tunnel_id)
	printf '   + ul2tp del tunnel tunnel_id %s   (our StopCCN)\n' "$t"
	check "ul2tp del tunnel returns 0" ul del tunnel tunnel_id "$t"
	check "our tunnel is removed (after the closing linger)" wait_until 30 no_tunnel
	check "xl2tpd took our StopCCN (its log: Connection closed ... port 1701)" \
		wait_until 5 eval "msg '^a:StopCCN' && peer_log $NSB 'Connection closed to .*, port 1701'"
}

case_lac_xlns_shim() {
	PEER_ENV="PPPD_MODE=shim XL2TPD_SECRET=secret XL2TPD_CHALLENGE=yes" peer xl2tpd "$NSB" $B lns || return
	start_daemon "$NSA" "$(lac_conf xl2tpd secret 2000)" || return
	check "tunnel established with secret, both challenge" wait_until 10 tunnel_up lac xl2tpd-lns
	check "Challenge in SCCRQ and SCCRP, Challenge Response in SCCRP and SCCCN" \
		eval "msg '^a:SCCRQ .*avp:11( |$)' && msg '^b:SCCRP .*avp:11( |$)' && msg '^b:SCCRP .*avp:13( |$)' && msg '^a:SCCCN .*avp:13( |$)'"
	check "the call is up" wait_until 10 call_up
	sleep 5
	check "the call stays up (pppd shim)" call_up
	check "after 2 s idle we sent HELLO and xl2tpd acked it (hello_sent > 0, retransmits 0)" \
		live '.control.hello_sent > 0 and .control.retransmits == 0'
	show_state
	local pt; pt=$(live .peer_tunnel)
	printf '   + echo "d %s" > xl2tpd control pipe   (StopCCN from xl2tpd)\n' "$pt"
	timeout 5 sh -c "echo 'd $pt' > '$V2P_RUN/xl2tpd.$NSB/l2tp-control'"
	peer_closed xl2tpd
	check "no call left" no_call
	check "xl2tpd sent StopCCN and we acked it" eval "msg '^b:StopCCN' && awk '/^b:StopCCN/{s=1} s && /^a:/{f=1} END{exit !f}' '$OUT/$CASE.msgs'"
}

l2tpns_cli() { bash "$H/l2tpns-peer.sh" cli "$NSB" "$1" 2>&1; }
case_lac_l2tpns() {
	peer l2tpns "$NSB" $B || return
	start_daemon "$NSA" "$(lac_conf l2tpns "" 2000)" || return
	check "tunnel established (version 2, role lac, peer_host_name l2tpns-lns)" wait_until 10 tunnel_up lac l2tpns-lns
	check "the call is up" wait_until 10 call_up
	check "l2tpns lists the tunnel (CLI show tunnels: ul2tp-lac Open)" \
		wait_until 5 eval "l2tpns_cli 'show tunnels' | grep -E 'ul2tp-lac .* Open'"
	sleep 5
	check "after 2 s idle we sent HELLO and l2tpns acked it (hello_sent > 0, retransmits 0)" \
		live '.control.hello_sent > 0 and .control.retransmits == 0'
	check "the call stays up" call_up
	show_state
	local t; t=$(live .tunnel_id)
	printf '   + ul2tp del tunnel tunnel_id %s   (our StopCCN)\n' "$t"
	check "ul2tp del tunnel returns 0" ul del tunnel tunnel_id "$t"
	check "our tunnel is removed (after the closing linger)" wait_until 30 no_tunnel
	check "l2tpns removed it too (CLI show tunnels: none from ul2tp-lac)" \
		wait_until 5 eval "! l2tpns_cli 'show tunnels' | grep -q ul2tp-lac"

	# teardown from l2tpns' side: a new tunnel (restart ul2tpd), then its CLI
	stop_daemon
	start_daemon "$NSA" "$(lac_conf l2tpns "" 60000)" || return
	check "second tunnel established" wait_until 10 tunnel_up lac l2tpns-lns
	check "second call is up" wait_until 10 call_up
	local pt; pt=$(live .peer_tunnel)
	printf '   + l2tpns-peer.sh cli %s "enable; drop tunnel %s"   (StopCCN from l2tpns)\n' "$NSB" "$pt"
	l2tpns_cli $'enable\r\ndrop tunnel '"$pt" >>"$OUT/$CASE.peer.log"
	peer_closed l2tpns
	check "no call left" no_call
}

CASES=(xlac-plain xlac-secret xlac-hidden-shim xlac-badsecret xlac-badsecret-peer lac-xlns lac-xlns-shim lac-l2tpns)

printf '== v2-peers harness %s, namespaces %s/%s, results %s\n' "$H" "$NSA" "$NSB" "$OUT"
if ! bash "$H/setup.sh" >"$OUT/setup.log" 2>&1; then
	tail -20 "$OUT/setup.log" >&2; echo "v2-interop: harness setup.sh failed" >&2; exit 1
fi
VERSIONS="xl2tpd $(dpkg-query -W -f='${Version}' xl2tpd 2>/dev/null), l2tpns $(dpkg-query -W -f='${Version}' l2tpns 2>/dev/null), ppp $(dpkg-query -W -f='${Version}' ppp 2>/dev/null), freeradius $(dpkg-query -W -f='${Version}' freeradius 2>/dev/null)"
echo "   peers: $VERSIONS; ul2tpd: $BIN/ul2tpd"
bash "$H/netns.sh" up "$P" >/dev/null || { echo "v2-interop: netns.sh up $P failed" >&2; exit 1; }

for c in "${CASES[@]}"; do
	if [ -n "${V2_ONLY:-}" ] && [[ ",$V2_ONLY," != *",$c,"* ]]; then continue; fi
	start_case "$c"
	"case_${c//-/_}"
	end_case
done

printf '\n== summary (%s; %s)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$VERSIONS"
for s in "${SUMMARY[@]}"; do printf '   %-22s %s\n' $s; done
echo "   results: $OUT"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
