#!/usr/bin/env bash
# cni_main.sh: ferry-cni as the main plugin, driven by libcni clients.
#
# 1. spec 1.1.0 (libcni 1.3.0, host-local 1.9.1 from 198.19.10.0/24):
#    STATUS -> ADD -> the pod downloads 4 MiB from a server on 127.0.0.1 in H
#    through ferry (gateway address), checksums match -> CHECK -> GC with the
#    attachment listed (kept, still serving) -> DEL -> nothing left (links,
#    service, state, IPAM) -> DEL again.
# 2. GC without the attachment listed, twice: once as libcni does it (it
#    DELs what its cache knows), once with the client's cache wiped, so that
#    ferry-cni's own GC has to find and remove the attachment.
# 2b. four concurrent ADDs then DELs (eth1..eth4 of one pod).
# 3. a dead service: CHECK fails (107), DEL still cleans up.
# 4. spec 1.0.0 (bookworm libcni 1.1.2), no IPAM: ferry's defaults, download
#    over IPv4 (198.18.0.1) and IPv6 (fd00:f::1), CHECK, DEL, DEL; a DHCP
#    client in the pod is handed the configuration's dns (busybox udhcpc).
# 5. spec 0.4.0: ADD/CHECK/DEL.
# 6. DEL after the pod's namespace is gone.
# Topology: see cni_clients.sh (client, ferry-cni and ferry run in H).
E2E_NAME=cni_main
# shellcheck source=tests/e2e/cni_clients.sh
source "$(dirname "${BASH_SOURCE[0]}")/cni_clients.sh"
e2e_init
cni_clients_build
cni_topology
mkdir -p "$E2E_TMP/www"
cni_http_servers "$E2E_TMP/www"
NET=cnimain$$

conf11() {
  cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni","stateDir":"'"$CNI_T/state"'",
    "mapGateway":true,"ipam":{"type":"host-local","dataDir":"'"$CNI_T/ipam"'","ranges":[[{"subnet":"198.19.10.0/24"}]],
            "routes":[{"dst":"0.0.0.0/0"}]}}]}'
}
ipam_count() { find "$CNI_T/ipam/$NET" -maxdepth 1 -name '198.19.*' 2>/dev/null | wc -l; }
clean() {
  local left
  left=$(cni_leftovers)
  if [[ -z $left && $(ipam_count) == 0 ]]; then
    e2e_log "ok: $1: nothing left"
  else
    e2e_fail "$1: left behind: $left ipam=$(ipam_count)"
  fi
}

# ---- 1. spec 1.1.0 -----------------------------------------------------------------
conf11
cni_run 11 ctrA status "$NET"
cni_ok "STATUS"
cni_run 11 ctrA add "$NET" "$PNS"
cni_ok "ADD (1.1.0, host-local)"
cp "$OUT" "$E2E_TMP/addA.json"
e2e_expect "result: sandbox is the pod's namespace" \
  test "$(cni_json 'r["interfaces"][1]["sandbox"]')" = "$PNS"
e2e_expect "result: eth0 with a host-local address" \
  test "$(cni_json 'r["interfaces"][1]["name"] + " " + r["ips"][0]["address"].split(".")[2]')" = "eth0 10"
GW=$(cni_json 'r["ips"][0]["gateway"]')
POD_IP=$(cni_json 'r["ips"][0]["address"].split("/")[0]')
DEV=$(cni_json 'r["interfaces"][0]["name"]')
e2e_expect "pod has $POD_IP on eth0" bash -c "ip -n '$P' -4 -o addr show eth0 | grep -q ' $POD_IP/24'"
e2e_expect "pod default route via $GW" bash -c "ip -n '$P' route show default | grep -q 'via $GW dev eth0'"
e2e_expect "ferry status: $DEV alive" bash -c \
  "nsenter --net=/run/netns/$H '$FERRY' status '$DEV' -j | python3 -c 'import json,sys; a=json.load(sys.stdin)[\"attachments\"][0]; sys.exit(0 if a[\"alive\"] else 1)'"
if cni_fetch "$GW" "$E2E_TMP/got"; then
  e2e_log "ok: pod downloaded 4 MiB from 127.0.0.1 in H through ferry, sha256 matches"
else
  e2e_fail "download through ferry (gateway $GW)"
  cni_ferry_log "$DEV"
fi
cni_run 11 ctrA check "$NET" "$PNS"
cni_ok "CHECK"
cni_run 11 ctrA gc "$NET" ctrA/eth0
cni_ok "GC with ctrA/eth0 listed"
e2e_expect "after GC: $DEV still there" bash -c "ip -n '$H' link show '$DEV' >/dev/null"
e2e_expect "after GC: still serving" cni_fetch "$GW" "$E2E_TMP/got"
cni_run 11 ctrA check "$NET" "$PNS"
cni_ok "CHECK after GC"
cni_run 11 ctrA del "$NET" "$PNS"
cni_ok "DEL"
e2e_expect "after DEL: no eth0 in the pod" bash -c "! ip -n '$P' link show eth0 2>/dev/null"
clean "DEL"
cni_run 11 ctrA del "$NET" "$PNS"
cni_ok "DEL again"

# ---- 2. GC without the attachment listed ------------------------------------------------
cni_run 11 ctrB add "$NET" "$PNS"
cni_ok "ADD ctrB"
cni_run 11 ctrB gc "$NET"
cni_ok "GC with nothing listed (libcni DELs from its cache, then GC)"
clean "GC via libcni cache"
cni_run 11 ctrC add "$NET" "$PNS"
cni_ok "ADD ctrC"
DEVC=$(cni_json 'r["interfaces"][0]["name"]')
rm -rf "$CNI_T/cache"/*  # the runtime forgot ctrC: only ferry-cni's state knows it
cni_run 11 ctrC gc "$NET"
cni_ok "GC with nothing listed and no client cache"
e2e_expect "ferry-cni's GC removed $DEVC" bash -c "! ip -n '$H' link show '$DEVC' 2>/dev/null"
clean "GC by ferry-cni's own state"

# ---- 2b. concurrent ADDs and DELs (the state lock serialises them) ------------------------
pids=()
for i in 1 2 3 4; do
  (OUT=$E2E_TMP/par$i.out ERR=$E2E_TMP/par$i.err; CNI_IFNAME=eth$i cni_run 11 "ctrP$i" add "$NET" "$PNS"; exit $RC) &
  pids+=($!)
done
fails=0
for pid in "${pids[@]}"; do wait "$pid" || fails=$((fails + 1)); done
e2e_expect "4 concurrent ADDs (eth1..eth4 in one pod)" test "$fails" = 0
e2e_expect "4 distinct addresses" test "$(cat "$E2E_TMP"/par?.out | grep -o '198\.19\.10\.[0-9]*/24' | sort -u | wc -l)" = 4
pids=()
for i in 1 2 3 4; do
  (OUT=$E2E_TMP/pard$i.out ERR=$E2E_TMP/pard$i.err; CNI_IFNAME=eth$i cni_run 11 "ctrP$i" del "$NET" "$PNS"; exit $RC) &
  pids+=($!)
done
fails=0
for pid in "${pids[@]}"; do wait "$pid" || fails=$((fails + 1)); done
e2e_expect "4 concurrent DELs" test "$fails" = 0
clean "concurrent ADD/DEL"

# ---- 3. the service died ----------------------------------------------------------------
cni_run 11 ctrE add "$NET" "$PNS"
cni_ok "ADD ctrE"
DEVE=$(cni_json 'r["interfaces"][0]["name"]')
SPID=$(cat "/run/ferry/$DEVE/pid" 2>/dev/null || echo 0)
if [[ $SPID =~ ^[0-9]+$ && $SPID -gt 1 && $(readlink "/proc/$SPID/exe") == "$(readlink -f "$FERRY")" ]]; then
  kill -KILL "$SPID"  # the service this scenario started, by its pid file
  for _ in $(seq 50); do [[ -d /proc/$SPID ]] || break; sleep 0.1; done
  cni_run 11 ctrE check "$NET" "$PNS"
  cni_err "CHECK with the service dead" 107
else
  e2e_fail "no service pid for $DEVE"
fi
cni_run 11 ctrE del "$NET" "$PNS"
cni_ok "DEL with the service dead"
clean "DEL with the service dead"

# ---- 4. spec 1.0.0, ferry's default addresses -----------------------------------------------
cni_conf 10.conflist '{"cniVersion":"1.0.0","name":"'$NET'","plugins":[{"type":"ferry-cni","mtu":1500,"mapGateway":true,
  "stateDir":"'"$CNI_T/state"'","dns":{"nameservers":["198.18.0.1"],"search":["svc.cluster.test"]}}]}'
cni_run 10 ctrD add "$NET" "$PNS"
cni_ok "ADD (1.0.0, defaults)"
e2e_expect "result: 198.18.0.2/24 and fd00:f::2/64" \
  test "$(cni_json '" ".join(i["address"] for i in r["ips"])')" = "198.18.0.2/24 fd00:f::2/64"
e2e_expect "result: dns from the configuration" test "$(cni_json 'r["dns"]["nameservers"][0]')" = 198.18.0.1
# ferry's DHCP server hands the pod what the result says (a client in the
# pod asks; its script only records what it was given).
printf '#!/bin/sh\n[ "$1" = bound ] && env > "%s"\nexit 0\n' "$E2E_TMP/dhcp.env" >"$E2E_TMP/dhcp.sh"
chmod +x "$E2E_TMP/dhcp.sh"
timeout 20 nsenter --net="/run/netns/$P" busybox udhcpc -f -q -n -t 5 -i eth0 -s "$E2E_TMP/dhcp.sh" -O search \
  >/dev/null 2>&1
e2e_expect "DHCP in the pod: 198.18.0.2, DNS 198.18.0.1, search svc.cluster.test, MTU 1500" \
  bash -c "grep -qx ip=198.18.0.2 '$E2E_TMP/dhcp.env' && grep -qx dns=198.18.0.1 '$E2E_TMP/dhcp.env' &&
           grep -qx search=svc.cluster.test '$E2E_TMP/dhcp.env' && grep -qx mtu=1500 '$E2E_TMP/dhcp.env'"
DEVD=$(cni_json 'r["interfaces"][0]["name"]')
if cni_fetch 198.18.0.1 "$E2E_TMP/got4"; then e2e_log "ok: IPv4 download via 198.18.0.1"; else
  e2e_fail "IPv4 download via 198.18.0.1"; cni_ferry_log "$DEVD"; fi
if cni_fetch fd00:f::1 "$E2E_TMP/got6"; then e2e_log "ok: IPv6 download via fd00:f::1"; else
  e2e_fail "IPv6 download via fd00:f::1"; cni_ferry_log "$DEVD"; fi
cni_run 10 ctrD check "$NET" "$PNS"
cni_ok "CHECK (1.0.0)"
cni_run 10 ctrD del "$NET" "$PNS"
cni_ok "DEL (1.0.0)"
clean "DEL (1.0.0)"
cni_run 10 ctrD del "$NET" "$PNS"
cni_ok "DEL again (1.0.0)"

# ---- 5. spec 0.4.0 ---------------------------------------------------------------------------
cni_conf 04.conflist '{"cniVersion":"0.4.0","name":"'$NET'","plugins":[{"type":"ferry-cni","stateDir":"'"$CNI_T/state"'"}]}'
cni_run 10 ctr04 add "$NET" "$PNS"
cni_ok "ADD (0.4.0)"
e2e_expect "0.4.0 result has ips[].version" test "$(cni_json 'r["ips"][0]["version"]')" = 4
cni_run 10 ctr04 check "$NET" "$PNS"
cni_ok "CHECK (0.4.0)"
cni_run 10 ctr04 del "$NET" "$PNS"
cni_ok "DEL (0.4.0)"
clean "DEL (0.4.0)"

# ---- 6. DEL after the namespace is gone -------------------------------------------------------
conf11
cni_run 11 ctrF add "$NET" "$PNS"
cni_ok "ADD ctrF"
ip netns del "$P"
cni_run 11 ctrF del "$NET" "$PNS"
cni_ok "DEL with the pod's namespace gone"
clean "DEL with the pod's namespace gone"

# ---- 7. portMappings capability: host port -> pod port, inbound through ferry -----------------
ip netns add "$P" || e2e_die "recreate $P"
cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni","stateDir":"'"$CNI_T/state"'",
  "capabilities":{"portMappings":true}}]}'
mkdir -p "$E2E_TMP/podwww"
cp "$BLOB" "$E2E_TMP/podwww/blob"
export CAP_ARGS='{"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]}'
cni_run 11 ctrG add "$NET" "$PNS"
unset CAP_ARGS
cni_ok "ADD with portMappings 18080 -> 80"
DEVG=$(cni_json 'r["interfaces"][0]["name"]')
# The pod's server, on its address (which exists from ADD on).
nsenter --net="/run/netns/$P" /usr/bin/python3 -m http.server 80 --bind 198.18.0.2 --directory "$E2E_TMP/podwww" \
  >"$E2E_TMP/podhttp.log" 2>&1 &
PODHTTP=$!
e2e_on_exit "e2e_kill_pid $PODHTTP"
up=0
for _ in $(seq 100); do
  if nsenter --net="/run/netns/$P" timeout 1 bash -c 'exec 3<>/dev/tcp/198.18.0.2/80' 2>/dev/null; then up=1; break; fi
  sleep 0.1
done
((up)) || e2e_fail "the pod's server did not start: $(cat "$E2E_TMP/podhttp.log")"
rm -f "$E2E_TMP/in"
if timeout 40 nsenter --net="/run/netns/$H" curl -sS --max-time 30 -o "$E2E_TMP/in" http://127.0.0.1:18080/blob &&
  [[ $(sha256sum <"$E2E_TMP/in") == "$(sha256sum <"$BLOB")" ]]; then
  e2e_log "ok: H's 127.0.0.1:18080 reaches the pod's port 80 through ferry, sha256 matches"
else
  e2e_fail "inbound port mapping 18080 -> 80"
  cni_ferry_log "$DEVG"
fi
cni_run 11 ctrG del "$NET" "$PNS"
cni_ok "DEL ctrG"
e2e_expect "port 18080 closed after DEL" bash -c \
  "! nsenter --net=/run/netns/$H timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/18080' 2>/dev/null"
clean "DEL ctrG"

# ---- 8. hook "xdp" and fastpath false are handed to ferry attach ----------------------------------
cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni","stateDir":"'"$CNI_T/state"'",
  "hook":"xdp","fastpath":false,"mapGateway":true}]}'
cni_run 11 ctrX add "$NET" "$PNS"
cni_ok "ADD with hook xdp, fastpath off"
DEVX=$(cni_json 'r["interfaces"][0]["name"]')
e2e_expect "service runs with --no-fastpath --hook xdp" bash -c \
  "tr '\\0' ' ' </proc/\$(cat /run/ferry/$DEVX/pid)/cmdline | grep -q -- '--no-fastpath --hook xdp'"
e2e_expect "pod's eth0 sends full checksums (tx off) for XDP" bash -c \
  "ip netns exec '$P' ethtool -k eth0 | grep -q '^tx-checksumming: off'"
e2e_expect "ferry status says hook xdp" bash -c \
  "nsenter --net=/run/netns/$H '$FERRY' status '$DEVX' -j | grep -q '\"hook\":\"xdp\"'"
if cni_fetch 198.18.0.1 "$E2E_TMP/gotx"; then e2e_log "ok: download through the XDP hook"; else
  e2e_fail "download through the XDP hook"; cni_ferry_log "$DEVX"; fi
cni_run 11 ctrX check "$NET" "$PNS"
cni_ok "CHECK (xdp)"
cni_run 11 ctrX del "$NET" "$PNS"
cni_ok "DEL (xdp)"
clean "DEL (xdp)"
