#!/usr/bin/env bash
# remote_inbound: `-t`/`-u` forwards from a remote client into a `ferry run`
# guest (the real path, DESIGN.md "Test topology").
#
# ferry runs in host namespace RH with the guest at its default MTU (65520);
# the clients are in the remote peer RP, one MTU-1500 veth hop away, and
# connect to RH's own address on that link (10.77.X.1, fd77:X::1), as a
# client on the network reaches a host's forwarded port. Checks:
#  * an IPv4-only guest (-4: no IPv6, so it sends nothing at link-up) whose
#    first frame is its answer to an inbound connection: the forwarded SYN
#    must reach it;
#  * 64 MiB from RP into the guest and 64 MiB from the guest to RP through
#    -t forwards, over IPv4 and IPv6, sha256 checked on both sides
#    (tests/tools/tcp_xfer.py);
#  * UDP datagrams of 4000 bytes (fragmented on the hop) through a -u
#    forward to socat echoing in the guest, IPv4 and IPv6;
#  * the guest sees the remote client's own address as the peer (a client
#    on the host's loopback appears as the gateway instead: tcp_inbound).
# Each transfer gives up after 20 s without progress, each guest after 180 s.
#
# Issue 11: on the code before its fix the guest's replies never left (ferry
# offered it window 0 from the SYN-ACK on), so nothing came back.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"
command -v socat >/dev/null || e2e_die "socat missing (scripts/install-deps.sh installs it)"

N=$((64 << 20))
e2e_remote_topology 1500
E2E_FERRY_IN=("${RHN[@]}")
H4=${REMOTE_H4[0]} H6=${REMOTE_H6[0]}
xfer() { timeout -k 5 60 "${RPN[@]}" $XFER connect --timeout 20 --bytes $N "$@"; }

# ---- a guest that has sent nothing: its first frame answers the inbound SYN
HP=$(e2e_free_port)
e2e_ferry_bg 60 run -4 -t "$HP:80" -- timeout 50 socat TCP4-LISTEN:80,reuseaddr 'SYSTEM:echo silent-guest-$((6*7))'
got=
for _ in $(seq 50); do
  got=$(timeout 5 "${RPN[@]}" socat -T 4 - "TCP4:$H4:$HP" </dev/null 2>/dev/null) && [[ -n $got ]] && break
  sleep 0.2
done
e2e_expect "RP -> RH:$HP -> a guest that had sent nothing: answered ($got)" test "$got" = silent-guest-42
e2e_ferry_wait
[[ $got == silent-guest-42 ]] || e2e_show_output

# ---- 64 MiB each way, IPv4 and IPv6; UDP echo
T1=$(e2e_free_port)
T2=$(e2e_free_port)
[[ $T1 != "$T2" ]] || T2=$((T1 + 1))
U1=$(e2e_free_port)
G1=7001 G2=7002 GU=7003
e2e_ferry_bg 180 run -t "$T1:$G1" -t "$T2:$G2" -u "$U1:$GU" -- bash -c "
  $XFER listen --addr :: --port $G1 --portfile $E2E_TMP/g1.port --peerfile $E2E_TMP/g1.peers \
     --mode sink --bytes $N --seed 41 --count 2 --timeout 60 & a=\$!
  $XFER listen --addr :: --port $G2 --portfile $E2E_TMP/g2.port --peerfile $E2E_TMP/g2.peers \
     --mode source --bytes $N --seed 42 --count 2 --timeout 60 & b=\$!
  timeout 120 socat UDP6-LISTEN:$GU,ipv6only=0,fork,reuseaddr PIPE & c=\$!
  i=0; while ! ss -Huln 'sport = :$GU' | grep -q . && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
  echo up >$E2E_TMP/udp.up
  wait \$a; ra=\$?; wait \$b; rb=\$?
  i=0; while [ ! -e $E2E_TMP/udp.done ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done
  kill \$c 2>/dev/null; [ \$ra = 0 ] && [ \$rb = 0 ]"
e2e_wait_file "$E2E_TMP/g1.port" 20 || e2e_die "guest server 1 not up"
e2e_wait_file "$E2E_TMP/g2.port" 20 || e2e_die "guest server 2 not up"
e2e_wait_file "$E2E_TMP/udp.up" 20 || e2e_die "guest UDP echo not up"

head -c 4000 /dev/urandom >"$E2E_TMP/dgram"
for to in "UDP4:$H4:$U1" "UDP6:[$H6]:$U1"; do
  rm -f "$E2E_TMP/dgram.back"
  timeout 10 "${RPN[@]}" socat -T 3 - "$to" <"$E2E_TMP/dgram" >"$E2E_TMP/dgram.back" 2>/dev/null
  e2e_expect "RP -> $to -> guest's UDP echo: 4000 bytes back intact" cmp -s "$E2E_TMP/dgram" "$E2E_TMP/dgram.back"
done
e2e_expect "RP -> RH $H4:$T1 -> guest: 64 MiB" xfer --addr "$H4" --port "$T1" --mode send --seed 41
e2e_expect "RP -> RH [$H6]:$T1 -> guest: 64 MiB" xfer --addr "$H6" --port "$T1" --mode send --seed 41
e2e_expect "guest -> RH $H4:$T2 -> RP: 64 MiB" xfer --addr "$H4" --port "$T2" --mode recv --seed 42
e2e_expect "guest -> RH [$H6]:$T2 -> RP: 64 MiB" xfer --addr "$H6" --port "$T2" --mode recv --seed 42
touch "$E2E_TMP/udp.done"
e2e_ferry_wait
e2e_expect_rc 0 "guest servers verified everything"
peers=$(cat "$E2E_TMP"/g*.peers 2>/dev/null)
e2e_log "peers seen by the guest: $(echo $peers)"
e2e_expect "the guest saw the remote client's own IPv4 address" grep -qx "::ffff:${REMOTE_P4[0]}" <<<"$peers"
e2e_expect "the guest saw the remote client's own IPv6 address" grep -qx "${REMOTE_P6[0]}" <<<"$peers"
