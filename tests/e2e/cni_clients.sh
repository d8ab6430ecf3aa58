#!/usr/bin/env bash
# shellcheck disable=SC2034
# cni_clients.sh: ferry-cni under real CNI clients that ferry did not write.
#
# Sourced by the other cni_*.sh scenarios for its helpers; run on its own it
# is a scenario too: it builds the clients and checks VERSION, validate and
# STATUS (ready; no privileges: 50; no ferry: 50; bad configuration: 7)
# through them.
#
# The clients come from $CNI_SETUP (default ../shared/tools/
# cniclient-setup.sh beside the repository, else /work/shared/tools/...:
# the project's shared client builder): `cniclient` on
# Debian bookworm's libcni 1.1.2 (spec <= 1.0.0) with bookworm's reference
# plugins, and `cniclient-1.3.0` on libcni 1.3.0 (spec 1.1.0: STATUS, GC)
# with the reference plugins 1.9.1. They are built once per build directory
# under $FERRY_BUILD_DIR/cniclient (a fresh machine builds them: apt-get from
# the Debian mirror); a build failure fails the scenario, loudly.
#
# Topology (DESIGN.md, "Test topology"): the client, and so ferry-cni and
# the ferry service it starts, run inside a host-side namespace H that this
# scenario creates (nsenter --net, so bpffs stays visible); the pod is
# another namespace P. Servers listen on 127.0.0.1 / ::1 inside H only.
#
# Helpers:
#   cni_clients_build          sets CNICLIENT10, CNICLIENT11, PLUGINS10, PLUGINS11
#   cni_topology               creates H and P (names in $H, $P, paths $PNS);
#                              cleanup detaches every ferry service on H's links
#   cni_conf FILE JSON         writes a network configuration list
#   cni_run VER CID CMD ARGS   runs client VER (10 or 11) in H; RC, $OUT, $ERR
#   cni_http_servers DIR       http servers in H on 127.0.0.1 and ::1: HTTP_PORT
#   cni_fetch ADDR FILE        curl from inside P; true when FILE's sha256
#                              matches $BLOB's
#   cni_leftovers              prints what ferry left in H / state / IPAM
set -u

CNI_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shared/ sits beside the repository (CI's layout and the developers');
# /work/shared is the same folder on the project's machines.
if [[ -z ${CNI_SETUP:-} ]]; then
  CNI_SETUP=$CNI_HERE/../../../shared/tools/cniclient-setup.sh
  [[ -r $CNI_SETUP ]] || CNI_SETUP=/work/shared/tools/cniclient-setup.sh
fi
E2E_NAME=${E2E_NAME:-$(basename "${BASH_SOURCE[1]:-${BASH_SOURCE[0]}}" .sh)}
# shellcheck source=tests/e2e/lib.sh
source "$CNI_HERE/lib.sh"

# Builds (once per build dir) or reuses the CNI clients and plugins.
cni_clients_build() {
  local build=${FERRY_BUILD_DIR:-$(dirname "$FERRY")}
  CNI_WORK=$build/cniclient
  CNICLIENT10=$CNI_WORK/bin/cniclient
  CNICLIENT11=$CNI_WORK/bin/cniclient-1.3.0
  PLUGINS10=/usr/lib/cni
  PLUGINS11=$CNI_WORK/sidplugins/usr/lib/cni
  FERRY_CNI=$(dirname "$FERRY")/ferry-cni
  [[ -x $FERRY_CNI ]] || e2e_die "no ferry-cni beside $FERRY"
  mkdir -p "$CNI_WORK"
  (
    # One build at a time per build dir, even with ctest -j.
    flock -w 900 9 || { echo "cniclient build lock timed out"; exit 1; }
    if [[ -x $CNICLIENT10 && -x $CNICLIENT11 && -x $PLUGINS11/host-local && -x $PLUGINS10/host-local ]]; then
      exit 0
    fi
    [[ -r $CNI_SETUP ]] || { echo "no $CNI_SETUP"; exit 1; }
    echo "[$E2E_NAME] building CNI clients in $CNI_WORK (a few minutes, log: $CNI_WORK/setup.log)"
    WORK=$CNI_WORK WITH_CNI11=1 SMOKE=0 timeout 900 bash "$CNI_SETUP" >"$CNI_WORK/setup.log" 2>&1 ||
      { tail -20 "$CNI_WORK/setup.log"; exit 1; }
  ) 9>"$CNI_WORK.lock" || e2e_die "could not build the CNI clients (network or Debian mirror unavailable?)"
  [[ -x $CNICLIENT10 && -x $CNICLIENT11 ]] || e2e_die "CNI clients missing after the build"
}

# Detaches ferry from every link of H, then deletes H and P.
_cni_topology_cleanup() {
  local l
  if [[ -e /run/netns/$H ]]; then
    for l in $(ip -n "$H" -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      [[ $l == lo ]] && continue
      timeout 20 nsenter --net="/run/netns/$H" "$FERRY" detach "$l" >/dev/null 2>&1 || true
    done
  fi
  ip netns del "$P" 2>/dev/null || true
  ip netns del "$H" 2>/dev/null || true
}

# Creates the host-side and pod namespaces.
cni_topology() {
  H=$(e2e_unique h)
  P=$(e2e_unique p)
  ip netns add "$H" || e2e_die "ip netns add $H"
  e2e_on_exit _cni_topology_cleanup
  ip netns add "$P" || e2e_die "ip netns add $P"
  PNS=/var/run/netns/$P
  ip -n "$H" link set lo up
  CNI_T=$E2E_TMP/cni
  mkdir -p "$CNI_T/net.d" "$CNI_T/cache" "$CNI_T/ipam" "$CNI_T/state"
}

# Writes one .conflist.
cni_conf() {
  local file=$1 text=$2
  rm -f "$CNI_T"/net.d/*
  printf '%s\n' "$text" >"$CNI_T/net.d/$file"
}

# cni_run VER CID CMD ARGS...: one client call inside H, bounded.
cni_run() {
  local ver=$1 cid=$2
  shift 2
  local client=$CNICLIENT10 plugins=$PLUGINS10
  if [[ $ver == 11 ]]; then client=$CNICLIENT11 plugins=$PLUGINS11; fi
  RC=0
  timeout -k 5 90 nsenter --net="/run/netns/$H" env CNI_PATH="$(dirname "$FERRY_CNI"):$plugins" \
    NETCONFPATH="$CNI_T/net.d" CNICLIENT_CACHE_DIR="$CNI_T/cache" CNICLIENT_CONTAINERID="$cid" \
    "$client" "$@" >"$OUT" 2>"$ERR" </dev/null || RC=$?
}

# Shows the last client output.
cni_show() {
  e2e_log "--- client stdout"
  sed 's/^/    /' "$OUT" | tail -40
  e2e_log "--- client stderr"
  sed 's/^/    /' "$ERR" | tail -20
}

# Expects the last client call to have succeeded.
cni_ok() {
  if ((RC == 0)); then
    e2e_log "ok: $1"
  else
    e2e_fail "$1 (exit $RC)"
    cni_show
  fi
}

# Expects the last client call to have failed with CNI error code $2.
cni_err() {
  local what=$1 code=$2 got
  got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$OUT" 2>/dev/null || echo none)
  if ((RC != 0)) && [[ $got == "$code" ]]; then
    e2e_log "ok: $what (error $code)"
  else
    e2e_fail "$what: want error $code, got exit $RC code $got"
    cni_show
  fi
}

# A field of the last JSON output, by a Python expression on `r`.
cni_json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($1)" "$OUT" 2>/dev/null; }

# Two http servers inside H (127.0.0.1 and ::1, same port) serving DIR;
# a random blob to fetch: $BLOB. Sets HTTP_PORT.
cni_http_servers() {
  local dir=$1 addr pid
  BLOB=$dir/blob
  head -c $((4 << 20)) /dev/urandom >"$BLOB"
  HTTP_PORT=8080  # H is ours and empty: any port is free
  for addr in 127.0.0.1 ::1; do
    nsenter --net="/run/netns/$H" /usr/bin/python3 -m http.server "$HTTP_PORT" --bind "$addr" \
      --directory "$dir" >"$E2E_TMP/http.$addr.log" 2>&1 &
    pid=$!
    e2e_on_exit "e2e_kill_pid $pid"
  done
  local i
  for ((i = 0; i < 50; i++)); do
    if nsenter --net="/run/netns/$H" timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$HTTP_PORT" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  e2e_die "http server in $H did not start"
}

# cni_fetch ADDR OUTFILE: downloads $BLOB from inside the pod via ADDR.
cni_fetch() {
  local addr=$1 out=$2 url
  url="http://$addr:$HTTP_PORT/blob"
  [[ $addr == *:* ]] && url="http://[$addr]:$HTTP_PORT/blob"
  rm -f "$out"
  timeout -k 2 40 nsenter --net="/run/netns/$P" curl -sS --max-time 30 -o "$out" "$url" || return 1
  [[ $(sha256sum <"$out") == "$(sha256sum <"$BLOB")" ]]
}

# What ferry-cni / ferry left: fy links in H, service dirs of H's links,
# state records. Empty output means clean.
cni_leftovers() {
  local l
  ip -n "$H" -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^fy' | sed 's/^/link /'
  for l in $(ip -n "$H" -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ -d /run/ferry/$l ]] && echo "service dir /run/ferry/$l"
  done
  find "$CNI_T/state" -name '*.json' 2>/dev/null | sed 's/^/state /'
  return 0
}

# The ferry service log of a device (after a failure).
cni_ferry_log() { [[ -r /run/ferry/$1/log ]] && tail -20 "/run/ferry/$1/log" | sed 's/^/    /'; }

# ---- run on its own: clients, VERSION, validate, STATUS -----------------------
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  e2e_init
  cni_clients_build
  cni_topology
  for v in 10 11; do
    cni_run "$v" x version ferry-cni
    cni_ok "VERSION through client $v"
    for want in 0.4.0 1.0.0 1.1.0; do
      e2e_expect "client $v sees $want" grep -q "\"$want\"" "$OUT"
    done
  done
  cni_conf 10.conflist '{"cniVersion":"1.0.0","name":"cnival'$$'","plugins":[{"type":"ferry-cni","stateDir":"'"$CNI_T/state"'"}]}'
  cni_run 10 x validate "cnival$$"
  cni_ok "validate (1.0.0 list, libcni 1.1.2)"
  cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"cnival'$$'","plugins":[{"type":"ferry-cni","stateDir":"'"$CNI_T/state"'",
    "ipam":{"type":"host-local","dataDir":"'"$CNI_T/ipam"'","ranges":[[{"subnet":"198.19.200.0/24"}]]}}]}'
  cni_run 11 x validate "cnival$$"
  cni_ok "validate (1.1.0 list, libcni 1.3.0)"
  cni_run 11 x status "cnival$$"
  cni_ok "STATUS (root, BPF, ferry beside ferry-cni, host-local STATUS)"
  # Without CAP_NET_ADMIN and CAP_SYS_ADMIN (dropped from the bounding set
  # of the client, and so of the plugin it runs): not available.
  RC=0
  timeout 60 nsenter --net="/run/netns/$H" setpriv --bounding-set=-net_admin,-sys_admin \
    env CNI_PATH="$(dirname "$FERRY_CNI"):$PLUGINS11" NETCONFPATH="$CNI_T/net.d" \
    CNICLIENT_CACHE_DIR="$CNI_T/cache" "$CNICLIENT11" status "cnival$$" >"$OUT" 2>"$ERR" || RC=$?
  cni_err "STATUS without privileges" 50
  cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"cnival'$$'","plugins":[{"type":"ferry-cni",
    "ferryPath":"/nonexistent/ferry","stateDir":"'"$CNI_T/state"'"}]}'
  cni_run 11 x status "cnival$$"
  cni_err "STATUS without a ferry binary" 50
  cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"cnival'$$'","plugins":[{"type":"ferry-cni","mtu":"big"}]}'
  cni_run 11 x status "cnival$$"
  cni_err "STATUS of a bad configuration" 7
fi
