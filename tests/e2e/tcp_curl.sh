#!/usr/bin/env bash
# tcp_curl: a guest curl downloads 64 MiB from, and uploads 64 MiB to, a
# host HTTP server on 127.0.0.1 (GET answers pseudorandom data, PUT answers
# the sha256 of the body); sha256 compared at both ends.
source "$(dirname "$0")/lib.sh"
e2e_init
source "$(dirname "$0")/../tools/tcp_e2e.sh"

N=$((64 << 20))
/usr/bin/python3 "$TOOLS/http_sha_server.py" --addr 127.0.0.1 --portfile "$E2E_TMP/http.port" \
  --lifetime 300 >"$E2E_TMP/http.log" 2>&1 &
HPID=$!
e2e_on_exit "e2e_kill_pid $HPID"
e2e_wait_file "$E2E_TMP/http.port" 10 || e2e_die "http server did not start"
HP=$(cat "$E2E_TMP/http.port")
want=$(/usr/bin/python3 -c "import random,hashlib;print(hashlib.sha256(random.Random(7).randbytes($N)).hexdigest())")
/usr/bin/python3 -c "import random,sys;sys.stdout.buffer.write(random.Random(8).randbytes($N))" >"$E2E_TMP/up.bin"
up_sha=$(sha256sum "$E2E_TMP/up.bin" | cut -d' ' -f1)

e2e_ferry 240 run -- sh -c "
  curl -sS --max-time 120 -o $E2E_TMP/down.bin 'http://198.18.0.1:$HP/data?bytes=$N&seed=7' || exit 11
  curl -sS --max-time 120 -T $E2E_TMP/up.bin -o $E2E_TMP/put.txt 'http://198.18.0.1:$HP/upload' || exit 12"
e2e_expect_rc 0 "curl GET and PUT"
got=$(sha256sum "$E2E_TMP/down.bin" 2>/dev/null | cut -d' ' -f1)
e2e_expect "download: 64 MiB, sha256 matches" test "$got" = "$want"
e2e_expect "upload: the server's sha256 matches" test "$(cat "$E2E_TMP/put.txt" 2>/dev/null)" = "$up_sha"
