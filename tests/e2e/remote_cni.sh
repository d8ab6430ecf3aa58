#!/usr/bin/env bash
# remote_cni: a pod made by a real CNI client (libcni 1.3.0, spec 1.1.0)
# with ferry-cni as its main plugin, against a remote peer one veth hop away
# (the real path, DESIGN.md "Test topology").
#
# The client, ferry-cni and the ferry service run in host namespace H
# (cni_topology), which reaches the remote peer RP over an MTU-1500 veth
# (e2e_remote_topology -H). The pod has ferry's default addresses
# (198.18.0.2/24, fd00:f::2/64: no IPAM) and MTU 65520. Checks, each 64 MiB
# with sha256 checked on both sides (tests/tools/tcp_xfer.py):
#  * the pod uploads to and downloads from servers in RP, IPv4 and IPv6;
#  * through the portMappings capability, clients in RP reach H's own
#    address on the link (10.77.X.1, fd77:X::1) and move data into and out
#    of the pod's servers, IPv4 and IPv6;
#  * DEL leaves nothing.
# Each transfer gives up after 20 s without progress.
#
# Issue 11: on the code before its fix, ferry offered the pod window 0 from
# the SYN-ACK on: no upload, and no verdict after a download.
E2E_NAME=remote_cni
# shellcheck source=tests/e2e/cni_clients.sh
source "$(dirname "${BASH_SOURCE[0]}")/cni_clients.sh"
e2e_init
source "$(dirname "${BASH_SOURCE[0]}")/../tools/tcp_e2e.sh"
cni_clients_build
cni_topology
e2e_remote_topology -H "$H" 1500
NET=remotecni$$
N=$((64 << 20))
M1=$(e2e_free_port)
M2=$(e2e_free_port)
[[ $M1 != "$M2" ]] || M2=$((M1 + 1))

cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni","mtu":65520,
  "stateDir":"'"$CNI_T/state"'","capabilities":{"portMappings":true}}]}'
export CAP_ARGS='{"portMappings":[{"hostPort":'$M1',"containerPort":7001,"protocol":"tcp"},
  {"hostPort":'$M2',"containerPort":7002,"protocol":"tcp"}]}'
cni_run 11 pod1 add "$NET" "$PNS"
unset CAP_ARGS
cni_ok "ADD (spec 1.1.0, MTU 65520, two TCP port mappings)"
((RC == 0)) || exit 1
DEV=$(cni_json 'r["interfaces"][0]["name"]')
e2e_expect "pod's eth0 has MTU 65520" bash -c "ip -n '$P' link show eth0 | grep -q 'mtu 65520'"

# ---- the pod -> RP
xfer_server_in "$RP" UP --addr :: --mode sink --bytes $N --seed 61 --count 2 --timeout 60
xfer_server_in "$RP" DOWN --addr :: --mode source --bytes $N --seed 62 --count 2 --timeout 60
podx() { timeout -k 5 60 nsenter --net="/run/netns/$P" $XFER connect --timeout 20 --bytes $N "$@"; }
for peer in "${REMOTE_P4[0]}" "${REMOTE_P6[0]}"; do
  e2e_expect "pod -> RP $peer: 64 MiB up" podx --addr "$peer" --port "$UP_PORT" --mode send --seed 61
  e2e_expect "pod <- RP $peer: 64 MiB down" podx --addr "$peer" --port "$DOWN_PORT" --mode recv --seed 62
done
e2e_expect "RP's sink verified both uploads" xfer_wait "$UP_PID"
e2e_expect "RP's source got both verdicts" xfer_wait "$DOWN_PID"

# ---- RP -> H's address -> the pod (port mappings)
xfer_server_in "$P" IN --addr :: --port 7001 --mode sink --bytes $N --seed 63 --count 2 --timeout 60
xfer_server_in "$P" OUT --addr :: --port 7002 --mode source --bytes $N --seed 64 --count 2 --timeout 60
px() { timeout -k 5 60 "${RPN[@]}" $XFER connect --timeout 20 --bytes $N "$@"; }
for h in "${REMOTE_H4[0]}" "${REMOTE_H6[0]}"; do
  e2e_expect "RP -> $h:$M1 -> pod: 64 MiB" px --addr "$h" --port "$M1" --mode send --seed 63
  e2e_expect "RP <- $h:$M2 <- pod: 64 MiB" px --addr "$h" --port "$M2" --mode recv --seed 64
done
e2e_expect "the pod's sink verified both" xfer_wait "$IN_PID"
e2e_expect "the pod's source got both verdicts" xfer_wait "$OUT_PID"
((E2E_FAILED)) && cni_ferry_log "$DEV"

cni_run 11 pod1 del "$NET" "$PNS"
cni_ok "DEL"
left=$(cni_leftovers)
e2e_expect "DEL left nothing ($left)" test -z "$left"
