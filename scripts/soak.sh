#!/usr/bin/env bash
# soak.sh: the long tap soak of issue 19 (the short one is the e2e scenario
# tests/e2e/soak_tap.sh, in CI).
#
#   scripts/soak.sh [--count N] [--time SECS] [--bytes B] [--out DIR]
#                   [--rounds "off:on off:off on:on on:off"]
#
# Each round (guest offloads : fast path) runs N transfers (default 100),
# cycling download/upload over IPv4 and IPv6, through `ferry attach` on a tap
# whose reader stalls like a TCG guest's (tests/e2e/lib_soak.sh explains the
# set-up and the SOAK_* knobs, which pass through), for at most SECS seconds
# per round (default 900). A stall is a transfer over 5x the median of its
# kind; each leaves a snapshot in DIR/ROUND/stall-I-KIND/ (ferry status,
# stats, conns, the tap's link and qdisc counters, the guest's neighbours and
# sockets, tcpdump of both taps); DIR defaults to /tmp/ferry-soak.PID and is
# kept. Exit status 0 when every round ran clean. Root; FERRY (default
# build/ferry) is the binary tested.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
COUNT=100
TIME=900
BYTES=$((4 << 20))
OUTDIR=/tmp/ferry-soak.$$
ROUNDS="off:on off:off on:on on:off"
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while (($#)); do
  case $1 in
    --count) COUNT=${2:?}; shift 2 ;;
    --time) TIME=${2:?}; shift 2 ;;
    --bytes) BYTES=${2:?}; shift 2 ;;
    --out) OUTDIR=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "soak.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
[[ $COUNT =~ ^[0-9]+$ && $TIME =~ ^[0-9]+$ && $BYTES =~ ^[0-9]+$ ]] || { echo "soak.sh: --count, --time and --bytes take numbers" >&2; exit 2; }
export FERRY=${FERRY:-$ROOT/build/ferry}
export E2E_NAME=soak
mkdir -p "$OUTDIR" || exit 1
export SOAK_OUT=$OUTDIR

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
