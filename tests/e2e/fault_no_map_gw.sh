#!/usr/bin/env bash
# fault_no_map_gw: with --no-map-gw the gateway address is refused, never routed.
#
# Before the fix, with mapping off ferry connected its host socket to the
# gateway address itself (198.18.0.1, fd00:f::1), which the host's routes
# send off the machine. Here the host is namespace H, whose only route for
# those addresses leads to namespace P (10.77.0.2, fd77::2), where a TCP and
# a UDP server listen on 198.18.0.1 and fd00:f::1: whatever reaches them was
# routed. A `ferry run --no-map-gw` guest in H, for IPv4 and IPv6:
#   TCP to the gateway: refused (RST), not connected to P;
#   UDP to the gateway: ICMP destination unreachable, administratively
#   prohibited (Linux reports EHOSTUNREACH for IPv4, EACCES for IPv6), no
#   answer from P;
#   ping of the gateway: "prohibited"/"filtered", not answered;
#   P's servers saw nothing; ferry counts policy_refused_gateway (TCP,
#   UDP, ping).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init

U=$(e2e_unique n)
H=${U}h
P=${U}p
HN=(nsenter "--net=/run/netns/$H")
PN=(nsenter "--net=/run/netns/$P")
e2e_on_exit "ip netns del $P"
e2e_on_exit "ip netns del $H"
if ! { ip netns add "$H" && ip netns add "$P"; }; then e2e_die "namespaces"; fi
ip -n "$H" link set lo up
ip -n "$P" link set lo up
ip link add vh$$ netns "$H" type veth peer name vp$$ netns "$P" || e2e_die "veth"
ip -n "$H" addr add 10.77.0.1/24 dev vh$$
ip -n "$P" addr add 10.77.0.2/24 dev vp$$
ip -n "$H" -6 addr add fd77::1/64 dev vh$$ nodad
ip -n "$P" -6 addr add fd77::2/64 dev vp$$ nodad
ip -n "$H" link set vh$$ up
ip -n "$P" link set vp$$ up
ip -n "$P" addr add 198.18.0.1/32 dev lo
ip -n "$P" -6 addr add fd00:f::1/128 dev lo nodad
ip -n "$H" route add 198.18.0.0/24 via 10.77.0.2
ip -n "$H" -6 route add fd00:f::/64 via fd77::2

PORT=8077
cat >"$E2E_TMP/servers.py" <<'PY'
import socket, sys, threading
log = open(sys.argv[1], "a", buffering=1)
def tcp(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(sys.argv[2]))); s.listen()
    while True:
        c, a = s.accept(); log.write("tcp %s\n" % (a,)); c.close()
def udp(fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, int(sys.argv[2])))
    while True:
        d, a = s.recvfrom(100); log.write("udp %s\n" % (a,)); s.sendto(d, a)
for f, a in ((socket.AF_INET, "198.18.0.1"), (socket.AF_INET6, "fd00:f::1")):
    threading.Thread(target=tcp, args=(f, a), daemon=True).start()
    threading.Thread(target=udp, args=(f, a), daemon=True).start()
open(sys.argv[3], "w").write("ready")
threading.Event().wait(60)
PY
touch "$E2E_TMP/p.log"
"${PN[@]}" timeout 90 python3 "$E2E_TMP/servers.py" "$E2E_TMP/p.log" "$PORT" "$E2E_TMP/p.ready" &
SRV=$!
e2e_on_exit "e2e_kill_pid $SRV"
e2e_wait_file "$E2E_TMP/p.ready" 10 || e2e_die "P's servers did not start"

cat >"$E2E_TMP/guest.py" <<'PY'
import errno, socket, sys
port = int(sys.argv[1])
for fam, gw in ((socket.AF_INET, "198.18.0.1"), (socket.AF_INET6, "fd00:f::1")):
    v = "4" if fam == socket.AF_INET else "6"
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((gw, port))
        print("tcp%s connected" % v)
    except OSError as e:
        print("tcp%s %s" % (v, errno.errorcode.get(e.errno, e)))
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.connect((gw, port))
    u.send(b"hello")
    try:
        u.recv(100)
        print("udp%s answered" % v)
    except socket.timeout:
        print("udp%s timeout" % v)
    except OSError as e:
        print("udp%s %s" % (v, errno.errorcode.get(e.errno, e)))
PY
chmod 644 "$E2E_TMP/guest.py"
# ferry itself runs inside H (traffic rule: its host sockets must not see the
# real routes): FERRY becomes a wrapper that enters H.
FERRY_REAL=$FERRY
FERRY=$E2E_TMP/ferry-in-h
printf '#!/bin/sh\nexec nsenter --net=/run/netns/%s %s "$@"\n' "$H" "$FERRY_REAL" >"$FERRY"
chmod 755 "$FERRY"
e2e_ferry 60 run --no-map-gw -- sh -c "python3 '$E2E_TMP/guest.py' $PORT; ping -c1 -W3 198.18.0.1; ping -6 -c1 -W3 fd00:f::1; sleep 1.5; cat /run/ferry-run/\$FERRY_INSTANCE/counters"
FERRY=$FERRY_REAL
cat "$OUT"
e2e_expect "TCP/IPv4 to the gateway is refused" grep -qx "tcp4 ECONNREFUSED" "$OUT"
e2e_expect "TCP/IPv6 to the gateway is refused" grep -qx "tcp6 ECONNREFUSED" "$OUT"
e2e_expect "UDP/IPv4 to the gateway: admin prohibited (EHOSTUNREACH)" grep -qx "udp4 EHOSTUNREACH" "$OUT"
e2e_expect "UDP/IPv6 to the gateway: admin prohibited (EACCES)" grep -qx "udp6 EACCES" "$OUT"
e2e_expect "ping of the gateway (IPv4): prohibited" grep -qiE "prohibited|filtered" <(grep -A3 "PING 198.18.0.1" "$OUT")
e2e_expect "ping of the gateway (IPv6): prohibited" grep -qiE "prohibited|filtered" <(grep -A3 "PING fd00:f::1" "$OUT")
e2e_expect "nothing was answered" bash -c "! grep -qE 'connected|answered|bytes from' '$OUT'"
e2e_expect "nothing reached P (was routed)" test ! -s "$E2E_TMP/p.log"
# TCP SYNs, UDP and pings: all the destination policy's.
refusals=$(sed -n 's/^policy_refused_gateway=//p' "$OUT" | head -1)
e2e_expect "ferry counted the refusals ($refusals)" test "${refusals:-0}" -ge 6
[[ -s $E2E_TMP/p.log ]] && cat "$E2E_TMP/p.log"
true
