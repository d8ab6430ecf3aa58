#!/usr/bin/env bash
# tcp_bulk: 64 MiB each direction through ferry, IPv4 and IPv6, outbound
# (the guest connects to host servers on 127.0.0.1 / ::1 via the gateway
# address). Each side checks the sha256 of what it received; each transfer
# ends with a half-close (the sender shuts down its write side and then reads
# the receiver's verdict), so half-close from both sides is covered too.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

N=$((64 << 20))
xfer_server UP4 --addr 127.0.0.1 --mode sink --bytes $N --seed 11 --timeout 120
xfer_server DOWN4 --addr 127.0.0.1 --mode source --bytes $N --seed 12 --timeout 120
xfer_server UP6 --addr ::1 --mode sink --bytes $N --seed 13 --timeout 120
xfer_server DOWN6 --addr ::1 --mode source --bytes $N --seed 14 --timeout 120

e2e_ferry 240 run -- sh -c "
  $XFER connect --addr 198.18.0.1 --port $UP4_PORT --mode send --bytes $N --seed 11 --timeout 120 &&
  $XFER connect --addr 198.18.0.1 --port $DOWN4_PORT --mode recv --bytes $N --seed 12 --timeout 120 &&
  $XFER connect --addr fd00:f::1 --port $UP6_PORT --mode send --bytes $N --seed 13 --timeout 120 &&
  $XFER connect --addr fd00:f::1 --port $DOWN6_PORT --mode recv --bytes $N --seed 14 --timeout 120"
e2e_expect_rc 0 "guest side: 4 x 64 MiB verified"
e2e_expect "host sink IPv4 verified 64 MiB" xfer_wait "$UP4_PID"
e2e_expect "host source IPv4 got the guest's OK" xfer_wait "$DOWN4_PID"
e2e_expect "host sink IPv6 verified 64 MiB" xfer_wait "$UP6_PID"
e2e_expect "host source IPv6 got the guest's OK" xfer_wait "$DOWN6_PID"
