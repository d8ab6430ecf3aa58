#!/usr/bin/env bash
# run_rootless: `ferry run` as an ordinary user (uid 65534, no home, an
# empty environment but PATH), in a host namespace RH of the test's own with
# a peer RP one veth hop away (MTU 1500). The guest gets a DHCP lease
# (busybox udhcpc) and a router advertisement (rdisc6) from ferry, resolves
# a name through ferry's DNS forwarder (RH's resolv.conf names only
# dnsmasq on 127.0.0.53, so CMD gets a private one naming 198.18.0.1, kept
# in a temporary directory of the caller's), pings the gateway
# (answered by ferry) and the peer (an unprivileged ping socket in RH:
# net.ipv4.ping_group_range admits 65534 there), fetches from a server on
# RH's 127.0.0.1 through the gateway and from one on the peer, exchanges a
# UDP datagram with an echo server on RH's 127.0.0.1, and serves HTTP on
# guest port 8080, which -t 18080:8080 forwards: the peer fetches it from
# RH's address. Meanwhile ferry's /proc/PID/status shows uid 65534 and no
# capabilities in the initial user namespace (ferry stays in it), and its
# translator no capabilities at all, no_new_privs, seccomp and an empty
# root. The control: root's `ferry run` parent has capabilities, so that
# check can fail. Then the refusals: a forward of port 80 and --runas (one
# line, exit 2); pings beyond the gateway when ping_group_range admits no
# group of the caller (a note, the gateway still answers, the peer does
# not); the caller's descriptor limit (an explicit --max-conns beyond it is
# refused, the default shrinks to fit, `-t all` keeps what fits beside the
# flows). Also: ferry under `unshare -Ur`
# (root in a user namespace, which aborted before: "cannot return to the
# original network namespace") runs rootless; with no user namespace left to
# make, and with the machine's own 0600 /dev/net/tun, ferry fails in one
# line saying why (exit 1).
#
# /dev/net/tun is 0600 on this machine (no udev); rootless ferry needs it
# 0666 as udev makes it. Each rootless ferry runs in a private mount
# namespace (unshare -m) where a 0666 node of the test's replaces it; the
# machine's device is never changed. The binary is copied to a directory
# uid 65534 may read (build trees under /work may not be).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
command -v socat >/dev/null || e2e_die "socat missing (scripts/install-deps.sh installs it)"
for tool in setpriv busybox rdisc6 dnsmasq getent; do command -v "$tool" >/dev/null || e2e_die "$tool missing"; done
USER_ID=65534

e2e_remote_topology 1500
PEER4=${REMOTE_P4[0]}
HOST4=${REMOTE_H4[0]}
ip netns exec "$RH" sysctl -qw net.ipv4.ping_group_range="$USER_ID $USER_ID" || e2e_die "ping_group_range in $RH"

# What uid 65534 gets: the binary, a tun node, a directory of its own.
RL=$E2E_TMP/rootless
mkdir -p "$RL/bin" "$RL/dev" "$RL/work"
cp "$FERRY" "$RL/bin/ferry"
chmod 755 "$RL" "$RL/bin" "$RL/bin/ferry"
mknod -m 0666 "$RL/dev/tun" c 10 200 || e2e_die "mknod a tun node"
chown "$USER_ID:$USER_ID" "$RL/work"
mkdir -p "$RL/www" "$RL/guestwww"
echo host-page >"$RL/www/index.html"
echo guest-page >"$RL/guestwww/index.html"
chmod -R a+rX "$RL/www" "$RL/guestwww"
# RH's resolv.conf (bound over /etc/resolv.conf where ferry runs): loopback only.
printf 'nameserver 127.0.0.53\nsearch ferry.test\n' >"$RL/resolv.conf"
chmod 644 "$RL/resolv.conf"
# udhcpc's script: the lease's address and router, for the test to read.
printf '#!/bin/sh\n[ "$1" = bound ] && echo "Dhcp: $ip $router" >>%s/work/dhcp\nexit 0\n' "$RL" >"$RL/udhcpc.sh"
chmod 755 "$RL/udhcpc.sh"

# rootless_ferry SECS ARGS...: ferry as uid 65534 in RH, in the background
# (bounded by timeout); stdout/stderr in $OUT/$ERR; sets TIMEOUT_PID.
rootless_ferry_bg() {
  local secs=$1
  shift
  timeout -k 5 "$secs" unshare -m bash -c 'mount --bind "$0/dev/tun" /dev/net/tun &&
      mount --bind "$0/resolv.conf" /etc/resolv.conf && exec "$@"' "$RL" "${RHN[@]}" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent "$RL/bin/ferry" "$@" \
    >"$OUT" 2>"$ERR" </dev/null &
  TIMEOUT_PID=$!
  e2e_on_exit "e2e_kill_pid $TIMEOUT_PID"
}
rootless_ferry() {
  rootless_ferry_bg "$@"
  RC=0
  wait "$TIMEOUT_PID" || RC=$?
}

# Servers: HTTP and UDP echo on RH's loopback, HTTP on the peer, DNS. The
# exit trap ends them; their bound only stops a leak. It must outlast every
# step that uses them: the nested run fetches from the peer's server ~30 s
# in on an idle machine, and with a 60 s bound a loaded one failed it
# ("nested: HTTP from the peer through both ferries").
SERVE_SECS=600
"${RHN[@]}" timeout "$SERVE_SECS" /usr/bin/python3 -m http.server 18081 --bind 127.0.0.1 --directory "$RL/www" \
  >"$E2E_TMP/http.log" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
"${RPN[@]}" timeout "$SERVE_SECS" /usr/bin/python3 -m http.server 18082 --bind "$PEER4" --directory "$RL/www" \
  >"$E2E_TMP/peer-http.log" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
"${RHN[@]}" timeout "$SERVE_SECS" socat -T 10 UDP4-RECVFROM:18083,bind=127.0.0.1,fork EXEC:cat >/dev/null 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
"${RHN[@]}" timeout "$SERVE_SECS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --user=root \
  --listen-address=127.0.0.53 --bind-interfaces --pid-file="$E2E_TMP/dnsmasq.pid" \
  --address=/svc.ferry.test/198.18.7.7 2>"$E2E_TMP/dnsmasq.err" &
e2e_on_exit "e2e_kill_pid $!"
# wait_port NSENTER... ADDR PORT: until ADDR:PORT accepts, at most 10 s.
wait_port() {
  local n=$(($# - 2))
  "${@:1:n}" bash -c 'for i in $(seq 100); do (exec 3<>"/dev/tcp/$0/$1") 2>/dev/null && exit 0; sleep 0.1; done
    exit 1' "${@:n+1:1}" "${@:n+2:1}"
}
wait_port "${RHN[@]}" 127.0.0.1 18081 || e2e_die "host HTTP server"
wait_port "${RPN[@]}" "$PEER4" 18082 || e2e_die "peer HTTP server"

# ---- the run: everything through one rootless ferry
GUEST='
  busybox udhcpc -i eth0 -n -q -f -t 3 -T 2 -s '$RL/udhcpc.sh' >/dev/null 2>&1
  echo "Ra: $(rdisc6 -1 -w 3000 eth0 2>/dev/null | sed -n "s/^ *Prefix *: *//p" | head -1)"
  echo "Resolv: $(sed -n "s/^nameserver //p" /etc/resolv.conf | head -1)"
  echo "ResolvSource: $(awk "\$5 == \"/etc/resolv.conf\" {print \$4}" /proc/self/mountinfo | tail -1)"
  echo "Dns: $(getent hosts svc.ferry.test | cut -d" " -f1)"
  ping -c1 -W5 198.18.0.1 >/dev/null 2>&1 && echo "PingGateway: ok"
  ping -c1 -W5 '$PEER4' >/dev/null 2>&1 && echo "PingPeer: ok"
  ping -6 -c1 -W5 '${REMOTE_P6[0]}' >/dev/null 2>&1 && echo "PingPeer6: ok"
  echo "HostHttp: $(curl -s --max-time 10 http://198.18.0.1:18081/index.html)"
  echo "PeerHttp: $(curl -s --max-time 10 http://'$PEER4':18082/index.html)"
  echo "Udp: $(printf hello-udp | socat -t 5 -T 10 - UDP4:198.18.0.1:18083)"
  echo "GuestUid: $(id -u)"
  /usr/bin/python3 -m http.server 8080 --directory '$RL/guestwww' >/dev/null 2>&1 &
  s=$!
  for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break; sleep 0.1; done
  touch '$RL/work/ready'
  for i in $(seq 600); do [ -e '$RL/work/stop' ] && break; sleep 0.1; done
  kill $s
'
rootless_ferry_bg 120 run --pid "$RL/work/ferry.pid" -t 18080:8080 -- sh -c "$GUEST"
for ((i = 0; i < 600; i++)); do
  [[ -e $RL/work/ready ]] && break
  _e2e_is_our_child "$TIMEOUT_PID" || break
  sleep 0.1
done
[[ -e $RL/work/ready ]] || {
  e2e_show_output
  e2e_die "the rootless guest never got ready"
}
PID=$(cat "$RL/work/ferry.pid" 2>/dev/null || echo 0)
e2e_log "rootless ferry: pid $PID"

# Inbound: the peer (one hop away) and RH's loopback reach guest port 8080.
e2e_expect "inbound -t 18080:8080 from the peer" \
  test "$("${RPN[@]}" curl -s --max-time 10 "http://$HOST4:18080/index.html")" = guest-page
e2e_expect "inbound -t 18080:8080 from the host's loopback" \
  test "$("${RHN[@]}" curl -s --max-time 10 http://127.0.0.1:18080/index.html)" = guest-page

# ferry's credentials, seen from the initial user namespace (this shell's).
status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr '\t' ' '; }
e2e_expect "ferry is uid $USER_ID" test "$(status_field "$PID" Uid)" = "$USER_ID $USER_ID $USER_ID $USER_ID"
for set in CapEff CapPrm CapInh CapAmb; do
  e2e_expect "ferry: $set 0" test "$(status_field "$PID" $set)" = 0000000000000000
done
e2e_expect "ferry stays in the initial user namespace" \
  test "$(readlink "/proc/$PID/ns/user")" = "$(readlink /proc/self/ns/user)"
e2e_expect "ferry's sockets in RH, not in the guest's namespace" \
  test "$(readlink "/proc/$PID/ns/net")" = "net:[$(stat -L -c %i "/run/netns/$RH")]"
T=
for c in $(cat "/proc/$PID/task/$PID/children" 2>/dev/null); do
  [[ $(cat "/proc/$c/comm" 2>/dev/null) == ferry-translate ]] && T=$c
done
if [[ -n $T ]]; then
  e2e_expect "translator is uid $USER_ID" test "$(status_field "$T" Uid)" = "$USER_ID $USER_ID $USER_ID $USER_ID"
  for set in CapEff CapPrm CapInh CapAmb CapBnd; do
    e2e_expect "translator: $set 0" test "$(status_field "$T" $set)" = 0000000000000000
  done
  e2e_expect "translator: NoNewPrivs 1" test "$(status_field "$T" NoNewPrivs)" = 1
  e2e_expect "translator: Seccomp 2" test "$(status_field "$T" Seccomp)" = 2
  e2e_expect "translator: empty root" test "$(ls -A "/proc/$T/root" | wc -l)" = 0
  # The parent keeps the guest's namespaces (the control: the pattern
  # matches there); the translator holds only the tap and sockets.
  e2e_expect "ferry holds the guest's user and network namespaces" \
    bash -c "ls -l /proc/$PID/fd | grep -q -- '-> user:\\[' && ls -l /proc/$PID/fd | grep -q -- '-> net:\\['"
  e2e_expect "translator: no handle on the guest's namespaces" \
    bash -c "ls -l /proc/$T/fd | grep -q -- '-> socket:' && ! ls -l /proc/$T/fd | grep -q -- '-> \\(user\\|net\\):\\['"
else
  e2e_fail "no ferry-translate child of $PID"
fi

# `ferry stats` and `ferry conns` run by the same user list the run from
# its own directory (no XDG_RUNTIME_DIR here: /tmp/ferry-run-UID), with no
# BPF rows; root's do not. An inbound connection held open (RH's
# loopback -> -t 18080 -> guest 8080) is the one conns must show.
as_user_ferry() {
  setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/nonexistent "$RL/bin/ferry" "$@"
}
BASE=/tmp/ferry-run-$USER_ID
e2e_expect "the user's run directory: $BASE, 0700, uid $USER_ID, no symlink" \
  bash -c "[[ ! -L $BASE && \$(stat -c '%a %u %F' $BASE) == '700 $USER_ID directory' ]]"
e2e_expect "the instance's directory: 0700, uid $USER_ID" \
  test "$(stat -c '%a %u' "$BASE/run-$PID" 2>/dev/null)" = "700 $USER_ID"
(sleep 20 | "${RHN[@]}" timeout 25 socat - TCP:127.0.0.1:18080 >/dev/null 2>&1) &
HELD=$!
e2e_on_exit "e2e_kill_pid $HELD"
# the counters: rewritten once a second; wait for the guest's traffic in them
STATS=$E2E_TMP/stats.json
CHECK_STATS='
import json, sys
d = json.load(open(sys.argv[1]))
r = [i for i in d["instances"] if i["name"] == "run-" + sys.argv[2]]
assert len(r) == 1, "run-%s not listed" % sys.argv[2]
r = r[0]
assert r["bpf"] is False and r["counters"] is None, "BPF rows for a rootless run"
t = r["translator"]
for k in ("tcp_conns_outbound", "tcp_conns_inbound", "udp_flows_opened", "gateway_echo_replies", "gateway_echo_forwarded"):
    assert t.get(k, 0) > 0, "%s is %s" % (k, t.get(k))
print("tcp_conns_outbound=%d tcp_conns_inbound=%d udp_flows_opened=%d gateway_echo_replies=%d gateway_echo_forwarded=%d" % tuple(
    t[k] for k in ("tcp_conns_outbound", "tcp_conns_inbound", "udp_flows_opened", "gateway_echo_replies", "gateway_echo_forwarded")))
'
for i in $(seq 40); do
  as_user_ferry stats -j >"$STATS" 2>/dev/null && python3 -c "$CHECK_STATS" "$STATS" "$PID" >/dev/null 2>&1 && break
  sleep 0.5
done
e2e_log "ferry stats -j (uid $USER_ID): $(python3 -c "$CHECK_STATS" "$STATS" "$PID" 2>&1 | tail -1)"
e2e_expect "stats -j as uid $USER_ID: run-$PID, bpf false, TCP, UDP and ICMP counters above 0" \
  python3 -c "$CHECK_STATS" "$STATS" "$PID"
as_user_ferry stats >"$E2E_TMP/stats.txt" 2>&1
e2e_expect "stats (table) as uid $USER_ID: the run, and that it has no BPF" \
  bash -c "head -1 $E2E_TMP/stats.txt | grep -q run-$PID && grep -q '^run-$PID: no BPF' $E2E_TMP/stats.txt"
e2e_expect "stats as root does not list the user's run" bash -c "! $FERRY stats -j | grep -q '\"run-$PID\"'"
CONNS=$E2E_TMP/conns.json
CHECK_CONNS='
import json, sys
d = json.load(open(sys.argv[1]))
c = [x for x in d["connections"] if x["instance"] == "run-" + sys.argv[2] and x["guest_port"] == 8080]
assert len(c) >= 1, "no connection to guest port 8080 of run-%s: %s" % (sys.argv[2], d)
assert c[0]["state"] == "established" and c[0]["inbound"] is True, c[0]
'
for i in $(seq 40); do
  as_user_ferry conns -j >"$CONNS" 2>/dev/null && python3 -c "$CHECK_CONNS" "$CONNS" "$PID" >/dev/null 2>&1 && break
  sleep 0.25
done
e2e_expect "conns -j as uid $USER_ID: the held inbound connection to guest port 8080, established" \
  python3 -c "$CHECK_CONNS" "$CONNS" "$PID"
e2e_expect "conns run-$PID (table) as uid $USER_ID: a row for it" \
  bash -c "setpriv --reuid $USER_ID --regid $USER_ID --clear-groups -- env -i PATH=/usr/bin:/bin $RL/bin/ferry conns run-$PID | grep -q ':8080 .*established.* in\$'"
e2e_kill_pid "$HELD"
touch "$RL/work/stop"
RC=0
wait "$TIMEOUT_PID" || RC=$?
e2e_expect_rc 0 "rootless ferry run"
e2e_expect "the instance's directory is removed at exit" test ! -e "$BASE/run-$PID"
field() { sed -n "s/^$1:[[:space:]]*//p" "$OUT" | head -1; }
e2e_expect "guest: ping the gateway" test "$(field PingGateway)" = ok
e2e_expect "guest: ping the peer (ping socket)" test "$(field PingPeer)" = ok
e2e_expect "guest: ping the peer over IPv6 (ping socket)" test "$(field PingPeer6)" = ok
e2e_expect "guest: HTTP from RH's 127.0.0.1 through the gateway" test "$(field HostHttp)" = host-page
e2e_expect "guest: HTTP from the peer" test "$(field PeerHttp)" = host-page
e2e_expect "guest: UDP echo" test "$(field Udp)" = hello-udp
e2e_expect "guest: root inside its user namespace" test "$(field GuestUid)" = 0
e2e_expect "guest: a DHCP lease of its address, router the gateway" \
  test "$(sed -n 's/^Dhcp: //p' "$RL/work/dhcp" 2>/dev/null | head -1)" = "198.18.0.2 198.18.0.1"
e2e_expect "guest: a router advertisement of its prefix" test "$(field Ra)" = fd00:f::/64
e2e_expect "guest: a private resolv.conf naming ferry's forwarder" test "$(field Resolv)" = 198.18.0.1
e2e_expect "guest: a name resolved through the forwarder" test "$(field Dns)" = 198.18.7.7
SRC=$(field ResolvSource)
e2e_expect "the guest's resolv.conf came from a temporary directory ($SRC)" \
  bash -c "[[ '$SRC' == /tmp/ferry-run.*/resolv.conf ]]"
e2e_expect "that directory is removed" test ! -e "${SRC%/resolv.conf}"
e2e_expect "one note: no fast path" test "$(grep -c 'no BPF fast path' "$ERR")" = 1
e2e_expect "ferry's PID file removed" test ! -e "$RL/work/ferry.pid"
((E2E_FAILED)) && e2e_show_output

# ---- the control: root's ferry run parent does hold capabilities
E2E_FERRY_IN=("${RHN[@]}")
e2e_ferry 30 run --no-fastpath -- sh -c 'grep "^CapEff:" /proc/$PPID/status'
e2e_expect "control: root's ferry has capabilities (the check can fail)" \
  bash -c "grep -q '^CapEff:' '$OUT' && ! grep -q '^CapEff:[[:space:]]*0000000000000000' '$OUT'"

# ---- refusals
rootless_ferry 20 run -t 80 -- true
e2e_expect_rc 2 "rootless -t 80"
e2e_expect "-t 80: one line naming the limit" \
  bash -c "test \$(wc -l <'$ERR') = 1 && grep -q 'below 1024' '$ERR'"
rootless_ferry 20 run --runas daemon -- true
e2e_expect_rc 2 "rootless --runas"
e2e_expect "--runas: one line" test "$(wc -l <"$ERR")" = 1

# ---- ping_group_range admitting none of the caller's groups
ip netns exec "$RH" sysctl -qw net.ipv4.ping_group_range="1 0"
rootless_ferry 40 run -- sh -c "
  ping -c1 -W5 198.18.0.1 >/dev/null 2>&1 && echo PingGateway: ok
  ping -c1 -W3 $PEER4 >/dev/null 2>&1 && echo PingPeer: ok || echo PingPeer: none"
e2e_expect_rc 0 "rootless run, ping_group_range 1 0"
e2e_expect "no ping sockets: the note" grep -q 'ping_group_range (1.0) admits none of your groups' "$ERR"
e2e_expect "no ping sockets: the gateway answers" test "$(field PingGateway)" = ok
e2e_expect "no ping sockets: the peer's pings dropped" test "$(field PingPeer)" = none

# ---- the caller's descriptor limit
LIMITED=(prlimit --nofile=4096:4096)
timeout 20 "${LIMITED[@]}" unshare -m bash -c 'mount --bind "$0" /dev/net/tun && exec "$@"' "$RL/dev/tun" \
  "${RHN[@]}" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
  env -i PATH=/usr/bin:/bin "$RL/bin/ferry" run --max-conns 100000 -- true >"$OUT" 2>"$ERR" </dev/null
RC=$?
e2e_expect_rc 2 "--max-conns 100000 under a 4096 descriptor limit"
e2e_expect "--max-conns: names the limit" grep -q 'descriptor limit (ulimit -Hn) is 4096' "$ERR"
timeout 20 "${LIMITED[@]}" unshare -m bash -c 'mount --bind "$0" /dev/net/tun && exec "$@"' "$RL/dev/tun" \
  "${RHN[@]}" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
  env -i PATH=/usr/bin:/bin "$RL/bin/ferry" run -v -- true >"$OUT" 2>"$ERR" </dev/null
RC=$?
e2e_expect_rc 0 "default --max-conns under a 4096 descriptor limit"
e2e_expect "the defaults shrink to fit (-v says so)" grep -q 'rootless: --max-conns [0-9]* --max-udp-flows [0-9]* (descriptor limit 4096)' "$ERR"
# -t all: the ports from 1024 up, the lowest that fit beside the flows, once.
timeout 30 prlimit --nofile=8192:8192 unshare -m bash -c 'mount --bind "$0" /dev/net/tun && exec "$@"' "$RL/dev/tun" \
  "${RHN[@]}" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
  env -i PATH=/usr/bin:/bin "$RL/bin/ferry" run -q -t all -- true >"$OUT" 2>"$ERR" </dev/null
RC=$?
e2e_expect_rc 0 "-t all under an 8192 descriptor limit"
e2e_expect "-t all: one line, the lowest ports that fit beside the connections" \
  bash -c "test \$(wc -l <'$ERR') = 1 && grep -q -- '-t all: the descriptor limit (8192) allows [1-9][0-9]* of [0-9]* ports beside [0-9]* connections' '$ERR'"
((E2E_FAILED)) && e2e_show_output

# ---- root of a user namespace (unshare -Ur) is not privileged: rootless.
# First a ferry inside the rootless guest (its sockets in that guest's
# namespace, so the peer is reached through both ferries), then under
# unshare -Ur as uid 65534 directly.
ip netns exec "$RH" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
rootless_ferry 30 run -- sh -c 'exec "$@"' sh unshare -Ur "$RL/bin/ferry" run -q -- sh -c "
  ping -c1 -W5 198.18.0.1 >/dev/null 2>&1 && echo PingGateway: ok
  echo PeerHttp: \$(curl -s --max-time 10 http://$PEER4:18082/index.html)"
e2e_expect_rc 0 "ferry run inside ferry's rootless guest (root of a user namespace: unshare -Ur)"
e2e_expect "nested: ping the gateway" test "$(field PingGateway)" = ok
e2e_expect "nested: HTTP from the peer through both ferries" test "$(field PeerHttp)" = host-page
timeout 20 unshare -m bash -c 'mount --bind "$0" /dev/net/tun && exec "$@"' "$RL/dev/tun" \
  "${RHN[@]}" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
  env -i PATH=/usr/bin:/bin unshare -Ur sh -c "ferry=$RL/bin/ferry; exec \$ferry run -q -- true" \
  >"$OUT" 2>"$ERR" </dev/null
RC=$?
e2e_expect_rc 0 "ferry run under unshare -Ur as uid $USER_ID"

# ---- no user namespace may be made: one line, exit 1
timeout 20 unshare -m bash -c 'mount --bind "$0" /dev/net/tun && exec "$@"' "$RL/dev/tun" \
  "${RHN[@]}" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
  env -i PATH=/usr/bin:/bin unshare -Ur sh -c \
  "echo 0 >/proc/sys/user/max_user_namespaces && exec $RL/bin/ferry run -q -- true" >"$OUT" 2>"$ERR" </dev/null
RC=$?
e2e_expect_rc 1 "user.max_user_namespaces 0"
e2e_expect "no user namespace: one line saying why" \
  bash -c "test \$(wc -l <'$ERR') = 1 && grep -q 'allows no new user namespace' '$ERR'"

# ---- the machine's /dev/net/tun (0600, root's): one line, exit 1
if [[ $(stat -c %a /dev/net/tun) == 600 ]]; then
  timeout 20 "${RHN[@]}" setpriv --reuid "$USER_ID" --regid "$USER_ID" --clear-groups -- \
    env -i PATH=/usr/bin:/bin "$RL/bin/ferry" run -q -- true >"$OUT" 2>"$ERR" </dev/null
  RC=$?
  e2e_expect_rc 1 "a 0600 /dev/net/tun"
  e2e_expect "0600 /dev/net/tun: one line saying why" \
    bash -c "test \$(wc -l <'$ERR') = 1 && grep -q 'needs /dev/net/tun open to all users' '$ERR'"
fi
((E2E_FAILED)) && e2e_show_output
exit 0
