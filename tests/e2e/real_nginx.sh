#!/usr/bin/env bash
# real_nginx: nginx under load through ferry, both ways.
#  * outbound: an nginx of our own (own config and prefix, no daemon, on
#    127.0.0.1 and ::1, a free port) serving a small, a 100 KiB and a 32 MiB
#    file; from the guest, ApacheBench (bounded: -n requests, -s timeout)
#    with keep-alive at concurrency 100, without it at 50 (a connection per
#    request), 100 KiB at concurrency 200, over IPv6 too; curl fetches the
#    large file 4 at a time with sha256 checks. Every response 200, every
#    length right, no failed request;
#  * inbound: nginx inside the guest behind -t 127.0.0.1/PORT:80, loaded by
#    ab on the host (keep-alive and not) while the outbound load runs, and
#    the large file fetched intact;
#  * afterwards ferry holds no more fds than before and no TCP connection.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/real_e2e.sh"
real_need /usr/sbin/nginx ab curl sha256sum

WWW=$E2E_TMP/www
mkdir -p "$WWW"
head -c 1000 /dev/urandom | base64 -w 0 >"$WWW/small.txt"   # 1336 bytes
head -c $((100 << 10)) /dev/urandom >"$WWW/mid.bin"
head -c $((32 << 20)) /dev/urandom >"$WWW/large.bin"
SMALL=$(stat -c %s "$WWW/small.txt")
LARGE_SHA=$(sha256sum <"$WWW/large.bin" | cut -d' ' -f1)

# nginx_conf NAME LISTEN...: a self-contained configuration under $E2E_TMP/NAME
nginx_conf() {
  local name=$1 d=$E2E_TMP/$1 l
  shift
  mkdir -p "$d/tmp"
  {
    cat <<EOF
daemon off;
master_process on;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 2048; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  keepalive_timeout 30s;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  types { text/plain txt; application/octet-stream bin; }
  server {
EOF
    for l in "$@"; do echo "    listen $l backlog=1024;"; done
    cat <<EOF
    root $WWW;
  }
}
EOF
  } >"$d/nginx.conf"
}

HPORT=$(real_free_port)
FPORT=$(real_free_port)
[[ -n $HPORT && -n $FPORT && $HPORT != "$FPORT" ]] || e2e_die "no free ports"
nginx_conf host "127.0.0.1:$HPORT" "[::1]:$HPORT"
/usr/sbin/nginx -t -q -p "$E2E_TMP/host" -e "$E2E_TMP/host/error.log" -c "$E2E_TMP/host/nginx.conf" ||
  e2e_die "nginx -t rejected the configuration: $(cat "$E2E_TMP/host/error.log")"
/usr/sbin/nginx -p "$E2E_TMP/host" -e "$E2E_TMP/host/error.log" -c "$E2E_TMP/host/nginx.conf" &
NGINX_PID=$!
e2e_on_exit "e2e_kill_pid $NGINX_PID"
e2e_wait_port "$HPORT" 10 || e2e_die "host nginx not listening: $(cat "$E2E_TMP/host/error.log")"
nginx_conf guest "198.18.0.2:80" "[fd00:f::2]:80"

# ab_check FILE WANT_N LEN: ab's report says WANT_N complete, 0 failed, no
# non-2xx, and documents of LEN bytes
ab_check() {
  local f=$1 n=$2 len=$3
  e2e_log "$(basename "$f"): $(grep -E '^(Complete|Failed|Non-2xx|Requests per|Document Length|Time taken)' "$f" 2>/dev/null | tr -s ' ' | tr '\n' ';')"
  grep -Eq "^Complete requests: +$n\$" "$f" &&
    grep -Eq '^Failed requests: +0$' "$f" &&
    ! grep -q '^Non-2xx responses' "$f" &&
    grep -Eq "^Document Length: +$len bytes\$" "$f"
}

AB="timeout 60 ab -q -r -s 20"
cat >"$E2E_TMP/guest.sh" <<EOF
set -u
T=$E2E_TMP
/usr/sbin/nginx -p \$T/guest -e \$T/guest/error.log -c \$T/guest/nginx.conf &
ng=\$!
trap 'kill \$ng 2>/dev/null; wait \$ng' EXIT
for i in \$(seq 100); do
  (exec 3<>/dev/tcp/198.18.0.2/80) 2>/dev/null && break
  sleep 0.05
done
echo 1 >\$T/ready
for i in \$(seq 300); do [ -e \$T/go ] && break; sleep 0.1; done
U=http://198.18.0.1:$HPORT
$AB -k -n 20000 -c 100 \$U/small.txt >\$T/g.ab-ka 2>&1
$AB -n 3000 -c 50 \$U/small.txt >\$T/g.ab-close 2>&1
$AB -k -n 2000 -c 200 \$U/mid.bin >\$T/g.ab-mid 2>&1
$AB -k -n 3000 -c 50 http://[fd00:f::1]:$HPORT/mid.bin >\$T/g.ab-v6 2>&1
for i in 1 2 3 4; do
  curl -sS --max-time 30 \$U/large.bin | sha256sum | cut -d' ' -f1 >\$T/g.large\$i &
  pids="\${pids:-} \$!"
done
wait \$pids  # not nginx
echo 1 >\$T/outbound.done
for i in \$(seq 600); do [ -e \$T/done ] && break; sleep 0.1; done
EOF

e2e_netns_snapshot
e2e_ferry_bg 85 run -t "127.0.0.1/$FPORT:80" -- bash "$E2E_TMP/guest.sh"
e2e_wait_file "$E2E_TMP/ready" 15 || {
  e2e_show_output
  e2e_die "the guest's nginx did not come up: $(cat "$E2E_TMP/guest/error.log" 2>/dev/null)"
}
sleep 0.3
BASE_FDS=$(real_fd_count "$FERRY_PID")
e2e_log "ferry $FERRY_PID: $BASE_FDS fds before any connection"
touch "$E2E_TMP/go"

# inbound, while the guest loads the host's nginx
$AB -k -n 10000 -c 100 "http://127.0.0.1:$FPORT/small.txt" >"$E2E_TMP/h.ab-ka" 2>&1
$AB -n 2000 -c 100 "http://127.0.0.1:$FPORT/mid.bin" >"$E2E_TMP/h.ab-close" 2>&1
got=$(curl -sS --max-time 30 "http://127.0.0.1:$FPORT/large.bin" | sha256sum | cut -d' ' -f1)
e2e_expect "inbound ab keep-alive: 10000 x small, c=100, all 200" ab_check "$E2E_TMP/h.ab-ka" 10000 "$SMALL"
e2e_expect "inbound ab, a connection per request: 2000 x 100 KiB, c=100" ab_check "$E2E_TMP/h.ab-close" 2000 $((100 << 10))
e2e_expect "inbound 32 MiB intact" test "$got" = "$LARGE_SHA"

e2e_wait_file "$E2E_TMP/outbound.done" 70 || e2e_fail "the guest's load did not finish"
e2e_expect "outbound ab keep-alive: 20000 x small, c=100" ab_check "$E2E_TMP/g.ab-ka" 20000 "$SMALL"
e2e_expect "outbound ab, a connection per request: 3000 x small, c=50" ab_check "$E2E_TMP/g.ab-close" 3000 "$SMALL"
e2e_expect "outbound ab keep-alive: 2000 x 100 KiB, c=200" ab_check "$E2E_TMP/g.ab-mid" 2000 $((100 << 10))
e2e_expect "outbound ab over IPv6: 3000 x 100 KiB, c=50" ab_check "$E2E_TMP/g.ab-v6" 3000 $((100 << 10))
large_ok() { local i; for i in 1 2 3 4; do grep -qx "$LARGE_SHA" "$E2E_TMP/g.large$i" || return 1; done; }
e2e_expect "4 parallel 32 MiB downloads intact" large_ok

e2e_expect "ferry back to its fds and no connections" real_wait_healthy "$FERRY_PID" "$BASE_FDS" 10
touch "$E2E_TMP/done"
e2e_ferry_wait
e2e_expect_rc 0 "ferry run"
e2e_check_clean "$FERRY_PID"
if ((E2E_FAILED)); then
  for f in host/error.log guest/error.log g.ab-ka g.ab-close g.ab-mid g.ab-v6 h.ab-ka h.ab-close; do
    [[ -s $E2E_TMP/$f ]] && { e2e_log "--- $f"; tail -12 "$E2E_TMP/$f" | sed 's/^/    /'; }
  done
  e2e_show_output
fi
