#!/usr/bin/env bash
# tcp_loss: 1 % and 5 % random loss of TCP frames on the guest's link, both
# directions (a TC program inside the guest namespace: this kernel has no
# netem). 16 MiB each way must arrive intact: retransmission by RTO, fast
# retransmit on duplicate ACKs and NewReno partial ACKs toward the guest, the
# guest's own retransmissions toward the host.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

N=$((16 << 20))
for ppm in 10000 50000; do
  build_loss_prog $ppm "$E2E_TMP/loss$ppm.o" || e2e_die "cannot build the loss program"
  xfer_server UP --addr 127.0.0.1 --mode sink --bytes $N --seed 51 --timeout 200
  xfer_server DOWN --addr 127.0.0.1 --mode source --bytes $N --seed 52 --timeout 200
  e2e_ferry 300 run -- sh -c "
    tc qdisc add dev eth0 clsact &&
    tc filter add dev eth0 ingress bpf da obj $E2E_TMP/loss$ppm.o sec tc &&
    tc filter add dev eth0 egress bpf da obj $E2E_TMP/loss$ppm.o sec tc || exit 10
    $XFER connect --addr 198.18.0.1 --port $UP_PORT --mode send --bytes $N --seed 51 --timeout 200 || exit 11
    $XFER connect --addr 198.18.0.1 --port $DOWN_PORT --mode recv --bytes $N --seed 52 --timeout 200 || exit 12
    tc -s filter show dev eth0 egress | head -3 >/dev/null"
  e2e_expect_rc 0 "loss $((ppm / 10000)) %: guest side verified"
  e2e_expect "loss $((ppm / 10000)) %: host sink verified" xfer_wait "$UP_PID"
  e2e_expect "loss $((ppm / 10000)) %: host source acknowledged" xfer_wait "$DOWN_PID"
done
