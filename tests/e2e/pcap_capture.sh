#!/usr/bin/env bash
# pcap_capture: --pcap FILE records the guest's frames both ways in a file
# tcpdump reads, for a peer one veth hop away (MTU 1500, e2e_remote_topology;
# ferry runs in host namespace RH):
#  * `ferry run -m 1500 --pcap F`: the guest fetches from a TCP server in RP
#    and pings RP; `tcpdump -r F` shows the whole handshake (SYN, SYN-ACK,
#    ACK), the data and the echo request and reply;
#  * `ferry attach DEV --pcap F` (guest namespace G behind a veth of MTU
#    1500): the same, read after detach;
#  * --pcap-size 4096 (and some 8 KiB of frames): the file stays within
#    4096 bytes, still reads whole, and ferry says the capture stopped;
#  * bad values: --pcap-size 10 / 1x is usage (exit 2), a --pcap file
#    that cannot be made is exit 1 with one line.
source "$(dirname "$0")/lib.sh"
e2e_init
command -v tcpdump >/dev/null || e2e_die "tcpdump missing (scripts/install-deps.sh installs it)"

e2e_remote_topology 1500
E2E_FERRY_IN=("${RHN[@]}")
P4=${REMOTE_P4[0]}

# The peer: a TCP server in RP answering "hello" to each connection, 60 s.
portfile=$E2E_TMP/peer.port
"${RPN[@]}" timeout 60 /usr/bin/python3 -u - "$portfile" "$P4" >"$E2E_TMP/peer.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket()
s.bind((sys.argv[2], 0))
s.listen(8)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept()
    c.recv(100)
    c.sendall(b"hello from the peer\n")
    c.close()
PY
e2e_on_exit "e2e_kill_pid $!"
e2e_wait_file "$portfile" 5 || e2e_die "peer did not start"
PPORT=$(cat "$portfile")

# Checks a capture: readable by tcpdump, with the handshake, data and echo
# between GUEST and the peer. $1: file, $2: what (run/attach), $3: guest address.
check_capture() {
  local f=$1 what=$2 g=$3 txt=$E2E_TMP/$2.txt
  tcpdump -r "$f" -nn -v >"$txt" 2>"$E2E_TMP/$what.tcpdump.err"
  e2e_expect "$what: tcpdump -r reads the file" test $? -eq 0
  tcpdump -r "$f" -nn >"$txt" 2>/dev/null
  e2e_expect "$what: the guest's SYN" grep -q "IP $g\.[0-9]* > $P4\.$PPORT: Flags \[S\]," "$txt"
  e2e_expect "$what: the peer's SYN-ACK to the guest" grep -q "IP $P4\.$PPORT > $g\.[0-9]*: Flags \[S\.\]," "$txt"
  e2e_expect "$what: the guest's ACK of it" grep -q "IP $g\.[0-9]* > $P4\.$PPORT: Flags \[\.\], ack 1," "$txt"
  e2e_expect "$what: the peer's data to the guest" grep -q "IP $P4\.$PPORT > $g\.[0-9]*: Flags \[.*P.*\].*length 20" "$txt"
  e2e_expect "$what: echo request to the peer" grep -q "IP $g > $P4: ICMP echo request" "$txt"
  e2e_expect "$what: echo reply from the peer" grep -q "IP $P4 > $g: ICMP echo reply" "$txt"
  ((E2E_FAILED)) && sed 's/^/    /' "$txt" | head -40
  return 0
}

GUEST_CMD="printf 'hi\n' | socat -t 5 -T 10 - TCP4:$P4:$PPORT; ping -c 1 -W 5 $P4 >/dev/null && echo ping-ok"

# ---- ferry run
CAP=$E2E_TMP/run.pcap
e2e_ferry 40 run -m 1500 --pcap "$CAP" -- sh -c "$GUEST_CMD"
e2e_expect_rc 0 "ferry run --pcap"
e2e_expect "run: the guest got the peer's answer" grep -q "hello from the peer" "$OUT"
e2e_expect "run: the guest's ping was answered" grep -q ping-ok "$OUT"
check_capture "$CAP" run 198.18.0.2
e2e_check_clean "$FERRY_PID"

# ---- the size bound: 4096 bytes, capture stopped, the file whole
CAP=$E2E_TMP/small.pcap
e2e_ferry 40 run -m 1500 --pcap "$CAP" --pcap-size 4096 -- sh -c "$GUEST_CMD; ping -c 4 -i 0.2 -s 1000 -W 5 $P4"
e2e_expect_rc 0 "ferry run --pcap-size 4096"
size=$(stat -c %s "$CAP" 2>/dev/null || echo 0)
e2e_expect "--pcap-size 4096: the file has $size bytes (<= 4096, > 1024)" test "$size" -le 4096 -a "$size" -gt 1024
e2e_expect "--pcap-size: tcpdump reads every record" tcpdump -r "$CAP" -nn -w /dev/null
e2e_expect "--pcap-size: ferry said the capture stopped" grep -q "reached --pcap-size (4096 bytes): capture stopped" "$ERR"

# ---- bad values
e2e_ferry 10 run --pcap-size 10 -- true
e2e_expect_rc 2 "--pcap-size 10 (below 1024)"
e2e_ferry 10 run --pcap-size 1x -- true
e2e_expect_rc 2 "--pcap-size 1x"
e2e_expect "one line says so" test "$(wc -l <"$ERR")" -eq 1
e2e_ferry 10 run --pcap "$E2E_TMP/no/such/dir/x.pcap" -- true
e2e_expect_rc 1 "--pcap in a missing directory"
e2e_expect "one line names the file" grep -q "pcap.*no/such/dir/x.pcap" "$ERR"

# ---- ferry attach: guest namespace G behind a veth of MTU 1500
G=$(e2e_unique g)
DEV=fp$$$((RANDOM % 100))
DEV=${DEV:0:15}
GN=(nsenter "--net=/run/netns/$G")
ip netns add "$G" || e2e_die "ip netns add $G"
e2e_on_exit "ip netns del $G"
ip -n "$G" link set lo up
ip link add "$DEV" netns "$RH" mtu 1500 type veth peer name eth0 netns "$G" mtu 1500 || e2e_die "veth"
ip -n "$RH" link set "$DEV" up
ip -n "$G" addr add 198.18.0.2/24 dev eth0
ip -n "$G" link set eth0 up
ip -n "$G" route add default via 198.18.0.1
CAP=$E2E_TMP/attach.pcap
timeout 30 "${RHN[@]}" "$FERRY" attach "$DEV" -q -4 --pcap "$CAP" 2>"$ERR" ||
  e2e_die "attach failed: $(cat "$ERR" "/run/ferry/$DEV/log" 2>/dev/null)"
timeout -k 5 30 "${GN[@]}" sh -c "$GUEST_CMD" >"$OUT" 2>&1
e2e_expect "attach: the guest got the peer's answer" grep -q "hello from the peer" "$OUT"
e2e_expect "attach: the guest's ping was answered" grep -q ping-ok "$OUT"
timeout 20 "${RHN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "detach -> 0" test $? -eq 0
check_capture "$CAP" attach 198.18.0.2
