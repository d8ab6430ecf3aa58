#!/usr/bin/env bash
# run_basic: `ferry run` end to end: the guest pings the gateway over IPv4 and
# IPv6 (2 replies each), CMD's exit status comes back as ferry's, and nothing
# is left behind.
source "$(dirname "$0")/lib.sh"
e2e_init
e2e_netns_snapshot

e2e_ferry 20 run -- ping -c 2 -W 2 198.18.0.1
e2e_expect_rc 0 "ping 198.18.0.1 from the guest"
e2e_expect "2 IPv4 echo replies" grep -q "2 received" "$OUT"
e2e_check_clean "$FERRY_PID"

e2e_ferry 20 run -- ping -6 -c 2 -W 2 fd00:f::1
e2e_expect_rc 0 "ping -6 fd00:f::1 from the guest"
e2e_expect "2 IPv6 echo replies" grep -q "2 received" "$OUT"
e2e_check_clean "$FERRY_PID"

e2e_ferry 20 run -- sh -c 'exit 7'
e2e_expect_rc 7 "CMD's exit status is ferry's"
e2e_check_clean "$FERRY_PID"

e2e_ferry 20 run -- /nonexistent/ferry-e2e-cmd
e2e_expect_rc 127 "a CMD that does not exist"
e2e_check_clean "$FERRY_PID"
