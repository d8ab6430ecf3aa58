#!/usr/bin/env bash
# attach_veth: `ferry attach` on the host end of a veth, end to end.
#
# Topology (DESIGN.md "Test topology"): namespace H (host side: ferry and the
# HTTP server on 127.0.0.1, entered with nsenter so bpffs stays visible) and
# namespace G (the guest: 198.18.0.2/24, fd00:f::2/64, default routes via the
# gateway .1 / ::1), one veth between them. Checks:
#   bad usage -> 2; a missing device -> one-line error, 1, nothing left;
#   attach -> 0, status -j/conns -j list the guest's download while it runs,
#   64 MiB downloaded from 127.0.0.1 in H with equal sha256 (IPv4 and IPv6);
#   a second attach -> "already attached", 1, first one unharmed;
#   kill -9 of the service, then detach -> no program, link, pin or run dir;
#   detach again -> "not attached", 0; attach after a kill -9 (restart)
#   picks up cleanly, one program on DEV, and works, including an inbound
#   -t forward from H's 127.0.0.1 to the guest's port 80 (-a names the guest);
#   a hung (SIGSTOPped) service: conns still answers, detach --timeout 1
#   escalates to SIGKILL and cleans up.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
command -v bpftool >/dev/null || e2e_die "bpftool missing"

U=$(e2e_unique a)
H=${U}h
G=${U}g
DEV=fa$$$((RANDOM % 100))
DEV=${DEV:0:15}
HN=(nsenter "--net=/run/netns/$H")

# Number of bpf_links (any namespace) running one of the given program ids.
# (bpftool 7.1 lists tcx links without their device, so we match programs.)
links_of() {
  bpftool -j link show | python3 -c '
import json, sys
ids = {int(x) for x in sys.argv[1:] if x}
print(sum(1 for l in json.load(sys.stdin) if l.get("prog_id") in ids))' "$@"
}
export -f links_of

e2e_on_exit "ip netns del $G"
e2e_on_exit "ip netns del $H"
if ! { ip netns add "$H" && ip netns add "$G"; }; then e2e_die "namespaces"; fi
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $DEV -q"
ip -n "$H" link set lo up
ip -n "$G" link set lo up
ip link add "$DEV" netns "$H" mtu 65520 type veth peer name eth0 netns "$G" mtu 65520 || e2e_die "veth"
ip -n "$H" link set "$DEV" up
ip netns exec "$G" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip -n "$G" addr add 198.18.0.2/24 dev eth0
ip -n "$G" -6 addr add fd00:f::2/64 dev eth0 nodad
ip -n "$G" link set eth0 up
ip -n "$G" route add default via 198.18.0.1
ip -n "$G" -6 route add default via fd00:f::1

# ---- usage and missing device
timeout 10 "${HN[@]}" "$FERRY" attach "$DEV" --hook foo 2>"$ERR"
e2e_expect "bad --hook -> 2" test $? -eq 2
e2e_expect "bad --hook names it" grep -q "bad --hook" "$ERR"
timeout 10 "${HN[@]}" "$FERRY" attach 2>"$ERR"
e2e_expect "no device argument -> 2" test $? -eq 2
timeout 10 "${HN[@]}" "$FERRY" attach "$DEV" -a 300.1.1.1/24 2>"$ERR"
e2e_expect "bad address -> 2" test $? -eq 2
timeout 10 "${HN[@]}" "$FERRY" attach "${DEV}x" 2>"$ERR"
rc=$?
e2e_expect "missing device -> 1" test $rc -eq 1
e2e_expect "missing device: one line naming it" bash -c "[[ \$(wc -l <'$ERR') -eq 1 ]] && grep -q \"no device '${DEV}x'\" '$ERR'"
e2e_expect "missing device leaves no run dir" test ! -e "/run/ferry/${DEV}x"
e2e_expect "missing device leaves no pins" test ! -e "/sys/fs/bpf/ferry/${DEV}x"
setpriv --reuid=65534 --regid=65534 --clear-groups "$FERRY" attach "$DEV" 2>"$ERR"
e2e_expect "not root -> 1" test $? -eq 1
e2e_expect "not root: says so" grep -q "needs root" "$ERR"
timeout 5 "$FERRY" status --bogus 2>"$ERR"
e2e_expect "status bad option -> 2" test $? -eq 2
timeout 5 "$FERRY" status "${DEV}x" 2>"$ERR"
e2e_expect "status of a device not attached -> 1" test $? -eq 1
for c in attach detach status conns; do
  timeout 5 "$FERRY" "$c" --help >"$OUT" 2>&1
  e2e_expect "$c --help" bash -c "grep -q 'usage: ferry $c' '$OUT'"
done

# ---- attach
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" 2>"$ERR"
rc=$?
cat "$ERR"
[[ $rc -eq 0 ]] || e2e_die "attach failed ($rc): $(cat "$ERR"; cat "/run/ferry/$DEV/log" 2>/dev/null)"
PID=$(cat "/run/ferry/$DEV/pid")
e2e_log "service pid $PID"
e2e_expect "pins present" test -e "/sys/fs/bpf/ferry/$DEV/link_dev" -a -e "/sys/fs/bpf/ferry/$DEV/conns"

# ---- second attach
timeout 10 "${HN[@]}" "$FERRY" attach "$DEV" 2>"$ERR"
rc=$?
e2e_expect "second attach -> 1" test $rc -eq 1
e2e_expect "second attach says already attached" grep -q "already attached" "$ERR"
e2e_expect "first service still alive" kill -0 "$PID"

# ---- 64 MiB download from 127.0.0.1 in H (IPv4) and ::1 (IPv6)
WWW=$E2E_TMP/www
mkdir -p "$WWW"
head -c $((64 << 20)) /dev/urandom >"$WWW/blob"
WANT=$(sha256sum <"$WWW/blob" | cut -d' ' -f1)
"${HN[@]}" timeout 120 python3 -m http.server --bind 127.0.0.1 --directory "$WWW" 8080 >"$E2E_TMP/http4.log" 2>&1 &
HTTP4=$!
e2e_on_exit "e2e_kill_pid $HTTP4"
"${HN[@]}" timeout 120 python3 -m http.server --bind ::1 --directory "$WWW" 8080 >"$E2E_TMP/http6.log" 2>&1 &
HTTP6=$!
e2e_on_exit "e2e_kill_pid $HTTP6"
for _ in $(seq 50); do
  "${HN[@]}" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 && exec 3<>/dev/tcp/::1/8080' 2>/dev/null && break
  sleep 0.1
done

# Rate-limited so the flow lives long enough to be seen (about 4 s).
timeout 60 ip netns exec "$G" curl -sS -g --limit-rate 16M -o "$E2E_TMP/got4" "http://198.18.0.1:8080/blob" 2>"$E2E_TMP/curl4.err" &
CURL=$!
e2e_on_exit "e2e_kill_pid $CURL"
SAW_STATUS=0 SAW_CONNS=0
for _ in $(seq 40); do
  sleep 0.1
  timeout 5 "$FERRY" status "$DEV" -j >"$OUT" 2>&1 || continue
  python3 - "$OUT" "$DEV" <<'PY' && SAW_STATUS=1
import json, sys
d = json.load(open(sys.argv[1]))
a = [x for x in d["attachments"] if x["device"] == sys.argv[2]]
assert a and a[0]["alive"] and a[0]["hook"] == "tc" and a[0]["connections"] >= 1
assert a[0]["counters"]["ipv4_tcp"] > 0 and a[0]["programs"]["dev"] > 0
PY
  timeout 5 "$FERRY" conns "$DEV" -j >"$OUT" 2>&1 || continue
  python3 - "$OUT" "$DEV" <<'PY' && SAW_CONNS=1
import json, sys
d = json.load(open(sys.argv[1]))
c = [x for x in d["connections"] if x["instance"] == sys.argv[2] and x["peer_port"] == 8080]
assert c and c[0]["state"] == "established" and c[0]["guest"] == "198.18.0.2"
assert c[0]["peer"] == "198.18.0.1" and c[0]["snd_nxt"] != 0 and c[0]["mss"] > 0
PY
  ((SAW_STATUS && SAW_CONNS)) && break
done
e2e_expect "status -j shows the attachment with a connection during the transfer" test $SAW_STATUS -eq 1
e2e_expect "conns -j lists the download (established, 198.18.0.2 -> 198.18.0.1:8080)" test $SAW_CONNS -eq 1
timeout 5 "$FERRY" conns "$DEV" | head -3
wait $CURL
e2e_expect "IPv4 download completed" test $? -eq 0
e2e_expect "IPv4 sha256 equal" test "$(sha256sum <"$E2E_TMP/got4" | cut -d' ' -f1)" = "$WANT"
timeout 60 ip netns exec "$G" curl -sS -g -o "$E2E_TMP/got6" "http://[fd00:f::1]:8080/blob"
e2e_expect "IPv6 download completed" test $? -eq 0
e2e_expect "IPv6 sha256 equal" test "$(sha256sum <"$E2E_TMP/got6" 2>/dev/null | cut -d' ' -f1)" = "$WANT"

sleep 1.2  # the service writes its own counters once a second
timeout 5 "$FERRY" status "$DEV" -j >"$OUT"
e2e_expect "status -j service_counters: both downloads' bytes went to the guest" python3 -c "
import json; a = json.load(open('$OUT'))['attachments'][0]; c = a['service_counters']
assert c['tcp_bytes_to_guest'] >= 2 * (64 << 20) and c['tcp_conns_outbound'] >= 2, c
assert 0 <= a['service_counters_age_s'] <= 2, a"

# ---- kill -9, then detach
PROG_DEV=$(sed -n 's/^prog_dev=//p' "/run/ferry/$DEV/state")
PROG_TAP=$(sed -n 's/^prog_tap=//p' "/run/ferry/$DEV/state")
kill -KILL "$PID"
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
timeout 5 "$FERRY" status "$DEV" >"$OUT" 2>&1
e2e_expect "status after kill -9 says not running" grep -q "NOT RUNNING" "$OUT"
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" 2>"$ERR"
e2e_expect "detach after kill -9 -> 0" test $? -eq 0
e2e_expect "no pin dir" test ! -e "/sys/fs/bpf/ferry/$DEV"
e2e_expect "no run dir" test ! -e "/run/ferry/$DEV"
e2e_expect "dev program gone" bash -c "! bpftool prog show id $PROG_DEV >/dev/null 2>&1"
e2e_expect "tap program gone" bash -c "! bpftool prog show id $PROG_TAP >/dev/null 2>&1"
e2e_expect "no bpf_link left with our programs" test "$(links_of "$PROG_DEV" "$PROG_TAP")" -eq 0
e2e_expect "no XDP program on $DEV" bash -c "! ip -n $H link show $DEV | grep -q prog/xdp"
e2e_expect "private tap gone" bash -c "! ip -n $H -o link show | grep -q ': fy'"
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" 2>"$ERR"
e2e_expect "detach again -> 0" test $? -eq 0
e2e_expect "detach again says not attached" grep -q "not attached" "$ERR"

# ---- restart after a kill -9 without detach: stale pins cleaned, one program
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q || e2e_die "re-attach failed"
PID=$(cat "/run/ferry/$DEV/pid")
OLD_PROG=$(sed -n 's/^prog_dev=//p' "/run/ferry/$DEV/state")
kill -KILL "$PID"
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q -a 198.18.0.2/24 -t 127.0.0.1/9000:80 2>"$ERR"
e2e_expect "attach after kill -9 -> 0" test $? -eq 0
NEW_PROG=$(sed -n 's/^prog_dev=//p' "/run/ferry/$DEV/state")
e2e_expect "the killed service's link and program are gone" bash -c "[[ \$(links_of $OLD_PROG) -eq 0 ]] && ! bpftool prog show id $OLD_PROG >/dev/null 2>&1"
e2e_expect "exactly one link with the new program" test "$(links_of "$NEW_PROG")" -eq 1
timeout 30 ip netns exec "$G" curl -sS -o "$E2E_TMP/got4b" "http://198.18.0.1:8080/blob"
e2e_expect "download after restart" test "$(sha256sum <"$E2E_TMP/got4b" | cut -d' ' -f1)" = "$WANT"
# Inbound: host 127.0.0.1:9000 in H -> guest port 80 (-a names the guest).
# (socketserver, not http.server's HTTPServer: that one resolves its own
# name at start, a DNS query the guest would send through ferry and wait for)
ip netns exec "$G" timeout 60 python3 -c '
import http.server, os, socketserver, sys
os.chdir(sys.argv[1])
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("198.18.0.2", 80), http.server.SimpleHTTPRequestHandler).serve_forever()' "$WWW" \
  >"$E2E_TMP/httpg.log" 2>&1 &
HTTPG=$!
e2e_on_exit "e2e_kill_pid $HTTPG"
for _ in $(seq 50); do
  ip netns exec "$G" bash -c 'exec 3<>/dev/tcp/198.18.0.2/80' 2>/dev/null && break
  sleep 0.1
done
timeout 30 "${HN[@]}" curl -sS -o "$E2E_TMP/gotin" "http://127.0.0.1:9000/blob"
e2e_expect "inbound -t forward into the guest" test "$(sha256sum <"$E2E_TMP/gotin" 2>/dev/null | cut -d' ' -f1)" = "$WANT"
# A hung service (SIGSTOP): conns still reads its table from the pins, and
# detach escalates to SIGKILL after --timeout and cleans up.
timeout 60 ip netns exec "$G" curl -sS --limit-rate 4M -o /dev/null "http://198.18.0.1:8080/blob" 2>/dev/null &
SLOW=$!
e2e_on_exit "e2e_kill_pid $SLOW"
sleep 1
PID=$(cat "/run/ferry/$DEV/pid")
kill -STOP "$PID"
timeout 5 "$FERRY" conns "$DEV" -j >"$OUT"
e2e_expect "conns of a hung service lists its flow" python3 -c "
import json; c = json.load(open('$OUT'))['connections']; assert any(x['peer_port'] == 8080 for x in c), c"
SECONDS=0
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" --timeout 1 2>"$ERR"
rc=$?
e2e_expect "detach of a hung service -> 0 within a few seconds" test $rc -eq 0 -a $SECONDS -le 8
e2e_expect "detach said it used SIGKILL" grep -q SIGKILL "$ERR"
e2e_expect "hung service: no pins, no run dir" test ! -e "/sys/fs/bpf/ferry/$DEV" -a ! -e "/run/ferry/$DEV"
e2e_kill_pid "$SLOW"

# Last attach, plain detach.
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q || e2e_die "attach after the hung service"
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "final detach -> 0" test $? -eq 0
e2e_expect "final: no pins, no run dir" test ! -e "/sys/fs/bpf/ferry/$DEV" -a ! -e "/run/ferry/$DEV"
