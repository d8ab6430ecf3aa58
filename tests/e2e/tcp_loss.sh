#!/usr/bin/env bash
# tcp_loss: 1 % and 5 % random loss of TCP frames on the guest's link, both
# directions (a TC program inside the guest namespace, tests/tools/
# tcp_loss.bpf.c: this kernel has no netem; it runs before ferry's own
# classifier on the tap's egress), at MTU 65520 and 1500. 16 MiB each way
# (64 MiB at 1 % and MTU 65520) must arrive intact: toward the guest by ferry's RTO, fast
# retransmit and NewReno partial ACKs; toward the host by the guest's own
# recovery, helped by ferry's out-of-order reassembly and SACK blocks. The
# guest's counters prove that loss happened (it retransmitted, or it queued
# out-of-order segments); both are logged.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

for ppm in 10000 50000; do
  build_loss_prog $ppm "$E2E_TMP/loss$ppm.o" || e2e_die "cannot build the loss program"
  for mtu in 65520 1500; do
    what="loss $((ppm / 10000)) % MTU $mtu"
    # Enough frames that loss is certain: at MTU 65520 a frame carries 64 KiB,
    # so 16 MiB is only 256 frames: no drop at all 8 % of the time at 1 %
    # (64 MiB then), 3e-6 at 5 %.
    N=$((16 << 20))
    ((mtu > 9000 && ppm < 50000)) && N=$((64 << 20))
    xfer_server UP --addr 127.0.0.1 --mode sink --bytes $N --seed 51 --timeout 100
    xfer_server DOWN --addr 127.0.0.1 --mode source --bytes $N --seed 52 --timeout 100
    e2e_ferry 200 run -m $mtu -- sh -c "
      ethtool -K eth0 gso off tso off >/dev/null 2>&1
      tc qdisc show dev eth0 | grep -q clsact || tc qdisc add dev eth0 clsact
      tc filter add dev eth0 ingress pref 1 bpf da obj $E2E_TMP/loss$ppm.o sec tc &&
      tc filter add dev eth0 egress pref 1 bpf da obj $E2E_TMP/loss$ppm.o sec tc || exit 10
      $XFER connect --addr 198.18.0.1 --port $UP_PORT --mode send --bytes $N --seed 51 --timeout 100 || exit 11
      $XFER connect --addr 198.18.0.1 --port $DOWN_PORT --mode recv --bytes $N --seed 52 --timeout 100 || exit 12
      nstat -az TcpRetransSegs TcpExtTCPOFOQueue TcpExtTCPTimeouts"
    e2e_expect_rc 0 "$what: guest side verified"
    e2e_expect "$what: host sink verified" xfer_wait "$UP_PID"
    e2e_expect "$what: host source acknowledged" xfer_wait "$DOWN_PID"
    retrans=$(awk '/TcpRetransSegs/ {print $2}' "$OUT")
    ofo=$(awk '/TcpExtTCPOFOQueue/ {print $2}' "$OUT")
    e2e_log "$what: guest retransmitted ${retrans:-?} segments, queued ${ofo:-?} out of order"
    # The premise: frames were really lost (the guest retransmitted, or
    # queued segments that arrived after a hole).
    e2e_expect "$what: loss happened" test "$(( ${retrans:-0} + ${ofo:-0} ))" -gt 0
  done
done
