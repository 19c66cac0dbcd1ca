#!/usr/bin/env bash
# seq-interop.sh — ul2tpd's data sequencing (docs/sequencing.md) against the
# Linux 6.1 kernel's, booted by the kernel-peer harness
# (shared/harness/kernel-peer, see its README.md). Companion of interop.sh,
# same conventions.
#
#   bash cmd/interop/seq-interop.sh [BINDIR] [HARNESSDIR]
#
# BINDIR holds ul2tpd and ul2tp [./bin]. HARNESSDIR is shared/harness or
# shared/harness/kernel-peer [../shared/harness]. Skips (exit 0) when not root
# or when the harness is missing. One guest at a time, each torn down on exit.
# Runs from the repository root (it builds cmd/interop/l2tpstat, which runs
# inside the guest and reads the kernel's L2TP_ATTR_STATS).
#
# Environment:
#   KP_CACHE, KP_RUN   harness cache / run dirs [/var/tmp/ul2tp-kp, /tmp/kp]
#   INTEROP_NETNS      namespace for the TAP and ul2tpd [ul2tp-interop]
#   SEQ_ONLY           comma-separated case names to run (default: all):
#                      both, lac, lns
#   SEQ_TIME           seconds per traffic run [3]
#   SEQ_RATE           iperf3 -u rate of the reordering runs [4M]
#   SEQ_NETEM          netem words for the reordering runs
#                      ["delay 10ms reorder 25% 50%"]
#   SEQ_L2TPSTAT       a prebuilt static l2tpstat (default: go build it)
#   SEQ_KEEP=1         keep logs, pcaps and iperf3 JSON
#
# Cases (all udp/IPv4, l2spec default, the guest sends an 8-byte cookie and
# expects a 4-byte one; tunnel 100/200, session 101/201 as in interop.sh):
#   both  guest seq both, ours seq both: Ns on the wire (tcpdump + tshark),
#         counters on both sides; then netem reordering guest -> us with our
#         reorder_timeout 0 and 100; then (if the guest has ifb) reordering
#         us -> guest with the kernel's recv_timeout 0 and 100, for reference.
#   lac   guest seq both, ours seq none lns_mode off: we must start sending Ns
#         when the guest's first sequenced packet arrives.
#   lns   guest seq none, ours seq send lns_mode on: the kernel must follow us;
#         then the guest stops sending Ns (send_seq 0 lns_mode 1): we drop its
#         packets while in LNS mode, and follow it (send_seq off) with
#         lns_mode off.
# The last line is "N passed, M failed" (counting checks); exit 1 if M > 0.
set -uo pipefail

BIN=$(cd "${1:-./bin}" 2>/dev/null && pwd) || { echo "seq-interop: no such BINDIR: ${1:-./bin}" >&2; exit 1; }
HDIR=${2:-../shared/harness}
export KP_CACHE=${KP_CACHE:-/var/tmp/ul2tp-kp}
export KP_RUN=${KP_RUN:-/tmp/kp}
NS=${INTEROP_NETNS:-ul2tp-interop}
SECS=${SEQ_TIME:-3}
RATE=${SEQ_RATE:-4M}
NETEM=${SEQ_NETEM:-delay 10ms reorder 25% 50%}
SRC=$(cd "$(dirname "$0")/../.." && pwd)

if [ -f "$HDIR/kernel-peer.sh" ]; then KPDIR=$HDIR
elif [ -f "$HDIR/kernel-peer/kernel-peer.sh" ]; then KPDIR=$HDIR/kernel-peer
else echo "seq-interop: skipped: kernel-peer harness not found under $HDIR"; exit 0; fi
KPDIR=$(cd "$KPDIR" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "seq-interop: skipped: needs root (network namespaces, TAP, QEMU)"; exit 0; }
for c in ip ping iperf3 tcpdump tshark python3; do
	command -v $c >/dev/null || { echo "seq-interop: $c missing: apt-get install iproute2 iputils-ping iperf3 tcpdump tshark python3" >&2; exit 1; }
done
for b in ul2tpd ul2tp; do [ -x "$BIN/$b" ] || { echo "seq-interop: $BIN/$b missing: make build" >&2; exit 1; }; done
KP() { bash "$KPDIR/kernel-peer.sh" "$@"; }

RUN=$(mktemp -d /tmp/ul2tp-seq-interop.XXXXXX)
if [ -n "${SEQ_L2TPSTAT:-}" ]; then
	L2TPSTAT=$SEQ_L2TPSTAT
else
	GO=$(command -v go || echo /usr/local/go/bin/go)
	L2TPSTAT=$RUN/l2tpstat
	(cd "$SRC" && CGO_ENABLED=0 "$GO" build -o "$L2TPSTAT" ./cmd/interop/l2tpstat) \
		|| { echo "seq-interop: cannot build cmd/interop/l2tpstat (set SEQ_L2TPSTAT)" >&2; exit 1; }
fi
GUEST="" DPID="" TDPID=""
stop_daemon() {
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID" 2>/dev/null || true
		wait "$DPID" 2>/dev/null || true
		DPID=""
	fi
}
stop_tcpdump() {
	if [ -n "$TDPID" ]; then
		kill -INT "$TDPID" 2>/dev/null || true
		wait "$TDPID" 2>/dev/null || true
		TDPID=""
	fi
}
stop_guest() {
	if [ -n "$GUEST" ]; then
		KP down "$GUEST" >/dev/null 2>&1 || echo "seq-interop: WARNING: 'kernel-peer.sh down $GUEST' failed" >&2
		GUEST=""
	fi
}
cleanup() {
	stop_tcpdump
	stop_daemon
	stop_guest
	if [ "${SEQ_KEEP:-0}" = 1 ]; then echo "seq-interop: logs kept in $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }
info() { printf '   %s\n' "$*"; }
PASS=0 FAIL=0
SUMMARY=()
# check DESC CMD...: count CMD's success as a passed check
check() {
	local d=$1; shift
	if "$@"; then PASS=$((PASS + 1)); printf '   ok    %s\n' "$d"
	else FAIL=$((FAIL + 1)); printf '   FAIL  %s\n' "$d"; fi
}

# Counter snapshots: ustat ARR fills the associative array ARR with our
# session 101, gstat ARR with the guest kernel's session 201 (l2tpstat).
PYSTAT='
import json, sys
sid, arr = int(sys.argv[1]), sys.argv[2]
try:
    d = json.load(sys.stdin)
except ValueError:
    d = []
s = [x for x in (d or []) if x.get("session_id") == sid]
if not s:
    print("%s=()" % arr); sys.exit(0)
s = s[0]; st = s.get("stats") or {}
o = {k: st.get(k, 0) for k in ("rx_packets", "tx_packets", "rx_seq_discards", "rx_oos_packets",
     "rx_errors", "rx_cookie_discards", "rx_invalid", "reorder_queue_depth")}
for k in ("send_seq", "recv_seq", "lns_mode"):
    o[k] = int(bool(s.get(k, False)))
o["reorder_timeout"] = s.get("reorder_timeout", 0)
print("%s=(%s)" % (arr, " ".join("[%s]=%s" % kv for kv in o.items())))
'
declare -A U G U0 U1 U2 G0 G1 G2
ustat() { eval "$(ul -j -s show session 2>/dev/null | python3 -c "$PYSTAT" 101 "$1")"; }
gstat() { eval "$(KP exec "$GUEST" --timeout 20 /run/kp/files/l2tpstat 2>/dev/null | python3 -c "$PYSTAT" 201 "$1")"; }
KEYS=(rx_packets tx_packets rx_seq_discards rx_oos_packets rx_errors rx_cookie_discards rx_invalid reorder_queue_depth send_seq recv_seq lns_mode reorder_timeout)
show() { # show LABEL ARR
	local -n a=$2; local k out=""
	for k in "${KEYS[@]}"; do out+=" $k ${a[$k]:-?}"; done
	printf '   %-7s%s\n' "$1" "$out"
}
delta() { # delta NEW OLD KEY
	local -n n=$1 o=$2
	echo $(( ${n[$3]:-0} - ${o[$3]:-0} ))
}
dshow() { # dshow LABEL NEW OLD: the counters that changed
	local k out=""
	for k in rx_packets tx_packets rx_seq_discards rx_oos_packets rx_errors; do out+=" $k +$(delta "$2" "$3" $k)"; done
	printf '   %-7s%s\n' "$1" "$out"
}
is() { [ "$1" = "$2" ]; }
gt() { [ "${1:-0}" -gt "$2" ] 2>/dev/null; }
lt() { [ "${1:-0}" -lt "$2" ] 2>/dev/null; }
noerr() { [[ -n "$1" && "$1" != error* ]]; }

# iperf3 from our namespace; prints "Mbit/s lost/total out_of_order" of the receiver
iperf() { # iperf TAG ARGS...
	local tag=$1 j=$RUN/$CASE.iperf-$1.json; shift
	printf '+ ip netns exec %s iperf3 -c 10.202.0.2 %s\n' "$NS" "$*" >&2
	timeout $((SECS + 40)) ip netns exec "$NS" iperf3 -c 10.202.0.2 --connect-timeout 5000 -J "$@" >"$j" 2>&1
	local rc=$?
	python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except ValueError:
    print("error: not JSON"); sys.exit(0)
if "error" in d:
    print("error:", d["error"]); sys.exit(0)
e = d.get("end", {})
if "sum" in e and "lost_packets" in e["sum"]:
    s, r = e["sum"], e.get("sum_received", e["sum"])
    print("%.1f Mbit/s received, lost %d/%d (%.1f%%)" % (r.get("bits_per_second", 0) / 1e6,
          s.get("lost_packets", 0), s.get("packets", 0), s.get("lost_percent", 0)))
else:
    print("%.1f Mbit/s received" % (e.get("sum_received", {}).get("bits_per_second", 0) / 1e6))
' "$j"
	return $rc
}

# traffic PHASE: iperf3 both ways through the pseudowire, each checked,
# then the end of the phase's capture
traffic() {
	local out
	out=$(iperf tx -t "$SECS"); check "$1: iperf3 us -> guest: $out" noerr "$out"
	out=$(iperf rx -t "$SECS" -R); check "$1: iperf3 guest -> us: $out" noerr "$out"
	sleep 0.5
	stop_tcpdump
}

# capture our packets (UDP from 10.201.0.1 to :1701) on the harness TAP
cap_start() { # cap_start PCAP
	ip netns exec "$NS" tcpdump -i "kp-$GUEST" -s 128 -c 400 -w "$1" 'udp and src host 10.201.0.1 and dst port 1701' 2>"$1.log" &
	TDPID=$!
	for _ in $(seq 50); do grep -q 'listening on' "$1.log" 2>/dev/null && break; sleep 0.1; done
}
# cap_check PCAP: prints "n nos first_s_index first_ns bad_steps sids" and the
# first packets; S/Ns as tshark decodes them (our cookie is 4 bytes)
cap_fields() {
	tshark -r "$1" -o l2tp.cookie_size:cookie4 -o l2tp.l2_specific:default -d l2tp.pw_type==0,eth \
		-Y l2tp -T fields -e l2tp.sid -e l2tp.l2_spec_s -e l2tp.l2_spec_sequence 2>/dev/null
}
PYCAP='
import sys
rows = [l.rstrip("\n").split("\t") for l in sys.stdin if l.strip()]
n = len(rows)
sids = sorted(set(str(int(r[0], 0)) for r in rows))
s = [r[1] in ("1", "True") for r in rows]
ns = [int(r[2]) if len(r) > 2 and r[2] else None for r in rows]
first = next((i for i, x in enumerate(s) if x), -1)
nos_after = sum(1 for x in s[first:] if not x) if first >= 0 else 0
bad = 0
if first >= 0:
    for a, b in zip(ns[first:], ns[first + 1:]):
        if a is None or b is None or b != (a + 1) & 0xffffff:
            bad += 1
print(n, first, ns[first] if first >= 0 else "-", nos_after, bad, ",".join(sids) or "-",
      " ".join("-" if not x else str(v) for x, v in zip(s[:12], ns[:12])))
'
cap_check() { cap_fields "$1" | python3 -c "$PYCAP"; }

guest_up() { # guest_up NAME EXTRA-ARGS...
	local name=$1; shift
	GUEST=$name
	printf '+ kernel-peer.sh up %s --netns %s --encap udp --family 4 --l2spec default --cookie 0011223344556677 --peer-cookie a1b2c3d4 --put l2tpstat %s\n' "$name" "$NS" "$*"
	if ! KP up "$name" --netns "$NS" --backend kernel --encap udp --family 4 --l2spec default \
		--timeout 180 --cookie 0011223344556677 --peer-cookie a1b2c3d4 --put "$L2TPSTAT" "$@" >"$RUN/$name.up.log" 2>&1; then
		tail -20 "$RUN/$name.up.log" | sed 's/^/   /'
		check "$name: guest up" false; GUEST=""; return 1
	fi
	grep -E 'ready|KP-READY' "$RUN/$name.up.log" | tail -1 | sed 's/^/   /'
}
daemon_up() { # daemon_up SESSION-EXTRA-WORDS...
	SOCK=$RUN/$CASE.sock
	DLOG=$RUN/$CASE.ul2tpd.log
	ip netns exec "$NS" "$BIN/ul2tpd" --socket "$SOCK" 2>"$DLOG" &
	DPID=$!
	for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
	ul() { ip netns exec "$NS" "$BIN/ul2tp" --socket "$SOCK" "$@"; }
	printf '+ ul2tp add session ... %s\n' "$*"
	ul add tunnel tunnel_id 100 peer_tunnel_id 200 encap udp local 10.201.0.1 remote 10.201.0.2 udp_sport 1701 udp_dport 1701 \
		&& ul add session name l2tp0 tunnel_id 100 session_id 101 peer_session_id 201 l2spec_type default \
			cookie a1b2c3d4 peer_cookie 0011223344556677 "$@"
}
link_up() {
	ip -n "$NS" link set l2tp0 up && ip -n "$NS" addr add 10.202.0.1/24 dev l2tp0 \
		&& ip -n "$NS" addr add fd00:202::1/64 dev l2tp0 nodad
}
daemon_down() {
	stop_daemon
	if grep -qE 'level=(WARN|ERROR)|panic' "$DLOG"; then
		grep -E 'level=(WARN|ERROR)|panic' "$DLOG" | head -5 | sed 's/^/   ul2tpd: /'
		check "$CASE: ul2tpd log clean" false
	else check "$CASE: ul2tpd log clean" true; fi
}
gping() { KP exec "$GUEST" --timeout 30 "ping -c ${1:-3} -i 0.3 -W 2 10.202.0.1" >"$RUN/$CASE.gping.log" 2>&1; }
uping() { ip netns exec "$NS" ping -c "${1:-3}" -i 0.3 -W 2 10.202.0.2 >"$RUN/$CASE.uping.log" 2>&1; }
received() { grep -o '[0-9]* received' "$1" | head -1; }

# ---------------------------------------------------------------------------
case_both() {
	CASE=both
	step "case both: guest seq both, ours seq both (reorder_timeout 0)"
	guest_up sq-both --seq both || return
	local pcap=$RUN/both.pcap n first ns0 nos bad sids head
	daemon_up seq both || { check "both: ul2tpd configured" false; tail "$DLOG"; stop_daemon; stop_guest; return; }
	cap_start "$pcap"
	check "both: ul2tpd configured (seq both)" link_up
	ul show session | sed 's/^/   /'

	step "both: traffic both ways, no reordering"
	check "both: guest pings 10.202.0.1 ($(gping && received "$RUN/both.gping.log"))" grep -q ' 0% packet loss' "$RUN/both.gping.log"
	check "both: we ping 10.202.0.2 ($(uping && received "$RUN/both.uping.log"))" grep -q ' 0% packet loss' "$RUN/both.uping.log"
	traffic both
	ustat U; gstat G
	show ours U; show kernel G
	check "both: ours send_seq 1 recv_seq 1" is "${U[send_seq]:-?}${U[recv_seq]:-?}" 11
	check "both: ours rx_packets ${U[rx_packets]:-?} > 0, rx_seq_discards ${U[rx_seq_discards]:-?} == 0, rx_errors ${U[rx_errors]:-?} == 0" \
		is "$(gt "${U[rx_packets]:-?}" 0 && echo y)${U[rx_seq_discards]:-?}${U[rx_errors]:-?}" y00
	check "both: kernel rx_packets ${G[rx_packets]:-?} > 0, rx_seq_discards ${G[rx_seq_discards]:-?} == 0, rx_errors ${G[rx_errors]:-?} == 0, rx_oos_packets ${G[rx_oos_packets]:-?} == 0" \
		is "$(gt "${G[rx_packets]:-0}" 0 && echo y)${G[rx_seq_discards]:-x}${G[rx_errors]:-x}${G[rx_oos_packets]:-x}" y000
	info "our tx_packets ${U[tx_packets]:-?}, kernel rx_packets ${G[rx_packets]:-?} (read after ours)"
	read -r n first ns0 nos bad sids head <<<"$(cap_check "$pcap")"
	info "tshark: $n of our packets captured, session ids $sids, first S/Ns: $head"
	check "both: tshark: S bit on every captured packet of ours ($n, first Ns $ns0), Ns +1 each (bad steps $bad), sid 201" \
		is "$(gt "$n" 10 && echo y)$first$nos$bad$sids" y000201
	check "both: our first Ns is 0" is "$ns0" 0

	step "both: netem on the guest's eth0 ($NETEM): reordering guest -> us"
	printf '+ kernel-peer.sh exec sq-both "tc qdisc add dev eth0 root netem %s"\n' "$NETEM"
	if ! KP exec "$GUEST" --timeout 20 "tc qdisc add dev eth0 root netem $NETEM" 2>&1 | sed 's/^/   /'; then
		check "both: netem on the guest" false
	else
		local phase to
		for phase in 0 100; do
			if [ "$phase" = 100 ]; then
				printf '+ ul2tp set session tunnel_id 100 session_id 101 reorder_timeout 100\n'
				ul set session tunnel_id 100 session_id 101 reorder_timeout 100
			fi
			ustat U0; gstat G0
			to=${U0[reorder_timeout]:-?}
			out=$(iperf "reorder-us-$phase" -u -b "$RATE" -l 1000 -t "$SECS" -R)
			info "reorder_timeout $to: iperf3 -u guest -> us: $out"
			sleep 0.3
			ustat U1; gstat G1
			dshow ours U1 U0; dshow kernel G1 G0
			info "ours reorder_queue_depth now ${U1[reorder_queue_depth]:-?}"
			eval "D${phase}_disc=$(delta U1 U0 rx_seq_discards) D${phase}_oos=$(delta U1 U0 rx_oos_packets) D${phase}_err=$(delta U1 U0 rx_errors) D${phase}_rx=$(delta U1 U0 rx_packets)"
			eval "L${phase}=\$out"
		done
		check "both: ours reorder_timeout 0: rx_seq_discards +$D0_disc > 0, rx_oos_packets +$D0_oos == 0, rx_errors +$D0_err >= discards" \
			is "$(gt "$D0_disc" 0 && echo y)$D0_oos$( [ "$D0_err" -ge "$D0_disc" ] && echo y)" y0y
		check "both: ours reorder_timeout 100: rx_oos_packets +$D100_oos > 0, rx_seq_discards +$D100_disc < $D0_disc (timeout 0)" \
			is "$(gt "$D100_oos" 0 && echo y)$(lt "$D100_disc" "$D0_disc" && echo y)" yy
		# duplicates: the copy's Ns is behind nr, outside the window: rx_errors only
		printf '+ ul2tp set session tunnel_id 100 session_id 101 reorder_timeout 0\n'
		ul set session tunnel_id 100 session_id 101 reorder_timeout 0
		printf '+ kernel-peer.sh exec sq-both "tc qdisc change dev eth0 root netem duplicate 10%%"\n'
		KP exec "$GUEST" --timeout 20 "tc qdisc change dev eth0 root netem duplicate 10%" 2>&1 | sed 's/^/   /'
		ustat U0; gstat G0
		out=$(iperf dup-us -u -b "$RATE" -l 1000 -t "$SECS" -R)
		info "reorder_timeout ${U0[reorder_timeout]:-?}, duplicates: iperf3 -u guest -> us: $out"
		sleep 0.3
		ustat U1; gstat G1
		dshow ours U1 U0; dshow kernel G1 G0
		check "both: duplicates toward us: rx_errors +$(delta U1 U0 rx_errors) > 0, rx_seq_discards +$(delta U1 U0 rx_seq_discards) == 0, rx_oos_packets +$(delta U1 U0 rx_oos_packets) == 0" \
			is "$(gt "$(delta U1 U0 rx_errors)" 0 && echo y)$(delta U1 U0 rx_seq_discards)$(delta U1 U0 rx_oos_packets)" y00
		KP exec "$GUEST" --timeout 20 "tc qdisc del dev eth0 root" >/dev/null 2>&1
	fi

	step "both: reordering us -> guest (ifb + netem on the guest's eth0 ingress), kernel for reference"
	local setup="modprobe ifb numifbs=1 && modprobe sch_netem && ip link set ifb0 up && tc qdisc add dev eth0 handle ffff: ingress && tc filter add dev eth0 parent ffff: protocol ip u32 match u32 0 0 action mirred egress redirect dev ifb0 && tc qdisc add dev ifb0 root netem $NETEM"
	printf '+ kernel-peer.sh exec sq-both "%s"\n' "$setup"
	if ! KP exec "$GUEST" --timeout 30 "$setup" >"$RUN/both.ifb.log" 2>&1; then
		sed 's/^/   /' "$RUN/both.ifb.log"
		info "skipped: the guest cannot reorder its ingress (no ifb/mirred); nothing counted"
	else
		local phase
		for phase in 0 100; do
			if [ "$phase" = 100 ]; then
				printf '+ kernel-peer.sh exec sq-both "/run/kp/files/l2tpstat modify 200 201 recv_timeout 100"\n'
				KP exec "$GUEST" --timeout 20 "/run/kp/files/l2tpstat modify 200 201 recv_timeout 100" 2>&1 | sed 's/^/   /'
			fi
			ustat U0; gstat G0
			out=$(iperf "reorder-kernel-$phase" -u -b "$RATE" -l 1000 -t "$SECS")
			info "kernel recv_timeout ${G0[reorder_timeout]:-?}: iperf3 -u us -> guest: $out"
			sleep 0.3
			ustat U1; gstat G1
			dshow ours U1 U0; dshow kernel G1 G0
			info "kernel recv_timeout ${G1[reorder_timeout]:-?}: rx_seq_discards +$(delta G1 G0 rx_seq_discards), rx_oos_packets +$(delta G1 G0 rx_oos_packets), rx_errors +$(delta G1 G0 rx_errors) (reference, not counted)"
		done
		printf '+ kernel-peer.sh exec sq-both "l2tpstat modify 200 201 recv_timeout 0; tc qdisc change dev ifb0 root netem duplicate 10%%"\n'
		KP exec "$GUEST" --timeout 20 "/run/kp/files/l2tpstat modify 200 201 recv_timeout 0 && tc qdisc change dev ifb0 root netem duplicate 10%" 2>&1 | sed 's/^/   /'
		ustat U0; gstat G0
		out=$(iperf dup-kernel -u -b "$RATE" -l 1000 -t "$SECS")
		info "kernel recv_timeout ${G0[reorder_timeout]:-?}, duplicates: iperf3 -u us -> guest: $out"
		sleep 0.3
		ustat U1; gstat G1
		dshow ours U1 U0; dshow kernel G1 G0
		info "kernel, duplicates: rx_seq_discards +$(delta G1 G0 rx_seq_discards), rx_oos_packets +$(delta G1 G0 rx_oos_packets), rx_errors +$(delta G1 G0 rx_errors) (reference, not counted)"
		KP exec "$GUEST" --timeout 20 "tc qdisc del dev eth0 ingress; tc qdisc del dev ifb0 root" >/dev/null 2>&1
	fi
	ustat U; gstat G
	show ours U; show kernel G
	daemon_down
	stop_guest
}

# ---------------------------------------------------------------------------
case_lac() {
	CASE=lac
	step "case lac: guest seq both, ours seq none lns_mode off (follows the peer)"
	guest_up sq-lac --seq both || return
	local pcap=$RUN/lac.pcap n first ns0 nos bad sids head
	daemon_up || { check "lac: ul2tpd configured" false; tail "$DLOG"; stop_daemon; stop_guest; return; }
	cap_start "$pcap"
	check "lac: ul2tpd configured (no seq words)" link_up
	ustat U0; gstat G0
	show ours U0; show kernel G0
	check "lac: ours starts with send_seq 0 recv_seq 0 lns_mode 0" is "${U0[send_seq]:-?}${U0[recv_seq]:-?}${U0[lns_mode]:-?}" 000
	check "lac: guest pings 10.202.0.1 ($(gping && received "$RUN/lac.gping.log"))" grep -q ' 0% packet loss' "$RUN/lac.gping.log"
	ustat U1; gstat G1
	show ours U1; show kernel G1
	check "lac: ours send_seq 1 after the guest's sequenced packets" is "${U1[send_seq]:-?}" 1
	info "kernel rx_seq_discards before the guest's first ping ${G0[rx_seq_discards]:-?}, after it ${G1[rx_seq_discards]:-?} (packets we sent before we saw an Ns)"
	check "lac: we ping 10.202.0.2 ($(uping && received "$RUN/lac.uping.log"))" grep -q ' 0% packet loss' "$RUN/lac.uping.log"
	traffic lac
	ustat U2; gstat G2
	show ours U2; show kernel G2
	check "lac: ours still send_seq 1, rx_seq_discards ${U2[rx_seq_discards]:-?} == 0, rx_errors ${U2[rx_errors]:-?} == 0" \
		is "${U2[send_seq]:-?}${U2[rx_seq_discards]:-?}${U2[rx_errors]:-?}" 100
	read -r n first ns0 nos bad sids head <<<"$(cap_check "$pcap")"
	info "tshark: $n of our packets captured, session ids $sids, first S/Ns ('-' = no S bit): $head"
	check "lac: tshark: $first packets without S before the first with S (Ns $ns0), then S on all ($nos without), Ns +1 each (bad steps $bad)" \
		is "$(gt "$n" 10 && echo y)$nos$bad$ns0" y000
	# the kernel (recv_seq) drops what we sent before we saw its first Ns, as it
	# would a kernel LAC's; after that, nothing
	check "lac: kernel rx_seq_discards ${G2[rx_seq_discards]:-?} == rx_errors ${G2[rx_errors]:-?} == our packets without S ($first), +$(delta G2 G1 rx_seq_discards) since the guest's first ping (rx_packets ${G2[rx_packets]:-?}, our tx_packets ${U2[tx_packets]:-?})" \
		is "${G2[rx_seq_discards]:-x} ${G2[rx_errors]:-x} $(delta G2 G1 rx_seq_discards)" "$first $first 0"
	daemon_down
	stop_guest
}

# ---------------------------------------------------------------------------
case_lns() {
	CASE=lns
	step "case lns: guest seq none, ours seq send lns_mode on (the kernel follows us)"
	guest_up sq-lns --seq none || return
	daemon_up seq send lns_mode on || { check "lns: ul2tpd configured" false; tail "$DLOG"; stop_daemon; stop_guest; return; }
	check "lns: ul2tpd configured (seq send lns_mode on)" link_up
	ustat U0; gstat G0
	show ours U0; show kernel G0
	check "lns: we ping 10.202.0.2 ($(uping && received "$RUN/lns.uping.log"))" grep -q ' 0% packet loss' "$RUN/lns.uping.log"
	check "lns: guest pings 10.202.0.1 ($(gping && received "$RUN/lns.gping.log"))" grep -q ' 0% packet loss' "$RUN/lns.gping.log"
	ustat U1; gstat G1
	show ours U1; show kernel G1
	check "lns: kernel followed us: send_seq ${G1[send_seq]:-?} == 1 (recv_seq ${G1[recv_seq]:-?}, lns_mode ${G1[lns_mode]:-?})" is "${G1[send_seq]:-x}" 1
	check "lns: ours send_seq 1 lns_mode 1, kernel rx_seq_discards ${G1[rx_seq_discards]:-?} == 0" is "${U1[send_seq]:-?}${U1[lns_mode]:-?}${G1[rx_seq_discards]:-x}" 110
	info "ours rx_seq_discards ${U1[rx_seq_discards]:-?} (the guest's packets without Ns before it followed; dropped in LNS mode)"
	local out
	out=$(iperf rx -t "$SECS" -R); check "lns: iperf3 guest -> us: $out" noerr "$out"
	ustat U2
	check "lns: ours rx_seq_discards +$(delta U2 U1 rx_seq_discards) == 0 during the guest's sequenced traffic" is "$(delta U2 U1 rx_seq_discards)" 0

	step "lns: the guest stops sending Ns (send_seq 0 lns_mode 1); we are in LNS mode"
	printf '+ kernel-peer.sh exec sq-lns "/run/kp/files/l2tpstat modify 200 201 send_seq 0 lns_mode 1"\n'
	KP exec "$GUEST" --timeout 20 "/run/kp/files/l2tpstat modify 200 201 send_seq 0 lns_mode 1" 2>&1 | sed 's/^/   /'
	ustat U0; gstat G0
	gping 5; info "guest pings 10.202.0.1: $(received "$RUN/lns.gping.log")"
	ustat U1; gstat G1
	dshow ours U1 U0; dshow kernel G1 G0
	check "lns: in LNS mode we drop the guest's packets without Ns: rx_seq_discards +$(delta U1 U0 rx_seq_discards) > 0 == rx_errors +$(delta U1 U0 rx_errors), rx_packets +$(delta U1 U0 rx_packets) == 0, send_seq ${U1[send_seq]:-?} == 1" \
		is "$(gt "$(delta U1 U0 rx_seq_discards)" 0 && echo y)$(( $(delta U1 U0 rx_seq_discards) - $(delta U1 U0 rx_errors) ))$(delta U1 U0 rx_packets)${U1[send_seq]:-?}" y001
	printf '+ ul2tp set session tunnel_id 100 session_id 101 lns_mode off\n'
	ul set session tunnel_id 100 session_id 101 lns_mode off
	check "lns: guest pings 10.202.0.1 after lns_mode off ($(gping && received "$RUN/lns.gping.log"))" grep -q ' 0% packet loss' "$RUN/lns.gping.log"
	ustat U2; gstat G2
	show ours U2; show kernel G2
	check "lns: ours followed the guest: send_seq ${U2[send_seq]:-?} == 0, lns_mode ${U2[lns_mode]:-?} == 0" is "${U2[send_seq]:-?}${U2[lns_mode]:-?}" 00
	check "lns: kernel rx_seq_discards ${G2[rx_seq_discards]:-?} == 0, rx_errors ${G2[rx_errors]:-?} == 0" is "${G2[rx_seq_discards]:-x}${G2[rx_errors]:-x}" 00
	daemon_down
	stop_guest
}

step "harness: $KPDIR (KP_CACHE=$KP_CACHE KP_RUN=$KP_RUN), namespace $NS"
if ! bash "$KPDIR/setup.sh" >"$RUN/setup.log" 2>&1; then
	tail -20 "$RUN/setup.log" >&2; echo "seq-interop: harness setup.sh failed" >&2; exit 1
fi
info "ul2tpd: $BIN/ul2tpd; guest kernel $(cat "$KP_CACHE/kernel.version" 2>/dev/null || echo '?'), accel $(cat "$KP_CACHE/accel" 2>/dev/null || echo '?')"
for c in both lac lns; do
	if [ -n "${SEQ_ONLY:-}" ] && [[ ",$SEQ_ONLY," != *",$c,"* ]]; then continue; fi
	p=$PASS f=$FAIL t0=$(date +%s)
	"case_$c"
	SUMMARY+=("$c $((PASS - p)) $((FAIL - f)) $(($(date +%s) - t0))s")
done

step "summary ($(date -u '+%Y-%m-%d %H:%M UTC'))"
printf '   %-6s %6s %6s %6s\n' case passed failed time
for s in "${SUMMARY[@]}"; do
	read -r -a f <<<"$s"
	printf '   %-6s %6s %6s %6s\n' "${f[@]}"
done
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
