#!/usr/bin/env bash
# port_specs: pasta's -t all with an exclusion, from a peer one veth hop
# away (MTU 1500). ferry runs in host namespace RH, where a host process
# already listens on port HOSTP: `-t all,~EXCL` forwards the guest's port
# GOOD, not EXCL (excluded), and leaves HOSTP to the host's listener (-v
# says 1 port was skipped); ephemeral ports are not forwarded either.
source "$(dirname "$0")/lib.sh"
e2e_init

e2e_remote_topology 1500
E2E_FERRY_IN=("${RHN[@]}")
HOSTP=2000 GOOD=2081 EXCL=2082 EPH=$(awk '{print $1 + 5}' /proc/sys/net/ipv4/ip_local_port_range)

# The host's own listener on HOSTP in RH: answers "host", bounded to 60 s.
"${RHN[@]}" timeout 60 /usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 2000)); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(b"host\n"); c.close()' &
e2e_on_exit "e2e_kill_pid $!"
for ((i = 0; i < 50; i++)); do
  "${RHN[@]}" ss -Htln | grep -q ":$HOSTP " && break
  sleep 0.1
done

# The guest answers "guest PORT" on GOOD, EXCL and EPH until the test is done.
cat >"$E2E_TMP/guest.py" <<'PY'
import os, select, socket, sys
done, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
ls = []
for p in ports:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", p)); s.listen(8); ls.append(s)
open(done + ".ready", "w").write("1")
for _ in range(600):
    if os.path.exists(done): break
    r, _, _ = select.select(ls, [], [], 0.1)
    for s in r:
        c, _ = s.accept(); c.sendall(b"guest %d\n" % s.getsockname()[1]); c.close()
PY
e2e_ferry_bg 120 run -v -t "all,~$EXCL" -- /usr/bin/python3 "$E2E_TMP/guest.py" "$E2E_TMP/done" $GOOD $EXCL $EPH
e2e_wait_file "$E2E_TMP/done.ready" 60 || e2e_fail "the guest's listeners did not start"
for ((i = 0; i < 100; i++)); do
  "${RHN[@]}" ss -Htln | grep -q ":$GOOD " && break
  sleep 0.2
done

ask() { "${RPN[@]}" timeout 5 /usr/bin/python3 -c '
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3); print(c.recv(100).decode().strip())
except OSError as e: print("error", type(e).__name__)' "${REMOTE_H4[0]}" "$1"; }
e2e_expect "port $GOOD reaches the guest" test "$(ask $GOOD)" = "guest $GOOD"
e2e_expect "excluded port $EXCL is not forwarded" test "$(ask $EXCL)" = "error ConnectionRefusedError"
e2e_expect "ephemeral port $EPH is not forwarded" test "$(ask $EPH)" = "error ConnectionRefusedError"
e2e_expect "port $HOSTP in use stays the host's" test "$(ask $HOSTP)" = "host"
touch "$E2E_TMP/done"
e2e_ferry_wait
e2e_expect_rc 0 "guest exits"
e2e_expect "-v says the in-use port was skipped" grep -q -- "-t all: 1 ports in use on the host skipped" "$ERR"
grep -q "skipped" "$ERR" || e2e_show_output
e2e_check_clean "$FERRY_PID"
