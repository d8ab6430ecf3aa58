#!/usr/bin/env bash
# tcp_loss: 1 % and 5 % random loss of TCP frames on the guest's link, both
# directions (a TC program inside the guest namespace, tests/tools/
# tcp_loss.bpf.c: this kernel has no netem; it runs before ferry's own
# classifier on the tap's egress), at MTU 65520 and 1500. 16 MiB each way
# must arrive intact: toward the guest by ferry's recovery (SACK, tail-loss
# probes, the RTO); toward the host by the guest's own, helped by ferry's
# out-of-order reassembly and SACK blocks.
# The premise, loss in both directions, is made certain (the program drops
# a data frame when LOSS_SURE_BY of them passed without a loss: most data
# moves in 64 KiB GSO frames, only some 300 per direction, and random loss
# alone left a direction without any a few times in a hundred runs) and
# checked three ways, none of them by chance: the program's own counters
# (it dropped data frames on both hooks: it was attached, to the right
# ones, before the transfers), the guest's TcpRetransSegs (it resent what
# was dropped on its way out), and ferry's tcp_retransmits (it resent what
# was dropped on the way in). The guest's out-of-order queueing is logged.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

for ppm in 10000 50000; do
  build_loss_prog $ppm "$E2E_TMP/loss$ppm.o" || e2e_die "cannot build the loss program"
  for mtu in 65520 1500; do
    what="loss $((ppm / 10000)) % MTU $mtu"
    N=$((16 << 20))
    xfer_server UP --addr 127.0.0.1 --mode sink --bytes $N --seed 51 --timeout 100
    xfer_server DOWN --addr 127.0.0.1 --mode source --bytes $N --seed 52 --timeout 100
    # ethtool: the guest hands ferry MSS-sized frames (the loss program
    # still sees its GSO frames whole, before the device segments them).
    # The counters file ferry rewrites every second: read until it shows
    # ferry's retransmissions (10 s at most; the check below fails if none).
    e2e_ferry 200 run -m $mtu -- sh -c "
      ethtool -K eth0 gso off tso off >/dev/null 2>&1
      tc qdisc show dev eth0 | grep -q clsact || tc qdisc add dev eth0 clsact
      tc filter add dev eth0 ingress pref 1 bpf da obj $E2E_TMP/loss$ppm.o sec tc &&
      tc filter add dev eth0 egress pref 1 bpf da obj $E2E_TMP/loss$ppm.o sec tc || exit 10
      $XFER connect --addr 198.18.0.1 --port $UP_PORT --mode send --bytes $N --seed 51 --timeout 100 || exit 11
      $XFER connect --addr 198.18.0.1 --port $DOWN_PORT --mode recv --bytes $N --seed 52 --timeout 100 || exit 12
      nstat -az TcpRetransSegs TcpExtTCPOFOQueue TcpExtTCPTimeouts
      /usr/bin/python3 $TOOLS/tcp_loss_counts.py eth0 || exit 13
      for i in \$(seq 20); do
        sleep 0.5
        \"\$FERRY\" stats -j \"\${FERRY_INSTANCE:-run-\$PPID}\" | tail -1 > $E2E_TMP/stats.json || exit 14
        grep -q '\"tcp_retransmits\":[1-9]' $E2E_TMP/stats.json && break
      done"
    e2e_expect_rc 0 "$what: guest side verified"
    e2e_expect "$what: host sink verified" xfer_wait "$UP_PID"
    e2e_expect "$what: host source acknowledged" xfer_wait "$DOWN_PID"
    retrans=$(awk '/TcpRetransSegs/ {print $2}' "$OUT")
    ofo=$(awk '/TcpExtTCPOFOQueue/ {print $2}' "$OUT")
    up_lost=$(sed -n 's/^loss egress .*data_dropped=\([0-9]*\).*/\1/p' "$OUT")
    down_lost=$(sed -n 's/^loss ingress .*data_dropped=\([0-9]*\).*/\1/p' "$OUT")
    ferry_rtx=$(/usr/bin/python3 -c '
import json, sys
print(json.load(open(sys.argv[1]))["instances"][0]["translator"]["tcp_retransmits"])' "$E2E_TMP/stats.json" 2>/dev/null)
    e2e_log "$what: $(grep '^loss egress' "$OUT" || echo 'loss egress: no counters')"
    e2e_log "$what: $(grep '^loss ingress' "$OUT" || echo 'loss ingress: no counters')"
    e2e_log "$what: guest retransmitted ${retrans:-?} segments, queued ${ofo:-?} out of order; ferry retransmitted ${ferry_rtx:-?}"
    e2e_expect "$what: data frames lost on the way out" test "${up_lost:-0}" -gt 0
    e2e_expect "$what: data frames lost on the way in" test "${down_lost:-0}" -gt 0
    e2e_expect "$what: the guest resent what it lost" test "${retrans:-0}" -gt 0
    e2e_expect "$what: ferry resent what the guest lost" test "${ferry_rtx:-0}" -gt 0
  done
done
