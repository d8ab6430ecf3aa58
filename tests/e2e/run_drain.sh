#!/usr/bin/env bash
# run_drain: what the guest wrote just before CMD exited still reaches the
# host. The guest's first data segment is dropped on its link (a TC program,
# tests/tools/tcp_drop_first_data.bpf.c), so when CMD has already exited its
# kernel still has to retransmit it; ferry keeps translating while the
# connection closes (at most 3 s) instead of resetting it at once.
# Regression test: before, the host peer got a RST and nothing else.
source "$(dirname "$0")/lib.sh"
e2e_init

prog=$E2E_TMP/drop_first.o
clang-19 -O2 -g -target bpf -I"/usr/include/$(gcc -dumpmachine)" \
  -c "$(dirname "$0")/../tools/tcp_drop_first_data.bpf.c" -o "$prog" || e2e_die "cannot build the drop program"

port=$(e2e_free_port)
got=$E2E_TMP/received.txt
socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$got,creat,trunc" 2>"$E2E_TMP/socat.log" &
server=$!
e2e_on_exit "e2e_kill_pid $server"
# (a probe connection would use up socat's one accept: look at the socket)
for _ in $(seq 100); do
  ss -ltnH "sport = :$port" | grep -q . && break
  sleep 0.1
done
ss -ltnH "sport = :$port" | grep -q . || e2e_die "host server did not start"

e2e_ferry 30 run -- sh -c "
  { tc qdisc show dev eth0 | grep -q clsact || tc qdisc add dev eth0 clsact; } &&
  tc filter add dev eth0 egress pref 1 bpf da obj $prog sec tc || exit 10
  printf 'last words before exit' | socat -u - TCP:198.18.0.1:$port"
e2e_expect_rc 0 "guest wrote and exited"
for _ in $(seq 50); do
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
e2e_expect "host received the data written just before CMD exited" grep -q "last words before exit" "$got"
