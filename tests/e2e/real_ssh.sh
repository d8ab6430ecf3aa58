#!/usr/bin/env bash
# real_ssh: OpenSSH through ferry, both ways.
#  * outbound: an sshd of our own (own config and host key, on 127.0.0.1 and
#    ::1, a free port) reached from the guest through the gateway, over IPv4
#    and IPv6: commands, 8 parallel sessions, scp of 8 MiB up and down (SFTP
#    and the legacy protocol) with sha256 checks, and keystroke-like
#    sessions (one byte at a time, each waiting for its echo; with a pty and
#    without one, i.e. with Nagle on) whose echo latency must stay far below
#    a delayed-ACK or Nagle stall;
#  * inbound: an sshd inside the guest reached by host clients through
#    -t 127.0.0.1/PORT:22 and -t ::1/PORT:22, commands and scp both ways,
#    at the same time as the outbound traffic;
#  * afterwards ferry holds no more fds than before and no TCP connection.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/real_e2e.sh"
real_need /usr/sbin/sshd ssh scp ssh-keygen sha256sum

KEYS=$E2E_TMP/keys
HPORT=$(real_free_port)   # host sshd
FPORT=$(real_free_port)   # forwarded to the guest's sshd
[[ -n $HPORT && -n $FPORT && $HPORT != "$FPORT" ]] || e2e_die "no free ports"
real_sshd_config "$KEYS/host" "$HPORT" 127.0.0.1 ::1
real_sshd "$KEYS/host"
HOST_SSHD=$SSHD_PID
mkdir -p "$KEYS/guest"
cp "$KEYS/host/id_ed25519" "$KEYS/host/id_ed25519.pub" "$KEYS/guest/"
real_sshd_config "$KEYS/guest" 22 198.18.0.2 fd00:f::2
e2e_wait_port "$HPORT" 10 || e2e_die "host sshd not listening: $(cat "$KEYS/host/sshd.log")"

# 8 MiB each way, random
head -c $((8 << 20)) /dev/urandom >"$E2E_TMP/down.bin"
head -c $((8 << 20)) /dev/urandom >"$E2E_TMP/up.bin"
head -c $((3 << 20)) /dev/urandom >"$E2E_TMP/in-up.bin"

# keystrokes: N single bytes, each sent after the previous one's echo came
# back (plus a small think time, and a 3 s pause half-way); prints the echo
# latencies' median, 95th percentile and maximum in ms
cat >"$E2E_TMP/keys.py" <<'PY'
import os, subprocess, sys, time, select
n, think = int(sys.argv[1]), float(sys.argv[2])
p = subprocess.Popen(sys.argv[3:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
lat = []
deadline = time.time() + 40
# the remote side may print a banner or echo setup first: wait for "READY"
buf = b""
while b"READY" not in buf:
    r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.time()))
    if not r:
        sys.exit("no READY from remote")
    d = os.read(p.stdout.fileno(), 4096)
    if not d:
        sys.exit("remote closed before READY: %r" % buf)
    buf += d
for i in range(n):
    c = bytes([97 + i % 26])
    t0 = time.time()
    p.stdin.write(c)
    got = b""
    while c not in got:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.time()))
        if not r:
            sys.exit("echo %d timed out" % i)
        d = os.read(p.stdout.fileno(), 4096)
        if not d:
            sys.exit("remote closed at keystroke %d" % i)
        got += d
    lat.append((time.time() - t0) * 1000)
    time.sleep(think)
    if i == n // 2:
        time.sleep(3)  # the user pauses: the session idles, then goes on
p.stdin.close()
p.wait(timeout=10)
lat.sort()
print("keystrokes=%d median_ms=%.2f p95_ms=%.2f max_ms=%.2f" % (n, lat[n // 2], lat[int(n * 0.95)], lat[-1]))
PY

# The guest: its own sshd on 198.18.0.2:22 and [fd00:f::2]:22, then (after
# the host's "go") the outbound clients. Results in $E2E_TMP/g.*.
SSHQ="ssh ${SSH_OPTS[*]} -p $HPORT"
SCPQ="scp -q ${SSH_OPTS[*]} -P $HPORT"
cat >"$E2E_TMP/guest.sh" <<EOF
set -u
T=$E2E_TMP
/usr/sbin/sshd -D -e -f $KEYS/guest/sshd_config >\$T/guest-sshd.log 2>&1 &
gsshd=\$!
trap 'kill \$gsshd 2>/dev/null' EXIT
for i in \$(seq 100); do
  (exec 3<>/dev/tcp/198.18.0.2/22) 2>/dev/null && break
  sleep 0.05
done
echo 1 >\$T/ready
for i in \$(seq 300); do [ -e \$T/go ] && break; sleep 0.1; done
r=0
$SSHQ root@198.18.0.1 'echo hello-\$((6*7))' >\$T/g.cmd4 2>\$T/g.cmd4.err || r=1
$SSHQ root@fd00:f::1 'echo v6-\$((6*7))' >\$T/g.cmd6 2>\$T/g.cmd6.err || r=1
# 8 sessions at once
for i in 1 2 3 4 5 6 7 8; do
  $SSHQ root@198.18.0.1 "head -c 200000 /dev/zero | tr '\\\\0' x | wc -c" >\$T/g.par\$i 2>&1 &
  pids="\${pids:-} \$!"
done
wait \$pids  # not the sshd
# scp: SFTP protocol (the default) up and down over IPv4; legacy up over IPv6
$SCPQ \$T/up.bin root@198.18.0.1:\$T/up.got4 2>\$T/g.scp.err || r=1
$SCPQ root@198.18.0.1:\$T/down.bin \$T/down.got4 2>>\$T/g.scp.err || r=1
$SCPQ -O \$T/up.bin root@[fd00:f::1]:\$T/up.got6 2>>\$T/g.scp.err || r=1
$SCPQ -O root@[fd00:f::1]:\$T/down.bin \$T/down.got6 2>>\$T/g.scp.err || r=1
# keystrokes: with a pty (ssh turns Nagle off) and without one (Nagle on)
/usr/bin/python3 \$T/keys.py 120 0.01 ssh -tt ${SSH_OPTS[*]} -p $HPORT root@198.18.0.1 \
  'stty raw -echo; echo READY; exec dd bs=1 count=120 status=none' >\$T/g.keys.pty 2>&1 || r=1
/usr/bin/python3 \$T/keys.py 120 0.01 ssh -T ${SSH_OPTS[*]} -p $HPORT root@fd00:f::1 \
  'echo READY; exec cat' >\$T/g.keys.nopty 2>&1 || r=1
echo \$r >\$T/outbound.rc
for i in \$(seq 600); do [ -e \$T/done ] && break; sleep 0.1; done
EOF

e2e_netns_snapshot
e2e_ferry_bg 85 run -t "127.0.0.1/$FPORT:22" -t "::1/$FPORT:22" -- bash "$E2E_TMP/guest.sh"
e2e_wait_file "$E2E_TMP/ready" 15 || {
  e2e_show_output
  e2e_die "the guest's sshd did not come up: $(cat "$E2E_TMP/guest-sshd.log" 2>/dev/null)"
}
sleep 0.3
BASE_FDS=$(real_fd_count "$FERRY_PID")
e2e_log "ferry $FERRY_PID: $BASE_FDS fds before any connection"
touch "$E2E_TMP/go"

# inbound, while the guest's clients run
ssh "${SSH_OPTS[@]}" -p "$FPORT" root@127.0.0.1 'echo in-$((6*7)); cat /proc/net/if_inet6 | wc -l' \
  >"$E2E_TMP/h.cmd4" 2>&1
e2e_expect "inbound ssh via -t 127.0.0.1/$FPORT:22" grep -qx in-42 "$E2E_TMP/h.cmd4"
ssh "${SSH_OPTS[@]}" -p "$FPORT" root@::1 'echo in6-$((6*7))' >"$E2E_TMP/h.cmd6" 2>&1
e2e_expect "inbound ssh via -t ::1/$FPORT:22" grep -qx in6-42 "$E2E_TMP/h.cmd6"
scp -q "${SSH_OPTS[@]}" -P "$FPORT" "$E2E_TMP/in-up.bin" "root@127.0.0.1:$E2E_TMP/in-up.got" 2>"$E2E_TMP/h.scp.err"
scp -q "${SSH_OPTS[@]}" -P "$FPORT" "root@[::1]:$E2E_TMP/in-up.got" "$E2E_TMP/in-down.got" 2>>"$E2E_TMP/h.scp.err"
same() { [[ -f $2 && $(sha256sum <"$1") == $(sha256sum <"$2") ]]; }
e2e_expect "inbound scp 3 MiB host->guest intact" same "$E2E_TMP/in-up.bin" "$E2E_TMP/in-up.got"
e2e_expect "inbound scp 3 MiB guest->host (IPv6) intact" same "$E2E_TMP/in-up.bin" "$E2E_TMP/in-down.got"

e2e_wait_file "$E2E_TMP/outbound.rc" 70 || e2e_fail "the guest's clients did not finish"
e2e_expect "guest clients exited 0" grep -qx 0 "$E2E_TMP/outbound.rc"
e2e_expect "ssh command over IPv4" grep -qx hello-42 "$E2E_TMP/g.cmd4"
e2e_expect "ssh command over IPv6" grep -qx v6-42 "$E2E_TMP/g.cmd6"
par_ok() { local i; for i in 1 2 3 4 5 6 7 8; do grep -qx 200000 "$E2E_TMP/g.par$i" || return 1; done; }
e2e_expect "8 parallel sessions each got 200000 bytes" par_ok
e2e_expect "scp (SFTP) 8 MiB guest->host intact" same "$E2E_TMP/up.bin" "$E2E_TMP/up.got4"
e2e_expect "scp (SFTP) 8 MiB host->guest intact" same "$E2E_TMP/down.bin" "$E2E_TMP/down.got4"
e2e_expect "scp -O over IPv6 8 MiB guest->host intact" same "$E2E_TMP/up.bin" "$E2E_TMP/up.got6"
e2e_expect "scp -O over IPv6 8 MiB host->guest intact" same "$E2E_TMP/down.bin" "$E2E_TMP/down.got6"
# echo latency: loopback round trips are well under a millisecond; a
# delayed ACK (40 ms) or a Nagle stall behind one shows in the median
keys_ok() {
  local f=$1 med p95
  e2e_log "$(basename "$f"): $(cat "$f")"
  med=$(sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' "$f")
  p95=$(sed -n 's/.*p95_ms=\([0-9.]*\).*/\1/p' "$f")
  [[ -n $med && -n $p95 ]] && awk -v m="$med" -v p="$p95" 'BEGIN { exit !(m < 15 && p < 150) }'
}
e2e_expect "keystrokes with a pty: echo median < 15 ms, p95 < 150 ms" keys_ok "$E2E_TMP/g.keys.pty"
e2e_expect "keystrokes without a pty (Nagle on): echo median < 15 ms, p95 < 150 ms" keys_ok "$E2E_TMP/g.keys.nopty"

e2e_expect "ferry back to its fds and no connections" real_wait_healthy "$FERRY_PID" "$BASE_FDS" 10
touch "$E2E_TMP/done"
e2e_ferry_wait
e2e_expect_rc 0 "ferry run"
e2e_check_clean "$FERRY_PID"
if ((E2E_FAILED)); then
  for f in g.cmd4.err g.cmd6.err g.scp.err h.scp.err h.cmd4 guest-sshd.log; do
    [[ -s $E2E_TMP/$f ]] && { e2e_log "--- $f"; tail -5 "$E2E_TMP/$f" | sed 's/^/    /'; }
  done
  e2e_log "--- host sshd"; tail -15 "$KEYS/host/sshd.log" | sed 's/^/    /'
  e2e_show_output
fi
