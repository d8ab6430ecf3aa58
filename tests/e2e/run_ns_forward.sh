#!/usr/bin/env bash
# run_ns_forward: -T and -U (pasta's): a process in the guest that talks to
# its own loopback reaches the host's.
#
# Host side: a TCP server on 127.0.0.1 and ::1 at ports B, B+2, B+3 (B..B+3
# free on this machine) that reads to end of stream, logs the SHA-256 of
# what came and only then answers "P<port> <family>" and 3 MiB (so the
# guest's half-close must come through, and the server's close after it);
# a UDP echo on 127.0.0.1:B and [::1]:B that prefixes the family.
# `ferry run -T B-B+3,~B+1 -T 40000:B -T 40001:B+1 -U B -U 40002:B -- CMD`,
# with the sandbox on (the default); CMD, in the guest:
#   * sends 4 MiB to 127.0.0.1:B and to [::1]:B, half-closes, reads the
#     answer: both SHA-256s match on both ends, each family reached its own;
#   * the range without its exclusion: B+2 (v4) and B+3 (v6) reach the
#     host's B+2 and B+3; the excluded B+1 has no listener (the guest's own
#     kernel refuses); 40000 reaches the host's B (PORT:HOSTPORT);
#   * 40001 -> host B+1, where nothing listens: the guest's connection is
#     reset (ferry closes it with SO_LINGER 0), both families;
#   * UDP to 127.0.0.1:B and [::1]:B comes back from the same port with the
#     host's family prefix; 40002 reaches the host's B and answers from 40002.
# ferry's -v summary counts 7 accepted, 5 closed, 2 connect failures.
# Then: ferry inside a host namespace RH of the test's own (a peer one
# veth hop away at MTU 1500): -T reaches RH's loopback (a server there with
# another answer), not the machine's (whose server still listens on B);
# its `ferry stats -j` (read in the guest) shows -T's and -U's counters
# (translator.ns_tcp_*, ns_udp_*) moved by one connection and one datagram;
# rootless ferry (under `unshare -Ur`: no privilege in the initial
# namespace) does -T and -U too; and the refusals: ADDR/ and auto in a -T
# spec, -T/-U for `ferry attach` and `ferry vm` (one line, exit 2).
source "$(dirname "$0")/lib.sh"
e2e_init
PEER=$(cd "$(dirname "$0")/../tools" && pwd)/nsfwd_peer.py
PY=/usr/bin/python3

B=$($PY "$PEER" freeblock 4) || e2e_die "no block of 4 free ports"
e2e_log "host ports $B..$((B + 3))"
SRV=$E2E_TMP/srv
mkdir -p "$SRV"
head -c $((3 << 20)) /dev/urandom >"$SRV/reply"
head -c $((4 << 20)) /dev/urandom >"$E2E_TMP/upload"
echo small >"$E2E_TMP/small"
REPLY_SHA=$(sha256sum <"$SRV/reply" | cut -d' ' -f1)
UP_SHA=$(sha256sum <"$E2E_TMP/upload" | cut -d' ' -f1)
SMALL_SHA=$(sha256sum <"$E2E_TMP/small" | cut -d' ' -f1)

$PY "$PEER" serve "$SRV" "$B" $((B + 2)) $((B + 3)) >"$E2E_TMP/srv.err" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
$PY "$PEER" udpecho "$B" >"$E2E_TMP/udp.err" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
e2e_wait_file "$SRV/ready" 5 || true
[[ -e $SRV/ready ]] || e2e_die "the host's server did not start: $(cat "$E2E_TMP/srv.err")"
sleep 0.2

G=$E2E_TMP/guest.out
e2e_ferry 90 run -v -T "$B-$((B + 3)),~$((B + 1))" -T "40000:$B" -T "40001:$((B + 1))" -U "$B" -U "40002:$B" -- sh -c "
  P='$PY $PEER'
  {
    \$P client 127.0.0.1 $B $E2E_TMP/upload
    \$P client ::1 $B $E2E_TMP/upload
    \$P client 127.0.0.1 $((B + 2)) $E2E_TMP/small
    \$P client ::1 $((B + 3)) $E2E_TMP/small
    \$P client 127.0.0.1 40000 $E2E_TMP/small
    \$P refused 127.0.0.1 $((B + 1))
    \$P refused 127.0.0.1 40001
    \$P refused ::1 40001
    \$P udp 127.0.0.1 $B hello
    \$P udp ::1 $B hello
    \$P udp 127.0.0.1 40002 mapped
  } >$G 2>&1"
e2e_expect_rc 0 "ferry run -T/-U"
line() { sed -n "${1}p" "$G"; }
e2e_expect "4 MiB up and 3 MiB down through 127.0.0.1:$B, half-closed (got '$(line 1)')" \
  test "$(line 1)" = "P$B v4 $REPLY_SHA"
e2e_expect "the same through [::1]:$B (got '$(line 2)')" test "$(line 2)" = "P$B v6 $REPLY_SHA"
e2e_expect "the host's server got both uploads whole" \
  test "$(grep -c "^$B v[46] $UP_SHA\$" "$SRV/log")" = 2
e2e_expect "range: guest 127.0.0.1:$((B + 2)) reached the host's $((B + 2)) (got '$(line 3)')" \
  test "$(line 3)" = "P$((B + 2)) v4 $REPLY_SHA"
e2e_expect "range: guest [::1]:$((B + 3)) reached the host's $((B + 3)) (got '$(line 4)')" \
  test "$(line 4)" = "P$((B + 3)) v6 $REPLY_SHA"
e2e_expect "40000:$B: guest 127.0.0.1:40000 reached the host's $B (got '$(line 5)')" \
  test "$(line 5)" = "P$B v4 $REPLY_SHA"
e2e_expect "the excluded port $((B + 1)) has no listener in the guest (got '$(line 6)')" test "$(line 6)" = refused
e2e_expect "nothing on the host's $((B + 1)): the guest's 127.0.0.1:40001 is reset (got '$(line 7)')" \
  test "$(line 7)" = reset
e2e_expect "and its [::1]:40001 (got '$(line 8)')" test "$(line 8)" = reset
e2e_expect "UDP through 127.0.0.1:$B, answered from $B (got '$(line 9)')" test "$(line 9)" = "v4:hello $B"
e2e_expect "UDP through [::1]:$B (got '$(line 10)')" test "$(line 10)" = "v6:hello $B"
e2e_expect "UDP 40002:$B, answered from 40002 (got '$(line 11)')" test "$(line 11)" = "v4:mapped 40002"
e2e_expect "the small uploads arrived (3)" test "$(grep -c " $SMALL_SHA\$" "$SRV/log")" = 3
e2e_expect "-v: 7 accepted, 5 closed, 2 connect failures" \
  grep -q -- "-T: accepted=7 closed=5 reset=0 connect_failed=2 refused_full=0" "$ERR"
e2e_expect "-v: 3 UDP flows, 3 datagrams each way" \
  grep -q -- "-U: flows=3 datagrams_to_host=3 datagrams_to_guest=3 " "$ERR"
e2e_expect "-v: a tcp open line of -T" grep -q "ferry: tcp open 127.0.0.1:[0-9]* > 127.0.0.1:$B outbound" "$ERR"
e2e_check_clean "$FERRY_PID"
[[ $E2E_FAILED == 0 ]] || { e2e_show_output; cat "$G"; }

# -T all: some 37000 ports of the guest's loopback. As root they go through
# one listener per family (an sk_lookup program in the guest's namespace,
# userspace/nsfwd/ns_steering.h); a listener per port and family (74000
# descriptors) failed here with EMFILE under a hard limit of 20000. The
# guest reaches the host's B (v4) and B+3 (v6) through `all`, the excluded
# B+2 has no listener, the explicit 40000:B keeps its own, and ferry's two
# processes hold few descriptors (counted from the guest, by PID). The
# host's server is the first part's (still serving B, B+2, B+3).
cat >"$E2E_TMP/guest_all.sh" <<GUEST
ferry=\${FERRY_INSTANCE#run-}
fds=\$(ls /proc/\$ferry/fd | wc -l)
for st in /proc/[0-9]*/stat; do
  read -r pid comm state ppid rest <"\$st" 2>/dev/null || continue
  [ "\$ppid" = "\$ferry" ] && [ "\$comm" = "(ferry-translate)" ] && fds=\$((fds + \$(ls /proc/\$pid/fd | wc -l)))
done
{
  $PY $PEER client 127.0.0.1 $B $E2E_TMP/small
  $PY $PEER client ::1 $((B + 3)) $E2E_TMP/small
  $PY $PEER refused 127.0.0.1 $((B + 2))
  $PY $PEER client 127.0.0.1 40000 $E2E_TMP/small
  echo "fds \$fds"
} >$G 2>&1
GUEST
: >"$G"
e2e_ferry 90 run -v -T "all,~$((B + 2))" -T "40000:$B" -- sh "$E2E_TMP/guest_all.sh"
e2e_expect_rc 0 "ferry run -T all"
e2e_expect "-T all: guest 127.0.0.1:$B reached the host's $B (got '$(line 1)')" test "$(line 1)" = "P$B v4 $REPLY_SHA"
e2e_expect "-T all: guest [::1]:$((B + 3)) reached the host's $((B + 3)) (got '$(line 2)')" \
  test "$(line 2)" = "P$((B + 3)) v6 $REPLY_SHA"
e2e_expect "-T all,~$((B + 2)): the excluded port has no listener (got '$(line 3)')" test "$(line 3)" = refused
e2e_expect "-T all beside 40000:$B: the explicit port reached the host's $B (got '$(line 4)')" \
  test "$(line 4)" = "P$B v4 $REPLY_SHA"
e2e_expect "-T all: ferry's processes hold under 200 descriptors (got '$(line 5)')" \
  test "$(line 5 | awk '$1 == "fds" && $2 > 0 && $2 < 200 { print "ok" }')" = ok
e2e_expect "-v: 3 accepted, 3 closed" grep -q -- "-T: accepted=3 closed=3 reset=0 connect_failed=0" "$ERR"
e2e_check_clean "$FERRY_PID"
[[ $E2E_FAILED == 0 ]] || { e2e_show_output; cat "$G"; }

# In a host namespace of our own: -T is that namespace's loopback.
e2e_remote_topology 1500
SRV2=$E2E_TMP/srv2
mkdir -p "$SRV2"
head -c $((1 << 20)) /dev/urandom >"$SRV2/reply"
REPLY2_SHA=$(sha256sum <"$SRV2/reply" | cut -d' ' -f1)
"${RHN[@]}" $PY "$PEER" serve "$SRV2" "$B" >"$E2E_TMP/srv2.err" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
e2e_wait_file "$SRV2/ready" 5 || true
[[ -e $SRV2/ready ]] || e2e_die "RH's server did not start: $(cat "$E2E_TMP/srv2.err")"
sleep 0.2
# The guest then sends one datagram through -U (nothing listens on RH's
# UDP B) and reads its own instance's `ferry stats -j` until the counters
# file shows it (rewritten every second; 10 s at most).
cat >"$E2E_TMP/guest_stats.sh" <<GUEST
$PY $PEER client 127.0.0.1 $B $E2E_TMP/upload >$G 2>&1
$PY -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", $B))'
i=0
while [ \$i -lt 50 ]; do
  "$FERRY" stats -j "\$FERRY_INSTANCE" >$E2E_TMP/stats.json 2>&1
  grep -q '"ns_udp_datagrams_to_host":1' $E2E_TMP/stats.json && break
  sleep 0.2; i=\$((i + 1))
done
GUEST
E2E_FERRY_IN=("${RHN[@]}")
e2e_ferry 60 run -T "$B" -U "$B" -- sh "$E2E_TMP/guest_stats.sh"
E2E_FERRY_IN=()
e2e_expect_rc 0 "ferry run -T in $RH"
e2e_expect "-T from $RH reached $RH's loopback, not the machine's (got '$(line 1)')" \
  test "$(line 1)" = "P$B v4 $REPLY2_SHA"
e2e_expect "$RH's server got the upload whole" grep -q "^$B v4 $UP_SHA\$" "$SRV2/log"
# ferry stats shows -T's and -U's counters (translator.ns_tcp_*, ns_udp_*), and they moved.
e2e_expect "ferry stats -j: ns_tcp_* and ns_udp_* there and moved ($(grep -o '"ns_[a-z_]*":[0-9]*' "$E2E_TMP/stats.json" | xargs))" \
  $PY -c '
import json, sys
t = json.load(open(sys.argv[1]))["instances"][0]["translator"]
ok = (t["ns_tcp_accepted"] == 1 and t["ns_tcp_bytes_to_host"] == 4 << 20 and
      t["ns_tcp_bytes_to_guest"] >= 1 << 20 and t["ns_udp_flows_opened"] == 1 and
      t["ns_udp_datagrams_to_host"] == 1)
sys.exit(0 if ok else 1)' "$E2E_TMP/stats.json"

# Rootless: under unshare -Ur ferry has no privilege in the initial namespace.
FERRY_ROOT=$FERRY
FERRY=$E2E_TMP/unshare-ferry
printf '#!/bin/sh\nexec unshare -Ur %s "$@"\n' "$FERRY_ROOT" >"$FERRY"
chmod 755 "$FERRY"
: >"$G"
e2e_ferry 60 run -T "$B" -U "$B" -- sh -c "
  $PY $PEER client ::1 $B $E2E_TMP/small >$G 2>&1
  $PY $PEER udp 127.0.0.1 $B rootless >>$G 2>&1"
FERRY=$FERRY_ROOT
e2e_expect_rc 0 "rootless ferry run -T/-U"
e2e_expect "rootless: ferry said so" grep -q "rootless" "$ERR"
e2e_expect "rootless -T through [::1]:$B (got '$(line 1)')" test "$(line 1)" = "P$B v6 $REPLY_SHA"
e2e_expect "rootless -U through 127.0.0.1:$B (got '$(line 2)')" test "$(line 2)" = "v4:rootless $B"

# `all` past the descriptor limit (set for the run: 8192 rootless, 4096
# root) keeps its lowest ports and says so, as -t all does; before,
# rootless -T all and root's -U all failed with EMFILE. Rootless -T all
# takes a listener per port: the guest's 127.0.0.1:1 (kept, nothing on the
# host) is reset by ferry, its 30999 (not kept) refused by its own kernel.
FERRY=$E2E_TMP/unshare-ferry
printf '#!/bin/sh\nexec prlimit --nofile=8192:8192 unshare -Ur %s "$@"\n' "$FERRY_ROOT" >"$FERRY"
: >"$G"
e2e_ferry 60 run -q -T all -- sh -c "
  $PY $PEER refused 127.0.0.1 1 >$G 2>&1
  $PY $PEER refused 127.0.0.1 30999 >>$G 2>&1"
FERRY=$FERRY_ROOT
e2e_expect_rc 0 "rootless ferry run -T all under a limit of 8192"
e2e_expect "rootless -T all: one line says what is kept" \
  grep -q "^ferry run: -T all: the descriptor limit (8192) allows [0-9]* of 37303 ports beside [0-9]* connections; forwarding the lowest" "$ERR"
e2e_expect "rootless -T all: guest port 1 is kept (got '$(line 1)')" test "$(line 1)" = reset
e2e_expect "rootless -T all: guest port 30999 is not (got '$(line 2)')" test "$(line 2)" = refused
FERRY=$E2E_TMP/limited-ferry
printf '#!/bin/sh\nexec prlimit --nofile=4096:4096 %s "$@"\n' "$FERRY_ROOT" >"$FERRY"
chmod 755 "$FERRY"
e2e_ferry 60 run -U all -- true
FERRY=$FERRY_ROOT
e2e_expect_rc 0 "ferry run -U all under a limit of 4096"
if ! prlimit --nofile=4096:4096 prlimit --nofile=8192:8192 true 2>/dev/null; then
  # No CAP_SYS_RESOURCE to raise the hard limit: all is trimmed.
  e2e_expect "-U all: one line says what is kept" \
    grep -q "^ferry: -U all: the descriptor limit (4096) allows [0-9]* of 37303 ports; forwarding the lowest" "$ERR"
fi

# Refusals: one line, exit 2.
refuse() {
  local what=$1 want=$2
  shift 2
  e2e_ferry 20 "$@"
  e2e_expect_rc 2 "$what"
  e2e_expect "$what: one line naming it" bash -c "test \$(wc -l <'$ERR') = 1 && grep -q -- '$want' '$ERR'"
}
refuse "-T with an address" "no ADDR/" run -T 127.0.0.1/8080 -- true
refuse "-T auto" "-T auto is not supported" run -T auto -- true
refuse "-U port 0" "-U" run -U 0 -- true
refuse "ferry attach -T" "-T is for ferry run only" attach lo -T 8080
refuse "ferry vm -U" "-U is for ferry run only" vm --socket "$E2E_TMP/none.sock" -U 8080
