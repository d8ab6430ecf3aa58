#!/usr/bin/env bash
# soak_vm: issue 19's soak with a real QEMU guest (its original set-up; the
# stand-in with a slow tap reader is soak_tap.sh). Four boots: the guest's
# offloads off and on, ferry's fast path on and off (`--no-fastpath`), each
# on a tap served by `ferry attach TAP -t PORT:80`; in each boot the guest
# runs VM_SOAK_COUNT (8) transfers of 16 MiB cycling download/upload over
# IPv4/IPv6 (sha256 checked), timed by its own clock, re-resolves the
# gateway's neighbour entries from STALE (its NUD probes answered), and the
# host fetches 16 MiB VM_SOAK_INBOUND (2) times from its httpd through -t.
# A boot fails on any failed transfer, failed neighbour check, or stall by
# VM_SOAK_RULE (soft here: over 5x its kind's median and over median + 3 s;
# the strict count, 5x alone, is printed too). Also checked: `ferry stats`
# shows the frames the kernel dropped on the tap toward QEMU
# (translator.dev_tx_dropped equals the tap's TX dropped when there were
# any). tests/e2e/lib_vm_soak.sh has the details; scripts/soak.sh --vm runs
# this long (VM_SOAK_COUNT 100, VM_SOAK_RULE strict).
# Environment: VM_SOAK_COUNT, VM_SOAK_INBOUND, VM_SOAK_TIME (seconds per
# boot after which the guest starts no new transfer; 120), VM_SOAK_RULE,
# VM_SOAK_ROUNDS ("off:on off:off on:on on:off", offloads:fastpath),
# VM_SOAK_OUT (kept when given), VM_SOAK_TIMEOUT, VM_SOAK_PCAP.
# Skips (exit 0, saying why) only where QEMU cannot run.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
# shellcheck source=tests/e2e/lib_vm.sh
source "$(dirname "$0")/lib_vm.sh"
# shellcheck source=tests/e2e/lib_vm_soak.sh
source "$(dirname "$0")/lib_vm_soak.sh"
vm_require
vm_kernel  # before the namespace, which cannot reach Debian's mirror
vm_enter_namespace "$@"

COUNT=${VM_SOAK_COUNT:-8}
INBOUND=${VM_SOAK_INBOUND:-2}
LIMIT=${VM_SOAK_TIME:-120}
RULE=${VM_SOAK_RULE:-soft}
e2e_log "load average $(cut -d' ' -f1-3 /proc/loadavg)"
vm_soak_setup
for r in ${VM_SOAK_ROUNDS:-off:on off:off on:on on:off}; do
  offloads=${r%%:*}
  fastpath=${r##*:}
  name=offloads-$offloads-fastpath-$fastpath
  e2e_expect "$name: $COUNT transfers and $INBOUND inbound fetches, none failed, no $RULE stall, NUD answered" \
    vm_soak_round "$name" "$offloads" "$fastpath" "$COUNT" "$INBOUND" "$LIMIT" "$RULE"
  if [[ ${VM_SOAK_DROPS:-0} =~ ^[0-9]+$ ]] && ((VM_SOAK_DROPS > 0)); then
    e2e_expect "$name: ferry stats shows the tap's $VM_SOAK_DROPS TX drops (translator.dev_tx_dropped)" \
      test "$VM_SOAK_STATS_OK" = 1
  else
    e2e_log "$name: the kernel dropped no frame toward QEMU this boot (${VM_SOAK_DROPS:-?})"
  fi
done
e2e_log "load average $(cut -d' ' -f1-3 /proc/loadavg)"
sed "s/^/[$E2E_NAME] summary: /" "$VM_SOAK_OUT/summary.txt"
