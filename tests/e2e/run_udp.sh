#!/usr/bin/env bash
# run_udp: the guest's UDP datagrams reach a host UDP echo server on the
# loopback through the gateway address, over IPv4 and IPv6, and the replies
# come back.
source "$(dirname "$0")/lib.sh"
e2e_init

e2e_udp_echo_server ::1
UDP6_PORT=$UDP_PORT
e2e_udp_echo_server 127.0.0.1

e2e_ferry 20 run -- sh -c "
  printf 'udp-four' | socat -T 3 - UDP4:198.18.0.1:$UDP_PORT; echo;
  printf 'udp-six' | socat -T 3 - 'UDP6:[fd00:f::1]:$UDP6_PORT'; echo"
e2e_expect_rc 0 "UDP through the gateway"
e2e_expect "IPv4 echo" grep -q "udp-four" "$OUT"
e2e_expect "IPv6 echo" grep -q "udp-six" "$OUT"
grep -q "udp-four" "$OUT" && grep -q "udp-six" "$OUT" || e2e_show_output
e2e_check_clean "$FERRY_PID"
