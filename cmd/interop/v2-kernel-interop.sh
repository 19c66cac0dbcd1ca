#!/usr/bin/env bash
# v2-kernel-interop.sh — ul2tpd's L2TPv2 control plane (LAC and LNS) against
# xl2tpd + pppd on the Linux 6.1 kernel's PPPoL2TP datapath, booted by the
# kernel-peer harness (--backend lns|lac; shared/harness/kernel-peer/README.md).
# Nobody on the project wrote the peer.
#
#   bash cmd/interop/v2-kernel-interop.sh [BINDIR] [HARNESSDIR]   (make interop-v2-kernel)
#
# BINDIR holds ul2tpd and ul2tp [./bin]. HARNESSDIR is shared/harness or
# shared/harness/kernel-peer [../shared/harness]. Skips (exit 0) when not root
# or when the harness is missing. One guest at a time, each torn down on exit.
#
# Environment:
#   KP_CACHE, KP_RUN   harness cache / run dirs [/var/tmp/ul2tp-kp, /tmp/kp]
#   V2K_NETNS          namespace of the guest's TAP and ul2tpd [ul2tp-v2k]
#   V2K_ONLY           comma-separated case names to run (default: all)
#   V2K_LCP_WAIT       seconds to watch the guest's pppd get no LCP answer
#                      before forcing the CDN [40]; 0 skips the wait
#   V2K_GOLDEN=DIR     write each case's control messages (tcpdump + tshark)
#                      as DIR/kernel-xl2tpd-CASE.txt in control/testdata/golden's format
#   V2K_KEEP=1         keep the per-case logs and pcaps
#
# Cases (guest's role first):
#   lns         guest xl2tpd LNS; our LAC ([tunnel.lac] version = "l2tpv2") dials it
#   lac         guest xl2tpd LAC autodials our LNS ([lns] table)
#   lns-secret  as lns, with a tunnel secret (Challenge AVPs both ways)
#   lac-secret  as lac, with a tunnel secret
# Checks per case:
#   tunnel established on our side (ul2tp -j show tunnel: version 2,
#     control.state established, control.role, peer_host_name = guest's name),
#   call established (call.state established, ppp none),
#   the guest's pppd gets no LCP answer (these calls run without PPP; PPP is
#     v2-ppp-interop.sh's): noted,
#     not checked (xl2tpd starts pppd "passive", so it waits and never hangs up),
#   CDN from the guest (we kill its pppd): our call is removed ("l2tpv2 call
#     down" by=peer, result code noted), the tunnel stays established,
#   StopCCN from us (ul2tp del tunnel): the tunnel is gone on our side and the
#     guest's xl2tpd logs "Connection closed to 10.201.0.1",
#   no WARN/ERROR line in ul2tpd's log (SIGTERM shutdown included).
# The last line is "N passed, M failed" (counting checks); exit 1 if M > 0.
set -uo pipefail

BIN=$(cd "${1:-./bin}" 2>/dev/null && pwd) || { echo "v2-kernel-interop: no such BINDIR: ${1:-./bin}" >&2; exit 1; }
HDIR=${2:-../shared/harness}
export KP_CACHE=${KP_CACHE:-/var/tmp/ul2tp-kp}
export KP_RUN=${KP_RUN:-/tmp/kp}
NS=${V2K_NETNS:-ul2tp-v2k}
LCP_WAIT=${V2K_LCP_WAIT:-40}
SECRET=kp-tunnel-secret
HOST=10.201.0.1 GUEST_ADDR=10.201.0.2 # the harness's TAP addresses

if [ -f "$HDIR/kernel-peer.sh" ]; then KPDIR=$HDIR
elif [ -f "$HDIR/kernel-peer/kernel-peer.sh" ]; then KPDIR=$HDIR/kernel-peer
else echo "v2-kernel-interop: skipped: kernel-peer harness not found under $HDIR"; exit 0; fi
KPDIR=$(cd "$KPDIR" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "v2-kernel-interop: skipped: needs root (network namespaces, TAP, QEMU)"; exit 0; }
command -v ip >/dev/null || { echo "v2-kernel-interop: ip missing: apt-get install iproute2" >&2; exit 1; }
command -v python3 >/dev/null || { echo "v2-kernel-interop: python3 missing" >&2; exit 1; }
for b in ul2tpd ul2tp; do [ -x "$BIN/$b" ] || { echo "v2-kernel-interop: $BIN/$b missing: make build" >&2; exit 1; }; done
CAPTURE=1
command -v tcpdump >/dev/null && command -v tshark >/dev/null || CAPTURE=0
if [ -n "${V2K_GOLDEN:-}" ]; then
	[ $CAPTURE = 1 ] || { echo "v2-kernel-interop: V2K_GOLDEN needs tcpdump and tshark" >&2; exit 1; }
	mkdir -p "$V2K_GOLDEN" && GOLDEN=$(cd "$V2K_GOLDEN" && pwd) || exit 1
fi
KP() { bash "$KPDIR/kernel-peer.sh" "$@"; }

RUN=$(mktemp -d /tmp/ul2tp-v2k.XXXXXX)
GUEST="" DPID="" CPID="" UPPID=""
stop_capture() {
	if [ -n "$CPID" ]; then kill -INT "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; CPID=""; fi
}
stop_daemon() {
	if [ -n "$DPID" ]; then kill -TERM "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""; fi
}
stop_guest() {
	if [ -n "$UPPID" ]; then wait "$UPPID" 2>/dev/null; UPPID=""; fi
	if [ -n "$GUEST" ]; then
		KP down "$GUEST" >/dev/null 2>&1 || echo "v2-kernel-interop: WARNING: 'kernel-peer.sh down $GUEST' failed" >&2
		GUEST=""
	fi
}
cleanup() {
	stop_capture
	stop_daemon
	stop_guest
	if [ "${V2K_KEEP:-0}" = 1 ]; then echo "v2-kernel-interop: logs kept in $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
PASS=0 FAIL=0 CASEFAIL=0
ok()   { PASS=$((PASS + 1)); printf '   ok    %s\n' "$*"; }
bad()  { FAIL=$((FAIL + 1)); CASEFAIL=$((CASEFAIL + 1)); printf '   FAIL  %s\n' "$*"; }
note() { printf '   note  %s\n' "$*"; }
SUMMARY=()

# tunq JSON_OF_SHOW_TUNNEL [TUNNEL_ID]: "id version state role peer_host_name sessions"
# of the given tunnel (default: the first L2TPv2 one), or nothing.
tunq() {
	python3 -c '
import json, sys
want = int(sys.argv[1]) if len(sys.argv) > 1 else 0
for t in json.load(sys.stdin) or []:
    c = t.get("control") or {}
    if t.get("version") == 2 and want in (0, t["tunnel_id"]):
        print(t["tunnel_id"], t["version"], c.get("state", "-"), c.get("role", "-"),
              c.get("peer_host_name") or "-", t.get("sessions", 0))
        break
' "$@"
}
# sesq TUNNEL_ID: "session_id call.state kind ppp" of the tunnel's first call, or nothing.
sesq() {
	python3 -c '
import json, sys
for s in json.load(sys.stdin) or []:
    c = s.get("call") or {}
    if s["tunnel_id"] == int(sys.argv[1]) and c:
        print(s["session_id"], c.get("state", "-"), c.get("kind", "-"), c.get("ppp", "-"))
        break
' "$1"
}

# golden PCAP OUT LAC_ADDR HEADER: the pcap's L2TP control messages as
# "a>b HEX" (a = the LAC) / "b>a HEX" lines.
golden() {
	local pcap=$1 out=$2 lac=$3 header=$4
	{
		printf '%s\n' "$header"
		tshark -r "$pcap" -d udp.port==1701,l2tp -Y 'l2tp.type == 1' -T fields -e ip.src -e udp.payload 2>/dev/null |
			while read -r src hex; do
				if [ "$src" = "$lac" ]; then echo "a>b $hex"; else echo "b>a $hex"; fi
			done
	} >"$out"
}

# case NAME GUEST_BACKEND SECRET(-|s)
CASES=(
	"lns        lns -"
	"lac        lac -"
	"lns-secret lns s"
	"lac-secret lac s"
)

run_case() {
	local name=$1 backend=$2 sec=$3
	local gname=k2-$name sock=$RUN/$name.sock dlog=$RUN/$name.ul2tpd.log cfg=$RUN/$name.toml
	local pcap=$RUN/$name.pcap guest_args t0 t1 out tq sq tid sid role want_role rc
	CASEFAIL=0
	gname=${gname/-secret/s}
	case $backend in lns) want_role=lac ;; lac) want_role=lns ;; esac
	step "case $name: guest xl2tpd $backend ($gname), ul2tpd $want_role, secret ${sec/s/$SECRET}"
	t0=$(date +%s)
	guest_args=(up "$gname" --netns "$NS" --backend "$backend" --timeout 180)
	[ "$backend" = lac ] && guest_args+=(--lac-lns "$HOST")
	[ "$sec" = s ] && guest_args+=(--l2tp-secret "$SECRET")
	if [ "$want_role" = lac ]; then
		printf '[tunnel.lac]\nversion = "l2tpv2"\npeer = "%s:1701"\nlocal = "%s:1701"\nhost_name = "ul2tp-lac"\nredial = false\n' \
			"$GUEST_ADDR" "$HOST" >"$cfg"
		[ "$sec" = s ] && printf 'secret = "%s"\n' "$SECRET" >>"$cfg"
		printf '\n[tunnel.lac.session.call1]\npseudowire = "ppp"\n' >>"$cfg"
	else
		printf '[lns]\nlisten = "%s:1701"\nhost_name = "ul2tp-lns"\npeers = ["%s/32"]\n' "$HOST" "$GUEST_ADDR" >"$cfg"
		[ "$sec" = s ] && printf 'secret = "%s"\n' "$SECRET" >>"$cfg"
	fi
	sed 's/^/   config: /' "$cfg"

	# Boot the guest. The tap (and its address) exists a few seconds into
	# "up": capture from there on, so the guest LAC's first dial is seen.
	GUEST=$gname
	printf '+ kernel-peer.sh %s\n' "${guest_args[*]}"
	KP "${guest_args[@]}" >"$RUN/$name.up.log" 2>&1 &
	UPPID=$!
	for _ in $(seq 600); do
		ip -n "$NS" -4 addr show "kp-$gname" 2>/dev/null | grep -q "$HOST/" && break
		kill -0 "$UPPID" 2>/dev/null || break
		sleep 0.1
	done
	if [ $CAPTURE = 1 ]; then
		ip netns exec "$NS" tcpdump -i "kp-$gname" --immediate-mode -U -w "$pcap" udp port 1701 2>"$RUN/$name.tcpdump.log" &
		CPID=$!
		for _ in $(seq 50); do grep -q listening "$RUN/$name.tcpdump.log" 2>/dev/null && break; sleep 0.1; done
	fi
	start_daemon() {
		ip netns exec "$NS" "$BIN/ul2tpd" --socket "$sock" --config "$cfg" 2>"$dlog" &
		DPID=$!
		for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
	}
	# Our LNS listens before the guest LAC dials; our LAC dials once the guest's xl2tpd runs.
	[ "$want_role" = lns ] && start_daemon
	wait "$UPPID"; rc=$?; UPPID=""
	sed 's/^/   /' "$RUN/$name.up.log"
	if [ $rc -ne 0 ]; then
		bad "$name: guest up"; stop_capture; stop_daemon; stop_guest; SUMMARY+=("$name FAIL"); return
	fi
	[ "$want_role" = lac ] && start_daemon
	ul() { ip netns exec "$NS" "$BIN/ul2tp" --socket "$sock" "$@"; }

	# 1. tunnel and call established
	tq="" sq=""
	for _ in $(seq 60); do
		tq=$(ul -j show tunnel 2>/dev/null | tunq)
		read -r tid _ st _ _ _ <<<"${tq:-- - -}"
		if [ "${st:-}" = established ]; then
			sq=$(ul -j show session 2>/dev/null | sesq "$tid")
			[ "$(cut -d' ' -f2 <<<"$sq")" = established ] && break
		fi
		sleep 0.5
	done
	read -r tid ver st role host _ <<<"${tq:-- - - - - -}"
	if [ "$ver" = 2 ] && [ "$st" = established ] && [ "$role" = "$want_role" ] && [ "$host" = "$gname" ]; then
		ok "$name: tunnel $tid established: version 2, role $role, peer_host_name $host"
	else
		bad "$name: tunnel: got '${tq}' (want version 2, established, role $want_role, host $gname)"
	fi
	read -r sid cst kind ppp <<<"${sq:-- - - -}"
	if [ "$cst" = established ]; then
		ok "$name: call $sid established: kind $kind, ppp $ppp"
	else
		bad "$name: call: got '${sq}' (want established)"
	fi
	ul show tunnel | sed 's/^/   /'
	ul show session | sed 's/^/   /'
	if [ -z "$tq" ] || [ "$cst" != established ]; then
		KP exec "$GUEST" --timeout 20 'tail -15 /run/xl2tpd.log' 2>&1 | sed 's/^/   guest: /'
		tail -20 "$dlog" | sed 's/^/   ul2tpd: /'
		stop_capture; stop_daemon; stop_guest; SUMMARY+=("$name FAIL"); return
	fi

	# 2. The guest's pppd sends LCP Configure-Requests nobody answers.
	if [ "$sec" = - ] && [ "$LCP_WAIT" -gt 0 ]; then
		local waited=0
		while [ $waited -lt "$LCP_WAIT" ]; do
			grep -q 'l2tpv2 call down' "$dlog" && break
			out=$(KP exec "$GUEST" --timeout 10 'grep -c "LCP: timeout" /run/pppd.log' 2>/dev/null)
			[ "${out:-0}" -gt 0 ] && break
			sleep 5; waited=$((waited + 5))
		done
		out=$(KP exec "$GUEST" --timeout 10 'echo "$(grep -c "sent \[LCP ConfReq" /run/pppd.log) LCP ConfReqs sent; last: $(tail -1 /run/pppd.log); pppd running: $(pidof pppd || echo no)"' 2>&1)
		note "$name: after ${waited}s the guest's pppd: $out"
		if grep -q 'l2tpv2 call down' "$dlog"; then
			note "$name: the guest hung up by itself: $(grep 'l2tpv2 call down' "$dlog" | grep -o 'by=.*')"
		else
			note "$name: no CDN from the guest (xl2tpd starts pppd 'passive': it keeps waiting for LCP)"
		fi
	fi

	# 3. CDN from the guest: kill its pppd.
	if ! grep -q 'l2tpv2 call down' "$dlog"; then
		KP exec "$GUEST" --timeout 10 'kill $(pidof pppd)' >/dev/null 2>&1
	fi
	for _ in $(seq 40); do grep -q 'l2tpv2 call down' "$dlog" && break; sleep 0.25; done
	sq=$(ul -j show session 2>/dev/null | sesq "$tid")
	tq=$(ul -j show tunnel 2>/dev/null | tunq "$tid")
	out=$(grep 'l2tpv2 call down' "$dlog" | head -1 | grep -o 'by=[^ ]* result_code=[0-9]*')
	if [ -n "$out" ] && [ -z "$sq" ]; then
		ok "$name: CDN from the guest (pppd killed): call removed ($out)"
	else
		bad "$name: CDN: call down log '${out}', session left '${sq}'"
	fi
	read -r _ _ st _ _ n <<<"${tq:-- - - - - -}"
	if [ "$st" = established ] && [ "$n" = 0 ]; then
		ok "$name: tunnel $tid still established after the CDN, 0 sessions"
	else
		bad "$name: tunnel after the CDN: '${tq}'"
	fi

	# 4. StopCCN from us.
	if ul del tunnel tunnel_id "$tid"; then
		tq=$(ul -j show tunnel 2>/dev/null | tunq "$tid")
		[ -z "$tq" ] && ok "$name: ul2tp del tunnel tunnel_id $tid: gone on our side" ||
			bad "$name: tunnel $tid still listed after del: '$tq'"
	else
		bad "$name: ul2tp del tunnel tunnel_id $tid failed"
	fi
	out=""
	for _ in $(seq 20); do
		out=$(KP exec "$GUEST" --timeout 10 "grep 'Connection closed to $HOST' /run/xl2tpd.log" 2>/dev/null) && break
		sleep 0.5
	done
	if [ -n "$out" ]; then
		ok "$name: guest's xl2tpd closed the tunnel: ${out#*: }"
	else
		bad "$name: guest's xl2tpd did not log the tunnel closed"
		KP exec "$GUEST" --timeout 20 'tail -8 /run/xl2tpd.log' 2>&1 | sed 's/^/   guest: /'
	fi
	sleep 0.5 # the ZLB acking our StopCCN
	stop_capture
	if [ $CAPTURE = 1 ]; then
		echo "   control messages (tshark):"
		tshark -r "$pcap" -d udp.port==1701,l2tp -Y 'l2tp.type == 1' -T fields \
			-e frame.time_relative -e ip.src -e _ws.col.Info -e l2tp.result_code 2>/dev/null |
			awk -F'\t' '{ sub(/^Control Message - /, "", $3); printf "   %8.3f %-11s %s%s\n", $1, $2, $3, ($4 == "" ? "" : " result " $4) }'
	fi
	if [ -n "${GOLDEN:-}" ]; then
		local lac=$HOST ver
		[ "$backend" = lac ] && lac=$GUEST_ADDR
		ver=$(KP exec "$GUEST" --timeout 10 'dpkg-query -W -f "\${Package} \${Version}, " xl2tpd ppp; echo "kernel $(uname -r)"' 2>/dev/null | tr '\n' ' ')
		golden "$pcap" "$GOLDEN/kernel-xl2tpd-$name.txt" "$lac" \
			"# a = LAC ($lac), b = LNS; guest: xl2tpd $backend + pppd on kernel PPPoL2TP; $ver; us: ul2tpd $want_role
# v2-kernel-interop.sh case $name, $(date -u '+%Y-%m-%d'), secret ${sec/s/$SECRET}"
		echo "   golden: $GOLDEN/kernel-xl2tpd-$name.txt ($(grep -c '>' "$GOLDEN/kernel-xl2tpd-$name.txt") messages)"
	fi
	stop_daemon
	stop_guest
	if grep -qE 'level=(WARN|ERROR)|panic' "$dlog"; then
		bad "$name: ul2tpd log has warnings/errors"; grep -E 'level=(WARN|ERROR)|panic' "$dlog" | head -10 | sed 's/^/   ul2tpd: /'
	else
		ok "$name: ul2tpd log clean (no WARN/ERROR, shutdown included)"
	fi
	t1=$(date +%s)
	if [ $CASEFAIL -eq 0 ]; then SUMMARY+=("$name pass $((t1 - t0))s"); else SUMMARY+=("$name FAIL $((t1 - t0))s"); fi
}

step "harness: $KPDIR (KP_CACHE=$KP_CACHE KP_RUN=$KP_RUN), namespace $NS"
if ! bash "$KPDIR/setup.sh" >"$RUN/setup.log" 2>&1; then
	tail -20 "$RUN/setup.log" >&2; echo "v2-kernel-interop: harness setup.sh failed" >&2; exit 1
fi
tail -3 "$RUN/setup.log" | sed 's/^/   /'
echo "   ul2tpd: $BIN/ul2tpd; guest kernel $(cat "$KP_CACHE/kernel.version" 2>/dev/null || echo '?'), accel $(cat "$KP_CACHE/accel" 2>/dev/null || echo '?'); capture $CAPTURE"

for c in "${CASES[@]}"; do
	read -r -a f <<<"$c"
	if [ -n "${V2K_ONLY:-}" ] && [[ ",$V2K_ONLY," != *",${f[0]},"* ]]; then continue; fi
	run_case "${f[@]}"
done

step "summary ($(date -u '+%Y-%m-%d %H:%M UTC'))"
for s in "${SUMMARY[@]}"; do
	read -r -a f <<<"$s"
	printf '   %-12s %-5s %6s\n' "${f[0]}" "${f[1]}" "${f[2]:--}"
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
