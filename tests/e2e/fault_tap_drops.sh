#!/usr/bin/env bash
# fault_tap_drops: frames the kernel drops on the way to the guest are visible.
#
# A VM's tap whose reader stops (QEMU's ring full) drops what ferry sends to
# it: `ip -s link` counts TX dropped on the tap, and before the fix no ferry
# counter showed it. Here a python "VM" holds the tap's fd and never reads;
# `ferry attach TAP --guest-mac MAC -u HP:5000` forwards UDP datagrams sent
# from H's 127.0.0.1 to the guest until the tap's ring overflows. Checks:
#   the tap's own TX dropped grew; `ferry status TAP -j` shows it as
#   service_counters.dev_tx_dropped (> 0, at most the kernel's count) and
#   tap_rx_dropped; `ferry stats TAP -j` as translator.dev_tx_dropped, with
#   the redirect programs' counters (attach.redirect_failed) beside it; the
#   queue estimate (tapq_*) follows the tap, its capacity the txqueuelen.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init

U=$(e2e_unique d)
H=${U}h
TAP=fd$$$((RANDOM % 100))
TAP=${TAP:0:15}
HN=(nsenter "--net=/run/netns/$H")
e2e_on_exit "ip netns del $H"
ip netns add "$H" || e2e_die "namespace"
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $TAP -q"
ip -n "$H" link set lo up

cat >"$E2E_TMP/vm.py" <<'PY'
import fcntl, os, struct, sys, time
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454ca, 0x0002, 0x1000
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TAP | IFF_NO_PI))
open(sys.argv[2], "w").write("ready")
time.sleep(float(sys.argv[3]))  # a VM that never reads its ring
PY
"${HN[@]}" timeout 60 python3 "$E2E_TMP/vm.py" "$TAP" "$E2E_TMP/vm.ready" 50 >"$E2E_TMP/vm.out" 2>&1 &
VM=$!
e2e_on_exit "e2e_kill_pid $VM"
e2e_wait_file "$E2E_TMP/vm.ready" 10 || e2e_die "the python VM did not start: $(cat "$E2E_TMP/vm.out")"
ip -n "$H" link set "$TAP" txqueuelen 64 up
HP=$(e2e_free_port)
timeout 30 "${HN[@]}" "$FERRY" attach "$TAP" --guest-mac 52:54:00:ab:cd:ef -u "127.0.0.1/$HP:5000" -q 2>"$ERR"
e2e_expect "attach to the tap" test $? -eq 0

# 2000 datagrams toward the guest, far more than the tap's ring holds.
timeout 20 "${HN[@]}" python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(2000):
    s.sendto(b'x' * 200, ('127.0.0.1', int(sys.argv[1])))
    if i % 100 == 99: time.sleep(0.01)
" "$HP"
kernel=$(ip -n "$H" -j -s link show "$TAP" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["dropped"])')
e2e_expect "the kernel dropped frames on the tap ($kernel)" test "$kernel" -gt 0
sleep 2.5  # the counters file is rewritten once a second
timeout 5 "$FERRY" status "$TAP" -j >"$OUT"
kernel=$(ip -n "$H" -j -s link show "$TAP" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["dropped"])')
e2e_expect "ferry status shows the tap's TX drops" python3 -c "
import json
sc = json.load(open('$OUT'))['attachments'][0]['service_counters']
d = sc['dev_tx_dropped']
print('dev_tx_dropped', d, 'tap_rx_dropped', sc.get('tap_rx_dropped'))
assert 0 < d <= $kernel + 0, d
assert sc.get('tap_rx_dropped') is not None
# the queue estimate (tapq/) follows DEV, a tap, with its txqueuelen
assert int(sc['tapq_capacity']) == 64, sc.get('tapq_capacity')
"
timeout 5 "$FERRY" status "$TAP" >"$OUT"
e2e_expect "ferry status (text) names dev_tx_dropped" grep -q "dev_tx_dropped=[1-9]" "$OUT"
timeout 5 "$FERRY" stats "$TAP" -j >"$OUT"
e2e_expect "ferry stats shows them too, and the redirect counters" python3 -c "
import json
i = json.load(open('$OUT'))['instances'][0]
assert int(i['translator']['dev_tx_dropped']) > 0, i['translator']
assert 'redirect_failed' in i['attach'], i
"
timeout 5 "$FERRY" stats "$TAP" >"$OUT"
e2e_expect "ferry stats (text) has the attach.redirect_failed row" grep -q "^attach.redirect_failed" "$OUT"
