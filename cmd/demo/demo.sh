#!/usr/bin/env bash
# demo.sh — two network namespaces joined by a veth pair, a ul2tpd in each,
# an L2TPv3 Ethernet pseudowire between them; ping and an iperf3 transfer
# through it. Everything it makes it removes on exit.
#
#   bash cmd/demo/demo.sh [BINDIR]        (make demo builds and runs it)
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, TAP devices)" >&2; exit 1; }
BIN=${1:-./bin}
ENCAP=${ENCAP:-udp}
for c in ip ping iperf3; do command -v $c >/dev/null || { echo "demo: $c missing: run make deps (as root)" >&2; exit 1; }; done
A=ul2tp-demo-a B=ul2tp-demo-b RUN=$(mktemp -d /tmp/ul2tp-demo.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del $A 2>/dev/null || true
	ip netns del $B 2>/dev/null || true
	rm -rf "$RUN"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "namespaces $A (10.200.0.1) and $B (10.200.0.2), joined by a veth pair"
ip netns add $A; ip netns add $B
ip link add ul2tp-va netns $A type veth peer name ul2tp-vb netns $B
ip -n $A addr add 10.200.0.1/24 dev ul2tp-va; ip -n $A link set ul2tp-va up; ip -n $A link set lo up
ip -n $B addr add 10.200.0.2/24 dev ul2tp-vb; ip -n $B link set ul2tp-vb up; ip -n $B link set lo up

step "a ul2tpd in each namespace"
for ns in $A $B; do
	ip netns exec $ns "$BIN/ul2tpd" --socket "$RUN/$ns.sock" 2>"$RUN/$ns.log" &
	pids+=($!)
done
for ns in $A $B; do for _ in $(seq 50); do [ -S "$RUN/$ns.sock" ] && break; sleep 0.1; done; done
# ua and ub run ul2tp against A's or B's daemon, printing the command once
# as one would type it in that namespace (set -x would print it twice: the
# call and the ip netns exec inside).
ua() { echo "$A# ul2tp $*"; ip netns exec $A "$BIN/ul2tp" --socket "$RUN/$A.sock" "$@"; }
ub() { echo "$B# ul2tp $*"; ip netns exec $B "$BIN/ul2tp" --socket "$RUN/$B.sock" "$@"; }

step "L2TPv3 over $ENCAP: tunnel 100<->200, session 101<->201, 4-byte cookies, default L2-specific sublayer"
# UDP checksums are on by default in ul2tp (the kernel's default is off):
# only then does the kernel segment our batches itself (UDP GSO), which is
# several times faster. A kernel peer accepts either.
ua add tunnel tunnel_id 100 peer_tunnel_id 200 encap $ENCAP local 10.200.0.1 remote 10.200.0.2 udp_sport 1701 udp_dport 1701
ua add session name l2tp0 tunnel_id 100 session_id 101 peer_session_id 201 cookie 11223344 peer_cookie 55667788 l2spec_type default
ub add tunnel tunnel_id 200 peer_tunnel_id 100 encap $ENCAP local 10.200.0.2 remote 10.200.0.1 udp_sport 1701 udp_dport 1701
ub add session name l2tp0 tunnel_id 200 session_id 201 peer_session_id 101 cookie 55667788 peer_cookie 11223344 l2spec_type default
ip -n $A addr add 10.202.0.1/24 dev l2tp0; ip -n $A link set l2tp0 up
ip -n $B addr add 10.202.0.2/24 dev l2tp0; ip -n $B link set l2tp0 up
ua show tunnel
ua show session

step "ping through the pseudowire"
ip netns exec $A ping -c 5 -i 0.2 -W 2 10.202.0.2

step "iperf3 TCP, 5 s, through the pseudowire"
ip netns exec $B iperf3 -s -1 -B 10.202.0.2 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
ip netns exec $A iperf3 -c 10.202.0.2 -t 5 -f m | tail -4

step "iperf3 TCP, 5 s, directly over the veth (for comparison)"
ip netns exec $B iperf3 -s -1 -B 10.200.0.2 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
ip netns exec $A iperf3 -c 10.200.0.2 -t 5 -f m | tail -4

step "counters (ul2tp -s show session)"
ua -s show session
ub -s show session

step "done: everything is removed on exit"
