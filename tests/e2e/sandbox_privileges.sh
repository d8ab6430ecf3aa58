#!/usr/bin/env bash
# sandbox_privileges: after set-up, the process that translates guest frames
# is unprivileged and filtered (userspace/sandbox), for `ferry run` and for
# the `ferry attach` service: /proc/PID/status of the translator shows the
# --runas user (nobody by default), no capabilities in any set, NoNewPrivs 1,
# Seccomp 2 (filter), and its root directory is empty; the privileged parent
# stays root. The files ferry keeps are private: run dirs 0700, files 0600.
# --no-sandbox (the control) leaves the translator root: the checks can fail.
# Guests reach only the gateway (the host's loopback).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init

# The status lines and root listing of the translator of the `ferry run`
# that is this shell's parent, printed from inside the guest.
PROBE='
  t=$(for p in $(cat /proc/$PPID/task/$PPID/children); do
        [ "$(cat /proc/$p/comm)" = ferry-translate ] && echo $p; done)
  [ -n "$t" ] || { echo "no translator child of $PPID" >&2; exit 3; }
  grep -E "^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/$t/status
  echo "RootEntries: $(ls -A /proc/$t/root | wc -l)"
  echo "ParentUid: $(awk "/^Uid:/ {print \$2}" /proc/$PPID/status)"
  echo "Comm: $(cat /proc/$t/comm)"
  stat -c "CountersDir: %a" /run/ferry-run/$FERRY_INSTANCE
  for i in 1 2 3 4 5 6 7 8 9 10; do [ -s /run/ferry-run/$FERRY_INSTANCE/counters ] && break; sleep 0.3; done
  stat -c "CountersFile: %a" /run/ferry-run/$FERRY_INSTANCE/counters
  curl -s -o /dev/null -w "Http: %{http_code}\n" --max-time 10 http://198.18.0.1:$HTTP_PORT/
'

# field NAME: the value of "NAME:" in $OUT (tabs kept)
field() { sed -n "s/^$1:[[:space:]]*//p" "$OUT" | head -1; }
# check_sandboxed WHAT UID
check_sandboxed() {
  local what=$1 uid=$2
  e2e_expect "$what: Uid $uid" test "$(field Uid)" = "$uid	$uid	$uid	$uid"
  local set
  for set in CapInh CapPrm CapEff CapBnd CapAmb; do
    e2e_expect "$what: $set 0" test "$(field $set)" = 0000000000000000
  done
  e2e_expect "$what: NoNewPrivs 1" test "$(field NoNewPrivs)" = 1
  e2e_expect "$what: Seccomp 2" test "$(field Seccomp)" = 2
  e2e_expect "$what: empty root" test "$(field RootEntries)" = 0
}

mkdir -p "$E2E_TMP/www" && echo hello >"$E2E_TMP/www/index.html"
e2e_http_server "$E2E_TMP/www"
export HTTP_PORT

# ---- ferry run, default sandbox
e2e_ferry 30 run -- sh -c "$PROBE"
e2e_expect_rc 0 "ferry run with the probe"
check_sandboxed "run" 65534
e2e_expect "run: the parent stays root" test "$(field ParentUid)" = 0
e2e_expect "run: the guest's HTTP through the sandboxed translator" test "$(field Http)" = 200
e2e_expect "run: counters dir 0700" test "$(field CountersDir)" = 700
e2e_expect "run: counters file 0600" test "$(field CountersFile)" = 600
(($(grep -c . "$OUT") >= 10)) || e2e_show_output
e2e_check_clean "$FERRY_PID"

# ---- --runas another user and group
e2e_ferry 30 run --runas daemon:nogroup -- sh -c "$PROBE"
e2e_expect_rc 0 "ferry run --runas daemon:nogroup"
e2e_expect "runas: Uid of daemon" test "$(field Uid)" = "$(id -u daemon)	$(id -u daemon)	$(id -u daemon)	$(id -u daemon)"
e2e_expect "runas: Gid of nogroup" test "$(field Gid)" = "$(getent group nogroup | cut -d: -f3)	$(getent group nogroup | cut -d: -f3)	$(getent group nogroup | cut -d: -f3)	$(getent group nogroup | cut -d: -f3)"
e2e_expect "runas: Http" test "$(field Http)" = 200

# ---- the control: --no-sandbox translates as root, unfiltered
e2e_ferry 30 run --no-sandbox -- sh -c "$PROBE"
e2e_expect_rc 0 "ferry run --no-sandbox"
e2e_expect "no-sandbox: Uid 0" test "$(field Uid)" = "0	0	0	0"
e2e_expect "no-sandbox: Seccomp 0" test "$(field Seccomp)" = 0
e2e_expect "no-sandbox: Http" test "$(field Http)" = 200

# ---- usage errors
e2e_ferry 10 run --runas no-such-user-ferry -- true
e2e_expect_rc 2 "--runas of an unknown user"
e2e_ferry 10 run --seccomp sometimes -- true
e2e_expect_rc 2 "--seccomp of an unknown mode"
FERRY_SECCOMP=bad e2e_ferry 10 run -- true
e2e_expect_rc 2 "FERRY_SECCOMP=bad"

# ---- ferry attach: the service's translator
U=$(e2e_unique s)
H=${U}h G=${U}g
DEV=fs$$$((RANDOM % 100))
DEV=${DEV:0:15}
e2e_attach_topology "$H" "$G" "$DEV"
"${HN[@]}" python3 -m http.server -b 127.0.0.1 18080 -d "$E2E_TMP/www" >/dev/null 2>&1 &
SRV=$!
e2e_on_exit "e2e_kill_pid $SRV"
e2e_expect "attach --memory-max lots is a usage error" bash -c "timeout 10 ${HN[*]} $FERRY attach $DEV --memory-max lots 2>/dev/null; [ \$? = 2 ]"
e2e_expect "attach" timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q --memory-max 512M
# cgroup v2 writable: the service is in /sys/fs/cgroup/ferry/DEV (its leaf
# `service`) with that memory.max; otherwise its log says it is not limited.
if [[ $(stat -f -c %T /sys/fs/cgroup) == cgroup2fs ]]; then
  e2e_expect "attach: the service's own cgroup" grep -qx "0::/ferry/$DEV/service" "/proc/$(cat /run/ferry/$DEV/pid)/cgroup"
  e2e_expect "attach: memory.max 512M" test "$(cat /sys/fs/cgroup/ferry/$DEV/memory.max)" = $((512 << 20))
else
  e2e_expect "attach: no cgroup v2 here, and the log says so" grep -q "not limited" "/run/ferry/$DEV/log"
fi
RUN=/run/ferry/$DEV
T=$(sed -n 's/^translator_pid=//p' "$RUN/state")
S=$(sed -n 's/^pid=//p' "$RUN/state")
e2e_expect "attach: state names the translator" test -n "$T"
grep -E "^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" "/proc/$T/status" >"$OUT"
echo "RootEntries: $(ls -A "/proc/$T/root" | wc -l)" >>"$OUT"
check_sandboxed "attach" 65534
e2e_expect "attach: the service stays root" test "$(awk '/^Uid:/ {print $2}' "/proc/$S/status")" = 0
for i in $(seq 30); do
  ip netns exec "$G" curl -s -o /dev/null --max-time 5 http://198.18.0.1:18080/ && break
  sleep 0.3
done
e2e_expect "attach: guest HTTP through the sandboxed translator" ip netns exec "$G" curl -sf -o /dev/null --max-time 10 http://198.18.0.1:18080/
e2e_expect "attach: ping through the gateway" bash -c "ip netns exec $G ping -q -c 1 -W 3 198.18.0.1 >/dev/null"
e2e_wait_file "$RUN/counters" 5 || true
e2e_expect "attach: run dir 0700" test "$(stat -c %a "$RUN")" = 700
e2e_expect "attach: /run/ferry 0700" test "$(stat -c %a /run/ferry)" = 700
for f in lock pid state log counters; do
  e2e_expect "attach: $f 0600" test "$(stat -c %a "$RUN/$f")" = 600
done
# A pid file whose process is not the one that wrote it (a recycled pid:
# same number, another start time) is not signalled.
cp "$RUN/pid.identity" "$E2E_TMP/identity"
awk '{ $2 = $2 + 1; print }' "$E2E_TMP/identity" >"$RUN/pid.identity"
e2e_expect "detach refuses a pid whose start time differs" bash -c "! timeout 20 ${HN[*]} $FERRY detach $DEV -q 2>$E2E_TMP/detach.err"
e2e_expect "detach said why" grep -q "names another process" "$E2E_TMP/detach.err"
e2e_expect "the service was left alone" kill -0 "$S"
cp "$E2E_TMP/identity" "$RUN/pid.identity"
e2e_expect "detach" timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "detach: the translator is gone" bash -c "! kill -0 $T 2>/dev/null"
e2e_expect "detach: no run dir" test ! -e "$RUN"

