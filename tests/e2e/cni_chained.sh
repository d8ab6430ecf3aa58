#!/usr/bin/env bash
# cni_chained.sh: ferry-cni chained after the reference `ptp` plugin, which
# makes the veth and configures the pod (host-local addresses from
# 198.19.20.0/24); ferry attaches to ptp's host end from prevResult.
#
# spec 1.1.0 (libcni 1.3.0, ptp/host-local 1.9.1): STATUS -> ADD (the result
# is ptp's, passed on) -> the pod downloads 4 MiB from 127.0.0.1 in H through
# ferry via ptp's gateway address, checksums match -> CHECK -> GC with the
# attachment listed -> DEL (ferry detached, ptp's veth removed by ptp) ->
# DEL again. Then spec 1.0.0 (bookworm libcni 1.1.2, ptp 1.1.1): ADD,
# download, CHECK, DEL. Then hook "xdp" (1.1.0): ADD, download, DEL.
# Topology: see cni_clients.sh. ptp turns on ip_forward inside H only; H has
# no route anywhere but its own veths.
E2E_NAME=cni_chained
# shellcheck source=tests/e2e/cni_clients.sh
source "$(dirname "${BASH_SOURCE[0]}")/cni_clients.sh"
e2e_init
cni_clients_build
cni_topology
mkdir -p "$E2E_TMP/www"
cni_http_servers "$E2E_TMP/www"
NET=cnichain$$

chain() {  # chain VERSION [FERRY-EXTRA-FIELDS]: ptp + ferry-cni
  cni_conf chain.conflist '{"cniVersion":"'"$1"'","name":"'$NET'","plugins":[
    {"type":"ptp","ipMasq":false,"mtu":1500,
     "ipam":{"type":"host-local","dataDir":"'"$CNI_T/ipam"'","ranges":[[{"subnet":"198.19.20.0/24"}]],
             "routes":[{"dst":"0.0.0.0/0"}]}},
    {"type":"ferry-cni","mapGateway":true,"stateDir":"'"$CNI_T/state"'"'"${2:-}"'}]}'
}
# The host-side (sandbox-less) interface of the last result.
host_if() { cni_json '[i["name"] for i in r["interfaces"] if not i.get("sandbox")][0]'; }

for ver in 11 10; do
  if [[ $ver == 11 ]]; then chain 1.1.0; else chain 1.0.0; fi
  CID=ctr$ver
  if [[ $ver == 11 ]]; then
    cni_run 11 "$CID" status "$NET"
    cni_ok "STATUS (ptp + ferry-cni)"
  fi
  cni_run "$ver" "$CID" add "$NET" "$PNS"
  cni_ok "ADD chained (client $ver)"
  DEV=$(host_if)
  GW=$(cni_json 'r["ips"][0]["gateway"]')
  e2e_expect "result is ptp's: host end $DEV, eth0 in the pod" \
    test "$(cni_json '[i["name"] for i in r["interfaces"] if i.get("sandbox")][0]')" = eth0
  e2e_expect "ferry attached to $DEV" test -d "/run/ferry/$DEV"
  if cni_fetch "$GW" "$E2E_TMP/got"; then
    e2e_log "ok: pod downloaded 4 MiB through ferry via $GW, sha256 matches"
  else
    e2e_fail "download through ferry (gateway $GW)"
    cni_ferry_log "$DEV"
  fi
  cni_run "$ver" "$CID" check "$NET" "$PNS"
  cni_ok "CHECK chained (client $ver)"
  if [[ $ver == 11 ]]; then
    cni_run 11 "$CID" gc "$NET" "$CID/eth0"
    cni_ok "GC with $CID/eth0 listed"
    e2e_expect "after GC: still attached" test -d "/run/ferry/$DEV"
  fi
  cni_run "$ver" "$CID" del "$NET" "$PNS"
  cni_ok "DEL chained (client $ver)"
  e2e_expect "after DEL: no service dir for $DEV" test ! -e "/run/ferry/$DEV"
  e2e_expect "after DEL: ptp's veth gone" bash -c "! ip -n '$H' link show '$DEV' 2>/dev/null"
  left=$(cni_leftovers)
  e2e_expect "after DEL: nothing of ferry left ($left)" test -z "$left"
  cni_run "$ver" "$CID" del "$NET" "$PNS"
  cni_ok "DEL again (client $ver)"
done

# hook "xdp" chained: ferry-cni turns off TX checksum offload on ptp's pod
# interface (XDP loses the offload state), and the download still verifies.
chain 1.1.0 ',"hook":"xdp"'
cni_run 11 ctrX add "$NET" "$PNS"
cni_ok "ADD chained, hook xdp"
DEV=$(host_if)
GW=$(cni_json 'r["ips"][0]["gateway"]')
e2e_expect "pod's eth0: tx-checksumming off" bash -c "ip netns exec '$P' ethtool -k eth0 | grep -q '^tx-checksumming: off'"
if cni_fetch "$GW" "$E2E_TMP/gotx"; then e2e_log "ok: download through ferry's XDP hook on ptp's veth"; else
  e2e_fail "download through the XDP hook (chained)"; cni_ferry_log "$DEV"; fi
cni_run 11 ctrX del "$NET" "$PNS"
cni_ok "DEL chained, hook xdp"
left=$(cni_leftovers)
e2e_expect "after DEL: nothing of ferry left ($left)" test -z "$left"
