# shellcheck shell=bash disable=SC2016,SC2034
# lib.sh: shared helpers of ferry's end-to-end scenarios (tests/e2e/*.sh).
#
# A scenario sources this file, calls e2e_init, and uses:
#   e2e_ferry SECS ARGS...     run "$FERRY" ARGS in the foreground, bounded by
#                              `timeout` (whole process group killed on expiry);
#                              sets RC, FERRY_PID; output in $OUT and $ERR
#   e2e_ferry_bg SECS ARGS...  same, in the background; e2e_ferry_wait collects
#                              (both run ferry inside E2E_FERRY_IN, a command
#                              prefix such as "${RHN[@]}", when set)
#   e2e_http_server DIR [ADDR] python3 http.server on ADDR (127.0.0.1, or ::1),
#                              free port: sets HTTP_PORT, HTTP_PID (killed at
#                              exit, by PID)
#   e2e_tcp_echo_server        an echo server on 127.0.0.1: ECHO_PORT, ECHO_PID
#   e2e_udp_echo_server [ADDR] a UDP echo server on ADDR (127.0.0.1 or ::1):
#                              UDP_PORT, UDP_PID
#   e2e_free_port              a TCP port free on 127.0.0.1 right now
#   e2e_wait_port PORT SECS [ADDR]  until ADDR (127.0.0.1):PORT accepts
#   e2e_wait_file PATH SECS    until PATH exists and is not empty
#   e2e_on_exit CMD...         run CMD at exit (last registered runs first)
#   e2e_netns_snapshot / e2e_check_clean PID
#                              nothing of ferry PID left: no pin directory
#                              /sys/fs/bpf/ferry/run-PID, no new `ip netns` entry
#   e2e_expect / e2e_fail / e2e_pass
#   e2e_remote_topology [-H NS] MTU...
#                              the real path: a host namespace RH (ferry runs
#                              there: "${RHN[@]}" "$FERRY" ...) joined to a
#                              remote peer namespace RP by one veth per MTU;
#                              see the function
# Traffic rule: everything here listens on 127.0.0.1 only (or inside a
# namespace the scenario made), and the guests ferry starts live in
# anonymous namespaces that vanish with them.
# Processes are killed by the PIDs we started, never by name.

set -u

E2E_NAME=${E2E_NAME:-$(basename "${BASH_SOURCE[1]:-e2e}" .sh)}
E2E_FAILED=0
E2E_EXIT_CMDS=()
E2E_FERRY_IN=()

# Prints a message prefixed by the scenario's name.
e2e_log() { echo "[$E2E_NAME] $*"; }

# Records a failure (the scenario goes on, and exits 1 at the end).
e2e_fail() {
  e2e_log "FAIL: $*"
  E2E_FAILED=1
}

# Ends the scenario now with a failure.
e2e_die() {
  e2e_log "FAIL: $*"
  exit 1
}

# e2e_expect DESCRIPTION COMMAND...: runs COMMAND, records a failure if it fails.
e2e_expect() {
  local what=$1
  shift
  if "$@"; then
    e2e_log "ok: $what"
  else
    e2e_fail "$what"
  fi
}

# Registers a command for the exit trap.
e2e_on_exit() { E2E_EXIT_CMDS+=("$*"); }

# Exit trap: registered commands in reverse order, then the temp dir.
_e2e_cleanup() {
  local rc=$?
  local i
  for ((i = ${#E2E_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
    eval "${E2E_EXIT_CMDS[$i]}" >/dev/null 2>&1 || true
  done
  [[ -n ${E2E_TMP:-} && -d $E2E_TMP ]] && rm -rf "$E2E_TMP"
  if ((rc == 0 && E2E_FAILED)); then rc=1; fi
  if ((rc == 0)); then e2e_log "PASS"; else e2e_log "FAILED (exit $rc)"; fi
  exit $rc
}

# True when PID is a live child of this shell (so a PID that was reaped and
# reused by someone else is never signalled).
_e2e_is_our_child() {
  local pid=$1 stat
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # fields after "pid (comm) "
  local -a f
  read -r -a f <<<"$stat"
  [[ ${f[1]} == "$$" ]]
}

# Kills a process we started (by PID), politely then firmly, and reaps it.
e2e_kill_pid() {
  local pid=$1
  [[ -n $pid && $pid != 0 ]] || return 0
  _e2e_is_our_child "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for ((i = 0; i < 20; i++)); do
    _e2e_is_our_child "$pid" || break
    sleep 0.1
  done
  if _e2e_is_our_child "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

# Sets up a scenario: root check, FERRY, temp dir, traps.
e2e_init() {
  if [[ $(id -u) -ne 0 ]]; then
    e2e_log "SKIP: needs root"
    exit 0
  fi
  if [[ -z ${FERRY:-} ]]; then
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    FERRY=${FERRY_BUILD_DIR:-$here/build}/ferry
  fi
  [[ -x $FERRY ]] || e2e_die "no ferry binary at '$FERRY' (set FERRY)"
  export FERRY
  E2E_TMP=$(mktemp -d "/tmp/ferry-e2e-$E2E_NAME.$$.XXXXXX")
  chmod 755 "$E2E_TMP"
  OUT=$E2E_TMP/out
  ERR=$E2E_TMP/err
  trap _e2e_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# A name unique to this run, for anything a scenario must name.
e2e_unique() { echo "fe2e${1:-}$$r$RANDOM"; }

# Shows the last ferry run's output (after a failure).
e2e_show_output() {
  e2e_log "--- stdout"
  sed 's/^/    /' "$OUT" 2>/dev/null | tail -40
  e2e_log "--- stderr"
  sed 's/^/    /' "$ERR" 2>/dev/null | tail -40
}

# Starts ferry under `timeout` in the background. The bash -c wrapper writes
# its own PID and then execs ferry, so that PID *is* ferry's (pins are named
# after it). Sets TIMEOUT_PID; FERRY_PID once known.
# With E2E_FERRY_IN set (e.g. to "${RHN[@]}"), ferry runs inside that
# namespace (nsenter execs, so the PID is still ferry's).
e2e_ferry_bg() {
  local secs=$1
  shift
  local pidfile=$E2E_TMP/ferry.pid
  rm -f "$pidfile"
  FERRY_PID=0
  timeout -k 5 "$secs" "${E2E_FERRY_IN[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$FERRY" "$@" \
    >"$OUT" 2>"$ERR" </dev/null &
  TIMEOUT_PID=$!
  e2e_on_exit "e2e_kill_pid $TIMEOUT_PID"
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidfile ]] && break
    sleep 0.05
  done
  FERRY_PID=$(cat "$pidfile" 2>/dev/null || echo 0)
}

# Waits for the background ferry; sets RC (124: timed out).
e2e_ferry_wait() {
  RC=0
  wait "$TIMEOUT_PID" || RC=$?
  [[ $FERRY_PID != 0 ]] || FERRY_PID=$(cat "$E2E_TMP/ferry.pid" 2>/dev/null || echo 0)
  if ((RC == 124)); then e2e_log "note: ferry timed out"; fi
}

# Runs ferry in the foreground, bounded; sets RC and FERRY_PID.
e2e_ferry() {
  e2e_ferry_bg "$@"
  e2e_ferry_wait
}

# Waits until PATH exists and is not empty; false after SECS.
e2e_wait_file() {
  local path=$1 secs=${2:-5} i
  for ((i = 0; i < secs * 20; i++)); do
    [[ -s $path ]] && return 0
    sleep 0.05
  done
  return 1
}

# Waits until ADDR:PORT accepts a TCP connection; false after SECS.
e2e_wait_port() {
  local port=$1 secs=${2:-5} addr=${3:-127.0.0.1} i
  for ((i = 0; i < secs * 10; i++)); do
    if timeout 1 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Starts an HTTP server (python3's http.server, serving DIR, its request
# log in $E2E_TMP/http.*.log) on ADDR (loopback only: 127.0.0.1 or ::1)
# and a kernel-chosen port. Sets HTTP_PORT and HTTP_PID. The port comes
# from a file the server writes (then renames into place) once it
# listens, waited for as long as the server lives (60 s at most): not from
# its log, read within a fixed 5 s, which a Python slow to start on a
# loaded machine missed.
e2e_http_server() {
  local dir=$1 addr=${2:-127.0.0.1} i
  local log=$E2E_TMP/http.$RANDOM.log
  local portfile=$log.port
  case $addr in 127.0.0.1 | ::1) ;; *) e2e_die "e2e_http_server: loopback only, not $addr" ;; esac
  /usr/bin/python3 -u - "$addr" "$dir" "$portfile" >"$log" 2>&1 <<'PY' &
import functools, http.server, os, socket, sys
addr, root, portfile = sys.argv[1:4]
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
with Server((addr, 0), handler) as httpd:
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % httpd.server_address[1])
    os.rename(portfile + ".tmp", portfile)
    httpd.serve_forever()
PY
  HTTP_PID=$!
  e2e_on_exit "e2e_kill_pid $HTTP_PID"
  for ((i = 0; i < 600; i++)); do
    [[ -s $portfile ]] && break
    kill -0 "$HTTP_PID" 2>/dev/null || break
    sleep 0.1
  done
  HTTP_PORT=$(cat "$portfile" 2>/dev/null)
  [[ -n $HTTP_PORT ]] || e2e_die "http server did not start: $(cat "$log")"
  e2e_wait_port "$HTTP_PORT" 5 "$addr" || e2e_die "http server not accepting on $addr port $HTTP_PORT"
}

# Starts a TCP echo server on 127.0.0.1 (threaded, bounded to 60 s of life).
# Sets ECHO_PORT and ECHO_PID.
e2e_tcp_echo_server() {
  local portfile=$E2E_TMP/echo.port
  /usr/bin/python3 -u - "$portfile" >"$E2E_TMP/echo.log" 2>&1 <<'PY' &
import socket, sys, threading, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
def serve(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
s.settimeout(1)
end = time.time() + 60
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
  ECHO_PID=$!
  e2e_on_exit "e2e_kill_pid $ECHO_PID"
  e2e_wait_file "$portfile" 5 || e2e_die "echo server did not start"
  ECHO_PORT=$(cat "$portfile")
}

# Starts a UDP echo server on ADDR (loopback only), bounded to 60 s of life.
# Sets UDP_PORT and UDP_PID.
e2e_udp_echo_server() {
  local addr=${1:-127.0.0.1}
  local portfile=$E2E_TMP/udp.$RANDOM.port
  case $addr in 127.0.0.1 | ::1) ;; *) e2e_die "e2e_udp_echo_server: loopback only, not $addr" ;; esac
  /usr/bin/python3 -u - "$portfile" "$addr" >"$E2E_TMP/udp.log" 2>&1 <<'PY' &
import socket, sys, time
addr = sys.argv[2]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, 0))
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
s.settimeout(1)
end = time.time() + 60
while time.time() < end:
    try:
        d, peer = s.recvfrom(65536)
    except socket.timeout:
        continue
    s.sendto(d, peer)
PY
  UDP_PID=$!
  e2e_on_exit "e2e_kill_pid $UDP_PID"
  e2e_wait_file "$portfile" 5 || e2e_die "UDP echo server did not start"
  UDP_PORT=$(cat "$portfile")
}

# A TCP port that is free on 127.0.0.1 at this moment (the kernel's choice).
e2e_free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Remembers the current `ip netns list` names.
e2e_netns_snapshot() {
  ip netns list 2>/dev/null | awk '{print $1}' | sort >"$E2E_TMP/netns.before"
}

# Checks that ferry PID left nothing behind: no pins, no netns entry that
# looks like ferry's. (Other work on the machine may add namespaces of its
# own meanwhile; only names mentioning ferry or the PID count.)
e2e_check_clean() {
  local pid=$1 ok=0
  if [[ -e /sys/fs/bpf/ferry/run-$pid ]]; then
    e2e_fail "pins left at /sys/fs/bpf/ferry/run-$pid"
    ok=1
  fi
  if [[ -f $E2E_TMP/netns.before ]]; then
    local new
    new=$(ip netns list 2>/dev/null | awk '{print $1}' | sort | comm -13 "$E2E_TMP/netns.before" - |
      grep -E "ferry|$pid" | grep -v '^ferrybench-' || true)  # bench/run's own (it removes them), not this ferry's
    if [[ -n $new ]]; then
      e2e_fail "new network namespaces left: $new"
      ok=1
    fi
  fi
  if kill -0 "$pid" 2>/dev/null; then
    e2e_fail "ferry $pid still running"
    ok=1
  fi
  return $ok
}

# The attach topology most ferry attach scenarios start from: host namespace
# $1 and guest namespace $2 (made here, deleted at exit), a veth $3 in $1
# whose peer is $2's eth0 (198.18.0.2/24, default route via the gateway
# 198.18.0.1), `ferry detach $3` at exit before the namespaces go. Sets HN,
# the nsenter prefix into $1 (`ip netns exec` would hide bpffs). Links are
# up; MTU and addresses of $1's side are the scenario's.
e2e_attach_topology() {
  local h=$1 g=$2 dev=$3
  HN=(nsenter "--net=/run/netns/$h")
  e2e_on_exit "ip netns del $h"
  ip netns add "$h" || e2e_die "namespace $h"
  ip -n "$h" link set lo up
  e2e_attach_guest "$h" "$g" "$dev"
}

# e2e_attach_guest H G DEV: one more guest for H (made by
# e2e_attach_topology): namespace G whose eth0 (198.18.0.2/24, default
# route via 198.18.0.1) is the peer of veth DEV in H; removed (and DEV
# detached) at exit.
e2e_attach_guest() {
  local h=$1 g=$2 dev=$3
  e2e_on_exit "ip netns del $g"
  ip netns add "$g" || e2e_die "namespace $g"
  e2e_on_exit "timeout 20 nsenter --net=/run/netns/$h $FERRY detach $dev -q"
  ip -n "$g" link set lo up
  ip link add "$dev" netns "$h" type veth peer name eth0 netns "$g" || e2e_die "veth"
  ip -n "$h" link set "$dev" up
  ip -n "$g" addr add 198.18.0.2/24 dev eth0
  ip -n "$g" link set eth0 up
  ip -n "$g" route add default via 198.18.0.1
}

# e2e_dual_stack_guest H G DEV MTU: a guest namespace G (made here, deleted
# at exit) whose eth0 is the peer of veth DEV in the existing namespace H,
# both at MTU, with 198.18.0.2/24 and fd00:f::2/64 (no DAD) and default
# routes via the gateways 198.18.0.1 and fd00:f::1. Attaching (and
# detaching) DEV is the scenario's.
e2e_dual_stack_guest() {
  local h=$1 g=$2 dev=$3 mtu=$4
  ip netns add "$g" || e2e_die "ip netns add $g"
  e2e_on_exit "ip netns del $g"
  ip -n "$g" link set lo up
  ip link add "$dev" netns "$h" mtu "$mtu" type veth peer name eth0 netns "$g" mtu "$mtu" || e2e_die "veth"
  ip -n "$h" link set "$dev" up
  ip netns exec "$g" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
  ip -n "$g" addr add 198.18.0.2/24 dev eth0
  ip -n "$g" -6 addr add fd00:f::2/64 dev eth0 nodad
  ip -n "$g" link set eth0 up
  ip -n "$g" route add default via 198.18.0.1
  ip -n "$g" -6 route add default via fd00:f::1
}

# Checks the last run's exit status.
e2e_expect_rc() {
  local want=$1 what=$2
  if [[ $RC == "$want" ]]; then
    e2e_log "ok: $what (exit $RC)"
  else
    e2e_fail "$what: exit $RC, wanted $want"
    e2e_show_output
  fi
}

# e2e_remote_topology [-H NS] MTU...: the real path (DESIGN.md "Test
# topology"). Namespace RH plays the host: run ferry there with
# "${RHN[@]}" (nsenter --net, which keeps bpffs visible; `ip netns exec`
# hides it), so its host sockets live in RH; RH has no route out of the
# machine. Namespace RP plays a remote server or client ("${RPN[@]}"). Link k
# (one per MTU given, in that order) is a veth RH:REMOTE_DEV_H[k] <->
# RP:REMOTE_DEV_P[k] of MTU REMOTE_MTU[k], addressed
#   RH REMOTE_H4[k] = 10.77.X.1/24, REMOTE_H6[k] = fd77:X::1/64
#   RP REMOTE_P4[k] = 10.77.X.2/24, REMOTE_P6[k] = fd77:X::2/64
# with X unique to this run and link (no DAD: usable at once). -H NS uses an
# existing namespace as RH (e.g. cni_topology's H) instead of making one.
# At exit (failure too): ferry is detached from every link of RH, then RP
# and (when made here) RH are deleted; processes the scenario started in
# them are killed first by their own e2e_on_exit entries (registered later,
# so run earlier).
e2e_remote_topology() {
  local made_h=1
  if [[ ${1:-} == -H ]]; then
    RH=$2
    made_h=0
    shift 2
  else
    RH=$(e2e_unique rh)
  fi
  RP=$(e2e_unique rp)
  RHN=(nsenter "--net=/run/netns/$RH")
  RPN=(nsenter "--net=/run/netns/$RP")
  if ((made_h)); then
    ip netns add "$RH" || e2e_die "ip netns add $RH"
    e2e_on_exit "_e2e_remote_cleanup $RH"
    ip -n "$RH" link set lo up
  fi
  ip netns add "$RP" || e2e_die "ip netns add $RP"
  e2e_on_exit "ip netns del $RP"
  ip -n "$RP" link set lo up
  REMOTE_MTU=() REMOTE_DEV_H=() REMOTE_DEV_P=() REMOTE_H4=() REMOTE_P4=() REMOTE_H6=() REMOTE_P6=()
  local base=$((($$ + RANDOM) % 200)) k=0 mtu x
  for mtu in "$@"; do
    x=$((base + k + 1))
    REMOTE_MTU[k]=$mtu
    REMOTE_DEV_H[k]=rpeer$k
    REMOTE_DEV_P[k]=rhost$k
    REMOTE_H4[k]=10.77.$x.1
    REMOTE_P4[k]=10.77.$x.2
    REMOTE_H6[k]=fd77:$x::1
    REMOTE_P6[k]=fd77:$x::2
    ip link add "${REMOTE_DEV_H[k]}" netns "$RH" mtu "$mtu" type veth \
      peer name "${REMOTE_DEV_P[k]}" netns "$RP" mtu "$mtu" || e2e_die "veth to the remote peer (MTU $mtu)"
    ip -n "$RH" addr add "${REMOTE_H4[k]}/24" dev "${REMOTE_DEV_H[k]}"
    ip -n "$RH" -6 addr add "${REMOTE_H6[k]}/64" dev "${REMOTE_DEV_H[k]}" nodad
    ip -n "$RP" addr add "${REMOTE_P4[k]}/24" dev "${REMOTE_DEV_P[k]}"
    ip -n "$RP" -6 addr add "${REMOTE_P6[k]}/64" dev "${REMOTE_DEV_P[k]}" nodad
    ip -n "$RH" link set "${REMOTE_DEV_H[k]}" up || e2e_die "link up in $RH"
    ip -n "$RP" link set "${REMOTE_DEV_P[k]}" up || e2e_die "link up in $RP"
    k=$((k + 1))
  done
  e2e_log "remote peer: $RH <-> $RP, links: MTU ${REMOTE_MTU[*]}, $RP at ${REMOTE_P4[*]} ${REMOTE_P6[*]}"
}

# Detaches ferry from every link of host namespace $1, then deletes it.
_e2e_remote_cleanup() {
  local ns=$1 l
  for l in $(ip -n "$ns" -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $l == lo || ! -e /run/ferry/$l ]] && continue
    timeout 20 nsenter --net="/run/netns/$ns" "$FERRY" detach "$l" >/dev/null 2>&1 || true
  done
  ip netns del "$ns" 2>/dev/null || true
}
