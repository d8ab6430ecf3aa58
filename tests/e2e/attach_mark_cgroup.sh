#!/usr/bin/env bash
# attach_mark_cgroup: `ferry attach --mark` puts the sandboxed translator in
# a cgroup named after the service (sandbox/service_cgroup.h), never beside
# it at the top of the hierarchy:
#   * this machine's layout as it is (hybrid: cgroup2 at
#     /sys/fs/cgroup/unified, no service cgroup): /proc/<translator>/cgroup
#     reads 0::/ferry/DEV/translator;
#   * a unified hierarchy, made for the service by mounting cgroup2 over
#     /sys/fs/cgroup in a mount namespace of the test's own (skipped where
#     /sys/fs/cgroup is cgroup2 already: then the first part is that case):
#     the service runs in /ferry/DEV/service, the translator in
#     /ferry/DEV/translator, both under the service's cgroup /ferry/DEV.
# In both, the guest's connection to the host leaves marked (an iptables
# mangle counter in the host namespace), detach removes the cgroups, and
# after a SIGKILL of service and translator, `ferry detach` removes what
# they left. Without a detach, the next ferry to start removes a killed
# service's cgroups, never a live one's (sweep_dead_instances, tools/ferry/stale_sweep.h). Guests reach only the gateway (the host namespace's loopback).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
FERRY=$(readlink -f "$FERRY")  # nsenter --mount starts CMD in /

U=$(e2e_unique k)
H=${U}h G=${U}g
DEV=fk$$$((RANDOM % 100))
DEV=${DEV:0:15}
e2e_attach_topology "$H" "$G" "$DEV"
mkdir -p "$E2E_TMP/www" && echo hello >"$E2E_TMP/www/index.html"
"${HN[@]}" python3 -m http.server -b 127.0.0.1 18080 -d "$E2E_TMP/www" >/dev/null 2>&1 &
SRV=$!
e2e_on_exit "e2e_kill_pid $SRV"
"${HN[@]}" iptables -t mangle -A OUTPUT -p tcp -m mark --mark 0x1234 -j ACCEPT || e2e_die "iptables in H"

# The cgroup2 mount as the host sees it.
C2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
[[ -n $C2 ]] || e2e_die "no cgroup2 mounted"

# check_layout WHAT PREFIX...: attach (PREFIX: how to run ferry), then the
# translator's and the service's cgroups, a marked connection, detach.
check_layout() {
  local what=$1 service_cg=$2
  shift 2
  local pre=("$@")
  e2e_expect "$what: attach --mark 0x1234" timeout 30 "${pre[@]}" "${HN[@]}" "$FERRY" attach "$DEV" -q --mark 0x1234
  local T S
  T=$(sed -n 's/^translator_pid=//p' "/run/ferry/$DEV/state")
  S=$(sed -n 's/^pid=//p' "/run/ferry/$DEV/state")
  e2e_expect "$what: state names the translator" test -n "$T"
  e2e_log "$what: translator $(grep '^0::' "/proc/$T/cgroup"), service $(grep '^0::' "/proc/$S/cgroup")"
  e2e_expect "$what: translator in /ferry/$DEV/translator" grep -qx "0::/ferry/$DEV/translator" "/proc/$T/cgroup"
  e2e_expect "$what: service in $service_cg" grep -qx "0::$service_cg" "/proc/$S/cgroup"
  local before after
  before=$("${HN[@]}" iptables -t mangle -L OUTPUT -v -x -n | awk '/mark match 0x1234/ {print $1}')
  for i in $(seq 30); do
    ip netns exec "$G" curl -s -o /dev/null --max-time 5 http://198.18.0.1:18080/ && break
    sleep 0.3
  done
  e2e_expect "$what: guest HTTP" ip netns exec "$G" curl -sf -o /dev/null --max-time 10 http://198.18.0.1:18080/
  after=$("${HN[@]}" iptables -t mangle -L OUTPUT -v -x -n | awk '/mark match 0x1234/ {print $1}')
  e2e_expect "$what: the host connection's packets marked 0x1234 (${before:-none} -> ${after:-none})" \
    test "${after:-0}" -gt "${before:-0}"
  e2e_expect "$what: detach" timeout 30 "${pre[@]}" "${HN[@]}" "$FERRY" detach "$DEV" -q
  e2e_expect "$what: no cgroup left ($C2/ferry/$DEV)" test ! -e "$C2/ferry/$DEV"
  e2e_expect "$what: none at the old place ($C2/ferry-$DEV)" test ! -e "$C2/ferry-$DEV"

  # Killed: the service and its translator get SIGKILL; detach cleans up.
  e2e_expect "$what: attach again" timeout 30 "${pre[@]}" "${HN[@]}" "$FERRY" attach "$DEV" -q --mark 0x1234
  T=$(sed -n 's/^translator_pid=//p' "/run/ferry/$DEV/state")
  S=$(sed -n 's/^pid=//p' "/run/ferry/$DEV/state")
  e2e_expect "$what: its cgroup is there" test -d "$C2/ferry/$DEV/translator"
  kill -KILL "$S" "$T"
  for i in $(seq 50); do kill -0 "$T" 2>/dev/null || kill -0 "$S" 2>/dev/null || break; sleep 0.1; done
  e2e_expect "$what: detach after SIGKILL" timeout 30 "${pre[@]}" "${HN[@]}" "$FERRY" detach "$DEV" -q
  e2e_expect "$what: the killed service's cgroups are gone" test ! -e "$C2/ferry/$DEV"
}

if [[ $(stat -f -c %T /sys/fs/cgroup) == cgroup2fs ]]; then
  check_layout "unified" "/ferry/$DEV/service"
else
  check_layout "hybrid" "$(grep '^0::' /proc/self/cgroup | cut -d: -f3)"
  # A unified hierarchy for the service: cgroup2 over /sys/fs/cgroup in a
  # mount namespace held by a sleeper of ours.
  unshare -m --propagation private sleep 600 &
  HOLD=$!
  e2e_on_exit "e2e_kill_pid $HOLD"
  for i in $(seq 50); do [[ $(readlink /proc/$HOLD/ns/mnt) != $(readlink /proc/self/ns/mnt) ]] && break; sleep 0.1; done
  MNT=(nsenter "--mount=/proc/$HOLD/ns/mnt")
  e2e_expect "unified: cgroup2 over /sys/fs/cgroup in our mount namespace" \
    "${MNT[@]}" mount -t cgroup2 none /sys/fs/cgroup
  check_layout "unified" "/ferry/$DEV/service" "${MNT[@]}"
fi

# Killed and never detached (a CNI DEL that never came): the next ferry that
# starts (here a `ferry run`) removes the dead service's cgroups, and only
# those: a live attachment's stay, its translator in them. The cgroups are
# dated an hour back, past the start-up sweep's 10 s guard for cgroups
# being made. Only cgroups this scenario made are looked at.
e2e_expect "sweep: attach --mark" timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q --mark 0x1234
T=$(sed -n 's/^translator_pid=//p' "/run/ferry/$DEV/state")
S=$(sed -n 's/^pid=//p' "/run/ferry/$DEV/state")
touch -d '-1 hour' "$C2/ferry/$DEV"
timeout 30 "${HN[@]}" "$FERRY" run -- true
e2e_expect "sweep: a live attachment's cgroup stays" test -d "$C2/ferry/$DEV/translator"
e2e_expect "sweep: its translator still in it" grep -qx "0::/ferry/$DEV/translator" "/proc/$T/cgroup"
kill -KILL "$S" "$T"
for i in $(seq 50); do kill -0 "$T" 2>/dev/null || kill -0 "$S" 2>/dev/null || break; sleep 0.1; done
touch -d '-1 hour' "$C2/ferry/$DEV"
timeout 30 "${HN[@]}" "$FERRY" run -- true
e2e_expect "sweep: the killed, undetached service's cgroups removed by the next start" test ! -e "$C2/ferry/$DEV"
e2e_expect "sweep: detach cleans the rest" timeout 30 "${HN[@]}" "$FERRY" detach "$DEV" -q
