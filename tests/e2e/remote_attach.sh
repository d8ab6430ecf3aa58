#!/usr/bin/env bash
# remote_attach: `ferry attach` against a remote peer one veth hop away (the
# real path, DESIGN.md "Test topology").
#
# ferry attaches, inside host namespace RH, to the host end of a veth whose
# other end is eth0 of guest namespace G (MTU 65520, 198.18.0.2/24 and
# fd00:f::2/64, default routes via the gateway .1 / ::1). RH reaches the
# remote peer RP over an MTU-1500 veth (e2e_remote_topology). Checks, each
# 64 MiB with sha256 checked on both sides (tests/tools/tcp_xfer.py), over
# IPv4 and IPv6:
#  * outbound: G uploads to and downloads from servers in RP;
#  * inbound: clients in RP reach RH's own address on the link
#    (10.77.X.1, fd77:X::1), forwarded by `-t` into G's servers, both ways.
# Each transfer gives up after 20 s without progress.
#
# Issue 11: on the code before its fix, ferry offered G window 0 from the
# SYN-ACK on: no upload, and no verdict after a download.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

N=$((64 << 20))
e2e_remote_topology 1500
G=$(e2e_unique g)
DEV=fr$$$((RANDOM % 100))
DEV=${DEV:0:15}
e2e_dual_stack_guest "$RH" "$G" "$DEV" 65520

T1=$(e2e_free_port)
T2=$(e2e_free_port)
[[ $T1 != "$T2" ]] || T2=$((T1 + 1))
timeout 30 "${RHN[@]}" "$FERRY" attach "$DEV" -q -t "$T1:7001" -t "$T2:7002" 2>"$ERR" ||
  e2e_die "attach failed: $(cat "$ERR" "/run/ferry/$DEV/log" 2>/dev/null)"
e2e_log "ferry attach $DEV in $RH: service pid $(cat "/run/ferry/$DEV/pid" 2>/dev/null)"

xfer_remote_both_ways "$G" G "$N" 51 "$T1" "$T2"

if ((E2E_FAILED)); then
  e2e_log "--- service log"
  tail -20 "/run/ferry/$DEV/log" 2>/dev/null | sed 's/^/    /'
fi
timeout 20 "${RHN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "detach -> 0" test $? -eq 0
