#!/usr/bin/env bash
# tcp_many: 200 concurrent connections each way, each moving 256 KiB with a
# sha256 check, through one ferry; then 2000 short connections one after the
# other (slots and sockets are reclaimed: the table never fills).
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

N=$((256 << 10))
xfer_server UP --addr 127.0.0.1 --mode sink --bytes $N --seed 31 --count 200 --timeout 120
xfer_server DOWN --addr 127.0.0.1 --mode source --bytes $N --seed 32 --count 200 --timeout 120
e2e_ferry 240 run -- sh -c "
  $XFER connect --addr 198.18.0.1 --port $UP_PORT --mode send --bytes $N --seed 31 --count 200 --timeout 120 & a=\$!
  $XFER connect --addr 198.18.0.1 --port $DOWN_PORT --mode recv --bytes $N --seed 32 --count 200 --timeout 120 & b=\$!
  wait \$a; ra=\$?; wait \$b; rb=\$?; [ \$ra = 0 ] && [ \$rb = 0 ]"
e2e_expect_rc 0 "guest: 400 connections verified"
grep tcp_xfer "$OUT" | sed 's/^/    /'
e2e_expect "host sinks: 200 verified" xfer_wait "$UP_PID"
e2e_expect "host sources: 200 acknowledged" xfer_wait "$DOWN_PID"

xfer_server CHURN --addr 127.0.0.1 --mode sink --bytes 1000 --seed 33 --count 2000 --timeout 120
e2e_ferry 240 run --max-conns 64 -- \
  $XFER connect --addr 198.18.0.1 --port $CHURN_PORT --mode send --bytes 1000 --seed 33 --count 2000 --sequential --timeout 30
e2e_expect_rc 0 "guest: 2000 sequential connections through a 64-slot table"
e2e_expect "host: 2000 verified" xfer_wait "$CHURN_PID"
