#!/usr/bin/env bash
# run_netns: `ferry run --netns NAME` uses a namespace the caller made: the
# guest runs in it with ferry's interface and addresses, and afterwards the
# namespace is still there (ferry does not remove what it did not create)
# while ferry's tap in it is gone.
source "$(dirname "$0")/lib.sh"
e2e_init

ns=$(e2e_unique ns)
ip netns add "$ns" || e2e_die "ip netns add $ns"
e2e_on_exit "ip netns del $ns"

e2e_ferry 20 run --netns "$ns" -I fe2e0 -- sh -c 'ip -o addr show dev fe2e0; ping -c 1 -W 2 198.18.0.1 >/dev/null && echo ping-ok'
e2e_expect_rc 0 "ferry run --netns $ns"
e2e_expect "guest address in $ns" grep -q "inet 198.18.0.2/24" "$OUT"
e2e_expect "gateway answers" grep -q ping-ok "$OUT"
e2e_expect "$ns still exists" bash -c "ip netns list | grep -qw '$ns'"
e2e_expect "the tap is gone from $ns" bash -c "! ip -n '$ns' link show fe2e0 >/dev/null 2>&1"
e2e_check_clean "$FERRY_PID"

# By path, too.
e2e_ferry 20 run --netns "/run/netns/$ns" -I fe2e1 -- ip -o addr show dev fe2e1
e2e_expect_rc 0 "ferry run --netns /run/netns/$ns"
e2e_expect "guest address via path" grep -q "inet 198.18.0.2/24" "$OUT"

e2e_ferry 10 run --netns "fe2e-no-such-ns-$$" -- true
e2e_expect "a missing namespace fails (exit $RC)" test "$RC" -ne 0
e2e_expect "with one line on stderr" test "$(wc -l <"$ERR")" -eq 1
