#!/usr/bin/env bash
# capture-golden.sh — capture L2TPv3 data packets sent by the real Linux
# kernel and store them as golden test data for encap/golden_test.go.
#
# The Linux peer is the kernel-peer harness (Debian 12's 6.1 kernel in QEMU,
# see shared/harness/kernel-peer/README.md). One guest is booted per
# encap x family (udp|ip x IPv4|IPv6, 4 boots, ~15 s each under TCG). In each
# guest there is one L2TPv3 tunnel with seven sessions:
#
#   idx  cookie  l2spec   seq     golden file
#   0    none    none     none    ENCAP-vF-cookie0-none.json     (session made by `up`)
#   1    none    default  none    ENCAP-vF-cookie0-default.json
#   2    4 byte  none     none    ENCAP-vF-cookie4-none.json
#   3    4 byte  default  none    ENCAP-vF-cookie4-default.json
#   4    8 byte  none     none    ENCAP-vF-cookie8-none.json
#   5    8 byte  default  none    ENCAP-vF-cookie8-default.json
#   6    8 byte  default  both    ENCAP-vF-cookie8-default-seq.json
#
# Each session's l2tpethN gets a fixed MAC and 10.202.N.2/24 and pings
# 10.202.N.1 (nobody answers: the kernel sends ARP requests; bringing the
# link up also sends IPv6 MLD / DAD frames). tcpdump records what the guest
# sends on the host-side TAP inside the harness namespace. The extractor
# attributes each L2TP packet to its session by the inner frame's source MAC
# (found by searching, not by assuming a header length), so the golden files
# record what the kernel really sent even if it disagrees with package encap.
#
# Usage (as root):
#   KP_CACHE=/var/tmp/ul2tp-kp KP_RUN=/tmp/kp ./capture-golden.sh \
#       [--out DIR] [--keep DIR] [--only udp-4|udp-6|ip-4|ip-6]...
#
#   --out DIR    where the JSON files go [this directory's golden/]
#   --keep DIR   keep pcaps, guest state dumps and the session table in DIR
#   --only E-F   only this encap-family (repeatable)
#
# Environment: KP_HARNESS (harness directory), KP_CACHE, KP_RUN (passed to the
# harness; defaults /var/tmp/ul2tp-kp and /tmp/kp), GOLDEN_NETNS [ul2tp-golden].
# Run the harness's setup.sh (with the same KP_CACHE) once before.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/golden"
KEEP=""
ONLY=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --keep) KEEP=$2; shift 2 ;;
        --only) ONLY+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "capture-golden: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "capture-golden: ERROR: $*" >&2; exit 1; }
log() { echo "capture-golden: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (namespaces, TAP, QEMU)"

if [ -z "${KP_HARNESS:-}" ]; then
    for d in "$HERE/../../../shared/harness/kernel-peer" /work/shared/harness/kernel-peer; do
        [ -x "$d/kernel-peer.sh" ] && { KP_HARNESS=$(cd "$d" && pwd); break; }
    done
fi
[ -n "${KP_HARNESS:-}" ] && [ -x "$KP_HARNESS/kernel-peer.sh" ] \
    || die "kernel-peer harness not found (set KP_HARNESS to the directory holding kernel-peer.sh)"
KP="$KP_HARNESS/kernel-peer.sh"
export KP_CACHE="${KP_CACHE:-/var/tmp/ul2tp-kp}" KP_RUN="${KP_RUN:-/tmp/kp}"
[ -f "$KP_CACHE/rootfs.img" ] \
    || die "no guest image in $KP_CACHE: run KP_CACHE=$KP_CACHE $KP_HARNESS/setup.sh first"
for tool in tcpdump python3 ip; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y tcpdump python3 iproute2)"
done
NS=${GOLDEN_NETNS:-ul2tp-golden}

WORK=$(mktemp -d /tmp/capture-golden.XXXXXX)
GUEST=""      # guest currently up
TCPDUMP=""    # pid of the running tcpdump
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$TCPDUMP" ]; then kill -INT "$TCPDUMP" 2>/dev/null || true; wait "$TCPDUMP" 2>/dev/null || true; fi
    if [ -n "$GUEST" ]; then "$KP" down "$GUEST" >/dev/null 2>&1 || true; fi
    if [ -n "$KEEP" ]; then mkdir -p "$KEEP" && cp -a "$WORK"/. "$KEEP"/ && log "work files kept in $KEEP"; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

COOKIE4=a1b2c3d4
COOKIE8=0f1e2d3c4b5a6978
#        idx cookie    l2spec  seq
SESSIONS=("0 -        none    none"
          "1 -        default none"
          "2 $COOKIE4 none    none"
          "3 $COOKIE4 default none"
          "4 $COOKIE8 none    none"
          "5 $COOKIE8 default none"
          "6 $COOKIE8 default both")

capture() {   # $1 encap (udp|ip)  $2 family (4|6)
    local encap=$1 fam=$2
    local ecode; if [ "$encap" = udp ]; then ecode=1; else ecode=12; fi
    # session ids that use all four bytes: udp 0x1F0401NN / ip 0xCF0601NN;
    # the guest's own (receive) ids are +0x80
    local base=$(( (ecode << 28) | (0xF << 24) | (fam << 16) | 0x0100 ))
    local name="gold-$encap$fam" tag="$encap-v$fam" ifname="kp-gold-$encap$fam"
    local macpfx; macpfx=$(printf '02:4b:50:%x%x:a0' "$ecode" "$fam")
    local table="$WORK/$tag.sessions" pcap="$WORK/$tag.pcap"
    : > "$table"
    local guest_sh="set -ex"$'\n' line idx cookie l2spec seq psid sid mac
    for line in "${SESSIONS[@]}"; do
        read -r idx cookie l2spec seq <<< "$line"
        [ "$cookie" = - ] && cookie=""
        psid=$((base + idx)); sid=$((psid + 0x80)); mac=$(printf '%s:%02x' "$macpfx" "$idx")
        local file="$encap-v$fam-cookie$(( ${#cookie} / 2 ))-$l2spec"
        [ "$seq" = none ] || file+="-seq"
        printf '%s %s %s %s %s %s %s %s\n' "$file" "$encap" "$fam" "$psid" "${cookie:--}" "$l2spec" "$seq" "$mac" >> "$table"
        [ "$idx" = 0 ] && continue   # made by `up` below
        guest_sh+="ip l2tp add session name l2tpeth$idx tunnel_id 200 session_id $sid peer_session_id $psid"
        [ -n "$cookie" ] && guest_sh+=" cookie $cookie"
        guest_sh+=" l2spec_type $l2spec seq $seq"$'\n'
        guest_sh+="ip link set l2tpeth$idx address $mac && ip link set l2tpeth$idx up && ip addr add 10.202.$idx.2/24 dev l2tpeth$idx"$'\n'
    done
    guest_sh+="set +x"$'\n'"sleep 1"$'\n'
    guest_sh+="for i in 0 1 2 3 4 5 6; do ping -c 2 -w 3 -I l2tpeth\$i 10.202.\$i.1 >/dev/null 2>&1 & done; wait"$'\n'

    log "=== $tag: booting guest $name"
    read -r _ _ _ psid _ _ _ mac < <(head -n1 "$table")
    GUEST=$name
    "$KP" up "$name" --netns "$NS" --encap "$encap" --family "$fam" \
        --tunnel-id 200 --peer-tunnel-id 100 --session-id $((psid + 0x80)) --peer-session-id "$psid" \
        --l2spec none --seq none --inner-mac "$mac" --inner4 10.202.0.2/24 --inner6 fd00:202::2/64 --no-iperf

    # only what the guest sends: L2TP over UDP port 1701 or IP protocol 115
    ip netns exec "$NS" tcpdump -Z root -U -n -s 0 -i "$ifname" -w "$pcap" \
        "(src host 10.201.0.2 or src host fd00:201::2) and (udp port 1701 or ip proto 115 or ip6 proto 115)" \
        2> "$pcap.log" &
    TCPDUMP=$!
    local i; for i in $(seq 1 100); do grep -q 'listening on' "$pcap.log" 2>/dev/null && break; sleep 0.1; done
    grep -q 'listening on' "$pcap.log" || { cat "$pcap.log" >&2; die "tcpdump did not start"; }

    "$KP" exec "$name" --timeout 120 --stdin 'sh -s' <<< "$guest_sh" 2>&1 | sed 's/^/  guest: /' >&2

    # state of the guest, for the record
    "$KP" exec "$name" 'for c in "ip l2tp show tunnel" "ip l2tp show session" "ip -j l2tp show tunnel" \
            "ip -j l2tp show session" "ip -br link show"; do echo "\$ $c"; $c 2>&1; done
        for d in /sys/class/net/l2tpeth*; do echo "${d##*/} mtu $(cat $d/mtu)"; done' \
        > "$WORK/$tag.guest-state" 2>&1 || true
    sed 's/^/  /' "$WORK/$tag.guest-state"

    sleep 1
    kill -INT "$TCPDUMP"; wait "$TCPDUMP" || true; TCPDUMP=""
    sed 's/^/  tcpdump: /' "$pcap.log" >&2
    "$KP" down "$name" >/dev/null; GUEST=""

    python3 - "$pcap" "$table" "$OUT" <<'PY'
import json, os, struct, sys

pcap, table, out = sys.argv[1:4]
sessions = []
for line in open(table):
    file, encap, fam, psid, cookie, l2spec, seq, mac = line.split()
    sessions.append(dict(file=file, encap=encap, family=int(fam), session_id=int(psid),
                         cookie="" if cookie == "-" else cookie.lower(), l2spec=l2spec,
                         seq=seq != "none", mac=bytes.fromhex(mac.replace(":", "")), packets=[]))

def records(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit("not a classic pcap file: %s" % path)
    linktype = struct.unpack(e + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit("pcap link type %d, want 1 (Ethernet)" % linktype)
    off = 24
    while off + 16 <= len(data):
        _, _, caplen, wirelen = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        if caplen != wirelen:
            sys.exit("truncated capture (caplen %d < len %d)" % (caplen, wirelen))
        yield data[off:off + caplen]
        off += caplen

def l2tp_payload(frame):
    """(encap, family, L2TP bytes) of a frame, or None."""
    etype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if etype == 0x0800:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        frag = struct.unpack("!H", ip[6:8])[0]
        if frag & 0x3FFF:
            return None   # fragments: none expected
        proto, fam, payload = ip[9], 4, ip[ihl:total]
    elif etype == 0x86DD:
        plen = struct.unpack("!H", ip[4:6])[0]
        proto, fam, payload = ip[6], 6, ip[40:40 + plen]
    else:
        return None
    if proto == 115:
        return "ip", fam, payload
    if proto == 17:
        sport, dport, ulen = struct.unpack("!HHH", payload[:6])
        if 1701 in (sport, dport):
            return "udp", fam, payload[8:ulen]
    return None

unattributed = 0
for frame in records(pcap):
    r = l2tp_payload(frame)
    if r is None:
        continue
    encap, fam, l2 = r
    hit = None
    for s in sessions:
        if s["encap"] != encap or s["family"] != fam:
            continue
        # the inner Ethernet frame starts where its source MAC is the session's
        for at in range(0, min(len(l2) - 12, 64)):
            if l2[at + 6:at + 12] == s["mac"]:
                hit = (s, at)
                break
        if hit:
            break
    if not hit:
        unattributed += 1
        continue
    s, at = hit
    if len(s["packets"]) >= 3:
        continue
    ns = None
    if s["l2spec"] == "default" and at >= 4:
        w = struct.unpack("!I", l2[at - 4:at])[0]
        if w & 0x40000000:
            ns = w & 0x00FFFFFF
    s["packets"].append({"l2tp": l2.hex(), "inner": l2[at:].hex(), "ns": ns})

os.makedirs(out, exist_ok=True)
missing = []
for s in sessions:
    if not s["packets"]:
        missing.append(s["file"])
        continue
    obj = {k: s[k] for k in ("encap", "family", "session_id", "cookie", "l2spec", "seq", "packets")}
    with open(os.path.join(out, s["file"] + ".json"), "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    print("capture-golden: wrote %s.json (%d packets, first inner at offset %d of %d)"
          % (s["file"], len(s["packets"]), len(s["packets"][0]["l2tp"]) // 2 - len(s["packets"][0]["inner"]) // 2,
             len(s["packets"][0]["l2tp"]) // 2), file=sys.stderr)
if unattributed:
    print("capture-golden: %d L2TP packets matched no session" % unattributed, file=sys.stderr)
if missing:
    sys.exit("capture-golden: no packets captured for: " + ", ".join(missing))
PY
}

want() { [ ${#ONLY[@]} = 0 ] || printf '%s\n' "${ONLY[@]}" | grep -qx -- "$1"; }
ran=0
for encap in udp ip; do
    for fam in 4 6; do
        want "$encap-$fam" || continue
        capture "$encap" "$fam"; ran=$((ran + 1))
    done
done
[ "$ran" -gt 0 ] || die "nothing selected by --only ${ONLY[*]}"
log "done: $(ls "$OUT"/*.json 2>/dev/null | wc -l) golden files in $OUT"
