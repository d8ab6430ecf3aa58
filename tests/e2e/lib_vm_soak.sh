# shellcheck shell=bash disable=SC2016,SC2034
# lib_vm_soak.sh: issue 19's soak with a real VM (its original set-up): QEMU
# (TCG, Debian's kernel, busybox initramfs from lib_vm.sh) on a tap that
# `ferry attach TAP -t PORT:80` serves, the host's servers on the
# namespace's 127.0.0.1 and ::1. Sourced by tests/e2e/soak_vm.sh (short, in
# CI; scripts/soak.sh --vm runs it long) after lib.sh, lib_vm.sh, vm_require,
# vm_kernel and vm_enter_namespace (so everything here runs in a namespace
# whose only interfaces are lo and the taps made here).
#
# One boot ("round"): the guest runs COUNT transfers of 16 MiB, cycling
# download/upload over IPv4 and IPv6 through the gateway addresses (wget from
# the host's http servers, sha256 checked in the guest; busybox nc to the
# host's upload sinks, which answer the sha256 of what they read), timing
# each with its own clock (/proc/uptime, 10 ms); then lets its neighbour
# entries for both gateway addresses go STALE (it runs with a 5 s base
# reachable time) and checks that its unicast ARP and NS probes (NUD) are
# answered (REACHABLE again, not FAILED: issue 19's "No route to host"); then serves 16 MiB from its httpd, which the host
# fetches INBOUND times through ferry's -t forward. tests/tools/vm_soak_host.py
# follows the console, runs those fetches, takes a snapshot while a transfer
# runs over 5x its kind's median (ferry status -j, stats, conns, ip -s link
# and tc -s qdisc of the tap, ferry's -v log, the tap's tcpdump ring) and
# judges: a stall by the strict rule (the issue's) is a transfer over 5x its
# kind's median; by the soft rule (lib_soak.sh's) also over median + 3 s.
#
#   vm_soak_setup              the host's servers, the output directory
#   vm_soak_round NAME OFFLOADS(on|off) FASTPATH(on|off) COUNT INBOUND LIMIT RULE
#                              one boot; true when every transfer verified,
#                              the NUD checks passed and no stall by RULE
#                              (strict|soft). LIMIT: seconds after which the
#                              guest starts no further transfer. Leaves in
#                              $VM_SOAK_OUT/NAME/: console.log, result.json,
#                              final_stats, final_status.json, ferry.log,
#                              stall-I-KIND/ snapshots; sets VM_SOAK_DROPS
#                              (the tap's TX dropped), VM_SOAK_STATS_OK (1:
#                              `ferry stats` showed the same number as
#                              translator.dev_tx_dropped) and appends one line to
#                              $VM_SOAK_OUT/summary.txt
# Knobs (environment): VM_SOAK_TIMEOUT (one transfer, 180 s as in the
# issue), VM_SOAK_PCAP (1: a tcpdump ring of the tap, 3 x 8 MB, headers
# only), VM_SOAK_OUT (default under E2E_TMP, removed at exit),
# VM_SOAK_QLEN (the tap's txqueuelen, 1000 as ip tuntap makes it; shorter:
# more frames dropped toward QEMU), VM_SOAK_FREEZE (I:S: QEMU is stopped
# for S s from 0.3 s into transfer I, the self-check that a stall is found
# and snapshotted).

VM_SOAK_TOOL=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools" && pwd)/vm_soak_host.py
VM_SOAK_BYTES=$((16 << 20))

# The guest's /init for the soak (after lib_vm.sh's prelude).
vm_soak_guest_init() {
  vm_guest_prelude
  cat <<'INIT'
# Variables from /etc/vm.conf:
#   ADDR4 GW4 ADDR6 GW6      static addresses and gateways
#   HTTP_PORT HTTP6_PORT     16 MiB at http://GW4:HTTP_PORT/big, http://[GW6]:HTTP6_PORT/big
#   BIG_SHA                  its sha256
#   UP_PORT UP6_PORT UP_BYTES  upload sinks at GW4 and GW6 (answer the sha256)
#   COUNT TMO LIMIT          transfers, one transfer's limit (s), no new
#                            transfer after LIMIT s
ip addr add "$ADDR4" dev eth0
ip -6 addr add "$ADDR6" dev eth0
ip route add default via "$GW4"
ip -6 route add default via "$GW6"
# Neighbour entries for the gateway: reachable for 2.5-7.5 s after a
# confirmation (not 15-45 s), the first unicast probe 1 s after a STALE
# entry is used (not 5 s): the guest re-resolves the gateway often during
# the transfers, and the check below need not wait long.
for f in ipv4 ipv6; do
  echo 5000 > /proc/sys/net/$f/neigh/eth0/base_reachable_time_ms
  echo 1 > /proc/sys/net/$f/neigh/eth0/delay_first_probe_time
done
check "ping $GW4" ping -c 3 -W 10 "$GW4"
check "ping6 $GW6" ping6 -c 3 -W 10 "$GW6"

# Hundredths of a second since boot (busybox's date has no %N).
cs() { read u _ < /proc/uptime; echo $(( ${u%.*} * 100 + 1${u#*.} - 100 )); }
dd if=/dev/urandom of=/tmp/up bs=1048576 count=$((UP_BYTES / 1048576)) 2>/dev/null
UP_SHA=$(sha256sum /tmp/up | cut -d' ' -f1)
end=$(( $(cs) + LIMIT * 100 ))
i=0
while [ $i -lt "$COUNT" ] && [ "$(cs)" -lt $end ]; do
  case $((i % 4)) in 0) kind=d4 ;; 1) kind=u4 ;; 2) kind=d6 ;; *) kind=u6 ;; esac
  echo "VM: start $i $kind"
  t0=$(cs)
  case $kind in
    d4) got=$(timeout "$TMO" wget -q -O - "http://$GW4:$HTTP_PORT/big" | sha256sum | cut -d' ' -f1); want=$BIG_SHA ;;
    d6) got=$(timeout "$TMO" wget -q -O - "http://[$GW6]:$HTTP6_PORT/big" | sha256sum | cut -d' ' -f1); want=$BIG_SHA ;;
    u4) got=$(timeout "$TMO" nc "$GW4" "$UP_PORT" < /tmp/up | head -1); want=$UP_SHA ;;
    *) got=$(timeout "$TMO" nc "$GW6" "$UP6_PORT" < /tmp/up | head -1); want=$UP_SHA ;;
  esac
  t1=$(cs)
  r=bad
  [ -n "$got" ] && [ "$got" = "$want" ] && r=ok
  echo "VM: xfer $i $kind $((t1 - t0)) $r"
  i=$((i + 1))
done

# The gateway's neighbour entry left STALE (no traffic for its reachable
# time), then used: DELAY, 1 s later PROBE (unicast ARP / NS), which ferry
# must answer (REACHABLE), or the entry ends FAILED ("No route to host").
entry() { ip neigh show | grep "^$1 " | head -1; }
nud() {
  n=$1 a=$2 p=$3
  j=0
  until entry "$a" | grep -q STALE; do [ $j -lt 150 ] || break; sleep 0.1; j=$((j + 1)); done
  before=$(entry "$a")
  $p -c 1 -W 5 "$a" >/dev/null
  j=0
  until entry "$a" | grep -q REACHABLE; do [ $j -lt 100 ] || break; sleep 0.1; j=$((j + 1)); done
  after=$(entry "$a")
  case $before in
    *STALE*) ;;
    *) echo "VM: $n FAIL the entry did not go stale: $before"; return ;;
  esac
  case $after in
    *REACHABLE*) echo "VM: $n ok STALE, probed, answered: $after" ;;
    *) echo "VM: $n FAIL unanswered: $after" ;;
  esac
}
nud nud4 "$GW4" ping
nud nud6 "$GW6" ping6

mkdir -p /www
dd if=/dev/urandom of=/www/big bs=1048576 count=16 2>/dev/null
httpd -p 80 -h /www
echo "VM: httpd-ready $(sha256sum /www/big | cut -d' ' -f1)"
# The host fetches /big through ferry's -t forward, then publishes /done.
await_done_and_finish 900
INIT
}

# The host's servers (16 MiB by HTTP and an upload sink, on 127.0.0.1 and
# ::1) and the guest's configuration lines common to all rounds.
vm_soak_setup() {
  VM_SOAK_OUT=${VM_SOAK_OUT:-$E2E_TMP/vm-soak}
  mkdir -p "$VM_SOAK_OUT" || e2e_die "cannot make $VM_SOAK_OUT"
  VM_WWW=$E2E_TMP/www
  mkdir -p "$VM_WWW"
  head -c "$VM_SOAK_BYTES" /dev/urandom >"$VM_WWW/big"
  e2e_http_server "$VM_WWW" 127.0.0.1
  local port4=$HTTP_PORT a ports=()
  e2e_http_server "$VM_WWW" ::1
  local port6=$HTTP_PORT
  for a in 127.0.0.1 ::1; do
    local pf=$E2E_TMP/sink.$RANDOM.port
    timeout 7200 python3 "$VM_SOAK_TOOL" sink --addr "$a" --port-file "$pf" --bytes "$VM_SOAK_BYTES" \
      >>"$VM_SOAK_OUT/sinks.log" 2>&1 &
    e2e_on_exit "e2e_kill_pid $!"
    e2e_wait_file "$pf" 10 || e2e_die "upload sink on $a did not start"
    ports+=("$(cat "$pf")")
  done
  VM_SOAK_CONF=$E2E_TMP/vm-soak.conf
  {
    echo "ADDR4=198.18.0.2/24 GW4=198.18.0.1 ADDR6=fd00:f::2/64 GW6=fd00:f::1"
    echo "HTTP_PORT=$port4 HTTP6_PORT=$port6 UP_PORT=${ports[0]} UP6_PORT=${ports[1]} UP_BYTES=$VM_SOAK_BYTES"
    echo "BIG_SHA=$(sha256sum "$VM_WWW/big" | cut -d' ' -f1)"
    echo "TMO=${VM_SOAK_TIMEOUT:-180}"
  } >"$VM_SOAK_CONF"
}

# The snapshot hook vm_soak_host.py runs while a transfer stalls.
_vm_soak_write_hook() {
  local tap=$1 dir=$2
  cat >"$dir/hook.sh" <<EOF
#!/usr/bin/env bash
d=$dir/stall-\${SOAK_INDEX}-\${SOAK_KIND}
mkdir -p "\$d"
echo "transfer \$SOAK_INDEX \$SOAK_KIND running \$SOAK_ELAPSED s at \$(date -u +%T.%N)" >"\$d/when"
timeout 10 "$FERRY" status $tap -j >"\$d/ferry_status.json" 2>&1
timeout 10 "$FERRY" stats $tap >"\$d/ferry_stats" 2>&1
timeout 10 "$FERRY" conns $tap >"\$d/ferry_conns" 2>&1
timeout 10 ip -s -s link show $tap >"\$d/tap_link" 2>&1
timeout 10 tc -s qdisc show dev $tap >"\$d/tap_qdisc" 2>&1
timeout 10 ss -tinoe >"\$d/host_ss" 2>&1
tail -200 /run/ferry/$tap/log >"\$d/ferry_log" 2>&1
cp $dir/tap.pcap* "\$d/" 2>/dev/null
true
EOF
  chmod +x "$dir/hook.sh"
}

# The tap's TX dropped (frames the kernel dropped toward QEMU).
_vm_soak_tap_dropped() {
  ip -j -s link show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["dropped"])' 2>/dev/null
}

# One boot; see the header.
vm_soak_round() {
  local name=$1 offloads=$2 fastpath=$3 count=$4 inbound=$5 limit=$6 rule=$7
  local dir=$VM_SOAK_OUT/$name tap rc=0 fwd fp=() pcap_pid='' start i
  local tmo=${VM_SOAK_TIMEOUT:-180}
  mkdir -p "$dir"
  { cat "$VM_SOAK_CONF"; echo "COUNT=$count LIMIT=$limit"; } >"$dir/vm.conf"
  vm_initramfs "$E2E_TMP/initrd.gz" "$dir/vm.conf" vm_soak_guest_init
  tap=fk$$$((RANDOM % 1000))${offloads:1:1}${fastpath:1:1}
  tap=${tap:0:15}
  ip tuntap add dev "$tap" mode tap || { e2e_fail "$name: cannot make tap $tap"; return 1; }
  e2e_on_exit "ip link del $tap 2>/dev/null"
  # The host's own stack stays off the guest's link.
  sysctl -qw "net.ipv6.conf.$tap.disable_ipv6=1"
  ip link set "$tap" txqueuelen "${VM_SOAK_QLEN:-1000}" up
  fwd=$(e2e_free_port)
  [[ $fastpath == off ]] && fp=(--no-fastpath)
  if ! timeout 30 "$FERRY" attach "$tap" -q -v "${fp[@]}" -t "$fwd:80" 2>"$dir/attach.err"; then
    e2e_fail "$name: ferry attach $tap: $(cat "$dir/attach.err")"
    ip link del "$tap"
    return 1
  fi
  e2e_on_exit "timeout 20 $FERRY detach $tap -q 2>/dev/null"
  if [[ ${VM_SOAK_PCAP:-1} == 1 ]] && command -v tcpdump >/dev/null; then
    timeout $((limit + 4 * tmo + 600)) tcpdump -Z root -q -n -i "$tap" -s 128 -C 8 -W 3 -w "$dir/tap.pcap" 2>/dev/null &
    pcap_pid=$!
    e2e_on_exit "e2e_kill_pid $pcap_pid"
    sleep 1  # tcpdump is listening
  fi
  _vm_soak_write_hook "$tap" "$dir"
  local dev_opts=virtio-net-pci,netdev=n0,mac=$VM_MAC
  [[ $offloads == off ]] && dev_opts+=,csum=off,guest_csum=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,guest_ufo=off
  e2e_log "$name: a QEMU guest, offloads $offloads, ferry's fast path $fastpath, on tap $tap (txqueuelen ${VM_SOAK_QLEN:-1000}):" \
    "$count transfers of 16 MiB (no new one after $limit s), then $inbound fetches through -t $fwd:80"
  rm -f "$VM_WWW/done"
  start=$(date +%s)
  # Bounded: the guest's transfers (limit, plus one running), the NUD checks,
  # the inbound fetches, boot and poweroff.
  local deadline=$((limit + (inbound + 1) * tmo + 180))
  vm_boot "$dir/console.log" $((deadline + 30)) -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no,vhost=off" \
    -device "$dev_opts"
  python3 "$VM_SOAK_TOOL" watch --console "$dir/console.log" --pid "$VM_PID" --json "$dir/result.json" \
    --hook "$dir/hook.sh" --fwd "$fwd" --inbound "$inbound" --done "$VM_WWW/done" --timeout "$tmo" \
    --deadline "$deadline" --rule "$rule" ${VM_SOAK_FREEZE:+--freeze "$VM_SOAK_FREEZE"} >"$dir/watch.log" 2>&1 || rc=1
  grep -v "^soak: [0-9]* [a-z0-9]* [0-9.]* s$" "$dir/watch.log" | sed "s/^/[$E2E_NAME] $name: /"
  vm_wait_line "$dir/console.log" "VM: END" 30 >/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$VM_PID" 2>/dev/null || break; sleep 0.2; done
  e2e_kill_pid "$VM_PID"
  wait "$VM_PID" 2>/dev/null
  [[ -n $pcap_pid ]] && e2e_kill_pid "$pcap_pid"
  # The service rewrites its counters file once a second.
  sleep 2
  VM_SOAK_DROPS=$(_vm_soak_tap_dropped "$tap")
  VM_SOAK_STATS_OK=0
  for ((i = 0; i < 5; i++)); do
    timeout 10 "$FERRY" stats "$tap" >"$dir/final_stats" 2>&1
    grep -Eq "translator.dev_tx_dropped +$(_vm_soak_tap_dropped "$tap")\b" "$dir/final_stats" && { VM_SOAK_STATS_OK=1; break; }
    sleep 1
  done
  timeout 10 "$FERRY" status "$tap" -j >"$dir/final_status.json" 2>&1
  cp "/run/ferry/$tap/log" "$dir/ferry.log" 2>/dev/null
  local features
  features=$(tr -d '\r' <"$dir/console.log" | sed -n 's/.*VM: features \([01]*\).*/\1/p' | head -1)
  if [[ $offloads == on ]]; then
    [[ ${features:0:1} == 1 && ${features:11:1} == 1 ]] ||
      { e2e_log "$name: FAIL: the guest's driver did not negotiate CSUM and HOST_TSO4 (${features:0:12})"; rc=1; }
  else
    [[ -n $features && ${features:0:1} == 0 && ${features:11:1} == 0 ]] ||
      { e2e_log "$name: FAIL: offloads still on (${features:0:12})"; rc=1; }
  fi
  local line
  line=$(python3 - "$dir/result.json" "$dir/final_stats" "${VM_SOAK_DROPS:-?}" "$(($(date +%s) - start))" <<'PY'
import json, re, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    r = {"kinds": {}, "transfers": 0, "failed": "?", "stalls_strict": "?", "stalls_soft": "?"}
stats = open(sys.argv[2]).read() if sys.argv[2] else ""
def c(name):
    m = re.search(r"\b" + name + r"\s+(\d+)", stats)
    return m[1] if m else "?"
kinds = " ".join(f"{k} {v['n']}x med {v['median']:.2f} max {v['max']:.2f}" for k, v in r["kinds"].items())
print(f"{r['transfers']} transfers in {sys.argv[4]} s; {kinds}; failed {r['failed']}; stalls strict {r['stalls_strict']}"
      f" soft {r['stalls_soft']}; tap TX dropped {sys.argv[3]}; ferry: dev_tx_dropped {c('translator.dev_tx_dropped')}"
      f" rto_expired {c('tcp_rto_expired')} tlp_probes {c('tcp_tlp_probes')} lost_retransmits {c('tcp_lost_retransmits')}"
      f" fast_retransmits {c('tcp_fast_retransmits')} retransmits {c('tcp_retransmits')}")
PY
)
  e2e_log "$name: $line"
  echo "$name: $line (load $(cut -d' ' -f1-3 /proc/loadavg))" >>"$VM_SOAK_OUT/summary.txt"
  timeout 20 "$FERRY" detach "$tap" -q
  ip link del "$tap" 2>/dev/null
  if ((rc)); then
    e2e_log "$name: console (last 15 lines):"
    tr -d '\r' <"$dir/console.log" | tail -15 | sed 's/^/    /'
    local s f
    for s in "$dir"/stall-*; do
      [[ -d $s ]] || continue
      for f in when ferry_conns tap_link tap_qdisc; do
        [[ -f $s/$f ]] && sed "s/^/    $(basename "$s") $f: /" "$s/$f" | head -30
      done
    done
  fi
  return $rc
}
