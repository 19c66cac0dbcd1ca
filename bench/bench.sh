#!/usr/bin/env bash
# bench.sh — throughput and small-frame packet rate of ul2tp against a plain
# veth, kernel VXLAN, OpenVPN (TAP, no crypto) and fastd (TAP, method null),
# all between the same two network namespaces, in one run.
#
#   bash bench/bench.sh [BINDIR]          (make bench builds and runs it, as root)
#
# Environment:
#   DURATION=3     seconds per iperf3 measurement
#   REPEAT=3       measurements per (setup, test); the report uses the median
#   ROWS=all       or a space-separated subset of: veth vxlan openvpn fastd
#                  ul2tp-udp ul2tp-ip ul2tp-udp-seq ul2tp-udp-scrape
#                  ul2tp-ppp, and the step rows
#                  ul2tp-step0 ul2tp-step1 ul2tp-q2 ul2tp-gmp1 ul2tp-pin
#                  ul2tp-sockbuf
#   SEQ=1          include the "ul2tp udp + seq both" row (SEQ=0 leaves it out)
#   SCRAPE=1       include the "ul2tp udp + scraper 1/s" row: the UDP row
#                  with both daemons' /metrics scraped every second
#                  (SCRAPE=0 leaves it out)
#   PPP=1          include the "ul2tp L2TPv2 PPP" row: a PPP call from our
#                  LAC (a) to our LNS (b), PAP, no seq, TCP and UDP through
#                  the calls' TUN devices (PPP=0 leaves it out)
#   PPP_MTU=1462   the PPP row's mtu and mru keys at both ends: the
#                  underlay's 1500 - 20 (IP) - 8 (UDP) - 6 (L2TPv2 data
#                  header, no seq) - 4 (the longest PPP header), the most
#                  that is not fragmented; 0 keeps the daemon's default
#                  (1400, room for IPsec too)
#   PPP_ARGS=      more flags for both of the PPP row's daemons: say
#                  --no-offload, to measure the calls' TUNs without
#                  offloads
#   STEPS=1        include the step rows (STEPS=0 leaves them out): the UDP
#                  row without offloads and without UDP checksums (step 0),
#                  with TAP offloads but no UDP GSO (step 1), and the
#                  default with 2 TAP queues, GOMAXPROCS=1, pinned to CPUs,
#                  or with the kernel's default socket buffers
#   GOBENCH=1      run the Go micro-benchmarks (GOBENCH=0 skips them)
#   OUT=bench/results   where results.json and chart.png go
#   KEEP_RAW=0     KEEP_RAW=1 copies the raw iperf3/CPU files to $OUT/raw
#
# Each setup gets fresh namespaces ul2tpb-a and ul2tpb-b joined by a veth pair
# (underlay 10.220.0.1/.2, inner 10.221.0.1/.2) and is torn down before the
# next one. Every process it starts is stopped by PID; the namespaces are
# deleted on exit, however it exits.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (network namespaces, TAP devices)" >&2; exit 1; }
T0=$(date +%s)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
BIN=$(cd "${1:-$ROOT/bin}" && pwd)
DURATION=${DURATION:-3}
REPEAT=${REPEAT:-3}
SEQ=${SEQ:-1}
SCRAPE=${SCRAPE:-1}
PPP=${PPP:-1}
PPP_MTU=${PPP_MTU:-1462}
STEPS=${STEPS:-1}
GOBENCH=${GOBENCH:-1}
KEEP_RAW=${KEEP_RAW:-0}
OUT=${OUT:-$HERE/results}
ROWS=${ROWS:-all} ROWS_SET=
[ "$ROWS" != all ] && ROWS_SET=1
if [ "$ROWS" = all ]; then
	ROWS="veth vxlan openvpn fastd ul2tp-udp ul2tp-ip"
	[ "$SEQ" = 1 ] && ROWS="$ROWS ul2tp-udp-seq"
	[ "$SCRAPE" = 1 ] && ROWS="$ROWS ul2tp-udp-scrape"
	[ "$PPP" = 1 ] && ROWS="$ROWS ul2tp-ppp"
	[ "$STEPS" = 1 ] && ROWS="$ROWS ul2tp-step0 ul2tp-step1 ul2tp-q2 ul2tp-gmp1 ul2tp-pin ul2tp-sockbuf"
fi
case $DURATION in ''|*[!0-9]*|0) echo "bench: DURATION must be a whole number of seconds >= 1" >&2; exit 1;; esac
case $REPEAT in ''|*[!0-9]*|0) echo "bench: REPEAT must be a whole number >= 1" >&2; exit 1;; esac
case $PPP_MTU in ''|*[!0-9]*) echo "bench: PPP_MTU must be a whole number (0: the daemon's)" >&2; exit 1;; esac

A=ul2tpb-a B=ul2tpb-b VA=ul2tpb-va VB=ul2tpb-vb
UA=10.220.0.1 UB=10.220.0.2 # underlay (veth)
IA=10.221.0.1 IB=10.221.0.2 # inner (through the tunnel)
INNER_MTU=1450              # VXLAN, OpenVPN, fastd: underlay 1500 - 50
PORT=5201

# ---- dependencies -------------------------------------------------------

need=()
for p in iproute2:ip iperf3:iperf3 openvpn:openvpn fastd:fastd iputils-ping:ping curl:curl; do
	command -v "${p#*:}" >/dev/null 2>&1 || need+=("${p%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "bench: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for c in "$BIN/ul2tpd" "$BIN/ul2tp"; do [ -x "$c" ] || { echo "bench: $c missing: run make build" >&2; exit 1; }; done
command -v go >/dev/null || { echo "bench: go missing (needed for the report and the micro-benchmarks)" >&2; exit 1; }

# ---- state and teardown -------------------------------------------------

RUN=$(mktemp -d /tmp/ul2tpb.XXXXXX)
RAW=$RUN/raw
mkdir -p "$RAW"
pids=()      # everything started in the current setup
tunpids=()   # the subset whose CPU time is the tunnel's

# stop_pids ends every process in pids (TERM, then KILL after 3 s), by PID.
stop_pids() {
	local p i
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=() tunpids=()
}
ns_down() {
	stop_pids
	ip netns del $A 2>/dev/null || true
	ip netns del $B 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	ns_down
	rm -rf "$RUN"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '%(%H:%M:%S)T  %s\n' -1 "$*"; }

# bg NAME CMD... starts CMD in the background, logging to $RUN/NAME.log;
# its PID is in $LASTPID and in pids.
bg() {
	local name=$1; shift
	"$@" >"$RUN/$name.log" 2>&1 &
	LASTPID=$!
	pids+=("$LASTPID")
}

# ---- the two namespaces -------------------------------------------------

ns_up() {
	ip netns del $A 2>/dev/null || true # a leftover of an interrupted run
	ip netns del $B 2>/dev/null || true
	ip netns add $A
	ip netns add $B
	ip link add $VA netns $A type veth peer name $VB netns $B
	ip -n $A addr add $UA/24 dev $VA
	ip -n $B addr add $UB/24 dev $VB
	for ns in $A $B; do ip -n $ns link set lo up; done
	ip -n $A link set $VA up
	ip -n $B link set $VB up
}

# inner_addr NS IFACE ADDR: address and bring up a tunnel's inner interface
inner_addr() {
	ip -n "$1" addr add "$3/24" dev "$2"
	ip -n "$1" link set "$2" up
}

# wait_link NS IFACE: bounded wait for an interface a daemon creates
wait_link() {
	local i
	for i in $(seq 100); do ip -n "$1" link show "$2" >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "bench: $2 did not appear in $1" >&2
	return 1
}

# wait_ping ADDR: bounded wait until ADDR answers from namespace A
wait_ping() {
	local i
	for i in $(seq 30); do
		ip netns exec $A ping -c 1 -W 1 -q "$1" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "bench: $1 unreachable from $A" >&2
	return 1
}

# ---- the setups: each sets TARGET (the address iperf3 talks to) and IFACE --

setup_veth() {
	TARGET=$UB IFACE=$VA
	LABEL="veth direct (no tunnel)"
}

setup_vxlan() {
	ip -n $A link add vx0 type vxlan id 42 remote $UB local $UA dstport 4789 dev $VA
	ip -n $B link add vx0 type vxlan id 42 remote $UA local $UB dstport 4789 dev $VB
	for ns in $A $B; do ip -n $ns link set vx0 mtu $INNER_MTU; done
	inner_addr $A vx0 $IA
	inner_addr $B vx0 $IB
	TARGET=$IB IFACE=vx0
	LABEL="kernel VXLAN"
}

setup_openvpn() {
	local ns me peer ia
	for ns in $A $B; do
		if [ $ns = $A ]; then me=$UA peer=$UB ia=$IA; else me=$UB peer=$UA ia=$IB; fi
		bg openvpn-$ns ip netns exec $ns openvpn --dev ul2tpb-ov --dev-type tap \
			--proto udp --local $me --lport 1194 --remote $peer --rport 1194 \
			--cipher none --auth none --disable-dco \
			--ifconfig $ia 255.255.255.0 --tun-mtu $INNER_MTU --verb 1
		tunpids+=("$LASTPID")
	done
	TARGET=$IB IFACE=ul2tpb-ov
	LABEL="OpenVPN 2.6 TAP, UDP, no crypto"
}

setup_fastd() {
	local ns me peer ia dir
	for ns in $A $B; do
		fastd --generate-key >"$RUN/key-$ns" 2>/dev/null
	done
	for ns in $A $B; do
		if [ $ns = $A ]; then me=$UA peer=$UB other=$B; else me=$UB peer=$UA other=$A; fi
		dir=$RUN/fastd-$ns
		mkdir -p "$dir"
		cat >"$dir/fastd.conf" <<-EOF
			log level warn;
			interface "ul2tpb-fd";
			mode tap;
			method "null";
			mtu $INNER_MTU;
			bind $me:10000;
			secret "$(awk '/^Secret:/{print $2}' "$RUN/key-$ns")";
			peer "$other" {
				key "$(awk '/^Public:/{print $2}' "$RUN/key-$other")";
				remote $peer:10000;
			}
		EOF
		bg fastd-$ns ip netns exec $ns fastd --config "$dir/fastd.conf"
		tunpids+=("$LASTPID")
	done
	wait_link $A ul2tpb-fd
	wait_link $B ul2tpb-fd
	inner_addr $A ul2tpb-fd $IA
	inner_addr $B ul2tpb-fd $IB
	TARGET=$IB IFACE=ul2tpb-fd
	LABEL="fastd v$(fastd --version | awk '{print $2}' | tr -d v) TAP, method null"
}

# setup_ul2tp ENCAP [SEQ [CSUM [FLAGS [HOW]]]]: L2TPv3, 4-byte cookies,
# default L2-specific sublayer. SEQ=both adds "seq both" on both session
# ends, CSUM=off|on sets udp_csum on both tunnel ends (ul2tp's default is
# on), FLAGS are extra ul2tpd flags, HOW is gmp1 (GOMAXPROCS=1) or pin (each
# ul2tpd on its own CPU with taskset).
setup_ul2tp() {
	local encap=$1 seq=${2:-} csum=${3:-} flags=${4:-} how=${5:-} ns i cpu=0 ports=() seqw=() wrap=() extra=""
	for ns in $A $B; do
		wrap=()
		case $how in
		gmp1) wrap=(env GOMAXPROCS=1) ;;
		pin) wrap=(taskset -c $((cpu % $(nproc)))) ;;
		esac
		# shellcheck disable=SC2086
		bg ul2tpd-$ns ip netns exec $ns "${wrap[@]}" "$BIN/ul2tpd" --socket "$RUN/$ns.sock" $flags
		tunpids+=("$LASTPID")
		cpu=$((cpu + 1))
	done
	for ns in $A $B; do
		for i in $(seq 50); do [ -S "$RUN/$ns.sock" ] && break; sleep 0.1; done
	done
	[ "$encap" = udp ] && ports=(udp_sport 1701 udp_dport 1701)
	[ -n "$csum" ] && ports+=(udp_csum "$csum")
	[ -n "$seq" ] && seqw=(seq "$seq")
	ul2tp() { local ns=$1; shift; ip netns exec "$ns" "$BIN/ul2tp" --socket "$RUN/$ns.sock" "$@"; }
	ul2tp $A add tunnel tunnel_id 100 peer_tunnel_id 200 encap "$encap" local $UA remote $UB "${ports[@]}"
	ul2tp $A add session name ul2tpb0 tunnel_id 100 session_id 101 peer_session_id 201 \
		cookie 11223344 peer_cookie 55667788 l2spec_type default "${seqw[@]}"
	ul2tp $B add tunnel tunnel_id 200 peer_tunnel_id 100 encap "$encap" local $UB remote $UA "${ports[@]}"
	ul2tp $B add session name ul2tpb0 tunnel_id 200 session_id 201 peer_session_id 101 \
		cookie 55667788 peer_cookie 11223344 l2spec_type default "${seqw[@]}"
	wait_link $A ul2tpb0
	wait_link $B ul2tpb0
	inner_addr $A ul2tpb0 $IA
	inner_addr $B ul2tpb0 $IB
	TARGET=$IB IFACE=ul2tpb0
	[ -n "$seq" ] && extra="$extra, seq $seq"
	[ -n "$csum" ] && extra="$extra, udp_csum $csum"
	[ -n "$flags" ] && extra="$extra, $flags"
	case $how in
	gmp1) extra="$extra, GOMAXPROCS=1" ;;
	pin) extra="$extra, pinned (taskset: a on CPU 0, b on CPU 1)" ;;
	esac
	LABEL="ul2tp L2TPv3/$(echo "$encap" | tr a-z A-Z), cookie 4, l2spec default$extra"
	UL2TP_ROW=1
}


# setup_ppp: L2TPv2 with PPP, both ends ours: the LNS in b (PAP against a
# chap-secrets file, local_ip IB, a pool of the one address IA), the LAC
# in a dialling it with one call. No sequencing (the LNS does not ask for
# it). Each end's TUN is ul2tpb-ppp0, made and addressed by the daemon.
setup_ppp() {
	local ns i
	printf 'bench * "bench pass" *\n' >"$RUN/chap-secrets"
	local mtu=
	[ "$PPP_MTU" != 0 ] && mtu="mtu = $PPP_MTU
mru = $PPP_MTU"
	cat >"$RUN/lns.toml" <<-EOF
		[lns]
		listen = "$UB:1701"
		ppp_auth = "pap"
		chap_secrets = "$RUN/chap-secrets"
		ppp_name = "lns"
		local_ip = "$IB"
		pool = "$IA-$IA"
		tun_name = "ul2tpb-ppp%d"
		$mtu
	EOF
	cat >"$RUN/lac.toml" <<-EOF
		[tunnel.lac]
		version = "l2tpv2"
		peer = "$UB:1701"
		local = "$UA:1701"
		tun_name = "ul2tpb-ppp%d"
		[tunnel.lac.session.bench]
		pseudowire = "ppp"
		user = "bench"
		password = "bench pass"
		$mtu
	EOF
	# shellcheck disable=SC2086 # PPP_ARGS is words
	bg ul2tpd-$B ip netns exec $B "$BIN/ul2tpd" --socket "$RUN/$B.sock" --config "$RUN/lns.toml" ${PPP_ARGS:-}
	tunpids+=("$LASTPID")
	for i in $(seq 50); do [ -S "$RUN/$B.sock" ] && break; sleep 0.1; done
	# shellcheck disable=SC2086 # PPP_ARGS is words
	bg ul2tpd-$A ip netns exec $A "$BIN/ul2tpd" --socket "$RUN/$A.sock" --config "$RUN/lac.toml" ${PPP_ARGS:-}
	tunpids=("$LASTPID" "${tunpids[@]}") # a first, as in the other ul2tp rows
	wait_link $A ul2tpb-ppp0
	wait_link $B ul2tpb-ppp0
	# IPCP open: the daemon addresses the TUN, sets its MTU (mtu, capped by
	# the peer's mru), then sets it up
	for ns in $A $B; do
		for i in $(seq 100); do
			ip -n $ns link show dev ul2tpb-ppp0 2>/dev/null | grep -q '[<,]UP[,>]' && break
			sleep 0.1
		done
	done
	TARGET=$IB IFACE=ul2tpb-ppp0
	LABEL="ul2tp L2TPv2/UDP PPP call, PAP, no seq"
	[ "$PPP_MTU" != 0 ] && LABEL="$LABEL, TUN MTU $PPP_MTU"
	UL2TP_ROW=1
}

# METRICS is where each ul2tpd of the scraper row serves /metrics, on the
# loopback of its own namespace.
METRICS=127.0.0.1:9700

# start_scraper: scrape both daemons' /metrics once a second, in their
# namespaces, for as long as the row's measurements can last (stop_pids
# ends it sooner); each scrape's outcome is a line in $RAW/$CURROW/scrapes.
start_scraper() {
	local n=$((REPEAT * 3 * (DURATION + 17) + 30))
	bg scraper bash -c '
		for i in $(seq "$1"); do
			for ns in "$2" "$3"; do
				if ip netns exec "$ns" curl -fsS -o /dev/null --max-time 5 "http://$4/metrics"; then
					echo "$ns ok"
				else
					echo "$ns failed"
				fi
			done
			sleep 1
		done >>"$5"' scraper "$n" $A $B $METRICS "$RAW/$CURROW/scrapes"
}

# rss TAG: the resident set (VmRSS, KiB) of each ul2tpd, for the "steady
# RSS under load" check: after setup, after each measurement.
rss() {
	local p end=a
	[ "$UL2TP_ROW" = 1 ] || return 0
	for p in "${tunpids[@]}"; do
		echo "$end $1 $(awk '/^VmRSS:/{print $2}' /proc/"$p"/status 2>/dev/null || echo 0)"
		end=b
	done >>"$RAW/$CURROW/rss.txt"
}

# ---- measuring ----------------------------------------------------------

# snap TAG: the machine's CPU counters (/proc/stat) and the /proc/PID/stat of
# the tunnel processes (pid), the iperf3 server (srv), the ksoftirqd threads
# (ksoft) and this shell (self: its reaped children, the iperf3 clients).
SERVERPID=
KSOFT=$(pgrep '^ksoftirqd/' || true)
snap() {
	local p
	echo "$1 time $(date +%s.%N)"
	echo "$1 $(head -1 /proc/stat)"
	echo "$1 self $(cat /proc/$$/stat)"
	for p in "${tunpids[@]}"; do
		[ -r /proc/$p/stat ] && echo "$1 pid $(cat /proc/$p/stat)"
	done
	[ -n "$SERVERPID" ] && [ -r /proc/$SERVERPID/stat ] && echo "$1 srv $(cat /proc/$SERVERPID/stat)"
	for p in $KSOFT; do
		[ -r /proc/$p/stat ] && echo "$1 ksoft $(cat /proc/$p/stat)"
	done
	return 0
}

start_server() {
	local i
	bg iperf3-server ip netns exec $B iperf3 -s -B "$TARGET" -p $PORT
	SERVERPID=$LASTPID
	for i in $(seq 50); do
		ip netns exec $B ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q . && return 0
		sleep 0.1
	done
	echo "bench: iperf3 server did not start" >&2
	return 1
}

# restart_server: after a failed measurement the server may be stuck "busy"
restart_server() {
	local rest=() p
	kill "$SERVERPID" 2>/dev/null || true
	wait "$SERVERPID" 2>/dev/null || true
	for p in "${pids[@]}"; do [ "$p" != "$SERVERPID" ] && rest+=("$p"); done
	pids=("${rest[@]}")
	start_server
}

# measure ROW TEST REP
measure() {
	local row=$1 test=$2 rep=$3 f args client ok
	f=$RAW/$row/$test.$rep
	case $test in
	tcp1) args=(-P 1) ;;
	tcp4) args=(-P 4) ;;
	udp64) args=(-u -l 64 -b 0) ;;
	esac
	snap B >"$f.cpu"
	# In the background and waited for, so that a signal ends the run at
	# once (bash runs traps only between foreground commands).
	timeout --kill-after=2 $((DURATION + 15)) \
		ip netns exec $A iperf3 -c "$TARGET" -p $PORT -t "$DURATION" -J "${args[@]}" >"$f.json" 2>"$f.err" &
	client=$!
	pids+=("$client")
	ok=1
	wait "$client" || ok=0
	unset 'pids[${#pids[@]}-1]'
	if [ $ok = 0 ]; then
		echo "   $test #$rep failed: $(grep -o '"error":[^}]*' "$f.json" 2>/dev/null | head -1) $(head -c 200 "$f.err")" >&2
		snap A >>"$f.cpu"
		restart_server || true
		return 0
	fi
	snap A >>"$f.cpu"
	sleep 0.3 # let queues drain before the next measurement
}

# run_row ID: set up, measure, tear down one row
run_row() {
	local row=$1 rep test mtu
	UL2TP_ROW=0
	mkdir -p "$RAW/$row"
	ns_up
	case $row in
	veth) setup_veth ;;
	vxlan) setup_vxlan ;;
	openvpn) setup_openvpn ;;
	fastd) setup_fastd ;;
	ul2tp-udp) setup_ul2tp udp ;;
	ul2tp-ip) setup_ul2tp ip ;;
	ul2tp-udp-seq) setup_ul2tp udp both ;;
	ul2tp-udp-scrape)
		setup_ul2tp udp "" "" "--metrics-listen $METRICS"
		LABEL="ul2tp L2TPv3/UDP, cookie 4, l2spec default + scraper 1/s"
		;;
	ul2tp-step0) setup_ul2tp udp "" off --no-offload ;;
	ul2tp-step1) setup_ul2tp udp "" off ;;
	ul2tp-q2) setup_ul2tp udp "" "" "--queues 2" ;;
	ul2tp-gmp1) setup_ul2tp udp "" "" "" gmp1 ;;
	ul2tp-pin) setup_ul2tp udp "" "" "" pin ;;
	ul2tp-sockbuf) setup_ul2tp udp "" "" "--sockbuf 0" ;;
	ul2tp-ppp) setup_ppp ;;
	*) echo "bench: unknown row $row" >&2; return 1 ;;
	esac
	if ! wait_ping "$TARGET"; then
		printf '%s\t%s\t%s\t%s\n' "$row" "$LABEL" 0 "setup failed: no ping" >>"$RAW/rows.tsv"
		ns_down
		return 0
	fi
	mtu=$(ip netns exec $A cat /sys/class/net/$IFACE/mtu)
	log "$row: $LABEL (inner MTU $mtu)"
	printf '%s\t%s\t%s\t%s\n' "$row" "$LABEL" "$mtu" "${#tunpids[@]} tunnel processes" >>"$RAW/rows.tsv"
	start_server
	CURROW=$row
	rss setup
	[ "$row" = ul2tp-udp-scrape ] && start_scraper
	for rep in $(seq "$REPEAT"); do
		for test in tcp1 tcp4 udp64; do
			measure "$row" "$test" "$rep"
			rss "$test.$rep"
		done
	done
	# where packets were dropped: interface and UDP counters, both ends
	for ns in $A $B; do
		{ ip -n $ns -s link; ip netns exec $ns cat /proc/net/snmp; } >"$RAW/$row/diag-$ns.txt" 2>&1 || true
	done
	if [ -f "$RAW/$row/scrapes" ]; then
		log "$row: $(grep -c ' ok$' "$RAW/$row/scrapes") scrapes answered, $(grep -c ' failed$' "$RAW/$row/scrapes") failed"
	fi
	if [ "$UL2TP_ROW" = 1 ]; then
		ip netns exec $A "$BIN/ul2tp" --socket "$RUN/$A.sock" -s -j show session >"$RAW/$row/counters-a.json" 2>&1 || true
		ip netns exec $B "$BIN/ul2tp" --socket "$RUN/$B.sock" -s -j show session >"$RAW/$row/counters-b.json" 2>&1 || true
	fi
	ns_down
}

# ---- the run ------------------------------------------------------------

log "building the report tool"
(cd "$ROOT/bench" && go build -o "$RUN/benchreport" ./cmd/benchreport) # bench/ is its own module (gonum)

{
	echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "command=DURATION=$DURATION REPEAT=$REPEAT${ROWS_SET:+ ROWS=\"$ROWS\"} make bench"
	echo "duration=$DURATION"
	echo "repeat=$REPEAT"
	echo "kernel=$(uname -r)"
	echo "cpu=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
	echo "ncpu=$(nproc)"
	echo "iperf3=$(iperf3 --version | head -1)"
	echo "openvpn=$(openvpn --version | head -1 | awk '{print $2}')"
	echo "fastd=$(fastd --version)"
	echo "go=$(go version | awk '{print $3}')"
	echo "ul2tp=$(cd "$ROOT" && git describe --always --dirty 2>/dev/null || echo unknown)"
} >"$RAW/meta.env"

log "background CPU load (2 s, nothing of ours running)"
{ snap B; sleep 2; snap A; } >"$RAW/baseline-start.cpu"

if [ "$GOBENCH" = 1 ]; then
	log "Go micro-benchmarks (datapath, encap, PPP)"
	(cd "$ROOT" && go test -run '^$' -bench . -benchmem ./datapath/... ./encap/... ./control/ppp ./control/ppp/call) >"$RAW/gobench.txt" 2>&1 ||
		echo "bench: go test -bench failed, see the report" >&2
fi

for row in $ROWS; do
	run_row "$row"
done

{ snap B; sleep 2; snap A; } >"$RAW/baseline-end.cpu"
echo "runtime=$(($(date +%s) - T0))" >>"$RAW/meta.env"

mkdir -p "$OUT"
# exit status 2: a Go micro-benchmark failed or allocates; the rest is written
rc=0
"$RUN/benchreport" -raw "$RAW" -json "$OUT/results.json" -png "$OUT/chart.png" || rc=$?
if [ "$KEEP_RAW" = 1 ]; then
	rm -rf "$OUT/raw"
	cp -r "$RAW" "$OUT/raw"
fi
log "wrote $OUT/results.json and $OUT/chart.png ($(($(date +%s) - T0)) s)"
exit $rc
