#!/usr/bin/env bash
# run_pid: ferry run --pid FILE writes ferry's own PID once CMD runs (the
# PID to signal: SIGTERM to it ends CMD) and removes FILE when ferry exits.
source "$(dirname "$0")/lib.sh"
e2e_init
PIDF=$E2E_TMP/ferry.pidfile
e2e_ferry_bg 30 run --pid "$PIDF" -- sh -c "echo 1 >$E2E_TMP/started; sleep 20"
e2e_wait_file "$E2E_TMP/started" 20 || e2e_fail "CMD did not start"
e2e_wait_file "$PIDF" 5 || e2e_fail "no pid file"
e2e_expect "the pid file names ferry ($FERRY_PID)" test "$(cat "$PIDF" 2>/dev/null)" = "$FERRY_PID"
kill -TERM "$(cat "$PIDF")"
e2e_ferry_wait
e2e_expect "SIGTERM to that PID ended CMD (exit $RC)" test "$RC" -eq 143
e2e_expect "the pid file is removed at exit" test ! -e "$PIDF"
e2e_check_clean "$FERRY_PID"
