#!/usr/bin/env bash
# cni_failed_add.sh: an ADD that fails leaves nothing behind, and says why
# with the spec's error object.
#   - invalid configuration (mtu 100): error 7, nothing created;
#   - IPAM plugin not in CNI_PATH: error 7;
#   - `ferry attach` fails (ferryPath names a program that exits 1) after
#     IPAM and the veth were made: error 101; the veth, the state record and
#     the host-local allocation are all gone;
#   - the pod already has an eth0 (not ferry's): error 103, that eth0 kept,
#     nothing of ferry's left, the allocation released;
#   - chained with a prevResult naming no host-side interface: error 108.
# Each through the spec 1.1.0 client (libcni 1.3.0) in H; see cni_clients.sh.
E2E_NAME=cni_failed_add
# shellcheck source=tests/e2e/cni_clients.sh
source "$(dirname "${BASH_SOURCE[0]}")/cni_clients.sh"
e2e_init
cni_clients_build
cni_topology
NET=cnifail$$
IPAM='"ipam":{"type":"host-local","dataDir":"'"$CNI_T/ipam"'","ranges":[[{"subnet":"198.19.30.0/24"}]]}'
ipam_count() { find "$CNI_T/ipam/$NET" -maxdepth 1 -name '198.19.*' 2>/dev/null | wc -l; }
nothing_left() {
  local left
  left=$(cni_leftovers)
  if [[ -z $left && $(ipam_count) == 0 ]] && ! ip -n "$P" link show eth0 >/dev/null 2>&1; then
    e2e_log "ok: $1: nothing left"
  else
    e2e_fail "$1: left behind: $left ipam=$(ipam_count) $(ip -n "$P" -o link show eth0 2>/dev/null)"
  fi
}

cni_conf a.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni","mtu":100,
  "stateDir":"'"$CNI_T/state"'",'"$IPAM"'}]}'
cni_run 11 c1 add "$NET" "$PNS"
cni_err "ADD with mtu 100" 7
nothing_left "bad mtu"

cni_conf a.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni",
  "stateDir":"'"$CNI_T/state"'","ipam":{"type":"no-such-ipam"}}]}'
cni_run 11 c2 add "$NET" "$PNS"
cni_err "ADD with an unknown IPAM plugin" 7
nothing_left "unknown IPAM"

printf '#!/bin/sh\necho "attach refused by the test" >&2\nexit 1\n' >"$E2E_TMP/badferry"
chmod 755 "$E2E_TMP/badferry"
cni_conf a.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni",
  "ferryPath":"'"$E2E_TMP/badferry"'","stateDir":"'"$CNI_T/state"'",'"$IPAM"'}]}'
cni_run 11 c3 add "$NET" "$PNS"
cni_err "ADD with a failing ferry attach" 101
e2e_expect "the error carries ferry's message" grep -q "attach refused by the test" "$OUT"
nothing_left "failed attach"

ip -n "$P" link add eth0 type veth peer name other0
cni_conf a.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni",
  "stateDir":"'"$CNI_T/state"'",'"$IPAM"'}]}'
cni_run 11 c4 add "$NET" "$PNS"
cni_err "ADD when the pod already has eth0" 103
e2e_expect "the pod's own eth0 is kept" bash -c "ip -n '$P' link show other0 >/dev/null"
ip -n "$P" link del eth0
nothing_left "existing eth0"

# Chained: a previous plugin whose result has only the pod's interface.
cat >"$E2E_TMP/fakeprev" <<PREV
#!/bin/sh
cat >/dev/null
case "\$CNI_COMMAND" in
  ADD) echo '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"'"$PNS"'"}],"ips":[{"address":"198.19.30.9/24","interface":0}]}';;
  VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}';;
esac
exit 0
PREV
chmod 755 "$E2E_TMP/fakeprev"
PLUGINS11="$E2E_TMP:$PLUGINS11"
cni_conf a.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"fakeprev"},
  {"type":"ferry-cni","stateDir":"'"$CNI_T/state"'"}]}'
cni_run 11 c5 add "$NET" "$PNS"
cni_err "chained ADD without a host-side interface" 108
nothing_left "chained without host interface"
