#!/usr/bin/env bash
# limits: per-guest limits hold, and the host's own processes are unaffected.
# `ferry run --max-conns 16 --max-udp-flows 8`: a guest that opens 40 TCP
# connections to a host server (and holds them) gets 16, and RSTs (refused
# connections) for the rest; a guest that opens 100 UDP flows (a connected
# socket each, one datagram) gets 8, and ICMP "administratively prohibited"
# for the other 92 (its sockets fail with EHOSTUNREACH), while the 8 it has
# keep working (a second datagram on each is echoed); ferry holds at most 8
# host UDP sockets (beyond the sockets an idle translator holds), so the
# host's ports are not used up: while the guest is at its limits a host
# process still binds 200 ports. The control run with the default limits
# gets all 40 connections and 100 UDP flows and holds far more sockets: the
# checks can fail. Guests reach only the gateway (loopback).
# Before issue 12's UDP item, a new UDP flow at the limit evicted the least
# recently used one (the guest's oldest flow went dead, silently).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
e2e_tcp_echo_server
e2e_udp_echo_server

cat >"$E2E_TMP/guest.py" <<'PY'
import errno, os, socket, sys, time
port, uport, phase = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ok = refused = 0
held = []
for i in range(40):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("198.18.0.1", port))
        held.append(s)
        ok += 1
    except (ConnectionRefusedError, ConnectionResetError):
        refused += 1
    except OSError:
        pass
print("tcp_ok", ok)
print("tcp_refused", refused)
udp = []
for i in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect(("198.18.0.1", uport))
    u.send(b"x")
    udp.append(u)
time.sleep(1)
# Each socket: echoed, or refused (the ICMP error is reported on the
# connected socket as EHOSTUNREACH), or neither.
answered, refused = [], 0
for u in udp:
    u.settimeout(0.2)
    try:
        u.recv(16)
        answered.append(u)
    except OSError as e:
        refused += e.errno == errno.EHOSTUNREACH
kept = 0
for u in answered:  # the flows the guest has keep working
    u.send(b"y")
    try:
        kept += u.recv(16) == b"y"
    except OSError:
        pass
print("udp_ok", len(answered))
print("udp_refused", refused)
print("udp_kept", kept)
open(phase + ".1", "w").write("1")
for _ in range(200):  # the outer script counts ferry's sockets meanwhile
    if os.path.exists(phase + ".2"):
        break
    time.sleep(0.05)
PY

# sockets T: how many sockets process T holds
sockets() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
# translator_of P: the ferry-translate child of ferry P
translator_of() {
  local c
  for c in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
    [[ $(cat "/proc/$c/comm" 2>/dev/null) == ferry-translate ]] && echo "$c"
  done
}

# run_guest PHASE ARGS...: ferry run ARGS with the guest script; counts the
# translator's sockets while the guest holds its flows (SOCKETS), and has a
# host process bind 200 ports meanwhile (BOUND).
run_guest() {
  local phase=$E2E_TMP/$1
  shift
  e2e_ferry_bg 60 run "$@" -- /usr/bin/python3 -u "$E2E_TMP/guest.py" "$ECHO_PORT" "$UDP_PORT" "$phase"
  e2e_wait_file "$phase.1" 40 || touch "$phase.1.missing"
  local t
  t=$(translator_of "$FERRY_PID")
  SOCKETS=$(sockets "$t")
  BOUND=$(/usr/bin/python3 -c '
import socket
n = 0
keep = []
for i in range(100):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        keep.append(s)
        n += 1
print(n)')
  touch "$phase.2"
  e2e_ferry_wait
}
val() { sed -n "s/^$1 //p" "$OUT" | head -1; }

# The sockets an idle translator holds (its parent's channel, raw ICMP
# sockets when ping sockets are not allowed, ...): the baseline.
e2e_ferry_bg 30 run -- sleep 3
for i in $(seq 40); do
  t=$(translator_of "$FERRY_PID")
  [[ -n $t ]] && break
  sleep 0.1
done
sleep 0.5
IDLE=$(sockets "$t")
e2e_ferry_wait
e2e_log "an idle translator holds $IDLE sockets"

run_guest limited --max-conns 16 --max-udp-flows 8
e2e_expect_rc 0 "ferry run --max-conns 16 --max-udp-flows 8"
e2e_log "limited: tcp_ok=$(val tcp_ok) tcp_refused=$(val tcp_refused) translator sockets=$SOCKETS bound=$BOUND"
e2e_expect "limited: 16 connections" test "$(val tcp_ok)" = 16
e2e_expect "limited: the other 24 refused (RST)" test "$(val tcp_refused)" = 24
e2e_log "limited: udp_ok=$(val udp_ok) udp_refused=$(val udp_refused) udp_kept=$(val udp_kept)"
e2e_expect "limited: 8 UDP flows" test "$(val udp_ok)" = 8
e2e_expect "limited: the other 92 refused (ICMP prohibited: EHOSTUNREACH)" test "$(val udp_refused)" = 92
e2e_expect "limited: the 8 UDP flows kept working" test "$(val udp_kept)" = 8
# 16 TCP + 8 UDP beyond the idle translator's own
e2e_expect "limited: at most 16 + 8 sockets beyond the idle $IDLE" test "$SOCKETS" -le $((IDLE + 24))
e2e_expect "limited: the host still binds 200 ports" test "$BOUND" = 200

run_guest control
e2e_expect_rc 0 "ferry run with the default limits"
e2e_log "control: tcp_ok=$(val tcp_ok) translator sockets=$SOCKETS"
e2e_expect "control: 40 connections" test "$(val tcp_ok)" = 40
e2e_expect "control: 100 UDP flows" test "$(val udp_ok)" = 100
e2e_expect "control: far more sockets held" test "$SOCKETS" -gt $((IDLE + 100))

e2e_ferry 10 run --max-udp-flows 0 -- true
e2e_expect_rc 2 "--max-udp-flows 0 is a usage error"
