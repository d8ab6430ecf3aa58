#!/usr/bin/env bash
# run_cleanup: ferry leaves nothing behind (pins, namespaces, the guest's
# processes) however CMD ends: normal exit, CMD killed with SIGKILL (ferry
# exits 137), ferry itself told to stop with SIGTERM while CMD runs (it
# forwards the signal to CMD, cleans up, and exits 143 with CMD).
source "$(dirname "$0")/lib.sh"
e2e_init
e2e_netns_snapshot

# Normal exit, and the pins exist while CMD runs.
e2e_ferry 20 run -- sh -c 'test -d "/sys/fs/bpf/ferry/${FERRY_INSTANCE:-run-$PPID}" && echo pinned'
e2e_expect_rc 0 "plain exit"
e2e_expect "pins exist while CMD runs" grep -q pinned "$OUT"
e2e_check_clean "$FERRY_PID"

# CMD dies of SIGKILL.
e2e_ferry 20 run -- sh -c 'kill -9 $$'
e2e_expect_rc 137 "CMD killed by SIGKILL"
e2e_check_clean "$FERRY_PID"

# SIGTERM to ferry while CMD runs.
guestpid=$E2E_TMP/guest.pid
e2e_ferry_bg 30 run -- sh -c "echo \$\$ >$guestpid; exec sleep 25"
if e2e_wait_file "$guestpid" 10; then
  gpid=$(cat "$guestpid")
  kill -TERM "$FERRY_PID"
  start=$SECONDS
  e2e_ferry_wait
  e2e_expect_rc 143 "SIGTERM to ferry is forwarded to CMD"
  e2e_expect "stopped within 5 s (took $((SECONDS - start)) s)" test $((SECONDS - start)) -le 5
  e2e_expect "the guest's process is gone" bash -c "! kill -0 $gpid 2>/dev/null"
  e2e_check_clean "$FERRY_PID"
else
  e2e_ferry_wait
  e2e_fail "the guest never started"
  e2e_show_output
fi
