#!/usr/bin/env bash
# forward_restart: a forward's port is free again for the next ferry as soon
# as ferry stops, even with connections in TIME_WAIT on it; and a UDP
# forward's socket is ferry's alone.
#
# ferry runs in host namespace RH; the client is in the remote peer RP, one
# MTU-1500 veth hop away (e2e_remote_topology).
#  * -t: the guest's server answers one line and closes first, so ferry's
#    side of the connection (local port HP) closes first and stays in
#    TIME_WAIT after ferry exits. A second `ferry run -t HP:80` must start
#    and answer at once (its listener sets SO_REUSEADDR; without it bind()
#    fails with EADDRINUSE for 60 s).
#  * -u: while that second ferry runs with -u HU, a host process binding
#    UDP HU with SO_REUSEADDR must fail (EADDRINUSE): a UDP socket with
#    SO_REUSEADDR would let both binders share the port, and the datagrams.
#  * -T/-U with --netns G (a namespace that outlives ferry): the host's
#    server (RH's loopback) closes first, so ferry's socket in G (port TP)
#    stays in TIME_WAIT; a second ferry with the same -T must start and
#    answer. While -U UP runs, a process in G binding UDP 127.0.0.1:UP with
#    SO_REUSEADDR must fail.
source "$(dirname "$0")/lib.sh"
e2e_init
command -v socat >/dev/null || e2e_die "socat missing (scripts/install-deps.sh installs it)"
PY=/usr/bin/python3

e2e_remote_topology 1500
E2E_FERRY_IN=("${RHN[@]}")
H4=${REMOTE_H4[0]}

# A line from ADDR:PORT, read to end of stream (the server closes first);
# retried while the forward is not up yet.
ask() {
  local ns=$1 addr=$2 port=$3 got= i
  for ((i = 0; i < 50; i++)); do
    got=$(timeout 5 nsenter --net="/run/netns/$ns" $PY -c '
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4)
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
s.close()
print(data.decode().strip())' "$addr" "$port" 2>/dev/null) && [[ -n $got ]] && break
    sleep 0.2
  done
  echo "$got"
}

# Whether a socket other than the listener holds local TCP PORT in NS
# (TIME_WAIT, FIN_WAIT: what made bind() fail without SO_REUSEADDR).
held_after_close() { nsenter --net="/run/netns/$1" ss -Htan "( sport = :$2 )" | grep -qv LISTEN; }

# Tries to bind UDP ADDR:PORT with SO_REUSEADDR in NS; prints the errno name.
udp_second_binder() {
  nsenter --net="/run/netns/$1" $PY -c '
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[1], int(sys.argv[2])))
    print("bound")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))' "$2" "$3"
}

DONE=$E2E_TMP/done
WAIT_DONE="i=0; while [ ! -e $DONE ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done"

# ---- -t: restart with TIME_WAIT on the forwarded port
HP=$(e2e_free_port)
HU=$(e2e_free_port)
rm -f "$DONE"
e2e_ferry_bg 60 run -4 -t "$HP:80" -- sh -c "timeout 40 socat TCP4-LISTEN:80,reuseaddr 'SYSTEM:echo guest-said-1'; $WAIT_DONE"
got=$(ask "$RP" "$H4" "$HP")
e2e_expect "first ferry: RP -> RH:$HP -> guest answered ($got)" test "$got" = guest-said-1
touch "$DONE"
e2e_ferry_wait
e2e_expect_rc 0 "first ferry exited with its command"
e2e_log "RH's sockets on $HP after ferry exited: $("${RHN[@]}" ss -Htan "( sport = :$HP )" | awk '{print $1}' | xargs)"
held_after_close "$RH" "$HP" || e2e_die "no TIME_WAIT left on $HP: the scenario cannot show the restart"

rm -f "$DONE"
e2e_ferry_bg 60 run -4 -t "$HP:80" -u "$HU:81" -- sh -c "timeout 40 socat TCP4-LISTEN:80,reuseaddr 'SYSTEM:echo guest-said-2'; $WAIT_DONE"
got=$(ask "$RP" "$H4" "$HP")
e2e_expect "second ferry -t $HP (TIME_WAIT on it): started and answered ($got)" test "$got" = guest-said-2
second=$(udp_second_binder "$RH" 0.0.0.0 "$HU")
e2e_expect "-u $HU: a second UDP binder with SO_REUSEADDR is refused ($second)" test "$second" = EADDRINUSE
touch "$DONE"
e2e_ferry_wait
e2e_expect_rc 0 "second ferry exited with its command"
[[ $got == guest-said-2 ]] || e2e_show_output

# ---- -T/-U in a namespace that outlives ferry
G=$(e2e_unique g)
ip netns add "$G" || e2e_die "ip netns add $G"
e2e_on_exit "ip netns del $G"
HB=$(e2e_free_port)
TP=$(e2e_free_port)
UP=$(e2e_free_port)
"${RHN[@]}" timeout 60 socat "TCP4-LISTEN:$HB,bind=127.0.0.1,reuseaddr,fork" 'SYSTEM:echo host-said' &
e2e_on_exit "e2e_kill_pid $!"
for run in 1 2; do
  rm -f "$DONE"
  e2e_ferry_bg 60 run --netns "$G" -4 -T "$TP:$HB" -U "$UP:$HB" -- sh -c "$WAIT_DONE"
  got=$(ask "$G" 127.0.0.1 "$TP")
  e2e_expect "ferry $run --netns: guest's 127.0.0.1:$TP -> RH's loopback answered ($got)" test "$got" = host-said
  if ((run == 1)); then
    second=$(udp_second_binder "$G" 127.0.0.1 "$UP")
    e2e_expect "-U $UP: a second UDP binder with SO_REUSEADDR in the guest is refused ($second)" test "$second" = EADDRINUSE
  fi
  touch "$DONE"
  e2e_ferry_wait
  e2e_expect_rc 0 "ferry $run --netns exited with its command"
  [[ $got == host-said ]] || e2e_show_output
  if ((run == 1)); then
    e2e_log "G's sockets on $TP after ferry exited: $(nsenter --net="/run/netns/$G" ss -Htan "( sport = :$TP )" | awk '{print $1}' | xargs)"
    held_after_close "$G" "$TP" || e2e_die "no TIME_WAIT left on $TP in $G: the scenario cannot show the restart"
  fi
done
