#!/usr/bin/env bash
# tcp_close: resets and failures. A host peer's reset reaches the guest as
# ECONNRESET; a guest's reset reaches the host peer as ECONNRESET (SO_LINGER
# 0 on ferry's socket); a closed host port gives the guest ECONNREFUSED; a
# host port that drops SYNs (a listener with a full accept queue, on this
# machine's loopback) makes the guest's connect fail cleanly after ferry's
# connect timeout instead of hanging.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

# Host resets after 1000 bytes; the guest must see the reset.
xfer_server HRST --addr 127.0.0.1 --mode sink --bytes 100000 --rst-after 1000 --timeout 30
# Host expects a reset from the guest.
xfer_server GRST --addr 127.0.0.1 --mode reset-check --timeout 30
DEAD=$(free_port)

# A listener whose accept queue is full drops further SYNs.
/usr/bin/python3 - "$E2E_TMP/drop.port" >"$E2E_TMP/drop.log" 2>&1 <<'PY' &
import os, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
held = []
for _ in range(2):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    held.append(c)
time.sleep(0.5)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
PY
DROP_PID=$!
e2e_on_exit "e2e_kill_pid $DROP_PID"
e2e_wait_file "$E2E_TMP/drop.port" 10 || e2e_die "SYN-dropping listener did not start"
DROP_PORT=$(cat "$E2E_TMP/drop.port")

e2e_ferry 120 run -- sh -c "
  $XFER connect --addr 198.18.0.1 --port $HRST_PORT --mode reset-check --timeout 20 || exit 11
  $XFER connect --addr 198.18.0.1 --port $GRST_PORT --mode send --bytes 10000000 --rst-after 100000 --timeout 20 || exit 12
  $XFER connect --addr 198.18.0.1 --port $DEAD --mode send --expect-error --timeout 20 || exit 13
  $XFER connect --addr fd00:f::1 --port $DEAD --mode send --expect-error --timeout 20 || exit 14
  t0=\$(date +%s)
  $XFER connect --addr 198.18.0.1 --port $DROP_PORT --mode send --expect-error --timeout 40 || exit 15
  echo connect-drop-seconds \$((\$(date +%s) - t0))"
e2e_expect_rc 0 "guest saw resets, refusals and the SYN-drop failure"
e2e_expect "host reset seen by the guest" xfer_wait "$HRST_PID"
e2e_expect "guest reset seen by the host" xfer_wait "$GRST_PID"
e2e_expect "refused: ECONNREFUSED (both families)" test "$(grep -c 'expected: ECONNREFUSED' "$OUT")" -ge 2
secs=$(sed -n 's/connect-drop-seconds //p' "$OUT")
e2e_log "connect to a SYN-dropping port failed after ${secs:-?} s"
e2e_expect "SYN-drop: failed within 30 s" test "${secs:-99}" -le 30
