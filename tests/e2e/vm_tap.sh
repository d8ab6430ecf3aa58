#!/usr/bin/env bash
# vm_tap: a real QEMU guest (Debian's kernel, virtio-net, TCG) on a tap that
# `ferry attach TAP` serves, booted twice: with the guest's offloads on
# (virtio-net's default: checksum, TSO) and off (csum=off,guest_csum=off).
#
# Everything runs in a namespace of its own (only lo): ferry, QEMU (which
# opens the tap by name), the host's servers on 127.0.0.1 / ::1. Each boot
# checks, inside the guest: eth0 from the virtio_net module, static
# addresses, ping of the gateway over IPv4 and IPv6, a 16 MiB download and a
# 16 MiB upload through the gateway with sha256 on both ends, 1 MiB over
# IPv6, the same from a peer one veth hop away (MTU 1500) at its own
# addresses; from the host: the guest's busybox httpd through `-t PORT:80`. Also
# that the offloads were what we asked for (virtio feature bits the guest's
# driver negotiated: VIRTIO_NET_F_CSUM and HOST_TSO4 on, then off) and that
# ferry translated the bytes (its counters in `ferry status -j`).
# Skips (exit 0, saying why) only where QEMU cannot run.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
# shellcheck source=tests/e2e/lib_vm.sh
source "$(dirname "$0")/lib_vm.sh"
vm_require
vm_kernel  # before the namespace, which cannot reach Debian's mirror
vm_enter_namespace "$@"
# A peer one veth hop away at MTU 1500 (RP), reached through ferry's sockets.
e2e_remote_topology -H "$VM_NS" 1500

vm_serve_host 900
vm_initramfs "$E2E_TMP/initrd.gz" "$VM_CONF"

# Bit N of the guest's virtio features string (one char per bit, from 0).
feature_bit() { [[ ${1:$2:1} == 1 ]]; }

for mode in ${VM_TAP_MODES:-on off}; do
  TAP=fv$$$((RANDOM % 1000))${mode:1:1}
  TAP=${TAP:0:15}
  LOG=$E2E_TMP/console-$mode.log
  rm -f "$VM_WWW/done"
  ip tuntap add dev "$TAP" mode tap || e2e_die "cannot make tap $TAP"
  e2e_on_exit "ip link del $TAP"
  # The host's own stack must stay off the guest's link.
  sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1"
  ip link set "$TAP" up
  FWD=$(e2e_free_port)
  timeout 30 "$FERRY" attach "$TAP" -q -t "$FWD:80" 2>"$ERR"
  rc=$?
  e2e_expect "offloads $mode: ferry attach $TAP -t $FWD:80" test $rc -eq 0
  ((rc == 0)) || { cat "$ERR"; continue; }
  e2e_on_exit "timeout 20 $FERRY detach $TAP -q"

  dev_opts=virtio-net-pci,netdev=n0,mac=$VM_MAC
  [[ $mode == off ]] && dev_opts+=,csum=off,guest_csum=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off
  start=$(date +%s)
  vm_boot "$LOG" 600 -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no,vhost=off" -device "$dev_opts"
  vm_inbound_check "$FWD" "$LOG"
  vm_wait_line "$LOG" "VM: END" 300 || true
  wait "$VM_PID" 2>/dev/null
  e2e_log "offloads $mode: guest ran $(($(date +%s) - start)) s (boot to poweroff)"
  vm_collect "$LOG"

  features=$(tr -d '\r' <"$LOG" | sed -n 's/.*VM: features \([01]*\).*/\1/p' | head -1)
  if [[ $mode == on ]]; then
    e2e_expect "offloads on: the guest's driver negotiated CSUM and HOST_TSO4 (${features:0:12})" \
      bash -c "[[ '${features:0:1}' == 1 && '${features:11:1}' == 1 ]]"
  else
    e2e_expect "offloads off: no CSUM, no HOST_TSO4 (${features:0:12})" \
      bash -c "[[ -n '$features' && '${features:0:1}' == 0 && '${features:11:1}' == 0 ]]"
  fi
  cat >"$E2E_TMP/check_status.py" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["attachments"][0]
c = a["service_counters"] or {}
print("   ", {k: c.get(k) for k in ("tcp_bytes_to_guest", "tcp_bytes_to_host", "tcp_conns_inbound", "tcp_retransmits", "malformed")})
sys.exit(0 if c.get("tcp_bytes_to_guest", 0) >= 16 << 20 and c.get("tcp_bytes_to_host", 0) >= 16 << 20
         and c.get("tcp_conns_inbound", 0) >= 1 else 1)
PY
  # The service rewrites its counters once a second: the last second's
  # traffic may not be in them yet.
  check_status() { "$FERRY" status "$TAP" -j >"$OUT" 2>"$ERR" && python3 "$E2E_TMP/check_status.py" "$OUT"; }
  vm_retry 5 check_status >/dev/null
  e2e_expect "offloads $mode: ferry translated the guest's bytes (status -j)" check_status
  if ((E2E_FAILED)); then
    vm_show_console "$LOG"
    tail -20 "/run/ferry/$TAP/log" 2>/dev/null | sed 's/^/    ferry: /'
  fi
  timeout 20 "$FERRY" detach "$TAP" -q
  ip link del "$TAP"
done
