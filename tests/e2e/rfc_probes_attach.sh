#!/usr/bin/env bash
# rfc_probes_attach: the RFC probe table (tests/tools/rfc_probes.py) against
# `ferry attach`, its BPF fast path on, with the servers on a peer one veth
# hop away at MTU 1500 (the real path, DESIGN.md "Test topology").
#
# ferry attaches, inside host namespace RH, to the host end of a veth whose
# other end is eth0 of guest namespace G (MTU 1500, 198.18.0.2/24 and
# fd00:f::2/64). RH reaches the remote peer RP over an MTU-1500 veth
# (e2e_remote_topology), where an echo server and a server that greets and
# closes listen. The probes run in G on eth0: the TCP rows drive flows to
# RP's address through ferry (closing states, RFC 5961, SYN options), the
# others ask the gateway (TTL, unknown protocols, ARP/NDP, DHCP/DHCPv6).
#
# Traffic: ferry's host sockets live in RH, whose only routes lead to RP.
source "$(dirname "$0")/lib.sh"
e2e_init

TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)
/usr/bin/python3 -c 'import scapy' 2>/dev/null || e2e_die "python3-scapy missing (scripts/install-deps.sh)"

e2e_remote_topology 1500
PEER=${REMOTE_P4[0]}
G=$(e2e_unique g)
DEV=fr$$$((RANDOM % 100))
DEV=${DEV:0:15}
GN=(nsenter "--net=/run/netns/$G")
e2e_dual_stack_guest "$RH" "$G" "$DEV" 1500

# In RP: an echo server and one that greets and closes at once.
PF=$E2E_TMP/servers.ports
"${RPN[@]}" /usr/bin/python3 -u - "$PF" "$PEER" >"$E2E_TMP/servers.log" 2>&1 <<'PY' &
import socket, sys, threading, time
def listener():
    s = socket.socket()
    s.bind((sys.argv[2], 0))
    s.listen(32)
    s.settimeout(1)
    return s
echo, closer = listener(), listener()
open(sys.argv[1], "w").write("%d %d" % (echo.getsockname()[1], closer.getsockname()[1]))
def serve_echo(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
def accept_loop(s, handle):
    end = time.time() + 150
    while time.time() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=handle, args=(c,), daemon=True).start()
def greet_and_close(c):
    c.sendall(b"bye")
    c.close()
threading.Thread(target=accept_loop, args=(closer, greet_and_close), daemon=True).start()
accept_loop(echo, serve_echo)
PY
SERVERS_PID=$!
e2e_on_exit "e2e_kill_pid $SERVERS_PID"
e2e_wait_file "$PF" 5 || e2e_die "servers in RP did not start"
read -r ECHO_PORT CLOSER_PORT <"$PF"

timeout 30 "${RHN[@]}" "$FERRY" attach "$DEV" -q 2>"$ERR" ||
  e2e_die "attach failed: $(cat "$ERR" "/run/ferry/$DEV/log" 2>/dev/null)"
e2e_on_exit "timeout 20 ${RHN[*]} $FERRY detach $DEV -q"
e2e_log "ferry attach $DEV in $RH; servers in $RP at $PEER ($ECHO_PORT echo, $CLOSER_PORT closer)"

timeout -k 5 150 "${GN[@]}" env GUEST_IF=eth0 /usr/bin/python3 -u "$TOOLS/rfc_probes.py" \
  --echo "$ECHO_PORT" --closer "$CLOSER_PORT" --peer "$PEER" >"$OUT" 2>&1
RC=$?
sed 's/^/    /' "$OUT"
e2e_expect_rc 0 "every RFC probe passed through ferry attach"
e2e_expect "the probe table ran" grep -q '^rfc probes: [1-9][0-9]* ok, 0 failed$' "$OUT"
if ((E2E_FAILED)); then
  e2e_log "--- service log"
  tail -20 "/run/ferry/$DEV/log" 2>/dev/null | sed 's/^/    /'
fi
