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

xfer_remote_both_ways "$P" pod "$N" 61 "$M1" "$M2"
((E2E_FAILED)) && cni_ferry_log "$DEV"

cni_run 11 pod1 del "$NET" "$PNS"
cni_ok "DEL"
left=$(cni_leftovers)
e2e_expect "DEL left nothing ($left)" test -z "$left"
