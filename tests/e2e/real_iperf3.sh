#!/usr/bin/env bash
# real_iperf3: iperf3 through ferry, short runs (2 s each, under nice).
#  * outbound, to an iperf3 server of our own on 127.0.0.1 and one on ::1
#    reached through the gateway: TCP guest->host and -R, -P 4 both ways,
#    --bidir, UDP at 50 Mbit/s both ways (most datagrams arrive: loss under 50 %), the same over
#    IPv6; host->guest with 1 KiB writes and with a 16 KiB guest buffer at
#    no less than 50 Mbit/s, with and without the fast path; at MTU 1500,
#    UDP datagrams above the MTU both ways and big pings (IP fragments,
#    IPv4 and IPv6);
#  * inbound: an iperf3 server inside the guest behind -t/-u PORT, TCP both
#    ways and UDP from the host;
#  * every run moves data and ends without error, and afterwards ferry holds
#    no more fds than before and no TCP connection.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/real_e2e.sh"
real_need iperf3

P4=$(real_free_port)
P6=$(real_free_port)
FP=$(real_free_port)
[[ -n $P4 && -n $P6 && -n $FP && $P4 != "$P6" && $P4 != "$FP" && $P6 != "$FP" ]] || e2e_die "no free ports"
# servers bounded by the scenario (killed by PID at exit); nice: the machine
# is shared
nice -n 19 iperf3 -s -B 127.0.0.1 -p "$P4" >"$E2E_TMP/srv4.log" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
nice -n 19 iperf3 -s -B ::1 -p "$P6" >"$E2E_TMP/srv6.log" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
e2e_wait_port "$P4" 10 || e2e_die "iperf3 server (127.0.0.1) did not start"
e2e_wait_port "$P6" 10 ::1 || e2e_die "iperf3 server (::1) did not start"

# check.py FILE KIND: KIND tcp: moved > 1 MB each way it measured, no error;
# udp: > 1000 datagrams, loss < 50 % (see below)
cat >"$E2E_TMP/check.py" <<'PY'
import json, sys
f, kind = sys.argv[1], sys.argv[2]
min_mbps = float(sys.argv[3]) if len(sys.argv) > 3 else 0
try:
    j = json.load(open(f))
except Exception as e:
    sys.exit("%s: no JSON (%s): %s" % (f, e, open(f).read()[-300:]))
if j.get("error"):
    sys.exit("%s: iperf3 error: %s" % (f, j["error"]))
end = j["end"]
if kind == "tcp":
    sent, recv = end["sum_sent"], end["sum_received"]
    print("%s: sent %.0f MB, received %.0f MB, %.2f Gbit/s, retransmits %s" % (
        f.split("/")[-1], sent["bytes"] / 1e6, recv["bytes"] / 1e6, recv["bits_per_second"] / 1e9,
        sent.get("retransmits")))
    if recv["bytes"] < 1e6:
        sys.exit("too little received")
    if recv["bits_per_second"] < min_mbps * 1e6:
        sys.exit("%.1f Mbit/s, wanted at least %.0f" % (recv["bits_per_second"] / 1e6, min_mbps))
    if "sum_received_bidir_reverse" in end and end["sum_received_bidir_reverse"]["bytes"] < 1e6:
        sys.exit("too little received in reverse")
else:
    s = end["sum"]
    print("%s: %d datagrams, %d lost (%.2f %%), %.1f Mbit/s, jitter %.3f ms" % (
        f.split("/")[-1], s["packets"], s["lost_packets"], s["lost_percent"], s["bits_per_second"] / 1e6,
        s["jitter_ms"]))
    if s["packets"] < (40 if kind == "udp-few" else 1000):
        sys.exit("too few datagrams")
    # UDP at a fixed rate loses what a starved receiver (iperf3 at nice 19
    # on a shared 2-CPU machine) cannot read in time: the loss rate is a
    # benchmark figure, not a correctness one (5 % failed under load and
    # passed on a quiet machine). Most datagrams must still arrive: a
    # translator that drops every other datagram fails here.
    if s["lost_percent"] >= 50:
        sys.exit("loss %.2f %%" % s["lost_percent"])
PY

# ipf.sh OUT ARGS...: one iperf3 client run (JSON into OUT), run again (20
# times at most, 0.5 s apart) while the server answers that it is between
# tests. An iperf3 server takes one test at a time: until it has finished
# with the test before, it answers the next client "the server is busy
# running a test", or, while it makes its listener again, refuses the
# connection. At nice 19 on a loaded machine a client that starts right
# after the one before met both (logs of full runs: 2026-12-04 21:53,
# tcp-down "Connection refused"; 22:08 and 2026-12-05 06:38, tcp6-down
# "busy": the only failures of runs after the UDP loss rule). A refusal
# that lasts (ferry not forwarding) still fails, after 10 s.
IP="bash $E2E_TMP/ipf.sh"
cat >"$E2E_TMP/ipf.sh" <<'IPF'
out=$1
shift
for i in $(seq 20); do
  timeout 20 nice -n 19 iperf3 -J -t 2 --connect-timeout 5000 "$@" >"$out"
  grep -q -e 'the server is busy running a test' -e 'unable to connect to server: Connection refused' "$out" || exit 0
  sleep 0.5
done
IPF
cat >"$E2E_TMP/guest.sh" <<EOF
set -u
T=$E2E_TMP
nice -n 19 iperf3 -s -p 5201 >\$T/guest-srv.log 2>&1 &
srv=\$!
trap 'kill \$srv 2>/dev/null' EXIT
for i in \$(seq 100); do
  (exec 3<>/dev/tcp/198.18.0.2/5201) 2>/dev/null && break
  sleep 0.05
done
echo 1 >\$T/ready
for i in \$(seq 300); do [ -e \$T/go ] && break; sleep 0.1; done
$IP \$T/o.tcp-up -c 198.18.0.1 -p $P4
$IP \$T/o.tcp-down -c 198.18.0.1 -p $P4 -R
$IP \$T/o.tcp-p4-up -c 198.18.0.1 -p $P4 -P 4
$IP \$T/o.tcp-p4-down -c 198.18.0.1 -p $P4 -P 4 -R
$IP \$T/o.tcp-bidir -c 198.18.0.1 -p $P4 --bidir
# host sender writing 1 KiB at a time (Nagle holds its tails), and a guest
# receiving through a 16 KiB buffer: both wait on our host socket's ACKs
$IP \$T/o.tcp-small-writes -c 198.18.0.1 -p $P4 -R -l 1K -t 1
$IP \$T/o.tcp-small-window -c 198.18.0.1 -p $P4 -R -w 16K -t 1
$IP \$T/o.udp-up -c 198.18.0.1 -p $P4 -u -b 50M -l 1400
$IP \$T/o.udp-down -c 198.18.0.1 -p $P4 -u -b 50M -l 1400 -R
$IP \$T/o.tcp6-up -c fd00:f::1 -p $P6
$IP \$T/o.tcp6-down -c fd00:f::1 -p $P6 -R -P 2
$IP \$T/o.udp6-up -c fd00:f::1 -p $P6 -u -b 50M -l 1400
$IP \$T/o.udp6-down -c fd00:f::1 -p $P6 -u -b 50M -l 1400 -R
echo 1 >\$T/outbound.done
for i in \$(seq 600); do [ -e \$T/done ] && break; sleep 0.1; done
EOF

e2e_netns_snapshot
e2e_ferry_bg 85 run -t "127.0.0.1/$FP:5201" -u "127.0.0.1/$FP:5201" -- bash "$E2E_TMP/guest.sh"
e2e_wait_file "$E2E_TMP/ready" 15 || {
  e2e_show_output
  e2e_die "the guest's iperf3 server did not come up: $(cat "$E2E_TMP/guest-srv.log" 2>/dev/null)"
}
sleep 0.3
BASE_FDS=$(real_fd_count "$FERRY_PID")
e2e_log "ferry $FERRY_PID: $BASE_FDS fds before any connection"
touch "$E2E_TMP/go"
e2e_wait_file "$E2E_TMP/outbound.done" 70 || e2e_fail "the guest's clients did not finish"

# inbound (after the outbound runs: one guest server, one test at a time)
$IP "$E2E_TMP/i.tcp-in" -c 127.0.0.1 -p "$FP"
$IP "$E2E_TMP/i.tcp-out" -c 127.0.0.1 -p "$FP" -R
$IP "$E2E_TMP/i.udp-in" -c 127.0.0.1 -p "$FP" -u -b 50M -l 1400

check() { /usr/bin/python3 "$E2E_TMP/check.py" "$E2E_TMP/$1" "$2" "${3:-0}" | sed "s/^/[$E2E_NAME]   /"; return "${PIPESTATUS[0]}"; }
e2e_expect "TCP guest->host" check o.tcp-up tcp
e2e_expect "TCP host->guest (-R)" check o.tcp-down tcp
e2e_expect "TCP -P 4 guest->host" check o.tcp-p4-up tcp
e2e_expect "TCP -P 4 host->guest (-R)" check o.tcp-p4-down tcp
e2e_expect "TCP --bidir" check o.tcp-bidir tcp
# loopback does 500+ Mbit/s for both. Our host socket ACKs the host's
# sender only when bytes leave it (after the guest's ACK): a 40 ms
# delayed-ACK stall per send buffer's worth made the 16 KiB case 5-30 Mbit/s
# (the 1 KiB case was 4-40 Mbit/s in some runs with the fast path)
e2e_expect "TCP -R, 1 KiB writes: >= 50 Mbit/s" check o.tcp-small-writes tcp 50
e2e_expect "TCP -R, 16 KiB guest buffer: >= 50 Mbit/s" check o.tcp-small-window tcp 50
e2e_expect "UDP 50 Mbit/s guest->host" check o.udp-up udp
e2e_expect "UDP 50 Mbit/s host->guest (-R)" check o.udp-down udp
e2e_expect "IPv6 TCP guest->host" check o.tcp6-up tcp
e2e_expect "IPv6 TCP -P 2 host->guest (-R)" check o.tcp6-down tcp
e2e_expect "IPv6 UDP guest->host" check o.udp6-up udp
e2e_expect "IPv6 UDP host->guest (-R)" check o.udp6-down udp
e2e_expect "inbound TCP host->guest via -t" check i.tcp-in tcp
e2e_expect "inbound TCP guest->host via -t (-R)" check i.tcp-out tcp
e2e_expect "inbound UDP host->guest via -t/-u" check i.udp-in udp

# the 7 UDP flows keep their sockets until idle for 180 s (as passt's)
e2e_expect "ferry back to its fds (+ 7 UDP flows) and no connections" real_wait_healthy "$FERRY_PID" "$BASE_FDS" 10 9
touch "$E2E_TMP/done"
e2e_ferry_wait
e2e_expect_rc 0 "ferry run"
e2e_check_clean "$FERRY_PID"
if ((E2E_FAILED)); then
  tail -5 "$E2E_TMP/srv4.log" "$E2E_TMP/srv6.log" "$E2E_TMP/guest-srv.log" 2>/dev/null | sed 's/^/    /'
  e2e_show_output
fi

# the two small-segment cases without the fast path (every guest ACK
# through userspace)
e2e_ferry 30 run --no-fastpath -- bash -c "
  $IP $E2E_TMP/s.tcp-small-writes -c 198.18.0.1 -p $P4 -R -l 1K -t 1
  $IP $E2E_TMP/s.tcp-small-window -c 198.18.0.1 -p $P4 -R -w 16K -t 1"
e2e_expect_rc 0 "ferry run --no-fastpath"
e2e_expect "--no-fastpath TCP -R, 1 KiB writes: >= 50 Mbit/s" check s.tcp-small-writes tcp 50
e2e_expect "--no-fastpath TCP -R, 16 KiB guest buffer: >= 50 Mbit/s" check s.tcp-small-window tcp 50
((RC == 0)) || e2e_show_output

# a guest at MTU 1500: datagrams above it cross as IP fragments, both ways
# (they were dropped: 0 received), and so do big pings of the gateway
e2e_ferry 30 run -m 1500 -- bash -c "
  $IP $E2E_TMP/m.udp-frag4 -c 198.18.0.1 -p $P4 -R -u -b 10M -l 4000 -t 1
  $IP $E2E_TMP/m.udp-frag6 -c fd00:f::1 -p $P6 -R -u -b 10M -l 20000 -t 1
  $IP $E2E_TMP/m.udp-frag4-up -c 198.18.0.1 -p $P4 -u -b 10M -l 4000 -t 1
  $IP $E2E_TMP/m.udp-frag6-up -c fd00:f::1 -p $P6 -u -b 10M -l 20000 -t 1
  ping -q -c 3 -i 0.2 -W 2 -s 3000 198.18.0.1 >$E2E_TMP/m.ping4 2>&1
  ping -q -c 3 -i 0.2 -W 2 -s 30000 fd00:f::1 >$E2E_TMP/m.ping6 2>&1"
e2e_expect_rc 0 "ferry run -m 1500"
e2e_expect "MTU 1500: UDP 4000-byte datagrams host->guest (IPv4 fragments)" check m.udp-frag4 udp-few
e2e_expect "MTU 1500: UDP 20000-byte datagrams host->guest (IPv6 fragments)" check m.udp-frag6 udp-few
e2e_expect "MTU 1500: UDP 4000-byte datagrams guest->host (IPv4, reassembled)" check m.udp-frag4-up udp-few
e2e_expect "MTU 1500: UDP 20000-byte datagrams guest->host (IPv6, reassembled)" check m.udp-frag6-up udp-few
e2e_expect "MTU 1500: ping -s 3000 of 198.18.0.1 answered" grep -q ' 3 received' "$E2E_TMP/m.ping4"
e2e_expect "MTU 1500: ping -s 30000 of fd00:f::1 answered" grep -q ' 3 received' "$E2E_TMP/m.ping6"
((RC == 0)) || e2e_show_output
