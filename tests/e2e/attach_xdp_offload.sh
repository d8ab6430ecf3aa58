#!/usr/bin/env bash
# attach_xdp_offload: `ferry attach --hook xdp` in driver mode on a veth
# whose guest keeps its TX checksum offload on (a veth's default).
#
# Native XDP has no CHECKSUM_PARTIAL flag: the guest's TCP and UDP frames
# reach ferry with the checksum field holding the pseudo-header's sum only
# (the kernel's XDP metadata kfuncs offer no checksum hint). Before the fix
# the translator counted every one as malformed and nothing but ping moved,
# silently. Now, for xdp-driver only, it takes that partial form
# (ChecksumPolicy::all_or_partial) and counts it (partial_checksums).
# The guest (namespace G) is one veth hop away (MTU 1500); ferry and its
# servers are in H:
#  * an 8 MiB download from H's 127.0.0.1 through the gateway: sha256 equal;
#  * 3 UDP datagrams of 1000 bytes to an echo on H's 127.0.0.1: all back;
#  * an inbound -t connection from H (echo of a line);
#  * counters: malformed 0, partial_checksums > 0.
source "$(dirname "$0")/lib.sh"
e2e_init
PY=/usr/bin/python3
U=$(e2e_unique x)
H=${U}h G=${U}g
DEV=fx$$$((RANDOM % 100))
DEV=${DEV:0:15}
e2e_attach_topology "$H" "$G" "$DEV"
ip -n "$H" link set "$DEV" mtu 1500
ip -n "$G" link set eth0 mtu 1500
tx=$(ip netns exec "$G" ethtool -k eth0 2>/dev/null | sed -n 's/^tx-checksumming: \([a-z]*\).*/\1/p')
[[ $tx == on ]] || ip netns exec "$G" ethtool -K eth0 tx on >/dev/null 2>&1 || e2e_die "guest TX checksum offload cannot be on ($tx)"

mkdir -p "$E2E_TMP/www"
head -c $((8 << 20)) /dev/urandom >"$E2E_TMP/www/blob"
WANT=$(sha256sum <"$E2E_TMP/www/blob" | cut -d' ' -f1)
HTTP=$(e2e_free_port)
UDP=$(e2e_free_port)
FWD=$(e2e_free_port)
"${HN[@]}" timeout 60 $PY -m http.server "$HTTP" --bind 127.0.0.1 --directory "$E2E_TMP/www" >/dev/null 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
"${HN[@]}" timeout 60 socat "UDP4-RECVFROM:$UDP,bind=127.0.0.1,fork" PIPE &
e2e_on_exit "e2e_kill_pid $!"
ip netns exec "$G" timeout 60 socat TCP4-LISTEN:80,reuseaddr,fork 'SYSTEM:read l; echo "guest:$l"' &
e2e_on_exit "e2e_kill_pid $!"

timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" --hook xdp -t "$FWD:80" -q 2>"$ERR" || e2e_die "attach --hook xdp: $(cat "$ERR")"
mode=$(timeout 5 "$FERRY" status "$DEV" -j | $PY -c "import json,sys; print(json.load(sys.stdin)['attachments'][0]['attach_mode'])")
[[ $mode == xdp-driver ]] || e2e_die "attach mode $mode, not xdp-driver: the scenario needs native XDP"
e2e_log "guest tx-checksumming on, attach mode $mode"

got=$(ip netns exec "$G" timeout 30 curl -sS --retry 3 --retry-connrefused --max-time 20 \
  "http://198.18.0.1:$HTTP/blob" 2>"$E2E_TMP/curl.err" | sha256sum | cut -d' ' -f1)
e2e_expect "8 MiB download through native XDP with the guest's offload on: sha256 equal" test "$got" = "$WANT"
[[ $got == "$WANT" ]] || e2e_log "curl: $(cat "$E2E_TMP/curl.err")"

back=$(ip netns exec "$G" timeout 20 $PY -c '
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
n = 0
for i in range(3):
    d = os.urandom(1000)
    for _ in range(3):
        s.sendto(d, ("198.18.0.1", int(sys.argv[1])))
        try:
            if s.recv(2000) == d: n += 1; break
        except socket.timeout:
            pass
print(n)' "$UDP" 2>&1)
e2e_expect "UDP: 3 of 3 datagrams echoed ($back)" test "$back" = 3

line=$("${HN[@]}" timeout 10 socat -T 5 - "TCP4:127.0.0.1:$FWD" <<<"hello" 2>/dev/null)
e2e_expect "-t $FWD: H -> guest's port 80 answered ($line)" test "$line" = "guest:hello"

c=/run/ferry/$DEV/counters
for _ in $(seq 30); do
  grep -q '^partial_checksums=[1-9]' "$c" 2>/dev/null && break
  sleep 0.1
done
malformed=$(sed -n 's/^malformed=//p' "$c")
partial=$(sed -n 's/^partial_checksums=//p' "$c")
e2e_log "translator: malformed=$malformed partial_checksums=$partial"
e2e_expect "no frame counted malformed" test "$malformed" = 0
e2e_expect "partial checksums taken and counted" test "${partial:-0}" -gt 0
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "detach -> 0" test $? -eq 0
