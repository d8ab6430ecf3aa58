#!/usr/bin/env bash
# run_auto_forward: `ferry run -t auto,~EXCL -u auto,~UEXCL -- GUEST`, as
# root and as an ordinary user (uid 65534, rootless), with the client in a
# peer namespace one veth hop away (MTU 1500) connecting to the address of
# host namespace RH, where ferry runs. The guest (tests/e2e, a python
# script driven by files) listens on:
#   TCP 0.0.0.0:TP    answers the sha256 of what the client sent (2 MiB),
#   TCP [::]:TP6      the same, dual-stack (reached over IPv6),
#   TCP 0.0.0.0:TX    excluded (~TX): never forwarded,
#   TCP 127.0.0.1:TL  loopback only: not forwarded (the tap cannot reach it),
#   TCP 0.0.0.0:TLOW  below 1024: the sandboxed translator may not bind it;
#                     ferry says so once on stderr,
#   UDP 0.0.0.0:UP    echoes,
#   UDP 0.0.0.0:UX    excluded (~UX),
# and a UDP client socket (unconnected, so it looks like a server's in
# /proc/net/udp) that talks to an echo server on the peer: the flow holds
# its port on the host, which -u auto must neither take nor report.
# Then it stops listening on TP and UP (the host ports close: connection
# refused, no UDP socket), and listens on TP again (forwarded again).
# Every wait polls with a bound; nothing depends on timing.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
command -v setpriv >/dev/null || e2e_die "setpriv missing"
USER_ID=65534
TP=2080 TP6=2086 TX=2022 TL=2081 TLOW=81 UP=2053 UX=2054

e2e_remote_topology 1500
H4=${REMOTE_H4[0]} H6=${REMOTE_H6[0]}
E2E_FERRY_IN=("${RHN[@]}")

# Shared with the guest (which, rootless, is uid 65534 outside its namespace).
SH=$E2E_TMP/share
mkdir -p "$SH"
chmod 777 "$SH"
cp "$FERRY" "$SH/ferry"
chmod 755 "$SH/ferry"
mknod -m 0666 "$SH/tun" c 10 200 || e2e_die "mknod a tun node"

cat >"$SH/guest.py" <<'PY'
# The guest: listeners as the scenario's header says, driven by files in DIR.
import hashlib, os, socket, sys, threading, time
d = sys.argv[1]
tp, tp6, tx, tl, tlow, up, ux = (int(x) for x in sys.argv[2:9])
peer, peer_port = sys.argv[9], int(sys.argv[10])

def tcp(addr, port, v6=False):
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind((addr, port)); s.listen(8)
    def serve():
        while True:
            try: c, _ = s.accept()
            except OSError: return
            h = hashlib.sha256()
            while True:
                b = c.recv(65536)
                if not b: break
                h.update(b)
            c.sendall(h.hexdigest().encode()); c.close()
    threading.Thread(target=serve, daemon=True).start()
    return s

def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port)); s.settimeout(0.2)  # close() while blocked in recvfrom would keep it bound
    def serve():
        while True:
            try: b, a = s.recvfrom(2048)
            except socket.timeout: continue
            except OSError: return
            s.sendto(b"echo " + b, a)
    threading.Thread(target=serve, daemon=True).start()
    return s

def wait(name):
    for _ in range(1200):
        if os.path.exists(os.path.join(d, name)): return
        time.sleep(0.1)
    sys.exit(3)

def mark(name): open(os.path.join(d, name), "w").write("1")

main, main_udp = tcp("0.0.0.0", tp), udp(up)
others = [tcp("::", tp6, True), tcp("0.0.0.0", tx), tcp("127.0.0.1", tl), tcp("0.0.0.0", tlow), udp(ux)]
mark("listening")
# A UDP client on an unconnected socket (state 07, as a server's) that
# talks to the peer: its flow keeps the source port on the host, and -u
# auto must not call that port a refused forward.
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); client.settimeout(5)
try:
    client.sendto(b"hi", (peer, peer_port)); got = client.recv(100).decode()
except OSError as e:
    got = "error " + type(e).__name__
open(os.path.join(d, "client-udp"), "w").write(got)
wait("stop")
main.shutdown(socket.SHUT_RDWR); main.close()
main_udp.close()
mark("stopped")
wait("again")
main = tcp("0.0.0.0", tp)
mark("listening-again")
wait("done")
PY

# The client, in the peer namespace RP: "ok" when the guest's sha256 of 2 MiB
# matches, else the error's name.
cat >"$SH/client.py" <<'PY'
import hashlib, os, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    c = socket.create_connection((host, port), timeout=10)
    data = os.urandom(2 << 20)
    c.sendall(data); c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = c.recv(4096)
        if not b: break
        got += b
    print("ok" if got.decode() == hashlib.sha256(data).hexdigest() else "mismatch")
except OSError as e:
    print("error", type(e).__name__)
PY
cat >"$SH/uclient.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
try:
    s.sendto(b"ping", (sys.argv[1], int(sys.argv[2]))); print(s.recv(100).decode())
except OSError as e:
    print("error", type(e).__name__)
PY

# The peer's UDP echo (for the guest's client), bounded to 200 s.
PEER_UDP=2099
"${RPN[@]}" timeout 200 /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 2099))
while True:
    b, a = s.recvfrom(2048); s.sendto(b"echo " + b, a)' "${REMOTE_P4[0]}" &
e2e_on_exit "e2e_kill_pid $!"

tcp_ask() { "${RPN[@]}" timeout 20 /usr/bin/python3 "$SH/client.py" "$@"; }
udp_ask() { "${RPN[@]}" timeout 5 /usr/bin/python3 "$SH/uclient.py" "$@"; }
# poll WANT CMD...: until CMD prints WANT, at most 100 tries 0.2 s apart.
poll() {
  local want=$1 i
  shift
  for ((i = 0; i < 100; i++)); do
    [[ $("$@") == "$want" ]] && return 0
    sleep 0.2
  done
  return 1
}
# rh_listens PROTO PORT: a socket of ferry's on PORT in RH (ss -t/-u).
rh_listens() { "${RHN[@]}" ss -Hln"$1" "sport = :$2" | grep -q .; }
rh_quiet() { ! rh_listens "$@"; }

scenario() {
  local mode=$1
  rm -f "$SH"/{listening,stop,stopped,again,listening-again,done} "$E2E_TMP/ferry.pid"
  rm -f "$SH/client-udp"
  local args=(run -v -t "auto,~$TX" -u "auto,~$UX" -- /usr/bin/python3 "$SH/guest.py" "$SH" $TP $TP6 $TX $TL $TLOW $UP $UX
    "${REMOTE_P4[0]}" $PEER_UDP)
  if [[ $mode == root ]]; then
    e2e_ferry_bg 180 "${args[@]}"
  else
    # As uid 65534 with the test's 0666 tun node (the machine's is not changed).
    timeout -k 5 180 unshare -m bash -c 'mount --bind "$0/tun" /dev/net/tun && exec "$@"' "$SH" \
      "${RHN[@]}" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent "$SH/ferry" "${args[@]}" \
      >"$OUT" 2>"$ERR" </dev/null &
    TIMEOUT_PID=$!
    FERRY_PID=0
    e2e_on_exit "e2e_kill_pid $TIMEOUT_PID"
  fi
  e2e_wait_file "$SH/listening" 60 || { e2e_show_output; e2e_die "$mode: the guest's listeners did not start"; }

  e2e_expect "$mode: TCP $TP forwarded, 2 MiB and its sha256 over IPv4 from the peer" poll ok tcp_ask "$H4" $TP
  e2e_expect "$mode: TCP $TP6 (a dual-stack guest listener) over IPv6" poll ok tcp_ask "$H6" $TP6
  e2e_expect "$mode: UDP $UP forwarded (echo)" poll "echo ping" udp_ask "$H4" $UP
  # By now a round has seen every listener of the guest (they all started together).
  e2e_expect "$mode: excluded TCP $TX refused" test "$(tcp_ask "$H4" $TX)" = "error ConnectionRefusedError"
  e2e_expect "$mode: loopback-only TCP $TL refused" test "$(tcp_ask "$H4" $TL)" = "error ConnectionRefusedError"
  e2e_expect "$mode: TCP $TLOW (below 1024) refused" test "$(tcp_ask "$H4" $TLOW)" = "error ConnectionRefusedError"
  e2e_expect "$mode: no host socket on excluded UDP $UX" rh_quiet u $UX
  e2e_expect "$mode: TCP $TLOW said once on stderr" \
    test "$(grep -c -- "-t auto: the guest listens on port $TLOW, not forwarded" "$ERR")" = 1
  e2e_expect "$mode: -v says $TP is forwarded" grep -q -- "-t auto: forwarding port $TP " "$ERR"
  e2e_wait_file "$SH/client-udp" 30 || e2e_fail "$mode: the guest's UDP client did not finish"
  e2e_expect "$mode: the guest's UDP client got the peer's echo" test "$(cat "$SH/client-udp")" = "echo hi"

  # The guest stops listening on TP and UP: the host ports close.
  touch "$SH/stop"
  e2e_wait_file "$SH/stopped" 30 || e2e_fail "$mode: the guest did not stop"
  e2e_expect "$mode: TCP $TP refused once the guest stopped listening" \
    poll "error ConnectionRefusedError" tcp_ask "$H4" $TP
  stopped_udp() { ! rh_listens u $UP && echo gone; }
  e2e_expect "$mode: UDP $UP's host socket closed" poll gone stopped_udp
  e2e_expect "$mode: -v says $TP is no longer forwarded" grep -q -- "-t auto: port $TP no longer forwarded" "$ERR"
  e2e_expect "$mode: TCP $TP6 still forwarded" test "$(tcp_ask "$H6" $TP6)" = ok

  # ... and listens again: forwarded again.
  touch "$SH/again"
  e2e_wait_file "$SH/listening-again" 30 || e2e_fail "$mode: the guest did not listen again"
  e2e_expect "$mode: TCP $TP forwarded again" poll ok tcp_ask "$H4" $TP
  if [[ $mode == root ]]; then
    local counters=/run/ferry-run/run-$FERRY_PID/counters
    e2e_expect "$mode: counters: auto_opened and auto_closed" \
      poll yes bash -c "grep -q '^auto_opened=[1-9]' '$counters' 2>/dev/null && grep -q '^auto_closed=[1-9]' '$counters' && echo yes"
  fi

  touch "$SH/done"
  e2e_ferry_wait
  e2e_expect_rc 0 "$mode: the guest exits 0"
  e2e_expect "$mode: no UDP port said refused (the client's is ferry's own flow)" \
    test "$(grep -c -- "-u auto: the guest listens on port" "$ERR")" = 0
  if ((E2E_FAILED)); then e2e_show_output; fi
  if [[ $mode == root ]]; then e2e_check_clean "$FERRY_PID"; fi
}

scenario root
scenario rootless
