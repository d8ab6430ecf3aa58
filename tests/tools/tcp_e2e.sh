# tcp_e2e.sh: helpers for ferry's TCP end-to-end scenarios (tests/e2e/tcp_*.sh),
# sourced after tests/e2e/lib.sh and e2e_init.
#   xfer_server NAME ARGS...   tcp_xfer.py listen ARGS in the background on the
#                              host (loopback only); sets NAME_PORT, NAME_PID
#   xfer_server_in NS NAME ARGS...  the same inside network namespace NS (a
#                              name under /run/netns, e.g. the remote peer RP)
#   xfer_wait PID              exit status of a server started above
#   rss_watch_start / rss_watch_stop   sample ferry's RssAnon (kB) every 0.2 s:
#                              its own memory; the BPF maps it mmaps (fixed,
#                              sized by --max-conns) show as RssFile instead;
#                              rss_watch_stop sets RSS_MAX_KB
#   free_port                  a TCP port free on both 127.0.0.1 and ::1
#   build_loss_prog PPM OUT    compiles tests/tools/tcp_loss.bpf.c
#   xfer_remote_both_ways NS LABEL BYTES SEED IN_PORT OUT_PORT
#                              the real path's transfers (e2e_remote_topology),
#                              BYTES each with sha256 checked on both sides,
#                              over IPv4 and IPv6: LABEL (the guest, in
#                              namespace NS) uploads to and downloads from
#                              servers in RP (seeds SEED, SEED+1); clients in
#                              RP reach RH's own address on IN_PORT (into the
#                              guest's sink on 7001, SEED+2) and OUT_PORT (from
#                              its source on 7002, SEED+3). Each transfer gives
#                              up after 20 s without progress.
TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
XFER="/usr/bin/python3 $TOOLS/tcp_xfer.py"

xfer_server() { xfer_server_in "" "$@"; }

xfer_server_in() {
  local ns=$1 name=$2
  shift 2
  local pf=$E2E_TMP/$name.port in=()
  [[ -z $ns ]] || in=(nsenter "--net=/run/netns/$ns")
  rm -f "$pf"
  "${in[@]}" /usr/bin/python3 "$TOOLS/tcp_xfer.py" listen --portfile "$pf" "$@" >"$E2E_TMP/$name.log" 2>&1 &
  local pid=$!
  e2e_on_exit "e2e_kill_pid $pid"
  e2e_wait_file "$pf" 10 || e2e_die "xfer server $name did not start: $(cat "$E2E_TMP/$name.log")"
  printf -v "${name}_PORT" '%s' "$(cat "$pf")"
  printf -v "${name}_PID" '%s' "$pid"
}

xfer_wait() {
  local pid=$1 rc=0 i
  # bounded: servers have their own --timeout, this is the backstop
  for ((i = 0; i < 600; i++)); do
    _e2e_is_our_child "$pid" || break
    [[ $(awk '{print $3}' /proc/$pid/stat 2>/dev/null) == Z ]] && break
    sleep 0.1
  done
  wait "$pid" || rc=$?
  return $rc
}

rss_watch_start() {
  local pid=$1
  RSS_FILE=$E2E_TMP/rss.$RANDOM
  (
    end=$((SECONDS + 600))
    while ((SECONDS < end)) && [[ -r /proc/$pid/status ]]; do
      awk '/^RssAnon/ {print $2}' /proc/$pid/status 2>/dev/null
      sleep 0.2
    done
  ) >"$RSS_FILE" &
  RSS_WATCH_PID=$!
  e2e_on_exit "e2e_kill_pid $RSS_WATCH_PID"
}

rss_watch_stop() {
  e2e_kill_pid "$RSS_WATCH_PID"
  RSS_MAX_KB=$(sort -n "$RSS_FILE" | tail -1)
  RSS_MAX_KB=${RSS_MAX_KB:-0}
}

free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 30000))
    if ! ss -Htln "( sport = :$p )" | grep -q .; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

build_loss_prog() {
  local ppm=$1 out=$2
  clang-19 -O2 -g -target bpf -I"/usr/include/$(gcc -dumpmachine)" -DLOSS_PPM="$ppm" \
    -c "$TOOLS/tcp_loss.bpf.c" -o "$out"
}

xfer_remote_both_ways() {
  local ns=$1 label=$2 n=$3 seed=$4 in_port=$5 out_port=$6 peer h
  local gn=(nsenter "--net=/run/netns/$ns")
  # ---- outbound: the guest -> RP
  xfer_server_in "$RP" UP --addr :: --mode sink --bytes "$n" --seed "$seed" --count 2 --timeout 60
  xfer_server_in "$RP" DOWN --addr :: --mode source --bytes "$n" --seed $((seed + 1)) --count 2 --timeout 60
  for peer in "${REMOTE_P4[0]}" "${REMOTE_P6[0]}"; do
    e2e_expect "$label -> RP $peer: $((n >> 20)) MiB up" timeout -k 5 60 "${gn[@]}" $XFER connect --timeout 20 \
      --bytes "$n" --addr "$peer" --port "$UP_PORT" --mode send --seed "$seed"
    e2e_expect "$label <- RP $peer: $((n >> 20)) MiB down" timeout -k 5 60 "${gn[@]}" $XFER connect --timeout 20 \
      --bytes "$n" --addr "$peer" --port "$DOWN_PORT" --mode recv --seed $((seed + 1))
  done
  e2e_expect "RP's sink verified both uploads" xfer_wait "$UP_PID"
  e2e_expect "RP's source got both verdicts" xfer_wait "$DOWN_PID"
  # ---- inbound: RP -> RH's address -> the guest
  xfer_server_in "$ns" IN --addr :: --port 7001 --mode sink --bytes "$n" --seed $((seed + 2)) --count 2 --timeout 60
  xfer_server_in "$ns" OUT --addr :: --port 7002 --mode source --bytes "$n" --seed $((seed + 3)) --count 2 --timeout 60
  for h in "${REMOTE_H4[0]}" "${REMOTE_H6[0]}"; do
    e2e_expect "RP -> $h:$in_port -> $label: $((n >> 20)) MiB" timeout -k 5 60 "${RPN[@]}" $XFER connect \
      --timeout 20 --bytes "$n" --addr "$h" --port "$in_port" --mode send --seed $((seed + 2))
    e2e_expect "RP <- $h:$out_port <- $label: $((n >> 20)) MiB" timeout -k 5 60 "${RPN[@]}" $XFER connect \
      --timeout 20 --bytes "$n" --addr "$h" --port "$out_port" --mode recv --seed $((seed + 3))
  done
  e2e_expect "$label's sink verified both" xfer_wait "$IN_PID"
  e2e_expect "$label's source got both verdicts" xfer_wait "$OUT_PID"
}
