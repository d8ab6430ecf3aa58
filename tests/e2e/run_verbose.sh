#!/usr/bin/env bash
# run_verbose: `-v` logs each flow's open and close, and its errors, one line each.
#
# Before, -v printed only a summary at exit although its help says it logs
# connections. A `ferry run -v` guest: a TCP echo round trip of 1000 bytes
# to the gateway (the host's 127.0.0.1), one UDP echo of 5 bytes, and a TCP
# connect to a closed port. Checks on ferry's stderr:
#   tcp open and close lines with the guest's and the peer's address:port,
#   direction, to_host=1000 to_guest=1000 and reason=closed;
#   a udp open line and a close line (to_host=5 to_guest=5);
#   the refused connect: an error line naming the errno and a close with
#   reason=connect-failed;
#   five datagrams to a closed UDP port (each answered with port
#   unreachable): one error line for the flow, not five;
#   no line per frame: at most 11 flow lines in all.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init

e2e_tcp_echo_server
e2e_udp_echo_server
CLOSED=$(e2e_free_port)
cat >"$E2E_TMP/guest.py" <<'PY'
import socket, sys
ep, up, closed = (int(x) for x in sys.argv[1:4])
s = socket.create_connection(("198.18.0.1", ep), timeout=10)
s.sendall(b"a" * 1000)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
s.close()
print("tcp", len(got))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.connect(("198.18.0.1", up))
u.send(b"hello")
print("udp", len(u.recv(100)))
try:
    socket.create_connection(("198.18.0.1", closed), timeout=5)
    print("connected")
except ConnectionRefusedError:
    print("refused")
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(2)
c.connect(("198.18.0.1", closed))
refused = 0
for _ in range(5):
    c.send(b"x")
    try:
        c.recv(10)
    except ConnectionRefusedError:
        refused += 1
    except socket.timeout:
        pass
print("udp-refused", refused)
PY
chmod 644 "$E2E_TMP/guest.py"
e2e_ferry 60 run -v -- python3 "$E2E_TMP/guest.py" "$ECHO_PORT" "$UDP_PORT" "$CLOSED"
e2e_expect "the guest's round trips worked" bash -c "grep -qx 'tcp 1000' '$OUT' && grep -qx 'udp 5' '$OUT' && grep -qx refused '$OUT' && grep -qx 'udp-refused 5' '$OUT'"
G='198\.18\.0\.2:[0-9]+'
e2e_expect "tcp open line" grep -qE "^ferry: tcp open $G > 198\.18\.0\.1:$ECHO_PORT outbound$" "$ERR"
e2e_expect "tcp close line: bytes each way, reason closed" \
  grep -qE "^ferry: tcp close $G > 198\.18\.0\.1:$ECHO_PORT outbound to_host=1000 to_guest=1000 reason=closed$" "$ERR"
e2e_expect "udp open line" grep -qE "^ferry: udp open $G > 198\.18\.0\.1:$UDP_PORT outbound$" "$ERR"
e2e_expect "udp close line: bytes each way" \
  grep -qE "^ferry: udp close $G > 198\.18\.0\.1:$UDP_PORT outbound to_host=5 to_guest=5 reason=[a-z-]+$" "$ERR"
e2e_expect "the refused connect: an error line with the errno" \
  grep -qE "^ferry: tcp error $G > 198\.18\.0\.1:$CLOSED outbound connect: Connection refused$" "$ERR"
e2e_expect "... and a close line, reason connect-failed" \
  grep -qE "^ferry: tcp close $G > 198\.18\.0\.1:$CLOSED outbound to_host=0 to_guest=0 reason=connect-failed$" "$ERR"
n=$(grep -cE "^ferry: udp error $G > 198\.18\.0\.1:$CLOSED outbound host: Connection refused$" "$ERR")
e2e_expect "5 datagrams to a closed UDP port: one error line ($n)" test "$n" -eq 1
n=$(grep -cE "^ferry: (tcp|udp) " "$ERR")
e2e_expect "one line per event, not per frame ($n lines)" test "$n" -le 11
((E2E_FAILED)) && e2e_show_output
true
