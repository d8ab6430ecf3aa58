#!/usr/bin/env bash
# soak.sh: the long tap soak of issue 19 (the short one is the e2e scenario
# tests/e2e/soak_tap.sh, in CI).
#
#   scripts/soak.sh [--count N] [--time SECS] [--bytes B] [--out DIR]
#                   [--rounds "off:on off:off on:on on:off"]
#   scripts/soak.sh --vm [--count N] [--time SECS] [--inbound M] [--out DIR]
#                   [--rounds "off:on off:off on:on on:off"] [--rule strict|soft]
#
# Each round (guest offloads : fast path) runs N transfers (default 100),
# cycling download/upload over IPv4 and IPv6, through `ferry attach` on a tap
# whose reader stalls like a TCG guest's (tests/e2e/lib_soak.sh explains the
# set-up and the SOAK_* knobs, which pass through), for at most SECS seconds
# per round (default 900). A stall is a transfer over 5x the median of its
# kind (less the reader's injected pauses in it: lib_soak.sh); every
# transfer over 5x is listed with its counters, ferry's recovery tally and a
# cause, and one still running after SOAK_MIN_STALL (3 s) leaves a snapshot
# in DIR/ROUND/stall-I-KIND/ (ferry status, stats, conns, the tap's link and
# qdisc counters, the guest's neighbours and sockets, tcpdump of both
# taps); DIR defaults to /tmp/ferry-soak.PID and is
# kept. Exit status 0 when every round ran clean. Root; FERRY (default
# build/ferry) is the binary tested.
#
# --vm: the same with a real QEMU guest (issue 19's own set-up,
# tests/e2e/lib_vm_soak.sh): one boot per round, N transfers of 16 MiB
# (the guest starts none after SECS s), its gateway's neighbour entries
# re-resolved from STALE, then M (default 10) fetches of 16 MiB from the
# guest's httpd through `-t`. A stall by --rule (default strict, the
# issue's: over 5x its kind's median; soft: also over median + 3 s) fails
# the round; DIR/summary.txt has one line per round (medians, max, stalls
# by both rules, the tap's TX drops, ferry's recovery counters).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COUNT=100
TIME=900
BYTES=$((4 << 20))
OUTDIR=/tmp/ferry-soak.$$
ROUNDS="off:on off:off on:on on:off"
VM=0
INBOUND=10
RULE=strict
usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
  case $1 in
    --count) COUNT=${2:?}; shift 2 ;;
    --time) TIME=${2:?}; shift 2 ;;
    --bytes) BYTES=${2:?}; shift 2 ;;
    --out) OUTDIR=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --vm) VM=1; shift ;;
    --inbound) INBOUND=${2:?}; shift 2 ;;
    --rule) RULE=${2:?}; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "soak.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
[[ $COUNT =~ ^[0-9]+$ && $TIME =~ ^[0-9]+$ && $BYTES =~ ^[0-9]+$ ]] || { echo "soak.sh: --count, --time and --bytes take numbers" >&2; exit 2; }
[[ $INBOUND =~ ^[0-9]+$ ]] || { echo "soak.sh: --inbound takes a number" >&2; exit 2; }
[[ $RULE == strict || $RULE == soft ]] || { echo "soak.sh: --rule is strict or soft" >&2; exit 2; }
export FERRY=${FERRY:-$ROOT/build/ferry}
if ((VM)); then
  mkdir -p "$OUTDIR" || exit 1
  # The VM soak is the e2e scenario, long: it makes its own namespace, taps
  # and QEMU processes and removes them at exit.
  FERRY_BUILD_DIR=${FERRY_BUILD_DIR:-$(dirname "$FERRY")} VM_SOAK_OUT=$OUTDIR VM_SOAK_COUNT=$COUNT \
    VM_SOAK_TIME=$TIME VM_SOAK_INBOUND=$INBOUND VM_SOAK_RULE=$RULE VM_SOAK_ROUNDS=$ROUNDS \
    bash "$ROOT/tests/e2e/soak_vm.sh"
  rc=$?
  echo "[soak] snapshots, consoles and logs: $OUTDIR"
  exit $rc
fi
export E2E_NAME=soak
mkdir -p "$OUTDIR" || exit 1
export SOAK_OUT=$OUTDIR
[[ $RULE == soft ]] && export SOAK_FLOOR_S=${SOAK_FLOOR_S:-3}  # also over median + 3 s

# shellcheck source=tests/e2e/lib.sh
source "$ROOT/tests/e2e/lib.sh"
e2e_init
# shellcheck source=tests/e2e/lib_soak.sh
source "$ROOT/tests/e2e/lib_soak.sh"
soak_setup
for r in $ROUNDS; do
  offloads=${r%%:*}
  fastpath=${r##*:}
  name=offloads-$offloads-fastpath-$fastpath
  e2e_expect "$name: $COUNT transfers within ${TIME} s, none failed, none stalled" \
    soak_round "$name" "$offloads" "$fastpath" "$COUNT" "$BYTES" "$TIME"
done
e2e_log "snapshots and logs: $OUTDIR"
