#!/usr/bin/env bash
# ul2tpd's resident memory (VmRSS in /proc/PID/status, kB): idle, with
# SESSIONS (default 100) sessions in one tunnel, and while every session
# passes traffic (a bounded ping on each, one iperf3 TCP burst on the
# first). Two daemons in two network namespaces joined by a veth pair; the
# figures are daemon A's. Needs root; removes what it made.
#
#   bash bench/rss.sh [BIN]     (make rss)
#
# BIN holds ul2tpd and ul2tp (default bin); UL2TPD=ul2tpd-nometrics picks
# another daemon there, as make cross builds it; UL2TPD_ARGS adds to its
# flags (say --no-offload).
set -euo pipefail
bin=$(cd "${1:-bin}" && pwd)
n=${SESSIONS:-100}
daemon=$bin/${UL2TPD:-ul2tpd}
[ "$(id -u)" -eq 0 ] || { echo "rss: needs root (network namespaces, TAP devices)" >&2; exit 1; }
[ "$n" -ge 1 ] && [ "$n" -le 250 ] || { echo "rss: SESSIONS=$n: want 1..250" >&2; exit 1; }

A=ul2tp-rss-$$-a
B=ul2tp-rss-$$-b
dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

ip netns add "$A"
ip netns add "$B"
ip link add rss-a netns "$A" type veth peer name rss-b netns "$B"
ip -n "$A" addr add 10.213.0.1/24 dev rss-a
ip -n "$B" addr add 10.213.0.2/24 dev rss-b
for ns in "$A" "$B"; do
	ip -n "$ns" link set lo up
done
ip -n "$A" link set rss-a up
ip -n "$B" link set rss-b up

# start NS NAME: ul2tpd in NS, its control socket $dir/NAME.sock.
start() {
	# shellcheck disable=SC2086 # UL2TPD_ARGS is words
	ip netns exec "$1" "$daemon" --socket "$dir/$2.sock" --log-level warn ${UL2TPD_ARGS:-} 2>"$dir/$2.log" &
	pids+=($!)
	for _ in $(seq 100); do
		"$bin/ul2tp" --socket "$dir/$2.sock" show tunnel >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "rss: ul2tpd in $1 did not start:" >&2
	cat "$dir/$2.log" >&2
	exit 1
}
start "$A" a
pida=${pids[0]}
start "$B" b
cli() { "$bin/ul2tp" --socket "$dir/$1.sock" "${@:2}" >/dev/null; }

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$pida/status"; }
report() { printf '%-44s %7s kB   awk /%s/ /proc/PID/status\n' "$1" "$2" "${3:-VmRSS}"; }

echo "$daemon ${UL2TPD_ARGS:+$UL2TPD_ARGS }($(uname -m), $(stat -c %s "$daemon") bytes), $n sessions${GOMEMLIMIT:+, GOMEMLIMIT=$GOMEMLIMIT}"
sleep 2
report "idle, no tunnel" "$(rss)"

cli a add tunnel tunnel_id 1 peer_tunnel_id 2 encap udp local 10.213.0.1 remote 10.213.0.2 udp_sport 1701 udp_dport 1701
cli b add tunnel tunnel_id 2 peer_tunnel_id 1 encap udp local 10.213.0.2 remote 10.213.0.1 udp_sport 1701 udp_dport 1701
for i in $(seq 0 $((n - 1))); do
	cli a add session name "rss$i" tunnel_id 1 session_id $((i + 1)) peer_session_id $((i + 1001))
	cli b add session name "rss$i" tunnel_id 2 session_id $((i + 1001)) peer_session_id $((i + 1))
	ip -n "$A" addr add "10.214.$i.1/24" dev "rss$i"
	ip -n "$B" addr add "10.214.$i.2/24" dev "rss$i"
	ip -n "$A" link set "rss$i" up
	ip -n "$B" link set "rss$i" up
done
sleep 2
report "$n sessions, idle" "$(rss)"

# Traffic: 100 pings of 1400 bytes every 20 ms on every session at once
# (about $n x 50 packets/s each way), and 3 s of iperf3 TCP on the first
# unless IPERF=0.
ip netns exec "$B" iperf3 -s -1 -B 10.214.0.2 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
pings=()
for i in $(seq 0 $((n - 1))); do
	ip netns exec "$A" ping -q -c 100 -i 0.02 -s 1400 -W 2 "10.214.$i.2" >"$dir/ping$i" 2>&1 &
	pings+=($!)
done
iperf=
if [ "${IPERF:-1}" != 0 ]; then
	timeout 20 ip netns exec "$A" iperf3 -c 10.214.0.2 -t 3 >"$dir/iperf3" 2>&1 &
	iperf=$!
fi
peak=0
for _ in $(seq 8); do
	sleep 0.5
	r=$(rss)
	[ "$r" -gt "$peak" ] && peak=$r
done
failed=0
for p in "${pings[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ -z "$iperf" ] || wait "$iperf" || { echo "rss: iperf3 failed:" >&2; cat "$dir/iperf3" >&2; exit 1; }
[ "$failed" -eq 0 ] || { echo "rss: $failed of $n sessions lost every ping" >&2; exit 1; }
lost=$(cat "$dir"/ping* | awk -F', ' '/packets transmitted/ { tx += $1; rx += $2 } END { printf "%d of %d", tx - rx, tx }')
report "$n sessions, traffic (peak of 8 samples)" "$peak"
report "$n sessions, high-water mark" "$(awk '/^VmHWM:/ { print $2 }' "/proc/$pida/status")" VmHWM
sleep 5
report "$n sessions, idle again 5 s after" "$(rss)"
echo "pings lost: $lost; iperf3 on session 0: $(awk '/receiver/ { print $7, $8 }' "$dir/iperf3" 2>/dev/null)"
