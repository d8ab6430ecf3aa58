#!/usr/bin/env bash
# udp_source_port: a guest's UDP datagram reaches a peer one veth hop away
# (MTU 1500, namespace RP) from the guest's own source port, over IPv4 and
# IPv6, as with pasta; when a process in the host namespace holds that port
# (bound without SO_REUSEADDR), the datagram still arrives, from another
# (ephemeral) port. The peer answers each datagram with the source port it
# saw, which the guest prints. socat waits up to 5 s for that answer (-t 5;
# its default 0.5 s is shorter than the IPv6 neighbour resolution on the
# fresh veth, whose link-local address is still in DAD).
source "$(dirname "$0")/lib.sh"
e2e_init
command -v socat >/dev/null || e2e_die "socat missing (scripts/install-deps.sh installs it)"

e2e_remote_topology 1500
E2E_FERRY_IN=("${RHN[@]}")

# The peer: answers "port=N" to every datagram, bounded to 60 s.
portfile=$E2E_TMP/peer.port
"${RPN[@]}" timeout 60 /usr/bin/python3 -u - "$portfile" >"$E2E_TMP/peer.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 0))
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True:
    d, peer = s.recvfrom(2048)
    print("from", peer[0], peer[1])
    s.sendto(b"port=%d" % peer[1], peer)
PY
e2e_on_exit "e2e_kill_pid $!"
e2e_wait_file "$portfile" 5 || e2e_die "peer did not start"
PPORT=$(cat "$portfile")

# A port held in the host namespace (no SO_REUSEADDR), bounded to 60 s.
held=$E2E_TMP/held.port
"${RHN[@]}" timeout 60 /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(60)' "$held" &
e2e_on_exit "e2e_kill_pid $!"
e2e_wait_file "$held" 5 || e2e_die "port holder did not start"
HELD=$(cat "$held")
KEEP4=40123 KEEP6=40124
[[ $HELD != "$KEEP4" && $HELD != "$KEEP6" ]] || e2e_die "held port collides"

e2e_ferry 30 run -- sh -c "
  echo v4 \$(printf a | socat -t 5 -T 10 - UDP4:${REMOTE_P4[0]}:$PPORT,sourceport=$KEEP4);
  echo v6 \$(printf b | socat -t 5 -T 10 - 'UDP6:[${REMOTE_P6[0]}]:$PPORT,sourceport=$KEEP6');
  echo held \$(printf c | socat -t 5 -T 10 - UDP4:${REMOTE_P4[0]}:$PPORT,sourceport=$HELD)"
e2e_expect_rc 0 "guest datagrams to the peer"
e2e_expect "IPv4: the peer saw the guest's port $KEEP4" grep -qx "v4 port=$KEEP4" "$OUT"
e2e_expect "IPv6: the peer saw the guest's port $KEEP6" grep -qx "v6 port=$KEEP6" "$OUT"
e2e_expect "held port $HELD: the datagram arrived from another port" \
  bash -c "grep -q '^held port=[0-9]' '$OUT' && ! grep -qx 'held port=$HELD' '$OUT'"
grep -qx "v6 port=$KEEP6" "$OUT" || { e2e_show_output; cat "$E2E_TMP/peer.log"; }
e2e_check_clean "$FERRY_PID"
