#!/usr/bin/env bash
# fault_link_gone: the guest's device disappears under ferry.
#
# Before the fix, a deleted tap left ferry's fd readable-with-error
# (EPOLLERR, level-triggered) and ferry spun at 100 % CPU. Checks:
#   `ferry run`: the guest deletes its eth0; CMD keeps running; ferry's CPU
#   time over the next 3 s stays low (generous bound: 0.6 s of 3 s; a spin
#   burns most of it); one line on stderr says so; ferry ends with CMD's
#   status when CMD ends;
#   `ferry attach --foreground` on a veth: an operator deletes the private
#   tap; the service says so once, exits 0 and removes its state: run dir,
#   pins, its tcx link on DEV.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init

HZ=$(getconf CLK_TCK)
# utime + stime of PID and its children (ferry's translator runs in one) in
# clock ticks.
cpu_ticks() {
  local p t=0
  for p in "$1" $(pgrep -P "$1"); do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# ---- ferry run: the guest deletes its interface
MARK=$E2E_TMP/deleted
e2e_ferry_bg 40 run -- sh -c "ip link del eth0 && touch '$MARK'; sleep 5; exit 7"
e2e_wait_file_or_empty() { local i; for ((i = 0; i < 200; i++)); do [[ -e $1 ]] && return 0; sleep 0.05; done; return 1; }
if e2e_wait_file_or_empty "$MARK"; then
  sleep 0.5
  t0=$(cpu_ticks "$FERRY_PID")
  sleep 3
  t1=$(cpu_ticks "$FERRY_PID")
  used=$((t1 - t0))
  e2e_log "ferry used $used ticks (HZ $HZ) in the 3 s after the delete"
  e2e_expect "ferry does not spin after the tap is gone (< 0.6 s CPU in 3 s)" test "$used" -lt $((HZ * 6 / 10))
else
  e2e_fail "the guest could not delete eth0"
fi
e2e_ferry_wait
e2e_expect "ferry run ends with CMD's status (7)" test "$RC" -eq 7
e2e_expect "the loss is reported once" test "$(grep -c "guest's device was deleted" "$ERR")" -eq 1
((RC == 7)) || e2e_show_output

# ---- ferry attach: an operator deletes the private tap
command -v bpftool >/dev/null || e2e_die "bpftool missing"
U=$(e2e_unique g)
H=${U}h
G=${U}g
DEV=fg$$$((RANDOM % 100))
DEV=${DEV:0:15}
HN=(nsenter "--net=/run/netns/$H")
e2e_on_exit "ip netns del $G"
e2e_on_exit "ip netns del $H"
if ! { ip netns add "$H" && ip netns add "$G"; }; then e2e_die "namespaces"; fi
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $DEV -q"
ip link add "$DEV" netns "$H" type veth peer name eth0 netns "$G" || e2e_die "veth"
ip -n "$H" link set "$DEV" up
ip -n "$G" link set eth0 up
LOG=$E2E_TMP/attach.log
timeout -k 5 40 "${HN[@]}" "$FERRY" attach "$DEV" --foreground 2>"$LOG" &
SVC=$!
e2e_on_exit "e2e_kill_pid $SVC"
for _ in $(seq 100); do grep -q "attached to" "$LOG" && break; sleep 0.1; done
grep -q "attached to" "$LOG" || e2e_die "attach did not start: $(cat "$LOG")"
TAP=$(timeout 5 "$FERRY" status "$DEV" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["attachments"][0]["tap"])')
PROG=$(timeout 5 "$FERRY" status "$DEV" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["attachments"][0]["programs"]["dev"])')
e2e_expect "the private tap $TAP exists" ip -n "$H" link show "$TAP"
ip -n "$H" link del "$TAP"
rc=124
for _ in $(seq 100); do
  if ! kill -0 "$SVC" 2>/dev/null; then
    wait "$SVC"
    rc=$?
    break
  fi
  sleep 0.1
done
e2e_expect "the service exits (0) after its tap was deleted (rc $rc)" test "$rc" -eq 0
e2e_expect "the loss is in its log once" test "$(grep -c "guest's device was deleted" "$LOG")" -eq 1
e2e_expect "its run dir is gone" test ! -e "/run/ferry/$DEV"
e2e_expect "its pins are gone" test ! -e "/sys/fs/bpf/ferry/$DEV"
n=$(bpftool -j link show | python3 -c "import json,sys; print(sum(1 for l in json.load(sys.stdin) if l.get('prog_id') == int('${PROG:-0}' or 0)))")
e2e_expect "no ferry link left on $DEV" test "$n" -eq 0
((rc == 0)) || cat "$LOG"
exit 0
