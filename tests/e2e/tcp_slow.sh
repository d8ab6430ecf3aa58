#!/usr/bin/env bash
# tcp_slow: a host reader that stops and reads slowly, and a guest reader
# that stops for 3 s and resumes. Transfers stay intact and ferry's RSS stays
# bounded (it never buffers what a slow side cannot take: the window it
# advertises follows the host socket, and host data stays in the host
# socket until the guest ACKs it).
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

N=$((64 << 20))
xfer_server SLOWUP --addr 127.0.0.1 --mode sink --bytes $N --seed 41 --pause 3 --timeout 120
xfer_server SLOWUP2 --addr 127.0.0.1 --mode sink --bytes $((16 << 20)) --seed 43 --slow --timeout 120
xfer_server DOWN --addr 127.0.0.1 --mode source --bytes $N --seed 42 --timeout 120
e2e_ferry_bg 240 run -- sh -c "
  $XFER connect --addr 198.18.0.1 --port $SLOWUP_PORT --mode send --bytes $N --seed 41 --timeout 120 || exit 11
  $XFER connect --addr 198.18.0.1 --port $SLOWUP2_PORT --mode send --bytes $((16 << 20)) --seed 43 --timeout 120 || exit 12
  $XFER connect --addr 198.18.0.1 --port $DOWN_PORT --mode recv --bytes $N --seed 42 --pause 3 --timeout 120 || exit 13"
rss_watch_start "$FERRY_PID"
e2e_ferry_wait
rss_watch_stop
e2e_expect_rc 0 "guest side verified"
e2e_expect "host sink (pausing reader) verified" xfer_wait "$SLOWUP_PID"
e2e_expect "host sink (slow reader) verified" xfer_wait "$SLOWUP2_PID"
e2e_expect "host source acknowledged (guest paused)" xfer_wait "$DOWN_PID"
e2e_log "ferry max anonymous RSS: $RSS_MAX_KB kB"
e2e_expect "ferry's own memory (RssAnon) stayed below 32 MiB" test "$RSS_MAX_KB" -lt 32768
