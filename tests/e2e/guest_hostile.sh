#!/usr/bin/env bash
# guest_hostile: a hostile guest. Inside `ferry run`, tests/tools/guest_hostile.py
# (scapy on raw AF_PACKET sockets of the guest's tap) sends malformed frames
# (truncated and inconsistent Ethernet/ARP/IPv4/IPv6/TCP/UDP/ICMP headers, bad
# checksums, fragments, extension-header chains, jumbo lengths, VLAN tags,
# multicast source MACs, frames to other MACs), odd ARP and NDP, ICMP echoes
# of many sizes and ICMP errors, and drives TCP flows by hand to check RFC
# 9293 / 5961 behaviour (RSTs for unknown flows, challenge ACKs, window edge,
# MSS, options). Then an ordinary TCP connection must still work, and ferry's
# own counters (printed at exit with -v) must show every malformed frame
# counted as malformed, and every malformed DHCP/DHCPv6/DNS/RS message by the
# guest services.
#
# Traffic: the guest talks only to the gateway address (the host's loopback)
# and to addresses of its own namespace; servers listen on 127.0.0.1 only.
source "$(dirname "$0")/lib.sh"
e2e_init

TOOLS=$(cd "$(dirname "$0")/../tools" && pwd)
/usr/bin/python3 -c 'import scapy' 2>/dev/null || e2e_die "python3-scapy missing (scripts/install-deps.sh)"

e2e_tcp_echo_server
e2e_udp_echo_server 127.0.0.1

# A port nothing listens on, TCP and UDP, over both families.
CLOSED_PORT=$(/usr/bin/python3 -c '
import socket
for _ in range(50):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    try:
        for fam, addr, kind in ((socket.AF_INET6, "::1", socket.SOCK_STREAM),
                                (socket.AF_INET, "127.0.0.1", socket.SOCK_DGRAM),
                                (socket.AF_INET6, "::1", socket.SOCK_DGRAM)):
            socket.socket(fam, kind).bind((addr, p))
        print(p); break
    except OSError:
        pass
')
[[ -n $CLOSED_PORT ]] || e2e_die "no closed port"

# A server that accepts and never reads, with a small receive buffer, so the
# window ferry advertises closes.
SINK_PF=$E2E_TMP/sink.port
/usr/bin/python3 -u - "$SINK_PF" >"$E2E_TMP/sink.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
s.settimeout(1)
held, end = [], time.time() + 60
while time.time() < end:
    try:
        c, _ = s.accept()
        held.append(c)
    except socket.timeout:
        pass
PY
SINK_PID=$!
e2e_on_exit "e2e_kill_pid $SINK_PID"
e2e_wait_file "$SINK_PF" 5 || e2e_die "sink server did not start"

e2e_ferry 55 run -v -- /usr/bin/python3 -u "$TOOLS/guest_hostile.py" \
  --echo "$ECHO_PORT" --udp "$UDP_PORT" --closed "$CLOSED_PORT" --sink "$(cat "$SINK_PF")"
sed 's/^/    /' "$OUT"
e2e_expect_rc 0 "every probe passed and ferry kept working"

# ferry's own counters: every frame the guest sent as malformed was counted
# as such, the frames from multicast MACs or to other MACs as not for us,
# and those from another IP address than the guest's as spoofed.
want_malformed=$(sed -n 's/^malformed_sent \([0-9]*\)$/\1/p' "$OUT")
want_nfu=$(sed -n 's/^not_for_us_sent \([0-9]*\)$/\1/p' "$OUT")
want_spoofed=$(sed -n 's/^spoofed_sent \([0-9]*\)$/\1/p' "$OUT")
line=$(grep -m1 'ferry run: translator:' "$ERR" || true)
got_malformed=$(sed -n 's/.* malformed=\([0-9]*\).*/\1/p' <<<"$line")
got_nfu=$(sed -n 's/.* not_for_us=\([0-9]*\).*/\1/p' <<<"$line")
got_spoofed=$(sed -n 's/.* spoofed_source=\([0-9]*\).*/\1/p' <<<"$line")
e2e_log "translator counters: ${line:-none}"
if [[ -z $want_malformed || -z $got_malformed ]]; then
  e2e_fail "no counters to compare (script: '$want_malformed', ferry: '$got_malformed')"
else
  e2e_expect "malformed counted: ferry $got_malformed, sent $want_malformed" \
    test "$got_malformed" -eq "$want_malformed"
  e2e_expect "not-for-us counted: ferry $got_nfu, sent $want_nfu" test "${got_nfu:-0}" -eq "$want_nfu"
  e2e_expect "spoofed sources counted: ferry ${got_spoofed:-none}, sent $want_spoofed" \
    test "${got_spoofed:--1}" -eq "$want_spoofed"
fi
# ... and every malformed DHCP, DHCPv6, DNS query and router solicitation by
# the guest services.
want_svc=$(sed -n 's/^services_malformed_sent \([0-9]*\)$/\1/p' "$OUT")
got_svc=$(sed -n 's/.* services_malformed=\([0-9]*\).*/\1/p' <<<"$line")
e2e_expect "services' malformed counted: ferry ${got_svc:-none}, sent ${want_svc:-none}" \
  test -n "$want_svc" -a "${got_svc:-x}" = "$want_svc"
if ((E2E_FAILED)); then e2e_show_output; fi
e2e_check_clean "$FERRY_PID"
