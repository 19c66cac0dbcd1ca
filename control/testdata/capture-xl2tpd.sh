#!/bin/bash
# capture-xl2tpd.sh NAME [HELLO_WAIT]: capture the L2TPv2 control messages
# of a real xl2tpd LAC dialling a real xl2tpd LNS and write them to
# control/testdata/golden/NAME.txt for golden_test.go.
#
# Uses the v2-peers harness (../shared/harness/v2-peers, run setup.sh first)
# in its own namespace pair (prefix c13). The LAC dials at start; the
# call comes up (ICRQ/ICRP/ICCN) and xl2tpd sends a CDN when its pppd exits
# (no kernel PPP). With HELLO_WAIT (seconds, default 0) it waits for the
# HELLO xl2tpd sends after 60 s idle. Then the LAC hangs up (StopCCN).
# The environment of the harness passes through: XL2TPD_SECRET,
# XL2TPD_CHALLENGE=yes (tunnel authentication), XL2TPD_HIDDEN=yes.
# LNS=l2tpns runs l2tpns (with its RADIUS) as the LNS instead of xl2tpd.
#
# Output: one line per control message (T bit set; data packets are left
# out), "a>b HEX" (a: LAC 10.203.0.1, b: LNS
# 10.203.0.2), after '#' comment lines with the command and settings.
set -euo pipefail
name=${1:?usage: capture-xl2tpd.sh NAME [HELLO_WAIT]}
hello=${2:-0}
here=$(cd "$(dirname "$0")" && pwd)
h=${V2P_HARNESS:-$(cd "$here/../../.." && pwd)/shared/harness/v2-peers}
[ -x "$h/xl2tpd-peer.sh" ] || h=/work/shared/harness/v2-peers
P=c13
tmp=$(mktemp -d)
tcpdump_pid=""
cleanup() {
    "$h/xl2tpd-peer.sh" down $P-a >/dev/null 2>&1 || true
    "$h/xl2tpd-peer.sh" down $P-b >/dev/null 2>&1 || true
    "$h/l2tpns-peer.sh" down $P-b >/dev/null 2>&1 || true
    if [ -n "$tcpdump_pid" ]; then kill "$tcpdump_pid" 2>/dev/null || true; wait "$tcpdump_pid" 2>/dev/null || true; fi
    "$h/netns.sh" down $P >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

"$h/netns.sh" up $P >/dev/null
ip netns exec $P-b tcpdump -q -U -i ${P}b0 -w "$tmp/c.pcap" udp port 1701 2>/dev/null &
tcpdump_pid=$!
sleep 1
lns=${LNS:-xl2tpd}
case "$lns" in
    xl2tpd) "$h/xl2tpd-peer.sh" up $P-b 10.203.0.2 lns;;
    l2tpns) "$h/l2tpns-peer.sh" up $P-b 10.203.0.2;;
    *) echo "LNS must be xl2tpd or l2tpns" >&2; exit 2;;
esac
"$h/xl2tpd-peer.sh" up $P-a 10.203.0.1 lac 10.203.0.2
# tunnel, call, CDN after pppd exits
for _ in $(seq 1 30); do
    grep -q "pppd exited\|Call established" /run/v2-peers/xl2tpd.$P-a/xl2tpd.log 2>/dev/null && break
    sleep 0.5
done
sleep 2
if [ "$hello" -gt 0 ]; then sleep "$hello"; fi
"$h/xl2tpd-peer.sh" hangup $P-a # the LAC drops the tunnel: StopCCN
sleep 3
"$h/xl2tpd-peer.sh" down $P-a
"$h/$lns-peer.sh" down $P-b
sleep 1
kill "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true; tcpdump_pid=""

out="$here/golden/$name.txt"
mkdir -p "$here/golden"
{
    echo "# xl2tpd $(dpkg-query -W -f='${Version}' xl2tpd) LAC (a, 10.203.0.1) -> $lns $(dpkg-query -W -f='${Version}' "$lns") LNS (b, 10.203.0.2)"
    echo "# LNS=$lns capture-xl2tpd.sh $name $hello  XL2TPD_SECRET=${XL2TPD_SECRET:-secret} XL2TPD_CHALLENGE=${XL2TPD_CHALLENGE:-no} XL2TPD_HIDDEN=${XL2TPD_HIDDEN:-no}"
    tshark -r "$tmp/c.pcap" -T fields -e ip.src -e udp.payload 2>/dev/null |
        awk '{d = ($1 == "10.203.0.1") ? "a>b" : "b>a"; gsub(":", "", $2)
              if (substr($2, 1, 1) ~ /[89a-f]/) print d, $2}'
} > "$out"
echo "wrote $out: $(grep -vc '^#' "$out") packets"
