#!/usr/bin/env bash
# outbound_source: -o ADDR and --outbound-if4/6 IF choose the source address
# and interface of ferry's outbound host sockets (TCP, UDP, ICMP echo), as
# pasta's options do. ferry runs in host namespace RH, joined to the peer
# namespace RP by two veths of MTU 1500 (e2e_remote_topology 1500 1500):
#  * -o: RH also has .3 / ::3 on link 0; with `-o .3 -o ::3` the peer's
#    TCP and UDP servers see the guest's connections and datagrams come from
#    .3 / ::3 (without -o: from the link's first address, the control), and
#    the guest's pings are answered although RP drops echo requests from any
#    other source (iptables, ip6tables);
#  * --outbound-if4/6 rpeer1: RP's address Z (on its loopback) is routed by
#    RH over link 0 (metric 10) and link 1 (metric 20); a TCP connection
#    to Z leaves from link 0's address by default, from link 1's with the
#    option (the socket is tied to rpeer1 and takes its route);
#  * an address that is not the host's, or an interface that does not
#    exist: one line, exit 2.
source "$(dirname "$0")/lib.sh"
e2e_init
command -v iptables >/dev/null || e2e_die "iptables missing (scripts/install-deps.sh installs it)"

e2e_remote_topology 1500 1500
E2E_FERRY_IN=("${RHN[@]}")
X=$(cut -d. -f3 <<<"${REMOTE_P4[0]}")
O4=10.77.$X.3 O6=fd77:$X::3
ip -n "$RH" addr add "$O4/24" dev "${REMOTE_DEV_H[0]}"
# (deprecated: the kernel's own choice of source never takes it, -o does)
ip -n "$RH" -6 addr add "$O6/64" dev "${REMOTE_DEV_H[0]}" nodad preferred_lft 0
Z4=10.78.$X.2 Z6=fd78:$X::2
ip -n "$RP" addr add "$Z4/32" dev lo
ip -n "$RP" -6 addr add "$Z6/128" dev lo
for k in 0 1; do
  ip -n "$RH" route add "$Z4/32" via "${REMOTE_P4[k]}" metric $((10 + 10 * k))
  ip -n "$RH" -6 route add "$Z6/128" via "${REMOTE_P6[k]}" metric $((10 + 10 * k))
done
# Replies to link 1's address come back over link 1 while the request went
# out over it: no reverse-path filter in the way.
ip netns exec "$RH" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0

# The peer: TCP on one port, both families, and UDP on the same port of
# each address asked (bound to it, so that the answer comes from the address
# the guest wrote to); answers "src=ADDR".
portfile=$E2E_TMP/peer.port
"${RPN[@]}" timeout 90 /usr/bin/python3 -u - "$portfile" "${REMOTE_P4[0]}" "${REMOTE_P6[0]}" "$Z4" "$Z6" \
  >"$E2E_TMP/peer.log" 2>&1 <<'PY' &
import socket, sys, threading
t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
t.bind(("::", 0))
t.listen(16)
port = t.getsockname()[1]
def src(a):
    return a[0][7:] if a[0].startswith("::ffff:") else a[0]
def udp(u):
    while True:
        d, a = u.recvfrom(2048)
        u.sendto(b"src=%s\n" % src(a).encode(), a)
for addr in sys.argv[2:]:
    u = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, port))
    threading.Thread(target=udp, args=(u,), daemon=True).start()
open(sys.argv[1], "w").write(str(port))
while True:
    c, a = t.accept()
    c.sendall(b"src=%s\n" % src(a).encode())
    c.close()
PY
e2e_on_exit "e2e_kill_pid $!"
e2e_wait_file "$portfile" 5 || e2e_die "peer did not start"
PP=$(cat "$portfile")

# Echo requests reach RP only from the -o addresses.
ip netns exec "$RP" iptables -A INPUT -p icmp --icmp-type echo-request ! -s "$O4" -j DROP
ip netns exec "$RP" ip6tables -A INPUT -p icmpv6 --icmpv6-type echo-request ! -s "$O6" -j DROP

# What the guest asks the peer: TCP and UDP to DEST over both families.
ask() {  # $1: IPv4 destination, $2: IPv6 destination
  echo "tcp4 $(socat -T 10 - TCP4:$1:$PP </dev/null)"
  echo "tcp6 $(socat -T 10 - "TCP6:[$2]:$PP" </dev/null)"
  echo "udp4 $(printf x | socat -t 5 -T 10 - UDP4:$1:$PP)"
  echo "udp6 $(printf x | socat -t 5 -T 10 - "UDP6:[$2]:$PP")"
}
export -f ask
export PP

# ---- control: no -o, the link's first address
e2e_ferry 60 run -- bash -c "ask ${REMOTE_P4[0]} ${REMOTE_P6[0]}; ping -c 1 -W 3 ${REMOTE_P4[0]} >/dev/null && echo ping4-ok; true"
e2e_expect_rc 0 "control run"
e2e_expect "control: TCP from ${REMOTE_H4[0]}" grep -qx "tcp4 src=${REMOTE_H4[0]}" "$OUT"
e2e_expect "control: TCP from ${REMOTE_H6[0]}" grep -qx "tcp6 src=${REMOTE_H6[0]}" "$OUT"
e2e_expect "control: the echo from another source is dropped by RP" bash -c "! grep -q ping4-ok '$OUT'"

# ---- -o: the chosen source for TCP, UDP and echo, both families
e2e_ferry 60 run -o "$O4" --outbound "$O6" -- bash -c "ask ${REMOTE_P4[0]} ${REMOTE_P6[0]};
  ping -c 1 -W 5 ${REMOTE_P4[0]} >/dev/null && echo ping4-ok; ping -6 -c 1 -W 5 ${REMOTE_P6[0]} >/dev/null && echo ping6-ok"
e2e_expect_rc 0 "ferry run -o $O4 -o $O6"
for w in "tcp4 src=$O4" "tcp6 src=$O6" "udp4 src=$O4" "udp6 src=$O6" ping4-ok ping6-ok; do
  e2e_expect "-o: $w" grep -qx "$w" "$OUT"
done
((E2E_FAILED)) && e2e_show_output

# ---- --outbound-if4/6: the interface's route, not the best one
e2e_ferry 60 run -- bash -c "ask $Z4 $Z6"
e2e_expect "control: Z over link 0 (TCP from ${REMOTE_H4[0]})" grep -qx "tcp4 src=${REMOTE_H4[0]}" "$OUT"
e2e_expect "control: Z over link 0 (TCP from ${REMOTE_H6[0]})" grep -qx "tcp6 src=${REMOTE_H6[0]}" "$OUT"
e2e_ferry 60 run --outbound-if4 "${REMOTE_DEV_H[1]}" --outbound-if6 "${REMOTE_DEV_H[1]}" -- bash -c "ask $Z4 $Z6"
e2e_expect_rc 0 "ferry run --outbound-if4/6 ${REMOTE_DEV_H[1]}"
for w in "tcp4 src=${REMOTE_H4[1]}" "tcp6 src=${REMOTE_H6[1]}" "udp4 src=${REMOTE_H4[1]}" "udp6 src=${REMOTE_H6[1]}"; do
  e2e_expect "--outbound-if: $w" grep -qx "$w" "$OUT"
done
((E2E_FAILED)) && e2e_show_output

# ---- bad values: one line, exit 2
for bad in "-o 10.99.99.99" "-o 127.0.0.1" "-o nonsense" "--outbound-if4 nosuchif0" "--outbound-if6 a/b"; do
  # shellcheck disable=SC2086
  e2e_ferry 10 run $bad -- true
  e2e_expect_rc 2 "$bad"
  e2e_expect "$bad: one line" test "$(wc -l <"$ERR")" -eq 1
done
e2e_check_clean "$FERRY_PID"
