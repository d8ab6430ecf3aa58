#!/usr/bin/env bash
# tcp_inbound: port forwarding (-t HOSTPORT:GUESTPORT). Host clients on
# 127.0.0.1 and ::1 move 64 MiB each way to servers inside the guest; the
# guest's servers must see the gateway address (198.18.0.1 / fd00:f::1) as
# the peer, never the host's loopback.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

N=$((64 << 20))
H1=$(free_port) || e2e_die "no free port"
H2=$(free_port) || e2e_die "no free port"
[[ $H1 != "$H2" ]] || H2=$((H1 + 1))
G1=7001
G2=7002
e2e_ferry_bg 240 run -t "$H1:$G1" -t "$H2:$G2" -- sh -c "
  $XFER listen --addr :: --port $G1 --portfile $E2E_TMP/g1.port --peerfile $E2E_TMP/g1.peers \
     --mode sink --bytes $N --seed 21 --count 2 --timeout 120 & a=\$!
  $XFER listen --addr :: --port $G2 --portfile $E2E_TMP/g2.port --peerfile $E2E_TMP/g2.peers \
     --mode source --bytes $N --seed 22 --count 2 --timeout 120 & b=\$!
  wait \$a; ra=\$?; wait \$b; rb=\$?; [ \$ra = 0 ] && [ \$rb = 0 ]"
e2e_wait_file "$E2E_TMP/g1.port" 20 || e2e_die "guest server 1 not up"
e2e_wait_file "$E2E_TMP/g2.port" 20 || e2e_die "guest server 2 not up"

e2e_expect "host 127.0.0.1 -> guest: 64 MiB" \
  $XFER connect --addr 127.0.0.1 --port "$H1" --mode send --bytes $N --seed 21 --timeout 120
e2e_expect "host ::1 -> guest: 64 MiB" \
  $XFER connect --addr ::1 --port "$H1" --mode send --bytes $N --seed 21 --timeout 120
e2e_expect "guest -> host 127.0.0.1: 64 MiB" \
  $XFER connect --addr 127.0.0.1 --port "$H2" --mode recv --bytes $N --seed 22 --timeout 120
e2e_expect "guest -> host ::1: 64 MiB" \
  $XFER connect --addr ::1 --port "$H2" --mode recv --bytes $N --seed 22 --timeout 120
e2e_ferry_wait
e2e_expect_rc 0 "guest servers verified everything"
peers=$(cat "$E2E_TMP"/g*.peers 2>/dev/null)
e2e_log "peers seen by the guest: $(echo $peers)"
e2e_expect "guest saw the IPv4 gateway as peer" grep -q "198.18.0.1" <<<"$peers"
e2e_expect "guest saw the IPv6 gateway as peer" grep -qx "fd00:f::1" <<<"$peers"
e2e_expect "guest never saw loopback" bash -c "! grep -Eq '127\.0\.0\.1|^::1$' <<<'$peers'"
