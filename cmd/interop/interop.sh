#!/usr/bin/env bash
# interop.sh — ul2tpd against two L2TPv3 implementations nobody on the project
# wrote: the Linux 6.1 kernel (l2tp_eth, via `ip l2tp`) and QEMU's userspace
# `-netdev l2tpv3`, both booted by the kernel-peer harness
# (shared/harness/kernel-peer, see its README.md).
#
#   bash cmd/interop/interop.sh [BINDIR] [HARNESSDIR]      (make interop)
#
# BINDIR holds ul2tpd and ul2tp [./bin]. HARNESSDIR is shared/harness or
# shared/harness/kernel-peer [../shared/harness]. Skips (exit 0) when not root
# or when the harness is missing. One guest at a time, each torn down on exit.
#
# Environment:
#   KP_CACHE, KP_RUN   harness cache / run dirs [/var/tmp/ul2tp-kp, /tmp/kp]
#   INTEROP_NETNS      namespace for the TAP/veth and ul2tpd [ul2tp-interop]
#   INTEROP_ONLY       comma-separated case names to run (default: all)
#   INTEROP_TIME       iperf3 seconds per direction [5]
#   INTEROP_KEEP=1     keep the per-case logs (ul2tpd stderr, iperf3 JSON)
#
# Per case: boot the guest, start ul2tpd in the namespace with mirrored
# parameters, then check
#   guest -> us ping 10.202.0.1, us -> guest ping 10.202.0.2 and fd00:202::2,
#   iperf3 -c 10.202.0.2 and -R (guest runs iperf3 -s on :5201),
#   our session counters: rx_packets > 0, tx_packets > 0, rx_cookie_discards == 0,
#   no WARN/ERROR line in ul2tpd's log (SIGTERM shutdown included).
# The last line is "N passed, M failed" (counting checks); exit 1 if M > 0.
set -uo pipefail

BIN=$(cd "${1:-./bin}" 2>/dev/null && pwd) || { echo "interop: no such BINDIR: ${1:-./bin}" >&2; exit 1; }
HDIR=${2:-../shared/harness}
export KP_CACHE=${KP_CACHE:-/var/tmp/ul2tp-kp}
export KP_RUN=${KP_RUN:-/tmp/kp}
NS=${INTEROP_NETNS:-ul2tp-interop}
SECS=${INTEROP_TIME:-5}

if [ -x "$HDIR/kernel-peer.sh" ] || [ -f "$HDIR/kernel-peer.sh" ]; then KPDIR=$HDIR
elif [ -f "$HDIR/kernel-peer/kernel-peer.sh" ]; then KPDIR=$HDIR/kernel-peer
else echo "interop: skipped: kernel-peer harness not found under $HDIR"; exit 0; fi
KPDIR=$(cd "$KPDIR" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "interop: skipped: needs root (network namespaces, TAP, QEMU)"; exit 0; }
for c in ip ping iperf3; do
	command -v $c >/dev/null || { echo "interop: $c missing: apt-get install iproute2 iputils-ping iperf3" >&2; exit 1; }
done
for b in ul2tpd ul2tp; do [ -x "$BIN/$b" ] || { echo "interop: $BIN/$b missing: make build" >&2; exit 1; }; done
if command -v jq >/dev/null; then
	jqf() { jq -r "$1"; }
elif command -v python3 >/dev/null; then
	# minimal stand-in for the two jq expressions used below
	jqf() { python3 -c '
import json, sys
expr, d = sys.argv[1], json.load(sys.stdin)
if "bits_per_second" in expr:
    e = d.get("end", {}).get("sum_received", {})
    print(d["error"] if "error" in d else "%.1f" % (e.get("bits_per_second", 0) / 1e6))
else:
    s = [x for x in d if x["session_id"] == 101]
    st = s[0].get("stats", {}) if s else {}
    print(" ".join(str(st.get(k, "null")) for k in ("rx_packets", "tx_packets", "rx_cookie_discards", "rx_errors", "rx_invalid", "rx_seq_discards")))
' "$1"; }
else
	echo "interop: needs jq or python3" >&2; exit 1
fi
KP() { bash "$KPDIR/kernel-peer.sh" "$@"; }

RUN=$(mktemp -d /tmp/ul2tp-interop.XXXXXX)
GUEST="" DPID=""
stop_daemon() {
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
		DPID=""
	fi
}
stop_guest() {
	if [ -n "$GUEST" ]; then
		KP down "$GUEST" >/dev/null 2>&1 || echo "interop: WARNING: 'kernel-peer.sh down $GUEST' failed" >&2
		GUEST=""
	fi
}
cleanup() {
	stop_daemon
	stop_guest
	if [ "${INTEROP_KEEP:-0}" = 1 ]; then echo "interop: logs kept in $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
run() { # echo a command as one would type it, then run it
	local shown=$*
	case $1 in
	KP) shown="kernel-peer.sh ${*:2}" ;;
	ul) shown="ip netns exec $NS ul2tp ${*:2}" ;;
	esac
	printf '+ %s\n' "$shown"; "$@"
}
PASS=0 FAIL=0 CASEFAIL=0
ok()   { PASS=$((PASS + 1)); printf '   ok    %s\n' "$*"; }
bad()  { FAIL=$((FAIL + 1)); CASEFAIL=$((CASEFAIL + 1)); printf '   FAIL  %s\n' "$*"; }
SUMMARY=()

# case NAME BACKEND ENCAP FAMILY L2SPEC GUEST_COOKIE GUEST_PEER_COOKIE
#   GUEST_COOKIE      what the guest sends   = our peer_cookie ("-" = none)
#   GUEST_PEER_COOKIE what the guest expects = our cookie      ("-" = none)
CASES=(
	"k-udp4     kernel      udp 4 default 0011223344556677 a1b2c3d4"
	"k-udp6     kernel      udp 6 default 11223344         8899aabbccddeeff"
	"k-ip4      kernel      ip  4 default 8899aabbccddeeff 55667788"
	"k-ip6      kernel      ip  6 default 55667788         0102030405060708"
	"k-udp4-l2n kernel      udp 4 none    -                -"
	"k-ip6-l2n  kernel      ip  6 none    a0b0c0d0e0f00102 c0ffee00"
	"q-udp4     qemu-l2tpv3 udp 4 default 0a0b0c0d0e0f1011 1213141516171819"
)

run_case() {
	local name=$1 backend=$2 encap=$3 fam=$4 l2spec=$5 gck=$6 gpck=$7
	local local_addr remote_addr sock=$RUN/$name.sock dlog=$RUN/$name.ul2tpd.log
	local guest_args=() tun_args=() sess_args=() t0 t1 out rc tx=- rx=-
	CASEFAIL=0
	if [ "$fam" = 6 ]; then local_addr=fd00:201::1 remote_addr=fd00:201::2
	else local_addr=10.201.0.1 remote_addr=10.201.0.2; fi
	guest_args=(up "ui-$name" --netns "$NS" --backend "$backend" --encap "$encap" --family "$fam"
		--l2spec "$l2spec" --timeout 180)
	[ "$gck" != - ] && guest_args+=(--cookie "$gck")
	[ "$gpck" != - ] && guest_args+=(--peer-cookie "$gpck")
	tun_args=(add tunnel tunnel_id 100 peer_tunnel_id 200 encap "$encap" local "$local_addr" remote "$remote_addr")
	[ "$encap" = udp ] && tun_args+=(udp_sport 1701 udp_dport 1701)
	sess_args=(add session name l2tp0 tunnel_id 100 session_id 101 peer_session_id 201 l2spec_type "$l2spec")
	[ "$gpck" != - ] && sess_args+=(cookie "$gpck")
	[ "$gck" != - ] && sess_args+=(peer_cookie "$gck")

	step "case $name: backend $backend, encap $encap, IPv$fam, l2spec $l2spec, guest sends cookie ${gck/-/none}, expects ${gpck/-/none}"
	t0=$(date +%s)
	GUEST=ui-$name
	if ! run KP "${guest_args[@]}"; then
		bad "$name: guest up"; GUEST=""; SUMMARY+=("$name FAIL - -"); return
	fi
	ip netns exec "$NS" "$BIN/ul2tpd" --socket "$sock" 2>"$dlog" &
	DPID=$!
	for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
	ul() { ip netns exec "$NS" "$BIN/ul2tp" --socket "$sock" "$@"; }
	if run ul "${tun_args[@]}" && run ul "${sess_args[@]}" \
		&& ip -n "$NS" link set l2tp0 up \
		&& ip -n "$NS" addr add 10.202.0.1/24 dev l2tp0 \
		&& ip -n "$NS" addr add fd00:202::1/64 dev l2tp0 nodad; then
		ok "$name: ul2tpd configured"
	else
		bad "$name: ul2tpd configured"; tail -20 "$dlog" | sed 's/^/   ul2tpd: /'
		stop_daemon; stop_guest; SUMMARY+=("$name FAIL - -"); return
	fi
	ul show tunnel | sed 's/^/   /'
	ul show session | sed 's/^/   /'

	if out=$(KP exec "$GUEST" --timeout 30 'ping -c 3 -i 0.5 -W 3 10.202.0.1' 2>&1); then
		ok "$name: guest pings 10.202.0.1 ($(grep -o '[0-9]* received' <<<"$out"))"
	else bad "$name: guest pings 10.202.0.1"; sed 's/^/   /' <<<"$out"; fi
	if out=$(ip netns exec "$NS" ping -c 3 -i 0.5 -W 3 10.202.0.2 2>&1); then
		ok "$name: we ping 10.202.0.2 ($(grep -o '[0-9]* received' <<<"$out"))"
	else bad "$name: we ping 10.202.0.2"; sed 's/^/   /' <<<"$out"; fi
	if out=$(ip netns exec "$NS" ping -6 -c 3 -i 0.5 -W 3 fd00:202::2 2>&1); then
		ok "$name: we ping fd00:202::2 ($(grep -o '[0-9]* received' <<<"$out"))"
	else bad "$name: we ping fd00:202::2"; sed 's/^/   /' <<<"$out"; fi

	local dir flag j
	for dir in tx rx; do
		flag=(); [ $dir = rx ] && flag=(-R)
		j=$RUN/$name.iperf-$dir.json
		timeout $((SECS + 40)) ip netns exec "$NS" iperf3 -c 10.202.0.2 -t "$SECS" --connect-timeout 5000 -J "${flag[@]}" >"$j" 2>&1
		rc=$?
		out=$(jqf '.error // ((.end.sum_received.bits_per_second // 0) / 1e6 * 10 | floor / 10 | tostring)' <"$j" 2>/dev/null)
		if [ $rc -eq 0 ] && [[ "$out" =~ ^[0-9.]+$ ]] && [ "${out%.*}${out#*.}" != 00 ]; then
			ok "$name: iperf3 -c 10.202.0.2 -t $SECS${flag:+ ${flag[*]}}: $out Mbit/s (received)"
			[ $dir = tx ] && tx=$out || rx=$out
		else
			bad "$name: iperf3${flag:+ ${flag[*]}} (rc $rc): ${out:-$(tail -3 "$j")}"
		fi
	done

	# counters: ours (JSON), and the kernel guest's view for the log
	local stats
	stats=$(ul -j -s show session | jqf '.[] | select(.session_id == 101) | .stats | "\(.rx_packets) \(.tx_packets) \(.rx_cookie_discards) \(.rx_errors) \(.rx_invalid) \(.rx_seq_discards)"')
	read -r rxp txp rxcd rxe rxi rxsd <<<"$stats"
	ul -s show session | sed 's/^/   /'
	if [[ "${rxp:-}" =~ ^[0-9]+$ ]] && [ "$rxp" -gt 0 ] && [ "${txp:-0}" -gt 0 ] && [ "${rxcd:-x}" = 0 ]; then
		ok "$name: counters rx_packets $rxp tx_packets $txp rx_cookie_discards $rxcd (rx_errors $rxe rx_invalid $rxi rx_seq_discards $rxsd)"
	else
		bad "$name: counters: got '${stats}' (want rx_packets>0 tx_packets>0 rx_cookie_discards==0)"
	fi
	if [ "$backend" = kernel ]; then
		echo "   guest's l2tpeth0 after the traffic:"
		KP exec "$GUEST" --timeout 20 'ip -s link show l2tpeth0' 2>&1 | sed 's/^/   guest: /'
	fi
	stop_daemon
	stop_guest
	# after SIGTERM: the daemon's whole log, shutdown included, must be clean
	if grep -qE 'level=(WARN|ERROR)|panic' "$dlog"; then
		bad "$name: ul2tpd log has warnings/errors"; grep -E 'level=(WARN|ERROR)|panic' "$dlog" | head -10 | sed 's/^/   ul2tpd: /'
	else
		ok "$name: ul2tpd log clean (no WARN/ERROR, shutdown included)"
	fi
	t1=$(date +%s)
	if [ $CASEFAIL -eq 0 ]; then SUMMARY+=("$name pass $tx $rx $((t1 - t0))s")
	else SUMMARY+=("$name FAIL $tx $rx $((t1 - t0))s"); fi
}

step "harness: $KPDIR (KP_CACHE=$KP_CACHE KP_RUN=$KP_RUN), namespace $NS"
if ! bash "$KPDIR/setup.sh" >"$RUN/setup.log" 2>&1; then
	tail -20 "$RUN/setup.log" >&2; echo "interop: harness setup.sh failed" >&2; exit 1
fi
tail -3 "$RUN/setup.log" | sed 's/^/   /'
echo "   ul2tpd: $BIN/ul2tpd; guest kernel $(cat "$KP_CACHE/kernel.version" 2>/dev/null || echo '?'), accel $(cat "$KP_CACHE/accel" 2>/dev/null || echo '?')"

for c in "${CASES[@]}"; do
	read -r -a f <<<"$c"
	if [ -n "${INTEROP_ONLY:-}" ] && [[ ",$INTEROP_ONLY," != *",${f[0]},"* ]]; then continue; fi
	run_case "${f[@]}"
done

step "summary ($(date -u '+%Y-%m-%d %H:%M UTC'); guest is TCG-emulated: Mbit/s prove traffic flows, nothing about speed)"
printf '   %-12s %-5s %10s %10s %6s\n' case result "us->guest" "guest->us" time
for s in "${SUMMARY[@]}"; do
	read -r -a f <<<"$s"
	printf '   %-12s %-5s %10s %10s %6s\n' "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]:--}"
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
