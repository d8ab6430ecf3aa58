#!/usr/bin/env bash
# run_forward: a forwarded host port (-t 127.0.0.1/PORT:80, loopback only)
# reaches a server inside the guest. The guest serves a file on port 80
# until the host side has fetched it, then stops its own server (by PID).
source "$(dirname "$0")/lib.sh"
e2e_init

mkdir -p "$E2E_TMP/guest-www"
echo "hello from the guest" >"$E2E_TMP/guest-www/g.txt"
port=$(e2e_free_port)
done_file=$E2E_TMP/done

e2e_ferry_bg 30 run -t "127.0.0.1/$port:80" -- sh -c "
  /usr/bin/python3 -m http.server 80 --bind 198.18.0.2 --directory $E2E_TMP/guest-www >/dev/null 2>&1 &
  srv=\$!
  i=0
  while [ ! -e $done_file ] && [ \$i -lt 200 ]; do sleep 0.1; i=\$((i + 1)); done
  kill \$srv"

got=
for _ in $(seq 50); do
  got=$(curl -sS --max-time 2 "http://127.0.0.1:$port/g.txt" 2>/dev/null) && break
  sleep 0.2
done
touch "$done_file"
e2e_ferry_wait
e2e_expect "host fetched the guest's file through 127.0.0.1:$port" test "$got" = "hello from the guest"
e2e_expect_rc 0 "ferry run with -t"
e2e_check_clean "$FERRY_PID"
e2e_expect "the forwarded port is closed again" bash -c "! timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$port' 2>/dev/null"
