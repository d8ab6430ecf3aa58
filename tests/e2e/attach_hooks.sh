#!/usr/bin/env bash
# attach_hooks: the measurement behind `ferry attach`'s default hook (the
# table in userspace/attach/datapath.h). iperf3 guest -> 127.0.0.1 in the host
# namespace through ferry attach, for each MTU (65520, 1500), hook (tc, xdp)
# and guest tx checksum offload (on, off), RUNS x SECS seconds each.
# A load, so it runs only when asked: ATTACH_BENCH=1 (RUNS=3, SECS=4 by
# default); otherwise it skips (ctest sees a pass).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
if [[ ${ATTACH_BENCH:-0} != 1 ]]; then
  e2e_log "SKIP: a measurement; run with ATTACH_BENCH=1"
  exit 0
fi
e2e_init
RUNS=${RUNS:-3}
SECS=${SECS:-4}
U=$(e2e_unique a)
H=${U}h G=${U}g
DEV=fb$$$((RANDOM % 100))
DEV=${DEV:0:15}
e2e_attach_topology "$H" "$G" "$DEV"
for mtu in 65520 1500; do
  ip -n "$H" link set "$DEV" mtu $mtu
  ip -n "$G" link set eth0 mtu $mtu
  for cfg in "tc on" "tc off" "xdp off" "xdp on"; do
    read -r hook csum <<<"$cfg"
    ip netns exec "$G" ethtool -K eth0 tx "$csum" >/dev/null 2>&1
    timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" --hook "$hook" -q || { e2e_fail "attach --hook $hook"; continue; }
    mode=$(timeout 5 "$FERRY" status "$DEV" -j | python3 -c "import json,sys; print(json.load(sys.stdin)['attachments'][0]['attach_mode'])")
    res=""
    for _ in $(seq "$RUNS"); do
      "${HN[@]}" timeout $((SECS + 10)) iperf3 -s -B 127.0.0.1 -p 5399 -1 >/dev/null 2>&1 &
      sp=$!
      sleep 0.3
      v=$(timeout $((SECS + 8)) ip netns exec "$G" iperf3 -c 198.18.0.1 -p 5399 -t "$SECS" -J 2>/dev/null | python3 -c "
import json, sys
try: print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second'] / 1e9))
except Exception: print('0')")
      e2e_kill_pid $sp
      res="$res $v"
    done
    e2e_log "mtu=$mtu hook=$hook ($mode) guest-tx-csum=$csum Gbit/s:$res"
    timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
  done
done
