#!/usr/bin/env bash
# real_cni: a pod made by a real CNI client (libcni 1.3.0, spec 1.1.0) with
# ferry-cni as its main plugin, MTU 1500 (ferry-cni's default), used by real
# programs both ways:
#  * from the pod, through the gateway, to servers of our own on H's
#    loopback: OpenSSH (a command, scp 4 MiB both ways with sha256),
#    iperf3 TCP both ways and UDP datagrams above the MTU both ways;
#  * from H into the pod through the portMappings capability (hostPort ->
#    containerPort, TCP and UDP): ssh to the pod's own sshd, iperf3 TCP and
#    UDP to the pod's iperf3 server;
#  * afterwards the ferry service holds its baseline fds and no connection;
#    DEL leaves nothing.
# Topology: see cni_clients.sh (client, ferry-cni and ferry run in H; every
# server listens on H's 127.0.0.1 or in the pod).
E2E_NAME=real_cni
# shellcheck source=tests/e2e/cni_clients.sh
source "$(dirname "${BASH_SOURCE[0]}")/cni_clients.sh"
e2e_init
source "$(dirname "${BASH_SOURCE[0]}")/../tools/real_e2e.sh"
real_need /usr/sbin/sshd ssh scp ssh-keygen iperf3
cni_clients_build
cni_topology
HN=(nsenter "--net=/run/netns/$H")
PN=(nsenter "--net=/run/netns/$P")
NET=realcni$$

# ports in H (its own loopback: any free port of the root namespace's view
# is free there too, H being new)
HSSH=$(real_free_port)
HIPERF=$(real_free_port)
MAPSSH=$(real_free_port)
MAPIPERF=$(real_free_port)
KEYS=$E2E_TMP/keys
real_sshd_config "$KEYS/h" "$HSSH" 127.0.0.1
mkdir -p "$KEYS/p"
cp "$KEYS/h/id_ed25519" "$KEYS/h/id_ed25519.pub" "$KEYS/p/"
real_sshd_config "$KEYS/p" 22 198.18.0.2
mkdir -p /run/sshd
"${HN[@]}" /usr/sbin/sshd -D -e -f "$KEYS/h/sshd_config" >"$KEYS/h/sshd.log" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
"${HN[@]}" nice -n 19 iperf3 -s -B 127.0.0.1 -p "$HIPERF" >"$E2E_TMP/h-iperf.log" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
"${HN[@]}" bash -c "for i in \$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$HSSH) 2>/dev/null && exit 0; sleep 0.1; done; exit 1" ||
  e2e_die "H's sshd did not start: $(cat "$KEYS/h/sshd.log")"

cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni","stateDir":"'"$CNI_T/state"'",
  "mapGateway":true,"capabilities":{"portMappings":true}}]}'
export CAP_ARGS='{"portMappings":[{"hostPort":'$MAPSSH',"containerPort":22,"protocol":"tcp"},
  {"hostPort":'$MAPIPERF',"containerPort":5201,"protocol":"tcp"},{"hostPort":'$MAPIPERF',"containerPort":5201,"protocol":"udp"}]}'
cni_run 11 pod1 add "$NET" "$PNS"
unset CAP_ARGS
cni_ok "ADD (spec 1.1.0, portMappings ssh and iperf3)"
((RC == 0)) || exit 1
DEV=$(cni_json 'r["interfaces"][0]["name"]')
e2e_expect "pod's eth0 has MTU 1500" bash -c "ip -n '$P' link show eth0 | grep -q 'mtu 1500'"
SVC=$("${HN[@]}" "$FERRY" status "$DEV" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["attachments"][0]["pid"])')
BASE_FDS=$(real_fd_count "$SVC")
e2e_log "ferry service $SVC on $DEV: $BASE_FDS fds"

# the pod's own servers
"${PN[@]}" /usr/sbin/sshd -D -e -f "$KEYS/p/sshd_config" >"$KEYS/p/sshd.log" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
"${PN[@]}" nice -n 19 iperf3 -s -p 5201 >"$E2E_TMP/p-iperf.log" 2>&1 &
e2e_on_exit "e2e_kill_pid $!"
"${PN[@]}" bash -c 'for i in $(seq 100); do (exec 3<>/dev/tcp/198.18.0.2/22) 2>/dev/null && (exec 3<>/dev/tcp/198.18.0.2/5201) 2>/dev/null && exit 0; sleep 0.1; done; exit 1' ||
  e2e_fail "the pod's servers did not start"

same() { [[ -f $2 && $(sha256sum <"$1") == $(sha256sum <"$2") ]]; }
head -c $((4 << 20)) /dev/urandom >"$E2E_TMP/blob"
IPF="timeout 20 nice -n 19 iperf3 -J -t 1 --connect-timeout 5000"
# ipf OUT CMD...: runs the iperf3 client CMD into $E2E_TMP/OUT, again (at
# most 5 times, a second apart) while the server says it is still busy with
# the previous test: a one-test iperf3 server resets a moment after its
# client returns, longer on a loaded machine.
ipf() {
  local out=$E2E_TMP/$1 try
  shift
  for try in 1 2 3 4 5; do
    "$@" >"$out" 2>/dev/null
    grep -q "server is busy" "$out" || return 0
    sleep 1
  done
}
check() { /usr/bin/python3 "$E2E_TMP/check.py" "$E2E_TMP/$1" "$2"; }
cat >"$E2E_TMP/check.py" <<'PY'
import json, sys
f, kind = sys.argv[1], sys.argv[2]
try:
    j = json.load(open(f))
except Exception as e:
    sys.exit("%s: no JSON: %s" % (f, e))
if j.get("error"):
    sys.exit("iperf3 error: " + j["error"])
e = j["end"]
if kind == "tcp":
    r = e["sum_received"]
    print("  %s: %.2f Gbit/s" % (f.split("/")[-1], r["bits_per_second"] / 1e9))
    sys.exit(0 if r["bytes"] > 1e6 else "too little")
s = e["sum"]
print("  %s: %d datagrams, %.2f %% lost" % (f.split("/")[-1], s["packets"], s["lost_percent"]))
sys.exit(0 if s["packets"] >= 40 and s["lost_percent"] < 20 else "too few or too lossy")
PY

# ---- from the pod, through the gateway
SSHP=(ssh "${SSH_OPTS[@]}" -p "$HSSH")
SCPP=(scp -q "${SSH_OPTS[@]}" -P "$HSSH")
GW=198.18.0.1
out=$("${PN[@]}" "${SSHP[@]}" "root@$GW" 'echo pod-$((6*7))' 2>&1)
e2e_expect "pod -> H's sshd: command ($out)" test "$out" = pod-42
"${PN[@]}" "${SCPP[@]}" "$E2E_TMP/blob" "root@$GW:$E2E_TMP/up" 2>"$E2E_TMP/scp.err"
e2e_expect "pod -> H: scp 4 MiB up intact" same "$E2E_TMP/blob" "$E2E_TMP/up"
"${PN[@]}" "${SCPP[@]}" "root@$GW:$E2E_TMP/blob" "$E2E_TMP/down" 2>>"$E2E_TMP/scp.err"
e2e_expect "pod -> H: scp 4 MiB down intact" same "$E2E_TMP/blob" "$E2E_TMP/down"
ipf o-tcp "${PN[@]}" $IPF -c $GW -p "$HIPERF"
e2e_expect "pod -> H: iperf3 TCP" check o-tcp tcp
ipf o-tcp-r "${PN[@]}" $IPF -c $GW -p "$HIPERF" -R
e2e_expect "pod -> H: iperf3 TCP -R" check o-tcp-r tcp
ipf o-udp "${PN[@]}" $IPF -c $GW -p "$HIPERF" -u -b 10M -l 4000
e2e_expect "pod -> H: iperf3 UDP 4000-byte datagrams (fragments)" check o-udp udp
ipf o-udp-r "${PN[@]}" $IPF -c $GW -p "$HIPERF" -u -b 10M -l 4000 -R
e2e_expect "pod -> H: iperf3 UDP 4000-byte datagrams -R (fragments)" check o-udp-r udp

# ---- from H into the pod through the port mappings
out=$("${HN[@]}" ssh "${SSH_OPTS[@]}" -p "$MAPSSH" root@127.0.0.1 'echo in-$((6*7))' 2>&1)
e2e_expect "H -> pod's sshd via hostPort $MAPSSH: command ($out)" test "$out" = in-42
"${HN[@]}" scp -q "${SSH_OPTS[@]}" -P "$MAPSSH" "$E2E_TMP/blob" "root@127.0.0.1:$E2E_TMP/in" 2>>"$E2E_TMP/scp.err"
e2e_expect "H -> pod: scp 4 MiB intact" same "$E2E_TMP/blob" "$E2E_TMP/in"
ipf i-tcp "${HN[@]}" $IPF -c 127.0.0.1 -p "$MAPIPERF"
e2e_expect "H -> pod via hostPort: iperf3 TCP" check i-tcp tcp
ipf i-udp "${HN[@]}" $IPF -c 127.0.0.1 -p "$MAPIPERF" -u -b 10M -l 1400
e2e_expect "H -> pod via hostPort: iperf3 UDP" check i-udp udp

# ---- health, then DEL
e2e_expect "ferry service back to its fds (+ 4 UDP flows), no connection" \
  real_wait_healthy "$SVC" "$BASE_FDS" 10 6 "$DEV"
cni_run 11 pod1 del "$NET" "$PNS"
cni_ok "DEL"
left=$(cni_leftovers)
e2e_expect "DEL left nothing ($left)" test -z "$left"
if ((E2E_FAILED)); then
  tail -5 "$E2E_TMP/scp.err" "$KEYS/h/sshd.log" "$KEYS/p/sshd.log" 2>/dev/null | sed 's/^/    /'
  cni_ferry_log "$DEV"
fi
