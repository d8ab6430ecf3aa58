#!/usr/bin/env bash
# run_bad_flags: a bad command line gets one line on stderr, a non-zero exit,
# and creates nothing (no namespace, no pins).
source "$(dirname "$0")/lib.sh"
e2e_init
e2e_netns_snapshot

check_usage_error() {
  local what=$1
  shift
  e2e_ferry 10 "$@"
  if [[ $RC == 0 ]]; then
    e2e_fail "$what: exit 0"
  else
    e2e_log "ok: $what: exit $RC"
  fi
  local lines
  lines=$(wc -l <"$ERR")
  e2e_expect "$what: one line on stderr (got $lines)" test "$lines" -eq 1
  e2e_expect "$what: nothing on stdout" test ! -s "$OUT"
  sed 's/^/    /' "$ERR"
  e2e_check_clean "$FERRY_PID"
}

check_usage_error "unknown flag" run --bogus
check_usage_error "unknown flag before CMD" run --bogus -- true
check_usage_error "MTU not a number" run --mtu notanumber -- true
check_usage_error "bad address" run -a 300.1.2.3/24 -- true
check_usage_error "missing option value" run --netns
check_usage_error "bad --allow" run --allow 10.0.0.0/33 -- true
check_usage_error "bad --deny ports" run --deny 10.0.0.0/8:0 -- true
check_usage_error "bad --map-gw-ports" run --map-gw-ports 80-70 -- true
check_usage_error "bad --mark" run --mark -1 -- true
check_usage_error "--netns naming ferry's own namespace" run --netns /proc/self/ns/net -- true

# Port specs (pasta's syntax): bad exclusions, a spec that leaves nothing,
# auto beside all or with an address: one line, exit 2.
for spec in '~' '~0' '~90-80' '80,~80' 'auto,all' '127.0.0.1/auto' 'auto,~0' 'all,' '8000-8001,~7000-9000'; do
  e2e_ferry 10 run -t "$spec" -- true
  e2e_expect "-t '$spec': exit 2 (got $RC)" test "$RC" -eq 2
  e2e_expect "-t '$spec': one line on stderr" test "$(wc -l <"$ERR")" -eq 1
done
# -u auto is ferry run's: attach and vm have no guest namespace to follow.
e2e_ferry 10 attach nosuchdev0 -u auto
e2e_expect "attach -u auto: exit 2 (got $RC)" test "$RC" -eq 2
e2e_expect "attach -u auto: says it is ferry run's" grep -q -- "-u auto is for ferry run only" "$ERR"
e2e_ferry 10 vm --socket "$E2E_TMP/vm.sock" -t auto,~22
e2e_expect "vm -t auto: exit 2 (got $RC)" test "$RC" -eq 2
e2e_expect "vm -t auto: one line on stderr" test "$(wc -l <"$ERR")" -eq 1
