#!/usr/bin/env bash
# cni_bridge: ferry-cni chained after the reference `bridge` plugin, two
# pods on one bridge (libcni 1.1.2 client, bookworm's plugins).
#   ADD pod 1, ADD pod 2: each is served on its own veth host end (a bridge
#   port), never on the bridge, whose name prevResult lists first;
#   both pods download from the node's 127.0.0.1 through ferry;
#   DEL pod 1: pod 2's service is still alive and it still downloads;
#   DEL pod 2: nothing of ferry left; the bridge (the bridge plugin's) stays.
# On 8e45162 ferry attached to the bridge itself and the second ADD failed,
# its rollback detaching the first pod's service.
E2E_NAME=cni_bridge
# shellcheck source=tests/e2e/cni_clients.sh
source "$(dirname "${BASH_SOURCE[0]}")/cni_clients.sh"
e2e_init
cni_clients_build
cni_topology
P1=$P P1NS=$PNS
P2=$(e2e_unique q)
ip netns add "$P2" || e2e_die "netns $P2"
e2e_on_exit "ip netns del $P2"
P2NS=/var/run/netns/$P2
mkdir -p "$E2E_TMP/www"
cni_http_servers "$E2E_TMP/www"
NET=cnibr$$
BR=fb$((RANDOM % 10000))
cni_conf br.conflist '{"cniVersion":"1.0.0","name":"'$NET'","plugins":[
  {"type":"bridge","bridge":"'$BR'","isGateway":false,"ipMasq":false,"mtu":1500,
   "ipam":{"type":"host-local","dataDir":"'"$CNI_T/ipam"'","ranges":[[{"subnet":"198.19.30.0/24","gateway":"198.19.30.1"}]],
           "routes":[{"dst":"0.0.0.0/0"}]}},
  {"type":"ferry-cni","mapGateway":true,"stateDir":"'"$CNI_T/state"'"}]}'
# served DEV: the ferry service of DEV is alive.
served() {
  timeout 10 nsenter --net="/run/netns/$H" "$FERRY" status "$1" -j 2>/dev/null |
    python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["attachments"][0]["alive"] else 1)'
}
# The host end of the last result: the sandbox-less interface that is not the bridge.
veth_of() { cni_json '[i["name"] for i in r["interfaces"] if not i.get("sandbox") and i["name"] != "'$BR'"][0]'; }

cni_run 10 pod1 add "$NET" "$P1NS"
cni_ok "ADD pod 1 (bridge + ferry-cni)"
V1=$(veth_of)
cni_run 10 pod2 add "$NET" "$P2NS"
cni_ok "ADD pod 2"
V2=$(veth_of)
e2e_log "bridge $BR, pod 1 on $V1, pod 2 on $V2"
e2e_expect "the bridge is not attached" test ! -e "/run/ferry/$BR"
e2e_expect "pod 1 served on its veth $V1" served "$V1"
e2e_expect "pod 2 served on its veth $V2" served "$V2"
P=$P1
e2e_expect "pod 1 downloads through ferry" cni_fetch 198.19.30.1 "$E2E_TMP/got1"
P=$P2
e2e_expect "pod 2 downloads through ferry" cni_fetch 198.19.30.1 "$E2E_TMP/got2"

cni_run 10 pod1 del "$NET" "$P1NS"
cni_ok "DEL pod 1"
e2e_expect "after DEL of pod 1: pod 1's service gone" test ! -e "/run/ferry/$V1"
e2e_expect "after DEL of pod 1: pod 2 still served" served "$V2"
P=$P2
e2e_expect "after DEL of pod 1: pod 2 still downloads" cni_fetch 198.19.30.1 "$E2E_TMP/got3"

cni_run 10 pod2 del "$NET" "$P2NS"
cni_ok "DEL pod 2"
left=$(cni_leftovers)
e2e_expect "nothing of ferry left ($left)" test -z "$left"
e2e_expect "the bridge is the bridge plugin's: still there" ip -n "$H" link show "$BR"
P=$P1
