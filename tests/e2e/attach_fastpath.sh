#!/usr/bin/env bash
# attach_fastpath: the BPF pure-ACK fast path in `ferry attach` (veth, tcx
# hook). The guest downloads ATTACH_FP_MIB (default 128) MiB from a host
# server through the attachment; the body's sha256 must match and
# `ferry status DEV -j` must show at least 90 % of the guest's pure ACKs
# absorbed on DEV (acks_absorbed / guest_pure_acks). The fast-path maps
# (conn_hash, conn_state, events) are pinned with the others.
# Then with --hook xdp and the guest's TX checksum offload off: BPF verifies
# the checksums and absorbs there too (at least 90 %). Then with
# --no-fastpath: a download still matches and nothing is absorbed.
#
# Topology as attach_veth.sh: namespace H (host side: ferry and the server
# on 127.0.0.1, entered with nsenter so bpffs stays visible), namespace G
# (the guest, 198.18.0.2/24 via 198.18.0.1), one veth between them at MTU
# 1500 (the guest still receives ferry's super-segments whole: a few hundred
# pure ACKs per 128 MiB).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)
FX="$TOOLS/fastpath_xfer.py"

MIB=${ATTACH_FP_MIB:-128}
N=$((MIB << 20))
U=$(e2e_unique f)
H=${U}h
G=${U}g
DEV=ff$$$((RANDOM % 100))
DEV=${DEV:0:15}
HN=(nsenter "--net=/run/netns/$H")

e2e_on_exit "ip netns del $G"
e2e_on_exit "ip netns del $H"
if ! { ip netns add "$H" && ip netns add "$G"; }; then e2e_die "namespaces"; fi
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $DEV -q"
ip -n "$H" link set lo up
ip -n "$G" link set lo up
ip link add "$DEV" netns "$H" mtu 1500 type veth peer name eth0 netns "$G" mtu 1500 || e2e_die "veth"
ip -n "$H" link set "$DEV" up
ip -n "$G" addr add 198.18.0.2/24 dev eth0
ip -n "$G" link set eth0 up
ip -n "$G" route add default via 198.18.0.1

"${HN[@]}" timeout 300 /usr/bin/python3 "$FX" serve --addr 127.0.0.1 --portfile "$E2E_TMP/http.port" \
  --bytes "$N" --seed 33 --timeout 280 >"$E2E_TMP/http.log" 2>&1 &
HPID=$!
e2e_on_exit "e2e_kill_pid $HPID"
e2e_wait_file "$E2E_TMP/http.port" 10 || e2e_die "server did not start"
HP=$(cat "$E2E_TMP/http.port")
WANT=$(/usr/bin/python3 "$FX" sha --bytes "$N" --seed 33)
[[ -n $WANT ]] || e2e_die "cannot compute the expected sha256"

# Prints "absorbed pure" of DEV's counters from `ferry status DEV -j`.
acks_of() {
  timeout 5 "$FERRY" status "$DEV" -j >"$OUT" 2>"$ERR" || { echo "0 0"; return; }
  /usr/bin/python3 - "$OUT" "$DEV" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
a = [x for x in d["attachments"] if x["device"] == sys.argv[2]]
c = a[0]["counters"] if a else {}
print(c.get("acks_absorbed", 0), c.get("guest_pure_acks", 0))
PY
}

# Downloads the body into the guest; prints its sha256 ("" on failure).
fetch() {
  timeout 120 ip netns exec "$G" curl -sS -o "$E2E_TMP/got" "http://198.18.0.1:$HP/" 2>"$E2E_TMP/curl.err" ||
    { cat "$E2E_TMP/curl.err" >&2; return; }
  sha256sum <"$E2E_TMP/got" | cut -d' ' -f1
  rm -f "$E2E_TMP/got"
}

# ---- with the fast path (the default)
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" 2>"$ERR" ||
  e2e_die "attach failed: $(cat "$ERR"; cat "/run/ferry/$DEV/log" 2>/dev/null)"
e2e_expect "state says fastpath=1" grep -q '^fastpath=1' "/run/ferry/$DEV/state"
for m in conn_hash conn_state events; do
  e2e_expect "fast-path map $m pinned" test -e "/sys/fs/bpf/ferry/$DEV/$m"
done
SECONDS=0
GOT=$(fetch)
e2e_log "downloaded $MIB MiB in ${SECONDS} s"
e2e_expect "download through the fast path: sha256 equal" test "$GOT" = "$WANT"
read -r absorbed pure <<<"$(acks_of)"
pct=$(awk -v a="$absorbed" -v p="$pure" 'BEGIN {printf "%.1f", p ? 100 * a / p : 0}')
e2e_log "pure ACKs absorbed on $DEV: $absorbed of $pure ($pct %)"
e2e_expect "at least 90 % of the guest's pure ACKs absorbed" \
  /usr/bin/python3 -c "import sys; sys.exit(0 if $pure >= 100 and $absorbed * 10 >= $pure * 9 else 1)"
e2e_expect "status -j: frames = passed + absorbed" /usr/bin/python3 -c "
import json; c = json.load(open('$OUT'))['attachments'][0]['counters']
assert c['guest_frames'] == c['passed_to_userspace'] + c['acks_absorbed'], c"
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "detach -> 0" test $? -eq 0
e2e_expect "no pins left" test ! -e "/sys/fs/bpf/ferry/$DEV"

# ---- --hook xdp: BPF verifies each checksum itself (XDP has no
# CHECKSUM_PARTIAL), so a guest sending full checksums (tx off, as --hook xdp
# needs) has its pure ACKs absorbed at XDP too
ip netns exec "$G" ethtool -K eth0 tx off >/dev/null 2>&1 || e2e_die "ethtool -K eth0 tx off in the guest"
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q --hook xdp 2>"$ERR" || e2e_die "attach --hook xdp: $(cat "$ERR")"
e2e_expect "--hook xdp: state says fastpath=1" grep -q '^fastpath=1' "/run/ferry/$DEV/state"
GOT=$(fetch)
e2e_expect "download through XDP's fast path: sha256 equal" test "$GOT" = "$WANT"
read -r absorbed pure <<<"$(acks_of)"
e2e_log "--hook xdp: $absorbed of $pure pure ACKs absorbed"
e2e_expect "--hook xdp: at least 90 % of the guest's pure ACKs absorbed" \
  /usr/bin/python3 -c "import sys; sys.exit(0 if $pure >= 100 and $absorbed * 10 >= $pure * 9 else 1)"
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "--hook xdp: detach -> 0" test $? -eq 0
ip netns exec "$G" ethtool -K eth0 tx on >/dev/null 2>&1

# ---- --no-fastpath: everything reaches the translator
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q --no-fastpath 2>"$ERR" || e2e_die "attach --no-fastpath: $(cat "$ERR")"
e2e_expect "state says fastpath=0" grep -q '^fastpath=0' "/run/ferry/$DEV/state"
GOT=$(fetch)
e2e_expect "download without the fast path: sha256 equal" test "$GOT" = "$WANT"
read -r absorbed pure <<<"$(acks_of)"
e2e_log "--no-fastpath: $absorbed of $pure pure ACKs absorbed"
e2e_expect "--no-fastpath absorbs nothing" test "$absorbed" -eq 0 -a "$pure" -gt 0
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "final detach -> 0" test $? -eq 0
e2e_expect "final: no pins, no run dir" test ! -e "/sys/fs/bpf/ferry/$DEV" -a ! -e "/run/ferry/$DEV"
