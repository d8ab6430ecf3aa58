#!/usr/bin/env bash
# cni_policy: what a CNI pod reaches on the node, over TCP, UDP and ICMP
# echo, on defaults and with the options that open it; and that its host
# sockets carry its mark.
#
# Topology (every namespace the test's own; H has no default route, so
# nothing can leave the machine):
#   H  the node: ferry-cni and ferry run here; http servers on 127.0.0.1:8080
#      and :8082 (the node's loopback) and on 10.77.9.1:8081 (one of the
#      node's own addresses, on the veth to N, configured without `brd`);
#      UDP echo on 127.0.0.1:9 and 10.77.9.1:9
#   M  a metadata service at 169.254.169.254 (http :80, UDP echo :9), one
#      veth hop from H (169.254.169.1/24)
#   N  the other end of the node's 10.77.9.0/24 link (http :8083)
#   P  the pod: ferry-cni ADD as the main plugin, ferry's default addresses
# Defaults: the metadata service, the node's loopback through the gateway
# and the node's own address are refused over TCP (a reset: curl fails at
# once), UDP and ping (ICMP "administratively prohibited": EHOSTUNREACH,
# "Packet filtered"), each counted in `ferry status -j`; an address
# elsewhere (N) is reachable. With mapGateway [8080], allowNode, allow
# 169.254.169.254/32:80 and socketMark 0x1234: the metadata service's HTTP,
# the node's loopback :8080 and the node's address (TCP, UDP, ping) answer;
# the gateway's port 8082 and UDP :9 stay refused, the metadata service's
# UDP and ping stay refused (the allow names port 80 only), and H's OUTPUT
# sees the mark. The default mark (0x6MMM0000) is in the state record.
#
# Issue 13: before the node's broadcast list was fixed, the node's own
# address (configured without `brd`, so getifaddrs named it as its own
# broadcast) was dropped unanswered as a broadcast even with allowNode.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
FERRY_CNI=$(dirname "$FERRY")/ferry-cni
[[ -x $FERRY_CNI ]] || e2e_die "no ferry-cni beside $FERRY"

U=$(e2e_unique c)
H=${U}h M=${U}m N=${U}n P=${U}p
HN=(nsenter "--net=/run/netns/$H")
STATE=$E2E_TMP/state
cleanup() {
  local l
  for l in $(ip -n "$H" -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $l == fy* ]] && timeout 20 "${HN[@]}" "$FERRY" detach "$l" >/dev/null 2>&1
  done
  for n in "$P" "$N" "$M" "$H"; do ip netns del "$n" 2>/dev/null; done
}
e2e_on_exit cleanup
for n in "$H" "$M" "$N" "$P"; do ip netns add "$n" || e2e_die "netns $n"; ip -n "$n" link set lo up; done
ip link add hm netns "$H" type veth peer name eth0 netns "$M" || e2e_die "veth M"
ip link add hn netns "$H" type veth peer name eth0 netns "$N" || e2e_die "veth N"
ip -n "$H" addr add 169.254.169.1/24 dev hm
ip -n "$M" addr add 169.254.169.254/24 dev eth0
ip -n "$H" addr add 10.77.9.1/24 dev hn
ip -n "$N" addr add 10.77.9.2/24 dev eth0
for l in hm hn; do ip -n "$H" link set "$l" up; done
ip -n "$M" link set eth0 up
ip -n "$N" link set eth0 up

mkdir -p "$E2E_TMP/www"
echo "served" >"$E2E_TMP/www/x"
# serve NS ADDR PORT: an http server in namespace NS, killed at exit.
serve() {
  nsenter --net="/run/netns/$1" /usr/bin/python3 -m http.server "$3" --bind "$2" --directory "$E2E_TMP/www" \
    >"$E2E_TMP/http.$2.$3.log" 2>&1 &
  e2e_on_exit "e2e_kill_pid $!"
}
serve "$H" 127.0.0.1 8080
serve "$H" 127.0.0.1 8082
serve "$H" 10.77.9.1 8081
serve "$M" 169.254.169.254 80
serve "$N" 10.77.9.2 8083
# udp_serve NS ADDR: a UDP echo server on ADDR port 9 in namespace NS.
udp_serve() {
  nsenter --net="/run/netns/$1" /usr/bin/python3 -u -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 9)); s.settimeout(1)
end = time.time() + 150
while time.time() < end:
    try:
        d, a = s.recvfrom(2048); s.sendto(d, a)
    except socket.timeout:
        pass' "$2" >"$E2E_TMP/udp.$2.log" 2>&1 &
  e2e_on_exit "e2e_kill_pid $!"
}
udp_serve "$M" 169.254.169.254
udp_serve "$H" 127.0.0.1
udp_serve "$H" 10.77.9.1
for target in "$H 127.0.0.1 8080" "$H 127.0.0.1 8082" "$H 10.77.9.1 8081" "$M 169.254.169.254 80" "$N 10.77.9.2 8083"; do
  read -r ns addr port <<<"$target"
  ok=0
  for _ in $(seq 50); do
    if nsenter --net="/run/netns/$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null; then ok=1; break; fi
    sleep 0.1
  done
  ((ok)) || e2e_die "server $addr:$port did not start"
done

# cni CMD CONF: ferry-cni in H for the pod; output in $OUT, status in RC.
cni() {
  RC=0
  printf '%s' "$2" | timeout -k 5 60 "${HN[@]}" env CNI_COMMAND="$1" CNI_CONTAINERID=pol$$ CNI_NETNS="/run/netns/$P" \
    CNI_IFNAME=eth0 CNI_PATH="$(dirname "$FERRY_CNI")" "$FERRY_CNI" >"$OUT" 2>"$ERR" || RC=$?
}
conf() { echo '{"cniVersion":"1.1.0","name":"pol'$$'","type":"ferry-cni","stateDir":"'"$STATE"'"'"${1:-}"'}'; }
# reach URL: true when the pod fetches URL; how long it took in $TOOK.
reach() {
  local t0=$SECONDS
  timeout -k 2 20 nsenter --net="/run/netns/$P" curl -sS --max-time 8 -o /dev/null "$1" 2>"$E2E_TMP/curl.err"
  local rc=$?
  TOOK=$((SECONDS - t0))
  return $rc
}
# refused URL WHAT: the pod's connection fails at once (curl 7: a reset or
# an unreachable, never 28: a timeout), nothing fetched.
refused() {
  local rc=0
  reach "$1" || rc=$?
  if ((rc == 7)); then
    e2e_log "ok: $2: refused ($(tr -d '\n' <"$E2E_TMP/curl.err"), ${TOOK}s)"
  else
    e2e_fail "$2: curl exit $rc on $1, want 7 (refused): $(cat "$E2E_TMP/curl.err")"
  fi
}
# udp_echo ADDR: true when the pod's datagram to ADDR port 9 is echoed; the
# error otherwise in udp.err ("udp: [Errno 113] ..." for ICMP prohibited).
udp_echo() {
  timeout -k 2 10 nsenter --net="/run/netns/$P" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect((sys.argv[1], 9))
try:
    s.send(b"meta"); s.recv(64)
except OSError as e:
    print("udp:", e); sys.exit(1)
' "$1" >"$E2E_TMP/udp.err" 2>&1
}
# udp_refused ADDR WHAT: the datagram is answered with ICMP prohibited
# (EHOSTUNREACH at the pod's socket), not echoed, not a timeout.
udp_refused() {
  if udp_echo "$1"; then
    e2e_fail "$2: UDP to $1 echoed"
  else
    e2e_expect "$2: UDP refused with ICMP prohibited ($(cat "$E2E_TMP/udp.err"))" grep -q "udp: \[Errno 113\]" "$E2E_TMP/udp.err"
  fi
}
# ping_says ADDR: "answered", "prohibited" (ICMP type 3 code 13: iputils'
# "Packet filtered") or "other", from one ping of the pod.
ping_says() {
  local o
  o=$(timeout -k 2 10 nsenter --net="/run/netns/$P" ping -n -c1 -W3 "$1" 2>&1)
  if grep -q "bytes from $1" <<<"$o"; then echo answered
  elif grep -qiE "filtered|prohibited" <<<"$o"; then echo prohibited
  else echo other; fi
}
counter() {
  timeout 10 "${HN[@]}" "$FERRY" status "$DEV" -j |
    python3 -c "import json,sys; print(json.load(sys.stdin)['attachments'][0]['service_counters'].get('$1', -1))"
}

# ---- defaults
cni ADD "$(conf)"
((RC == 0)) || e2e_die "ADD (defaults): $(cat "$OUT" "$ERR")"
DEV=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["interfaces"][0]["name"])' "$OUT")
e2e_log "pod attached through $DEV"
refused http://169.254.169.254/x "metadata service (TCP), defaults"
refused http://198.18.0.1:8080/x "node loopback through the gateway, defaults"
refused http://10.77.9.1:8081/x "node's own address, defaults"
udp_refused 169.254.169.254 "metadata service, defaults"
udp_refused 198.18.0.1 "node loopback through the gateway, defaults"
udp_refused 10.77.9.1 "node's own address, defaults"
for target in 169.254.169.254 198.18.0.1 10.77.9.1; do
  r=$(ping_says $target)
  e2e_expect "ping $target, defaults: prohibited ($r)" test "$r" = prohibited
done
e2e_expect "another address (N) is reachable" reach http://10.77.9.2:8083/x
sleep 1.5  # the service rewrites its counters file once a second
# metadata, node, gateway: TCP, UDP, ping each.
for cv in policy_refused_default_deny:3 policy_refused_node:3 policy_refused_gateway:3; do
  v=$(counter "${cv%:*}")
  e2e_expect "ferry status counts ${cv%:*} ($v, want ${cv#*:})" test "${v:-0}" -eq "${cv#*:}"
done
mark=$(python3 -c 'import json,glob,sys; print(json.load(open(glob.glob(sys.argv[1] + "/*.json")[0]))["socketMark"])' "$STATE")
e2e_expect "state record has the derived mark ($(printf 0x%x "$mark"))" test $((mark & 0xf000ffff)) -eq $((0x60000000))
cni DEL "$(conf)"
((RC == 0)) || e2e_fail "DEL (defaults): $(cat "$OUT")"

# ---- opened by the configuration
"${HN[@]}" iptables -t mangle -A OUTPUT -m mark --mark 0x1234 -j ACCEPT || e2e_die "iptables in H"
OPEN=',"mapGateway":[8080],"allowNode":true,"allow":["169.254.169.254/32:80"],"socketMark":4660'
cni ADD "$(conf "$OPEN")"
((RC == 0)) || e2e_die "ADD (opened): $(cat "$OUT" "$ERR")"
DEV=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["interfaces"][0]["name"])' "$OUT")
e2e_expect "metadata service (TCP :80), allowed" reach http://169.254.169.254/x
e2e_expect "node loopback :8080 through the gateway, mapGateway [8080]" reach http://198.18.0.1:8080/x
e2e_expect "node's own address, allowNode" reach http://10.77.9.1:8081/x
refused http://198.18.0.1:8082/x "node loopback :8082, not in mapGateway"
e2e_expect "node's own address (UDP), allowNode" udp_echo 10.77.9.1
r=$(ping_says 10.77.9.1)
e2e_expect "ping of the node's own address, allowNode: answered ($r)" test "$r" = answered
r=$(ping_says 198.18.0.1)
e2e_expect "ping of the gateway with mapGateway: answered ($r)" test "$r" = answered
udp_refused 198.18.0.1 "node loopback UDP :9, not in mapGateway"
udp_refused 169.254.169.254 "metadata service :9, allow names port 80 only"
r=$(ping_says 169.254.169.254)
e2e_expect "ping of the metadata service, allow names port 80 only: prohibited ($r)" test "$r" = prohibited
marked=$("${HN[@]}" iptables -t mangle -L OUTPUT -v -x -n | awk '/mark match 0x1234/ {print $1}')
e2e_expect "H's OUTPUT saw packets marked 0x1234 (${marked:-none})" test "${marked:-0}" -gt 0
cni DEL "$(conf "$OPEN")"
((RC == 0)) || e2e_fail "DEL (opened): $(cat "$OUT")"
e2e_expect "nothing left in the state directory" test -z "$(ls -A "$STATE")"
