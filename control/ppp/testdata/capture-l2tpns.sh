#!/bin/sh
# Captures the PPP frames of a v2probe.py call against l2tpns (PAP through
# its RADIUS, IPCP, ping, LCP echo, terminate) with the v2-peers harness,
# and writes them as "<direction> <hex PPP frame>" lines: "peer" for
# l2tpns' frames, "probe" for v2probe's. Run as root from the repository:
#   control/ppp/testdata/capture-l2tpns.sh > control/ppp/testdata/l2tpns-pap.txt
set -eu
H=${HARNESS:-$(cd "$(dirname "$0")/../../../../shared/harness/v2-peers" && pwd)}
NS=${NS:-c14p}
PCAP=$(mktemp /tmp/l2tpns-ppp.XXXXXX.pcap)
"$H/netns.sh" up "$NS" >&2
"$H/l2tpns-peer.sh" up "$NS-b" 10.203.0.2 >&2
ip netns exec "$NS-a" tcpdump -i "${NS}a0" -w "$PCAP" -U udp port 1701 2>/dev/null &
TD=$!
sleep 1
ip netns exec "$NS-a" "$H/v2probe.py" --peer 10.203.0.2 --local 10.203.0.1 --hold 12 >&2
sleep 1
kill "$TD"
wait "$TD" || true
"$H/l2tpns-peer.sh" down "$NS-b" >&2
"$H/netns.sh" down "$NS" >&2
tshark -r "$PCAP" -Y 'l2tp.type == 0' -T fields -e ip.src -e udp.payload |
python3 -c '
import sys
for line in sys.stdin:
    src, hexp = line.split()
    src = src.split(",")[0]  # the outer header; data frames hold an inner one
    b = bytes.fromhex(hexp)
    flags = b[0] << 8 | b[1]
    if flags & 0x8000:
        continue
    n = 2 + (2 if flags & 0x4000 else 0) + 4 + (4 if flags & 0x0800 else 0)
    if flags & 0x0200:
        n += 2 + (b[n] << 8 | b[n + 1])
    print("peer" if src == "10.203.0.2" else "probe", b[n:].hex())
'
rm -f "$PCAP"
