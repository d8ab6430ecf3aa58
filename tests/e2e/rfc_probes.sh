#!/usr/bin/env bash
# rfc_probes: RFC conformance probes from a hand-driven guest. Inside
# `ferry run`, tests/tools/rfc_probes.py (scapy on the guest's tap) runs one
# table row per rule: TCP TIME-WAIT, simultaneous close, SYN-RECEIVED and
# RFC 5961 ACK checks, odd SYN options, the gateway as a host (TTL, unknown
# protocols), ARP/NDP duplicate-address defence, DHCP and DHCPv6 message
# kinds. Each row names its RFC section; the run fails on any failed row.
#
# Traffic: the guest talks only to the gateway address (the host's loopback)
# and to addresses of its own namespace; servers listen on 127.0.0.1 only.
source "$(dirname "$0")/lib.sh"
e2e_init

TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)
/usr/bin/python3 -c 'import scapy' 2>/dev/null || e2e_die "python3-scapy missing (scripts/install-deps.sh)"

e2e_tcp_echo_server

# A server that greets and closes at once: the host closes first.
CLOSER_PF=$E2E_TMP/closer.port
/usr/bin/python3 -u - "$CLOSER_PF" >"$E2E_TMP/closer.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
s.settimeout(1)
end = time.time() + 120
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    c.sendall(b"bye")
    c.close()
PY
CLOSER_PID=$!
e2e_on_exit "e2e_kill_pid $CLOSER_PID"
e2e_wait_file "$CLOSER_PF" 5 || e2e_die "closer server did not start"

e2e_ferry 120 run -v -- /usr/bin/python3 -u "$TOOLS/rfc_probes.py" \
  --echo "$ECHO_PORT" --closer "$(cat "$CLOSER_PF")"
sed 's/^/    /' "$OUT"
e2e_expect_rc 0 "every RFC probe passed"
e2e_expect "the probe table ran" grep -q '^rfc probes: [1-9][0-9]* ok, 0 failed$' "$OUT"
if ((E2E_FAILED)); then e2e_show_output; fi
e2e_check_clean "$FERRY_PID"
