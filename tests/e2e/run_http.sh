#!/usr/bin/env bash
# run_http: the guest fetches a file from a host HTTP server on 127.0.0.1
# through the gateway address (198.18.0.1 and [fd00:f::1] map to the host's
# loopback), and echoes data through a host TCP server.
source "$(dirname "$0")/lib.sh"
e2e_init

mkdir -p "$E2E_TMP/www"
head -c 200000 /dev/urandom >"$E2E_TMP/www/blob.bin"
echo "hello from the host" >"$E2E_TMP/www/hello.txt"
e2e_http_server "$E2E_TMP/www" ::1
HTTP6_PORT=$HTTP_PORT
e2e_http_server "$E2E_TMP/www" 127.0.0.1
e2e_tcp_echo_server

e2e_ferry 30 run -- sh -c "
  curl -sS --max-time 10 http://198.18.0.1:$HTTP_PORT/hello.txt &&
  curl -sS --max-time 10 -o $E2E_TMP/got4.bin http://198.18.0.1:$HTTP_PORT/blob.bin &&
  curl -sS --max-time 10 -o $E2E_TMP/got6.bin 'http://[fd00:f::1]:$HTTP6_PORT/blob.bin'"
e2e_expect_rc 0 "curl through the gateway"
e2e_expect "hello.txt content" grep -q "hello from the host" "$OUT"
e2e_expect "200 kB over IPv4 intact" cmp -s "$E2E_TMP/www/blob.bin" "$E2E_TMP/got4.bin"
e2e_expect "200 kB over IPv6 intact" cmp -s "$E2E_TMP/www/blob.bin" "$E2E_TMP/got6.bin"

e2e_ferry 30 run -- sh -c "printf 'ping-through-ferry' | socat -t 2 - TCP:198.18.0.1:$ECHO_PORT"
e2e_expect_rc 0 "TCP echo through the gateway"
e2e_expect "echoed data" grep -q "ping-through-ferry" "$OUT"
