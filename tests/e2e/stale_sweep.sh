#!/usr/bin/env bash
# stale_sweep: the next ferry to start removes what dead instances left
# (tools/ferry/stale_sweep.h), and only that. Made by this scenario, with
# its own names:
#   * DEV1 and DEV2, veths in a host namespace H of ours, each attached and
#     then killed (SIGKILL to service and translator, never detached); DEV1
#     is then deleted: its pinned DEV link is defunct, nothing of the dead
#     service acts on a device any more. DEV2 stays: its dead service's
#     link still keeps the guest's frames from H's stack;
#   * /run/ferry-run/run-P for a P that exited, its lock file free, and
#     /run/ferry-run/run-Q for a sleeper Q of ours that holds its lock.
# Then `ferry run -- true` (in H): /run/ferry/DEV1 and
# /sys/fs/bpf/ferry/DEV1 are gone; DEV2's run dir, pins and link stay, and
# the guest's ping toward H still goes unanswered; run-P is gone, run-Q
# (locked: alive) stays. `ferry detach DEV2` cleans the rest.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init

U=$(e2e_unique w)
H=${U}h G=${U}g G2=${U}j
DEV1=fw$$$((RANDOM % 100))a
DEV1=${DEV1:0:15}
DEV2=${DEV1%a}b
e2e_attach_topology "$H" "$G" "$DEV1"
e2e_attach_guest "$H" "$G2" "$DEV2"

# kill_attachment DEV: SIGKILL to its service and translator, waited for.
kill_attachment() {
  local dev=$1 s t i
  t=$(sed -n 's/^translator_pid=//p' "/run/ferry/$dev/state")
  s=$(sed -n 's/^pid=//p' "/run/ferry/$dev/state")
  [[ -n $s && -n $t ]] || e2e_die "no pids in /run/ferry/$dev/state"
  kill -KILL "$s" "$t"
  for i in $(seq 50); do kill -0 "$t" 2>/dev/null || kill -0 "$s" 2>/dev/null || break; sleep 0.1; done
}
for dev in "$DEV1" "$DEV2"; do
  e2e_expect "attach $dev" timeout 30 "${HN[@]}" "$FERRY" attach "$dev" -q
done
# H's own stack would answer a ping that reached it (attach refuses a
# device with an address: added after).
ip -n "$H" addr add 198.18.0.1/24 dev "$DEV2"
kill_attachment "$DEV1"
kill_attachment "$DEV2"
ip -n "$H" link del "$DEV1"
e2e_expect "the dead $DEV1's run dir is there before the sweep" test -e "/run/ferry/$DEV1/lock"
e2e_expect "and its pins" test -e "/sys/fs/bpf/ferry/$DEV1/link_dev"

# A dead run-P (its lock file free) and a live run-Q (a sleeper holds it).
sh -c 'exit 0' &
P=$!
wait "$P"
mkdir -p "/run/ferry-run/run-$P" && : >"/run/ferry-run/run-$P/lock" && : >"/run/ferry-run/run-$P/counters"
e2e_on_exit "rm -rf /run/ferry-run/run-$P"
sleep 600 >/dev/null 2>&1 &
Q=$!
e2e_on_exit "e2e_kill_pid $Q"
mkdir -p "/run/ferry-run/run-$Q"
e2e_on_exit "rm -rf /run/ferry-run/run-$Q"
(exec 9>"/run/ferry-run/run-$Q/lock" && flock -x 9 && exec sleep 600) >/dev/null 2>&1 &
LOCKER=$!  # the sleep itself, holding the lock on fd 9
e2e_on_exit "e2e_kill_pid $LOCKER"
for i in $(seq 50); do flock -n -s "/run/ferry-run/run-$Q/lock" true 2>/dev/null || break; sleep 0.1; done

e2e_ferry 30 run -- true
e2e_expect_rc 0 "ferry run (the sweep at its start)"
e2e_expect "the dead $DEV1 (device gone): run dir removed" test ! -e "/run/ferry/$DEV1"
e2e_expect "the dead $DEV1: pins removed" test ! -e "/sys/fs/bpf/ferry/$DEV1"
e2e_expect "the dead $DEV2 (device still there): run dir kept" test -e "/run/ferry/$DEV2/state"
e2e_expect "the dead $DEV2: its DEV link still pinned" test -e "/sys/fs/bpf/ferry/$DEV2/link_dev"
e2e_expect "the dead $DEV2: the guest's ping does not reach H's stack" \
  bash -c "! ip netns exec $G2 ping -c 2 -W 1 -q 198.18.0.1 >/dev/null 2>&1"
e2e_expect "dead run-$P removed" test ! -e "/run/ferry-run/run-$P"
e2e_expect "live (locked) run-$Q kept" test -e "/run/ferry-run/run-$Q/lock"
e2e_expect "detach $DEV2 cleans the rest" timeout 30 "${HN[@]}" "$FERRY" detach "$DEV2" -q
e2e_expect "$DEV2: nothing left" bash -c "test ! -e /run/ferry/$DEV2 && test ! -e /sys/fs/bpf/ferry/$DEV2"
