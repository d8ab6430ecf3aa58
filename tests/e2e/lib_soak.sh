# shellcheck shell=bash disable=SC2016,SC2034
# lib_soak.sh: the tap soak of issue 19 (a VM's traffic on `ferry attach`
# stopping for minutes while the kernel drops frames on the tap toward the
# VM). Sourced after lib.sh and e2e_init by tests/e2e/soak_tap.sh (short,
# in CI) and scripts/soak.sh (long).
#
# The "VM" is a network namespace G behind tests/tools/slow_tap_reader.c,
# which plays QEMU's tap backend: it holds the tap DEV that `ferry attach`
# serves and copies frames between DEV and G's eth0 (a second tap), with
# virtio-net headers when the guest's offloads are on, as QEMU does; toward
# the guest it reads DEV in bursts and pauses, like a TCG guest that does not
# empty its ring, so DEV's small queue (txqueuelen) overflows and the kernel
# drops frames toward the guest (DEV's TX dropped), as in the issue.
# ferry and the servers (tests/tools/soak_xfer.py serve, on H's 127.0.0.1
# and ::1) run in namespace H; the guest's client in G runs many transfers
# both ways over IPv4 and IPv6 through the gateway addresses.
#
#   soak_setup                namespaces H and G, the reader built, the servers
#   soak_round NAME OFFLOADS(on|off) FASTPATH(on|off) COUNT BYTES [TIME_LIMIT]
#                             one round; true when every transfer verified and
#                             none stalled. The rule is issue 19's: a stall is
#                             a transfer over 5x its kind's median, after taking
#                             off only the reader's injected long pauses that
#                             fell in it (SOAK_LONG_US each: the stand-in
#                             withholding frames on purpose, a vCPU
#                             descheduled, is not a ferry stall; measured: one
#                             100 ms pause makes a 0.027 s download 0.13 s,
#                             4.9x); not the machine's load, not an RTO. Each
#                             transfer's record (NAME/result.json) keeps its
#                             time, its port, the deltas of DEV's TX drops, the
#                             reader's pauses and the machine's CPU pressure,
#                             and ferry's loss-recovery tally for its flow (the
#                             -v log, NAME/ferry.log); every transfer over 5x
#                             is printed with them and a cause. While a
#                             transfer runs over 5x and SOAK_MIN_STALL s, a
#                             snapshot is taken into
#                             $SOAK_OUT/NAME/stall-I-KIND/: ferry status -j,
#                             ferry stats, ferry conns, ip -s link and
#                             tc -s qdisc of DEV, G's link, neighbours and ss,
#                             ferry's -v log, and the tcpdump rings of DEV and
#                             of G's eth0 so far
#                             After the transfers, the guest's neighbour
#                             entries for the gateway are made stale: its
#                             unicast ARP and NS probes (NUD) must be
#                             answered (REACHABLE again).
# Knobs (environment): SOAK_QLEN (DEV's txqueuelen), SOAK_BURST (frames
# read per burst), SOAK_PAUSE_US (pause after a full burst), SOAK_LONG_EVERY
# / SOAK_LONG_US (every Nth pause lasts this long); defaults per round:
# offloads off 256, 256, 1000 us, 10th 100 ms (QEMU's 256-entry ring under TCG, a
# short tap queue); on 16, 24, 2000 us, 50th 30 ms (64 KiB frames: only a small
# queue overflows); SOAK_MIN_STALL (snapshots only, 3 s), SOAK_FLOOR_S (a
# stall must also last this long beyond the median; 0, the issue's rule:
# tests/e2e/soak_tap.sh sets 1), SOAK_TIMEOUT (one transfer, 60 s),
# SOAK_PAUSE_EVERY / SOAK_PAUSE_S (the receiving application, the host's sink
# or the guest's client, sleeps up to S s after every N bytes: windows
# close and reopen; 0: never), SOAK_PCAP (1: tcpdump both taps, rings of
# 3 x SOAK_PCAP_MB (8) MB each), SOAK_OUT (where snapshots stay; default
# under E2E_TMP, which is removed at exit: soak_round prints a failed round's
# snapshots).
# Traffic rule: everything is inside H and G; H has only lo and DEV, so
# ferry's host sockets reach H's loopback only.

SOAK_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools" && pwd)

# Namespaces, the reader binary, the servers.
soak_setup() {
  SOAK_U=$(e2e_unique s)
  SOAK_H=${SOAK_U}h
  SOAK_G=${SOAK_U}g
  SOAK_HN=(nsenter "--net=/run/netns/$SOAK_H")
  SOAK_GN=(nsenter "--net=/run/netns/$SOAK_G")
  SOAK_OUT=${SOAK_OUT:-$E2E_TMP/soak}
  mkdir -p "$SOAK_OUT"
  ip netns add "$SOAK_H" || e2e_die "namespace $SOAK_H"
  e2e_on_exit "ip netns del $SOAK_H"
  ip netns add "$SOAK_G" || e2e_die "namespace $SOAK_G"
  e2e_on_exit "ip netns del $SOAK_G"
  ip -n "$SOAK_H" link set lo up
  ip -n "$SOAK_G" link set lo up
  cc -O2 -Wall -o "$E2E_TMP/slow_tap_reader" "$SOAK_TOOLS/slow_tap_reader.c" ||
    e2e_die "cannot build slow_tap_reader"
  SOAK_PORT=$(e2e_free_port)
  "${SOAK_HN[@]}" timeout 7200 python3 "$SOAK_TOOLS/soak_xfer.py" serve --port "$SOAK_PORT" \
    --pause-every "${SOAK_PAUSE_EVERY:-0}" --pause-s "${SOAK_PAUSE_S:-0}" --ready "$E2E_TMP/soak_server.ready" >"$E2E_TMP/soak_server.log" 2>&1 &
  SOAK_SERVER_PID=$!
  e2e_on_exit "e2e_kill_pid $SOAK_SERVER_PID"
  e2e_wait_file "$E2E_TMP/soak_server.ready" 20 || e2e_die "soak server: $(cat "$E2E_TMP/soak_server.log")"
}

# The snapshot hook, run by the client (in G) while a transfer stalls.
_soak_write_hook() {
  local dev=$1 dir=$2
  cat >"$dir/hook.sh" <<EOF
#!/usr/bin/env bash
d=$dir/stall-\${SOAK_INDEX}-\${SOAK_KIND}
mkdir -p "\$d"
H=(${SOAK_HN[*]})
G=(${SOAK_GN[*]})
{ echo "transfer \$SOAK_INDEX \$SOAK_KIND running \$SOAK_ELAPSED s at \$(date -u +%T.%N)"; } >"\$d/when"
timeout 10 "$FERRY" status $dev -j >"\$d/ferry_status.json" 2>&1
timeout 10 "$FERRY" stats $dev >"\$d/ferry_stats" 2>&1
timeout 10 "$FERRY" conns $dev >"\$d/ferry_conns" 2>&1
timeout 10 "\${H[@]}" ip -s -s link show $dev >"\$d/dev_link" 2>&1
timeout 10 "\${H[@]}" tc -s qdisc show dev $dev >"\$d/dev_qdisc" 2>&1
timeout 10 "\${G[@]}" ip -s -s link show eth0 >"\$d/guest_link" 2>&1
timeout 10 "\${G[@]}" ip neigh show >"\$d/guest_neigh" 2>&1
timeout 10 "\${G[@]}" ip -6 neigh show >>"\$d/guest_neigh" 2>&1
timeout 10 "\${G[@]}" ss -tinoe >"\$d/guest_ss" 2>&1
timeout 10 "\${H[@]}" ss -tinoe >"\$d/host_ss" 2>&1
timeout 10 "\${G[@]}" nstat -az >"\$d/guest_nstat" 2>&1
tail -50 /run/ferry/$dev/log >"\$d/ferry_log" 2>&1
cp $dir/*.pcap* "\$d/" 2>/dev/null
true
EOF
  chmod +x "$dir/hook.sh"
}

# The --counters command of the client (in G): DEV's TX drops (the kernel's
# counter, live; ferry's dev_tx_dropped reads the same), the reader's
# pauses, and the machine's CPU pressure (PSI "some" total: microseconds in
# which a runnable task waited for a CPU; colleagues' builds show here), as
# one JSON object, before and after every transfer.
_soak_write_counters() {
  local dev=$1 dir=$2
  cat >"$dir/counters.sh" <<EOF
#!/usr/bin/env bash
drops=\$(ip -n $SOAK_H -s link show $dev | awk '/TX:/ { getline; print \$4; exit }')
reader=\$(tr -d '{}\n' <$dir/reader.stats)
cpu=\$(sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null)
echo "{\"dev_tx_dropped\": \${drops:-0}, \"cpu_wait_us\": \${cpu:-0}\${reader:+, \$reader}}"
EOF
  chmod +x "$dir/counters.sh"
}

# Prints the snapshots of a round (for a CI log).
_soak_show() {
  local dir=$1 s f
  for s in "$dir"/stall-*; do
    [[ -d $s ]] || continue
    e2e_log "snapshot $s:"
    for f in when ferry_conns dev_link dev_qdisc guest_link guest_neigh guest_ss ferry_log; do
      [[ -f $s/$f ]] && sed "s/^/    $f: /" "$s/$f" | head -40
    done
    [[ -f $s/ferry_status.json ]] && python3 -c "
import json, sys
try:
    a = json.load(open(sys.argv[1]))['attachments'][0]
except Exception as e:
    sys.exit(0)
print('    status:', a.get('service_counters'))
print('    attach:', a.get('attach_stats', a.get('attach')))
" "$s/ferry_status.json"
  done
}

# The guest's neighbour entries for both gateway addresses are made STALE;
# traffic moves them to DELAY and, 1 s later, PROBE: unicast ARP and NS
# (NUD, RFC 4861 7.3.3) that ferry must answer, or the guest's route fails
# ("No route to host", as in issue 19's report).
_soak_nud_check() {
  local name=$1 dir=$2 i ok=0 mac
  mac=$(ip -n "$SOAK_G" neigh show 198.18.0.1 dev eth0 | sed -n 's/.*lladdr \([0-9a-f:]*\).*/\1/p')
  [[ -n $mac ]] || mac=02:66:65:72:72:79
  "${SOAK_GN[@]}" sysctl -qw net.ipv4.neigh.eth0.delay_first_probe_time=1 net.ipv6.neigh.eth0.delay_first_probe_time=1
  ip -n "$SOAK_G" neigh replace 198.18.0.1 dev eth0 lladdr "$mac" nud stale
  ip -n "$SOAK_G" -6 neigh replace fd00:f::1 dev eth0 lladdr "$mac" router nud stale
  for ((i = 0; i < 40 && !ok; i++)); do
    "${SOAK_GN[@]}" ping -c 1 -W 1 198.18.0.1 >/dev/null 2>&1
    "${SOAK_GN[@]}" ping -c 1 -W 1 fd00:f::1 >/dev/null 2>&1
    ip -n "$SOAK_G" -s neigh show >"$dir/nud"
    grep -q "^198.18.0.1 .*probes [1-9].*REACHABLE" "$dir/nud" &&
      grep -q "^fd00:f::1 .*probes [1-9].*REACHABLE" "$dir/nud" && ok=1
    ((ok)) || sleep 0.25
  done
  if ((ok)); then
    e2e_log "$name: the guest's unicast ARP and NS probes for the gateway were answered: $(grep -E '^(198.18.0.1|fd00:f::1) ' "$dir/nud" | tr '\n' ';')"
    return 0
  fi
  e2e_log "$name: FAIL: the guest's NUD probes went unanswered: $(tr '\n' ';' <"$dir/nud")"
  return 1
}

# One round: the reader and its taps, ferry attach, the transfers, teardown.
soak_round() {
  local name=$1 offloads=$2 fastpath=$3 count=$4 bytes=$5 limit=${6:-0}
  local dir=$SOAK_OUT/$name dev gt_off=0 rc=0 pids=() p
  mkdir -p "$dir"
  dev=fs$$$((RANDOM % 1000))${offloads:1:1}${fastpath:1:1}
  dev=${dev:0:15}
  # The reader: like QEMU's 256-entry ring under TCG, on a tap queue of 256
  # with the guest's offloads off; with them on, frames are 64 KiB
  # super-segments and only a small queue overflows.
  local qlen=256 burst=256 pause=1000 long_every=10 long_us=100000
  if [[ $offloads == on ]]; then
    gt_off=1
    qlen=16 burst=24 pause=2000 long_every=50 long_us=30000
  fi
  qlen=${SOAK_QLEN:-$qlen} burst=${SOAK_BURST:-$burst} pause=${SOAK_PAUSE_US:-$pause}
  long_every=${SOAK_LONG_EVERY:-$long_every} long_us=${SOAK_LONG_US:-$long_us}
  "${SOAK_HN[@]}" "$E2E_TMP/slow_tap_reader" "$dev" "/run/netns/$SOAK_G" eth0 "$gt_off" \
    "$burst" "$pause" "$long_every" "$long_us" "$dir/reader.ready" "$dir/reader.stats" 2>"$dir/reader.log" &
  local reader=$!
  e2e_wait_file "$dir/reader.ready" 10 || { e2e_fail "$name: slow_tap_reader: $(cat "$dir/reader.log")"; return 1; }
  "${SOAK_HN[@]}" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
  ip -n "$SOAK_H" link set "$dev" txqueuelen "$qlen" up
  ip -n "$SOAK_G" link set eth0 mtu 1500 up
  ip -n "$SOAK_G" addr add 198.18.0.2/24 dev eth0
  ip -n "$SOAK_G" addr add fd00:f::2/64 dev eth0 nodad
  ip -n "$SOAK_G" route add default via 198.18.0.1
  ip -n "$SOAK_G" -6 route add default via fd00:f::1
  local fp=()
  [[ $fastpath == off ]] && fp=(--no-fastpath)
  if ! timeout 30 "${SOAK_HN[@]}" "$FERRY" attach "$dev" -q -v "${fp[@]}" 2>"$dir/attach.err"; then
    e2e_fail "$name: ferry attach $dev: $(cat "$dir/attach.err")"
    e2e_kill_pid "$reader"
    return 1
  fi
  if [[ ${SOAK_PCAP:-1} == 1 ]]; then
    "${SOAK_HN[@]}" timeout 7200 tcpdump -Z root -q -n -i "$dev" -s 128 -C "${SOAK_PCAP_MB:-8}" -W 3 -w "$dir/dev.pcap" 2>/dev/null &
    pids+=($!)
    "${SOAK_GN[@]}" timeout 7200 tcpdump -Z root -q -n -i eth0 -s 128 -C "${SOAK_PCAP_MB:-8}" -W 3 -w "$dir/guest.pcap" 2>/dev/null &
    pids+=($!)
    sleep 1  # tcpdump is listening
  fi
  _soak_write_hook "$dev" "$dir"
  _soak_write_counters "$dev" "$dir"
  e2e_log "$name: guest offloads $offloads, fast path $fastpath, $count transfers of $bytes bytes," \
    "DEV txqueuelen $qlen, reader bursts of $burst frames, pauses of $pause us (every ${long_every}th $long_us us)"
  "${SOAK_GN[@]}" python3 "$SOAK_TOOLS/soak_xfer.py" run --count "$count" --bytes "$bytes" \
    --gw4 198.18.0.1 --gw6 fd00:f::1 --port "$SOAK_PORT" --timeout "${SOAK_TIMEOUT:-60}" \
    --time-limit "$limit" --min-stall "${SOAK_MIN_STALL:-3}" --floor "${SOAK_FLOOR_S:-0}" \
    --hook "$dir/hook.sh" --counters "$dir/counters.sh" \
    --pause-every "${SOAK_PAUSE_EVERY:-0}" --pause-s "${SOAK_PAUSE_S:-0}" --json "$dir/result.json" >"$dir/client.log" 2>&1 || rc=1
  sed "s/^/[$E2E_NAME] $name: /" "$dir/client.log" | grep -v "^.*soak: [0-9]* [a-z0-9]* [0-9.]* s$"
  local dropped
  dropped=$(ip -n "$SOAK_H" -j -s link show "$dev" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["dropped"])' 2>/dev/null)
  # The service rewrites its counters file once a second: read them after
  # the next rewrite, not the one from before the last transfer ended.
  sleep 2
  timeout 10 "$FERRY" status "$dev" -j >"$dir/final_status.json" 2>&1
  timeout 10 "$FERRY" stats "$dev" >"$dir/final_stats" 2>&1
  e2e_log "$name: the kernel dropped ${dropped:-?} frames on $dev toward the guest;" \
    "ferry: $(grep -E 'dev_tx_dropped|redirect_failed|tcp_retransmits|rto_expired|fast_retransmits|cwnd_reductions|tlp_probes|tlp_recoveries|lost_retransmits' "$dir/final_stats" | tr -s ' ' | tr '\n' ' ')"
  SOAK_LAST_DROPS=${dropped:-0}
  _soak_nud_check "$name" "$dir" || rc=1
  for p in "${pids[@]}"; do e2e_kill_pid "$p"; done
  # ferry's -v log (each flow's loss-recovery tally) goes with the detach:
  # keep it, and name what every transfer over 5x its median met.
  cp "/run/ferry/$dev/log" "$dir/ferry.log" 2>/dev/null
  python3 "$SOAK_TOOLS/soak_xfer.py" explain --json "$dir/result.json" --log "$dir/ferry.log" |
    sed "s/^/[$E2E_NAME] $name: /"
  timeout 20 "${SOAK_HN[@]}" "$FERRY" detach "$dev" -q
  e2e_kill_pid "$reader"
  ((rc == 0)) || _soak_show "$dir"
  return $rc
}
