#!/usr/bin/env bash
# v2-ppp-interop.sh — PPP on ul2tpd's L2TPv2 calls (issue 14) against peers
# nobody on the project wrote:
#   - pppd 2.4.9 on the Linux 6.1 kernel's PPPoL2TP, driven by xl2tpd, in
#     the kernel-peer harness's VM (--backend lns|lac, --ppp-auth ...;
#     shared/harness/kernel-peer/README.md);
#   - l2tpns 2.4.1 with freeradius in the v2-peers harness's namespaces
#     (shared/harness/v2-peers/README.md).
#
#   bash cmd/interop/v2-ppp-interop.sh [BINDIR] [HARNESSDIR]     (make interop-ppp)
#
# BINDIR holds ul2tpd and ul2tp [./bin]; HARNESSDIR holds kernel-peer/ and
# v2-peers/ [../shared/harness]. A part whose harness is missing is skipped
# (so is everything when not root). One VM at a time, torn down after its case.
#
# Cases (guest's role first; the guest's PPP user is kpuser / kppass, its
# LNS has 10.203.0.1 and the pool 10.203.0.10-10.203.0.50):
#   lns-pap lns-chap lns-mschap   guest xl2tpd+pppd LNS requiring PAP, CHAP-MD5
#                     or MS-CHAPv2; our LAC dials with kpuser/kppass: IPCP
#                     gives us a pool address, ping and TCP (iperf3) to the
#                     guest's 10.203.0.1, the guest's pppd log agrees, our
#                     `ul2tp del tunnel` ends it (guest's pppd hangs up, our
#                     TUN goes)
#   lns-chap-secret   as lns-chap with the tunnel secret (Challenge AVPs)
#   lns-badpass       MS-CHAPv2, our LAC with a wrong password: pppd refuses
#                     (E=691), our call ends with a CDN saying why
#   lac-pap lac-chap lac-mschap   guest xl2tpd+pppd LAC dials our LNS
#                     (ppp_auth = that method, chap_secrets with kpuser):
#                     pppd authenticates, gets 10.203.0.10+ from our pool,
#                     pings us; ping and TCP back; pppd killed: LCP
#                     Terminate, the call goes, the address returns
#   lac-mschap-secret as lac-mschap with the tunnel secret
#   lac-badpass       MS-CHAPv2, the guest's password wrong: we refuse
#                     (E=691) with our CDN, each redial too
#   l2tpns-pap l2tpns-chap   our LAC against l2tpns (RADIUS user test/test):
#                     address 10.203.1.x by IPCP, ping 10.203.2.1, l2tpns'
#                     LCP Echo-Requests answered (tshark), our HELLO after
#                     2 s idle acked, `ul2tp del tunnel` removes it on both
#   l2tpns-badpass    wrong password: RADIUS rejects, l2tpns' CDN (result 3)
#                     is what our log reports
#
# Environment:
#   PPP_ONLY     comma-separated case names to run (default: all)
#   PPP_OUT      results dir: per case config, ul2tpd log, events, pcap,
#                PPP frames (CASE.ppp.txt), guest logs [/tmp/ul2tp-pppinterop/DATE]
#   PPP_GOLDEN   dir to copy each kernel case's PPP frames into as
#                pppd-CASE.txt (control/ppp/testdata's format)
#   PPP_NETNS    namespace of the VM's TAP and ul2tpd [ul2pk]
#   PPP_PREFIX   v2-peers namespace prefix for l2tpns [ul2pl]
#   KP_CACHE, KP_RUN   kernel-peer harness dirs [/var/tmp/ul2tp-kp, /tmp/kp]
# The last line is "N passed, M failed" (counting checks); exit 1 if M > 0.
set -uo pipefail

BIN=$(cd "${1:-./bin}" 2>/dev/null && pwd) || { echo "v2-ppp-interop: no such BINDIR: ${1:-./bin}" >&2; exit 1; }
HDIR=$(cd "${2:-../shared/harness}" 2>/dev/null && pwd) || { echo "v2-ppp-interop: skipped: no harness dir ${2:-../shared/harness}"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "v2-ppp-interop: skipped: needs root (network namespaces, TUN, QEMU)"; exit 0; }
for b in ul2tpd ul2tp; do [ -x "$BIN/$b" ] || { echo "v2-ppp-interop: $BIN/$b missing: make build" >&2; exit 1; }; done
for c in jq python3 ip; do command -v $c >/dev/null || { echo "v2-ppp-interop: $c missing" >&2; exit 1; }; done
export KP_CACHE=${KP_CACHE:-/var/tmp/ul2tp-kp}
export KP_RUN=${KP_RUN:-/tmp/kp}
KPDIR="" V2DIR=""
[ -f "$HDIR/kernel-peer/kernel-peer.sh" ] && KPDIR=$HDIR/kernel-peer
[ -f "$HDIR/v2-peers/l2tpns-peer.sh" ] && V2DIR=$HDIR/v2-peers

OUT=${PPP_OUT:-/tmp/ul2tp-pppinterop/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 1
GOLDEN=""
if [ -n "${PPP_GOLDEN:-}" ]; then mkdir -p "$PPP_GOLDEN" && GOLDEN=$(cd "$PPP_GOLDEN" && pwd) || exit 1; fi
export V2P_RUN=$OUT/peers
KNS=${PPP_NETNS:-ul2pk}
P=${PPP_PREFIX:-ul2pl}
NSA=$P-a NSB=$P-b
HOST=10.201.0.1 GUEST=10.201.0.2    # kernel-peer's TAP addresses
GLNS=10.203.0.1                     # the guest LNS's PPP address (--lns-local-ip)
OURLNS=10.203.0.1 POOL=10.203.0.10-10.203.0.50
SECRET=kp-tunnel-secret

PASS=0 FAIL=0 CASEFAIL=0 CASE="" SOCK="" DLOG="" UNS=""
DPID="" MPID="" TPID="" UPPID="" VM="" V2UP=0 L2UP=0
SUMMARY=()
ok()   { PASS=$((PASS + 1)); printf '   PASS  %s: %s\n' "$CASE" "$*"; }
bad()  {
	FAIL=$((FAIL + 1)) CASEFAIL=$((CASEFAIL + 1))
	printf '   FAIL  %s: %s\n' "$CASE" "$*"
	[ -S "${SOCK:-}" ] && { echo "== $*"; ul -j show tunnel; ul -j show session; } >>"$OUT/$CASE.fail" 2>&1
}
note() { printf '   note  %s: %s\n' "$CASE" "$*"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
wait_until() { # SECONDS CMD... : poll CMD every 0.5 s
	local n=$(($1 * 2)); shift
	while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; n=$((n - 1)); done
	return 1
}
stop_pid() { # PID: TERM, wait (bounded), then KILL; only that PID
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
KP() { bash "$KPDIR/kernel-peer.sh" "$@"; }
G() { KP exec "$VM" --timeout "${GT:-20}" "$1" 2>&1; } # a command in the guest
stop_daemon() { stop_pid "$MPID"; MPID=""; stop_pid "$DPID"; DPID=""; }
stop_capture() { [ -n "$TPID" ] && { kill -INT "$TPID" 2>/dev/null; wait "$TPID" 2>/dev/null; }; TPID=""; }
stop_vm() {
	[ -n "$UPPID" ] && { wait "$UPPID" 2>/dev/null; UPPID=""; }
	if [ -n "$VM" ]; then
		G 'cat /run/pppd.log' >"$OUT/$CASE.pppd.log"
		G 'dpkg-query -W -f "\${Package} \${Version}, " xl2tpd ppp; echo "kernel $(uname -r)"' >"$OUT/$CASE.vers"
		G 'cat /run/xl2tpd.log' >"$OUT/$CASE.xl2tpd.log"
		KP down "$VM" >/dev/null 2>&1 || echo "v2-ppp-interop: WARNING: kernel-peer.sh down $VM failed" >&2
		VM=""
	fi
}
stop_l2tpns() {
	[ "$L2UP" = 1 ] || return 0
	bash "$V2DIR/l2tpns-peer.sh" down "$NSB" >/dev/null 2>&1
	cp "$V2P_RUN/l2tpns.$NSB/l2tpns.log" "$OUT/$CASE.l2tpns.log" 2>/dev/null
	L2UP=0
}
cleanup() {
	stop_daemon
	stop_capture
	stop_vm
	stop_l2tpns
	[ "$V2UP" = 1 ] && { bash "$V2DIR/netns.sh" down "$P" >/dev/null 2>&1 || echo "v2-ppp-interop: WARNING: netns.sh down $P failed" >&2; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ul() { ip netns exec "$UNS" "$BIN/ul2tp" --socket "$SOCK" "$@"; }
# ses JQ: JQ on our first L2TPv2 call (null when none)
# (ses -r / tun -r: raw strings)
ses() {
	local o=(-e); [ "$1" = -r ] && { o+=(-r); shift; }
	ul -j show session 2>/dev/null | jq "${o[@]}" "[.[] | select(.version == 2 and .call != null)] | .[0] | $1"
}
tun() {
	local o=(-e); [ "$1" = -r ] && { o+=(-r); shift; }
	ul -j show tunnel 2>/dev/null | jq "${o[@]}" "[.[] | select(.version == 2 and .control.state == \"established\")] | .[0] | $1"
}
ppp_open() { ses '.call.state == "established" and .call.ppp == "open" and .call.ppp_peer != null' >/dev/null; }
# no_call: no L2TPv2 call with a session (a configured LAC call that
# failed stays listed with session_id 0, its last_failure and no redial
# when redial = false)
no_call() { ul -j show session 2>/dev/null | jq -e '[.[] | select(.version == 2 and .call != null and .session_id != 0)] | length == 0' >/dev/null; }
failure_kept() { ul -j show session 2>/dev/null | jq -e '[.[] | select(.call != null and .session_id == 0 and ((.call.last_failure // "") | test("authentication")))] | length == 1' >/dev/null; }
logged() { grep -qE "$1" "$DLOG"; }
in_pool() { # ADDR FIRST LAST (same /24)
	python3 -c 'import ipaddress as i,sys; a,f,l=(int(i.ip_address(x)) for x in sys.argv[1:]); sys.exit(not f <= a <= l)' "$@" 2>/dev/null
}

# start_daemon NS CONFIG-TEXT: ul2tpd (debug log) and `ul2tp monitor -j`
start_daemon() {
	UNS=$1
	printf '%s\n' "$2" >"$OUT/$CASE.toml"
	sed 's/^/      config: /' "$OUT/$CASE.toml"
	ip netns exec "$UNS" "$BIN/ul2tpd" --socket "$SOCK" --config "$OUT/$CASE.toml" --log-level debug 2>>"$DLOG" &
	DPID=$!
	if ! wait_until 5 test -S "$SOCK"; then bad "ul2tpd did not start: $(tail -1 "$DLOG")"; return 1; fi
	ip netns exec "$UNS" "$BIN/ul2tp" --socket "$SOCK" monitor -j >>"$OUT/$CASE.events" 2>&1 &
	MPID=$!
}
start_capture() { # NS IFACE
	command -v tcpdump >/dev/null || { note "no tcpdump: no capture"; return 0; }
	ip netns exec "$1" tcpdump -q -U -s 400 -i "$2" -w "$OUT/$CASE.pcap" udp port 1701 >"$OUT/$CASE.tcpdump.log" 2>&1 &
	TPID=$!
	wait_until 5 grep -q "listening on" "$OUT/$CASE.tcpdump.log"
}
# ppp_frames PEER-ADDR: the PPP frame of every L2TP data message in the
# case's pcap, as "peer HEX" (from PEER-ADDR) or "ul2tp HEX" lines; of the
# IPv4 packets only ICMP (the pings), not the TCP test. Reads the pcap
# itself: tshark takes minutes over the iperf3 traffic.
ppp_frames() {
	[ -s "$OUT/$CASE.pcap" ] || return 0
	python3 - "$OUT/$CASE.pcap" "$1" >"$OUT/$CASE.ppp.txt" <<'PY'
import ipaddress, struct, sys
data, peer = open(sys.argv[1], "rb").read(), ipaddress.ip_address(sys.argv[2]).packed
magic = struct.unpack("<I", data[:4])[0]
e = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
off = 24
while off + 16 <= len(data):
    _, _, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
    pkt, off = data[off + 16:off + 16 + incl], off + 16 + incl
    if incl != orig or len(pkt) < 14 + 20 + 8 or pkt[12:14] != b"\x08\x00":
        continue
    ip = pkt[14:]
    ihl = (ip[0] & 15) * 4
    if ip[9] != 17:
        continue
    b = ip[ihl + 8:]
    flags = b[0] << 8 | b[1]
    if flags & 0x8000:
        continue
    n = 2 + (2 if flags & 0x4000 else 0) + 4 + (4 if flags & 0x0800 else 0)
    if flags & 0x0200:
        n += 2 + (b[n] << 8 | b[n + 1])
    f = b[n:]
    h = f[2:] if f[:2] == b"\xff\x03" else f
    proto = h[0] if h[0] & 1 else h[0] << 8 | h[1]
    hl = 1 if h[0] & 1 else 2
    if proto == 0x21 and (len(h) < hl + 20 or h[hl + 9] != 1):
        continue  # IPv4 but not ICMP
    if proto == 0x57:
        continue  # IPv6 data
    print("peer" if ip[12:16] == peer else "ul2tp", f.hex())
PY
}
# avp_senders TYPE: how many addresses sent a control message with AVP TYPE (so far)
avp_senders() {
	tshark -r "$OUT/$CASE.pcap" -d udp.port==1701,l2tp -Y 'l2tp.type == 1' -T fields -e ip.src -e l2tp.avp.type 2>/dev/null |
		awk -v t="$1" '{n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == t) print $1}' | sort -u | wc -l
}
# lcp_codes: "CODE:SENDER" of every LCP packet in CASE.ppp.txt (p = peer, u = us)
lcp_codes() { awk '{h=$2; sub(/^ff03/, "", h); if (substr(h,1,4) == "c021") print substr(h,5,2) ":" substr($1,1,1)}' "$OUT/$CASE.ppp.txt" | tr '\n' ' '; }
daemon_log_clean() {
	if grep -qE 'level=ERROR|panic|DATA RACE' "$DLOG"; then
		bad "ul2tpd log has errors: $(grep -m1 -E 'level=ERROR|panic|DATA RACE' "$DLOG" | cut -c1-200)"
	else
		ok "ul2tpd log has no ERROR/panic (shutdown included)"
	fi
}
tcp_test() { # ADDR: iperf3 from our namespace to the peer's iperf3 -s
	if ! command -v iperf3 >/dev/null; then note "no iperf3 on the host: TCP not tested (.ci/deps installs it)"; return; fi
	local j bytes
	j=$(ip netns exec "$UNS" timeout 30 iperf3 -c "$1" -t 3 -J 2>&1)
	bytes=$(jq -r '.end.sum_received.bytes // 0' <<<"$j" 2>/dev/null)
	if [ "${bytes:-0}" -gt 0 ]; then
		ok "TCP through the call: iperf3 -c $1 -t 3: $bytes bytes received, $(jq -r '.end.sum_received.bits_per_second / 1e6 | floor' <<<"$j") Mbit/s (TCG guest)"
	else
		bad "TCP through the call: iperf3 -c $1 failed: $(jq -r '.error // empty' <<<"$j" 2>/dev/null | head -1)"
	fi
}

# ---------------------------------------------------------------- kernel
# kcase NAME GUEST-BACKEND AUTH SECRET(-|s) OUR-PASSWORD VM-NAME
kcase() {
	local name=$1 backend=$2 method=$3 sec=$4 pass=$5 vm=$6 args rc ppp_auth=$3 cfg
	CASE=$name CASEFAIL=0 SOCK=$OUT/$name.sock DLOG=$OUT/$name.ul2tpd.log
	local t0; t0=$(date +%s)
	printf '\n== %s: guest xl2tpd+pppd %s (%s), ul2tpd %s%s\n' "$name" "$backend" "$method" \
		"$([ "$backend" = lns ] && echo LAC || echo LNS)" "$([ "$sec" = s ] && echo ", tunnel secret $SECRET")"
	args=(up "$vm" --netns "$KNS" --backend "$backend" --ppp-auth "$method" --timeout 240)
	[ "$backend" = lac ] && args+=(--lac-lns "$HOST")
	[ "$sec" = s ] && args+=(--l2tp-secret "$SECRET")
	[ "$backend" = lac ] && [ "$pass" != - ] && args+=(--ppp-pass "$pass")
	if [ "$backend" = lns ]; then
		cfg=$(printf '[tunnel.kp]\nversion = "l2tpv2"\npeer = "%s:1701"\nlocal = "%s:1701"\nhost_name = "ul2tp-lac"\nredial = false\nhello_timeout = 60000\ntun_name = "ulppp%%d"\n' "$GUEST" "$HOST")
		[ "$sec" = s ] && cfg+=$'\n'"secret = \"$SECRET\""
		cfg+=$'\n\n[tunnel.kp.session.call1]\npseudowire = "ppp"\nuser = "kpuser"\npassword = "'"$pass"'"'
	else
		printf 'kpuser * kppass *\n' >"$OUT/$name.chap-secrets"
		cfg=$(printf '[lns]\nlisten = "%s:1701"\nhost_name = "ul2tp-lns"\npeers = ["%s/32"]\nppp_auth = "%s"\nchap_secrets = "%s"\nppp_name = "ul2tp"\nlocal_ip = "%s"\npool = "%s"\ndns = ["10.203.0.53"]\ntun_name = "ulppp%%d"\n' \
			"$HOST" "$GUEST" "$ppp_auth" "$OUT/$name.chap-secrets" "$OURLNS" "$POOL")
		[ "$sec" = s ] && cfg+=$'\n'"secret = \"$SECRET\""
	fi
	VM=$vm
	printf '   + kernel-peer.sh %s\n' "${args[*]}"
	KP "${args[@]}" >"$OUT/$name.up.log" 2>&1 &
	UPPID=$!
	for _ in $(seq 600); do
		ip -n "$KNS" -4 addr show "kp-$vm" 2>/dev/null | grep -q "$HOST/" && break
		kill -0 "$UPPID" 2>/dev/null || break
		sleep 0.1
	done
	start_capture "$KNS" "kp-$vm"
	# our LNS listens before the guest's LAC dials; our LAC dials once xl2tpd runs
	[ "$backend" = lac ] && { start_daemon "$KNS" "$cfg" || { kend "$t0"; return; }; }
	wait "$UPPID"; rc=$?; UPPID=""
	if [ $rc -ne 0 ]; then bad "guest up failed: $(tail -2 "$OUT/$name.up.log" | tr '\n' ' ')"; kend "$t0"; return; fi
	grep -o 'KP-READY.*\|ready in.*' "$OUT/$name.up.log" | tail -1 | sed 's/^/      /'
	[ "$backend" = lns ] && { start_daemon "$KNS" "$cfg" || { kend "$t0"; return; }; }

	if [ "$backend" = lns ] && [ "$pass" != kppass ]; then kbadpass; kend "$t0"; return; fi
	if [ "$backend" = lac ] && [ "$pass" != - ]; then klacbadpass; kend "$t0"; return; fi

	check "tunnel established$([ "$sec" = s ] && echo ' with the tunnel secret') and the call's PPP open (call.ppp open)" wait_until 90 ppp_open
	if ! ppp_open; then
		ul show session 2>&1 | sed 's/^/      /'
		tail -5 "$DLOG" | sed 's/^/      ul2tpd: /'
		G 'tail -15 /run/pppd.log' | sed 's/^/      pppd: /'
		kend "$t0"; return
	fi
	ul show session | sed 's/^/      /'
	if [ "$sec" = s ]; then
		check "tunnel authentication: both sides sent a Challenge (AVP 11) and a Challenge Response (AVP 13)" \
			eval "[ \"\$(avp_senders 11)\" = 2 ] && [ \"\$(avp_senders 13)\" = 2 ]"
	fi
	local ifc loc peer user gaddr
	ifc=$(ses -r .call.ppp_interface) loc=$(ses -r .call.ppp_local) peer=$(ses -r .call.ppp_peer) user=$(ses -r '.call.ppp_user // ""')
	if [ "$backend" = lns ]; then
		check "IPCP: we got $loc from the guest's pool, peer $peer = the guest LNS's 10.203.0.1, user '$user'" \
			eval "in_pool $loc 10.203.0.10 10.203.0.50 && [ $peer = $GLNS ] && [ '$user' = kpuser ]"
		gaddr=$peer
		check "guest's pppd ($method) took kpuser's credentials: its log has 'sent [CHAP Success' or 'sent [PAP AuthAck'" \
			eval "G 'cat /run/pppd.log' | grep -qE 'sent \\[(CHAP Success|PAP AuthAck)'"
	else
		check "our LNS authenticated '$user' and gave $peer from our pool (we are $loc)" \
			eval "[ '$user' = kpuser ] && in_pool $peer 10.203.0.10 10.203.0.50 && [ $loc = $OURLNS ]"
		gaddr=$peer
		check "guest's pppd ($method) was accepted by us: its log has 'rcvd [CHAP Success' or 'rcvd [PAP AuthAck', no failure" \
			eval "G 'cat /run/pppd.log' | grep -qE 'rcvd \\[(CHAP Success|PAP AuthAck)' && ! G 'cat /run/pppd.log' | grep -qiE 'authentication failed|mutual authentication failed'"
	fi
	check "guest's ppp0 has $gaddr peer $([ "$backend" = lns ] && echo "$loc" || echo "$OURLNS")" \
		eval "G 'ip -4 -o addr show ppp0' | grep -q 'inet $gaddr peer $([ "$backend" = lns ] && echo "$loc" || echo "$OURLNS")/32'"
	check "our $ifc has $loc peer $gaddr, up" eval "ip -n $KNS -4 -o addr show $ifc | grep -q 'inet $loc peer $gaddr/32' && ip -n $KNS link show $ifc | grep -q ',UP'"
	G 'ip -4 -o addr show ppp0; grep -E "local  IP|remote IP|authentication|Using interface|auth " /run/pppd.log' | sed 's/^/      guest: /'
	check "we ping the guest's $gaddr through the call: 3/3" \
		eval "ip netns exec $KNS ping -c 3 -W 3 -i 0.5 $gaddr | grep -q ' 3 received'"
	if [ "$backend" = lac ]; then
		check "the guest pings us ($OURLNS) through the call: 3/3" eval "GT=30 G 'ping -c 3 -W 3 -i 0.5 $OURLNS' | grep -q ' 3 received'"
	fi
	tcp_test "$gaddr"
	check "still open after the traffic" ppp_open

	# teardown
	if [ "$backend" = lns ]; then
		local tid; tid=$(tun .tunnel_id)
		printf '   + ul2tp del tunnel tunnel_id %s   (our CDN/StopCCN)\n' "$tid"
		check "ul2tp del tunnel returns 0" ul del tunnel tunnel_id "$tid"
		check "the guest's pppd hung up and exited" wait_until 20 eval "! G 'pidof pppd' | grep -q '[0-9]'"
		check "the guest's xl2tpd closed the tunnel (Connection closed to $HOST)" \
			wait_until 20 eval "G 'cat /run/xl2tpd.log' | grep -q 'Connection closed to $HOST'"
	else
		printf '   + guest: kill pppd   (its LCP Terminate-Request, then xl2tpd'"'"'s CDN)\n'
		G 'kill $(pidof pppd)' >/dev/null
		check "the call ended (log 'l2tpv2 call down'), none left" wait_until 20 eval "logged 'l2tpv2 call down' && no_call"
		grep 'ppp link down\|l2tpv2 call down' "$DLOG" | sed 's/.*msg=/      ul2tpd: /' | cut -c1-220
		local tid; tid=$(tun .tunnel_id)
		[ -n "$tid" ] && ul del tunnel tunnel_id "$tid" >/dev/null 2>&1
	fi
	check "our TUN $ifc is gone" wait_until 10 eval "! ip -n $KNS link show $ifc"
	kend "$t0"
}

# kbadpass: our LAC's wrong password against the guest LNS
kbadpass() {
	check "the call ends (log 'l2tpv2 call down')" wait_until 90 logged 'l2tpv2 call down'
	local l; l=$(grep -m1 'l2tpv2 call down' "$DLOG")
	echo "      ul2tpd: ${l#*msg=}" | cut -c1-260
	grep -m1 'ppp link down' "$DLOG" | sed 's/.*msg=/      ul2tpd: /' | cut -c1-260
	check "we report an authentication failure (ppp link down ... authentication)" logged 'ppp link down.*authentication'
	check "the call ends by our CDN result 2 'ppp: ...' or the guest's CDN" \
		eval "grep -m1 'l2tpv2 call down' '$DLOG' | grep -qE 'by=(local|peer)'"
	check "no call left, no address taken" wait_until 10 no_call
	check "the failure stays in show session (the call waits, last_failure)" failure_kept
	check "the guest's pppd refused kpuser (its log)" \
		eval "G 'cat /run/pppd.log' | grep -qiE 'peer authentication failed|Peer kpuser failed|failed CHAP|E=691'"
	G 'grep -iE "fail|E=691|Terminat" /run/pppd.log | head -6' | sed 's/^/      pppd: /'
}

# klacbadpass: the guest's LAC with a wrong password against our LNS; its
# xl2tpd redials every 5 s
klacbadpass() {
	check "we refuse it: log 'ppp link down ... user=kpuser ... authentication failed'" \
		wait_until 90 logged 'ppp link down.*user=kpuser.*authentication failed'
	grep -m1 'ppp link down' "$DLOG" | sed 's/.*msg=/      ul2tpd: /' | cut -c1-260
	check "and end the call with our CDN, result 2 'ppp: ...'" wait_until 10 logged 'l2tpv2 call down.*by=local result_code=2.*ppp: authentication failed'
	check "the guest's pppd got our Failure (its log: rcvd [CHAP Failure or [PAP AuthNak)" \
		eval "G 'cat /run/pppd.log' | grep -qE 'rcvd \\[(CHAP Failure|PAP AuthNak)'"
	G 'grep -E "rcvd \[(CHAP Failure|PAP AuthNak)|authentication failed" /run/pppd.log | head -3' | sed 's/^/      pppd: /'
	printf '   ... 15 s of the guest redialling every 5 s\n'
	sleep 15
	check "each redial refused the same way, no address handed out: $(grep -c 'ppp link down' "$DLOG") refusals, $(grep -c 'ppp link up' "$DLOG") links up" \
		eval "[ $(grep -c 'ppp link down' "$DLOG") -ge 2 ] && ! logged 'ppp link up'"
}

kend() {
	stop_daemon
	sleep 0.5
	stop_capture
	stop_vm
	ppp_frames "$GUEST"
	if [ -s "$OUT/$CASE.ppp.txt" ]; then
		echo "      PPP frames: $(wc -l <"$OUT/$CASE.ppp.txt"); LCP codes (p = pppd, u = us): $(lcp_codes)"
		if [ -n "$GOLDEN" ]; then
			{
				echo "# pppd via xl2tpd on the Linux kernel's PPPoL2TP, case $CASE ($(cat "$OUT/$CASE.vers" 2>/dev/null)): peer = pppd, ul2tp = ul2tpd"
				echo "# cmd/interop/v2-ppp-interop.sh, PPP_ONLY=$CASE, $(date -u '+%Y-%m-%d'); user kpuser, password kppass"
				cat "$OUT/$CASE.ppp.txt"
			} >"$GOLDEN/pppd-$CASE.txt"
			echo "      golden: $GOLDEN/pppd-$CASE.txt"
		fi
	fi
	[ -s "$DLOG" ] && daemon_log_clean
	local t1; t1=$(date +%s)
	if [ $CASEFAIL -eq 0 ]; then SUMMARY+=("$CASE PASS $(($t1 - $1))s"); else SUMMARY+=("$CASE FAIL($CASEFAIL) $(($t1 - $1))s"); fi
}

# ---------------------------------------------------------------- l2tpns
l2tpns_cli() { bash "$V2DIR/l2tpns-peer.sh" cli "$NSB" "$1" 2>&1; }
# lcase NAME AUTH(pap|chap) PASSWORD
lcase() {
	local name=$1 method=$2 pass=$3
	CASE=$name CASEFAIL=0 SOCK=$OUT/$name.sock DLOG=$OUT/$name.ul2tpd.log
	local t0; t0=$(date +%s)
	printf '\n== %s: our LAC -> l2tpns (%s through RADIUS), password %s\n' "$name" "$method" "$pass"
	printf '   + L2TPNS_AUTH=%s l2tpns-peer.sh up %s 10.203.0.2\n' "$method" "$NSB"
	if ! L2TPNS_AUTH=$method bash "$V2DIR/l2tpns-peer.sh" up "$NSB" 10.203.0.2 >"$OUT/$name.peer.log" 2>&1; then
		bad "l2tpns-peer.sh up failed: $(tail -1 "$OUT/$name.peer.log")"; lend "$t0"; return
	fi
	L2UP=1
	start_capture "$NSA" "${P}a0"
	start_daemon "$NSA" "$(printf '[tunnel.l2tpns]\nversion = "l2tpv2"\npeer = "10.203.0.2:1701"\nlocal = "10.203.0.1:1701"\nhost_name = "ul2tp-lac"\nredial = false\nhello_timeout = 2000\nretry_timeout = 500\ntun_name = "ulppp%%d"\n\n[tunnel.l2tpns.session.call1]\npseudowire = "ppp"\nuser = "test"\npassword = "%s"\n' "$pass")" || { lend "$t0"; return; }
	if [ "$pass" != test ]; then
		check "the call ends (log 'l2tpv2 call down')" wait_until 20 logged 'l2tpv2 call down'
		local l; l=$(grep -m1 'l2tpv2 call down' "$DLOG")
		echo "      ul2tpd: ${l#*msg=}" | cut -c1-260
		check "reported as l2tpns' CDN: by=peer result_code=3 (RFC 2661: administrative reasons)" \
			eval "grep -m1 'l2tpv2 call down' '$DLOG' | grep -q 'by=peer result_code=3'"
		check "the event stream has the call-down by peer" eval "grep -q 'by peer' '$OUT/$name.events'"
		check "no call left" wait_until 5 no_call
		check "l2tpns logged the RADIUS reject" eval "grep -qiE 'reject|Authentication failed|auth.*fail' '$V2P_RUN/l2tpns.$NSB/l2tpns.log'"
		lend "$t0"; return
	fi
	check "PPP open ($method through l2tpns' RADIUS, then IPCP)" wait_until 30 ppp_open
	ul show session 2>&1 | sed 's/^/      /'
	local ifc loc peer
	ifc=$(ses -r .call.ppp_interface) loc=$(ses -r .call.ppp_local) peer=$(ses -r .call.ppp_peer)
	check "IPCP: $loc from l2tpns' pool 10.203.1.0/24, peer 10.203.2.1, user test" \
		eval "in_pool $loc 10.203.1.1 10.203.1.254 && [ $peer = 10.203.2.1 ] && [ \"\$(ses -r .call.ppp_user)\" = test ]"
	check "l2tpns' CLI lists the session (user test, $loc)" eval "l2tpns_cli 'show session' | grep -E 'test' | grep -q '$loc'"
	check "ping 10.203.2.1 through the call: 3/3" eval "ip netns exec $NSA ping -c 3 -W 2 -i 0.5 10.203.2.1 | grep -q ' 3 received'"
	printf '   ... 22 s idle (l2tpns sends LCP Echo-Request every 10 s; our HELLO every 2 s)\n'
	sleep 22
	ppp_frames 10.203.0.2
	local req rep
	req=$(awk '$1 == "peer" && $2 ~ /^(ff03)?c02109/' "$OUT/$name.ppp.txt" | wc -l)
	rep=$(awk '$1 == "ul2tp" && $2 ~ /^(ff03)?c0210a/' "$OUT/$name.ppp.txt" | wc -l)
	check "l2tpns' LCP Echo-Requests answered: $req requests, $rep replies" eval "[ $req -ge 2 ] && [ $rep -ge $req ]"
	check "still open after the idle time (l2tpns did not drop us)" ppp_open
	check "our HELLO after 2 s idle acked by l2tpns (hello_sent > 0, retransmits 0)" \
		eval "tun '.control.hello_sent > 0 and .control.retransmits == 0' >/dev/null"
	note "l2tpns' own HELLO: only after 60 s with no packet at all, and its LCP echoes every 10 s keep the tunnel busy: not seen"
	local tid; tid=$(tun .tunnel_id)
	printf '   + ul2tp del tunnel tunnel_id %s\n' "$tid"
	check "ul2tp del tunnel returns 0" ul del tunnel tunnel_id "$tid"
	check "our TUN $ifc is gone" wait_until 10 eval "! ip -n $NSA link show $ifc"
	check "l2tpns dropped the session and tunnel (CLI show session/tunnels: no test / ul2tp-lac)" \
		wait_until 10 eval "! l2tpns_cli 'show tunnels' | grep -q ul2tp-lac"
	lend "$t0"
}
lend() {
	stop_daemon
	sleep 0.5
	stop_capture
	stop_l2tpns
	ppp_frames 10.203.0.2
	[ -s "$OUT/$CASE.ppp.txt" ] && echo "      PPP frames: $(wc -l <"$OUT/$CASE.ppp.txt"); LCP codes (p = l2tpns, u = us): $(lcp_codes)"
	[ -s "$DLOG" ] && daemon_log_clean
	local t1; t1=$(date +%s)
	if [ $CASEFAIL -eq 0 ]; then SUMMARY+=("$CASE PASS $(($t1 - $1))s"); else SUMMARY+=("$CASE FAIL($CASEFAIL) $(($t1 - $1))s"); fi
}

# ---------------------------------------------------------------- main
want() { [ -z "${PPP_ONLY:-}" ] || [[ ",$PPP_ONLY," == *",$1,"* ]]; }
KCASES=(
	#name             guest auth      secret password vm
	"lns-pap           lns  pap       -  kppass pl-pap"
	"lns-chap          lns  chap      -  kppass pl-chap"
	"lns-mschap        lns  mschap-v2 -  kppass pl-ms"
	"lns-chap-secret   lns  chap      s  kppass pl-sec"
	"lns-badpass       lns  mschap-v2 -  wrong  pl-bad"
	"lac-pap           lac  pap       -  -      pa-pap"
	"lac-chap          lac  chap      -  -      pa-chap"
	"lac-mschap        lac  mschap-v2 -  -      pa-ms"
	"lac-mschap-secret lac  mschap-v2 s  -      pa-sec"
	"lac-badpass       lac  mschap-v2 -  wrong  pa-bad"
)
LCASES=(
	"l2tpns-pap     pap  test"
	"l2tpns-chap    chap test"
	"l2tpns-badpass pap  wrong"
)
printf '== v2-ppp-interop: results %s, ul2tpd %s\n' "$OUT" "$BIN/ul2tpd"
if [ -z "$KPDIR" ]; then
	echo "   kernel cases skipped: kernel-peer harness not found under $HDIR"
else
	n=0
	for c in "${KCASES[@]}"; do read -r -a f <<<"$c"; want "${f[0]}" && n=$((n + 1)); done
	if [ $n -gt 0 ]; then
		if ! bash "$KPDIR/setup.sh" >"$OUT/kp-setup.log" 2>&1; then
			tail -20 "$OUT/kp-setup.log" >&2; echo "v2-ppp-interop: kernel-peer setup.sh failed" >&2; exit 1
		fi
		echo "   kernel-peer: $KPDIR (KP_CACHE=$KP_CACHE, accel $(cat "$KP_CACHE/accel" 2>/dev/null || echo '?')), namespace $KNS"
		for c in "${KCASES[@]}"; do
			read -r -a f <<<"$c"
			want "${f[0]}" && kcase "${f[@]}"
		done
	fi
fi
if [ -z "$V2DIR" ]; then
	echo "   l2tpns cases skipped: v2-peers harness not found under $HDIR"
else
	n=0
	for c in "${LCASES[@]}"; do read -r -a f <<<"$c"; want "${f[0]}" && n=$((n + 1)); done
	if [ $n -gt 0 ]; then
		if ! bash "$V2DIR/setup.sh" >"$OUT/v2-setup.log" 2>&1; then
			tail -20 "$OUT/v2-setup.log" >&2; echo "v2-ppp-interop: v2-peers setup.sh failed" >&2; exit 1
		fi
		echo "   v2-peers: $V2DIR, l2tpns $(dpkg-query -W -f='${Version}' l2tpns 2>/dev/null), freeradius $(dpkg-query -W -f='${Version}' freeradius 2>/dev/null); namespaces $NSA/$NSB"
		bash "$V2DIR/netns.sh" up "$P" >/dev/null || { echo "v2-ppp-interop: netns.sh up $P failed" >&2; exit 1; }
		V2UP=1
		for c in "${LCASES[@]}"; do
			read -r -a f <<<"$c"
			want "${f[0]}" && lcase "${f[@]}"
		done
	fi
fi

printf '\n== summary (%s)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
for s in "${SUMMARY[@]}"; do printf '   %-20s %-9s %s\n' $s; done
echo "   results: $OUT"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
