#!/usr/bin/env bash
# soak_tap: issue 19's soak, short. A "VM" whose reader stalls
# (tests/tools/slow_tap_reader.c in front of a guest namespace, see
# lib_soak.sh) on a tap that `ferry attach` serves; the kernel drops frames on
# the tap toward the guest. Four rounds: the guest's offloads off and on,
# ferry's fast path on and off; each runs SOAK_COUNT (20) transfers of 4 MiB
# cycling download/upload over IPv4/IPv6 through the gateway addresses, each
# verified (length, sha256). A round fails on any failed transfer or any
# stall (over 5x the median of its kind, less the reader's injected pauses
# in it: lib_soak.sh, and, here only, over median + 1 s: SOAK_FLOOR_S. This
# short version runs in the suite beside other tests, and a loaded machine
# alone makes transfers 5-12x their median: at load 7.5 on this 2-CPU
# machine, 14 of 400 transfers, with no recovery event in ferry and tasks
# waiting for a CPU the whole time (PSI). The floor still catches the
# stalls of seconds and minutes the issue reports; the long soak,
# scripts/soak.sh, run on a quiet machine, has none); a stall
# leaves a snapshot (ferry status/stats/conns, the tap's link and qdisc
# counters, the guest's neighbours and sockets, tcpdump of both taps)
# that is printed here. Also checked, in the offloads-off rounds: the
# reader's pauses really filled the tap's queue (the premise: ferry held
# new data back for lack of room, translator.tcp_queue_throttled; before
# ferry followed that queue, the kernel dropped hundreds of frames here),
# and `ferry stats` shows the kernel's drops on the tap as they are
# (translator.dev_tx_dropped, the count of `ip -s link`, 0 or more). The
# long version is scripts/soak.sh.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
# shellcheck source=tests/e2e/lib_soak.sh
source "$(dirname "$0")/lib_soak.sh"
command -v tcpdump >/dev/null || SOAK_PCAP=0

export SOAK_FLOOR_S=${SOAK_FLOOR_S:-1}
soak_setup
COUNT=${SOAK_COUNT:-20}
for offloads in off on; do
  for fastpath in on off; do
    name=offloads-$offloads-fastpath-$fastpath
    e2e_expect "$name: $COUNT transfers, none failed, none stalled" \
      soak_round "$name" "$offloads" "$fastpath" "$COUNT" $((4 << 20)) 120
    if [[ $offloads == off ]]; then
      e2e_expect "$name: the tap's queue filled: ferry held data back (tcp_queue_throttled)" \
        grep -Eq "translator.tcp_queue_throttled +[1-9]" "$SOAK_OUT/$name/final_stats"
      e2e_expect "$name: ferry stats shows the kernel's drops on the tap ($SOAK_LAST_DROPS)" \
        grep -Eq "translator.dev_tx_dropped +$SOAK_LAST_DROPS\$" "$SOAK_OUT/$name/final_stats"
    fi
  done
done
