#!/usr/bin/env bash
# cni_parallel: one pod's slow IPAM does not hold up another pod's ADD.
# Pod A's IPAM is a stand-in script (slowipam, in CNI_PATH) that says it
# started and then waits for a gate file (at most 60 s) before answering;
# pod B (same network, same state directory, no IPAM) is added while A
# waits: B's ADD must succeed while A's is still running. Then the gate
# opens, A's ADD succeeds, both DELs succeed and nothing is left.
# On 8e45162 one lock covered every command of the node across IPAM: B
# waited 20 s for it and failed with error 11.
# ferry-cni is run directly, in a namespace H of the test's own.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
FERRY_CNI=$(dirname "$FERRY")/ferry-cni
[[ -x $FERRY_CNI ]] || e2e_die "no ferry-cni beside $FERRY"
U=$(e2e_unique l)
H=${U}h A=${U}a B=${U}b
HN=(nsenter "--net=/run/netns/$H")
cleanup() {
  local l
  for l in $(ip -n "$H" -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $l == fy* ]] && timeout 20 "${HN[@]}" "$FERRY" detach "$l" >/dev/null 2>&1
  done
  for n in "$A" "$B" "$H"; do ip netns del "$n" 2>/dev/null; done
}
e2e_on_exit cleanup
for n in "$H" "$A" "$B"; do ip netns add "$n" || e2e_die "netns $n"; done
ip -n "$H" link set lo up

BIN=$E2E_TMP/bin
GATE=$E2E_TMP/gate STARTED=$E2E_TMP/ipam-started
mkdir -p "$BIN"
cat >"$BIN/slowipam" <<IPAM
#!/bin/sh
# A stand-in IPAM plugin: ADD waits for $GATE (60 s at most), DEL is a no-op.
cat >/dev/null
case "\$CNI_COMMAND" in
  ADD)
    touch "$STARTED"
    i=0
    while [ ! -e "$GATE" ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
    echo '{"cniVersion":"1.1.0","ips":[{"address":"198.19.40.2/24","gateway":"198.19.40.1"}]}' ;;
esac
exit 0
IPAM
chmod 755 "$BIN/slowipam"
STATE=$E2E_TMP/state
CONF_A='{"cniVersion":"1.1.0","name":"par'$$'","type":"ferry-cni","stateDir":"'"$STATE"'","ipam":{"type":"slowipam"}}'
CONF_B='{"cniVersion":"1.1.0","name":"par'$$'","type":"ferry-cni","stateDir":"'"$STATE"'"}'
# cni CMD CID NETNS CONF OUTFILE
cni() {
  printf '%s' "$4" | timeout -k 5 90 "${HN[@]}" env CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="/run/netns/$3" \
    CNI_IFNAME=eth0 CNI_PATH="$(dirname "$FERRY_CNI"):$BIN" "$FERRY_CNI" >"$5" 2>&1
}

cni ADD ctrA "$A" "$CONF_A" "$E2E_TMP/a.out" &
APID=$!
e2e_on_exit "touch $GATE; e2e_kill_pid $APID"
e2e_wait_file "$STARTED" 30 || true
[[ -e $STARTED ]] || e2e_die "pod A's IPAM did not start: $(cat "$E2E_TMP/a.out")"
e2e_log "pod A's ADD is waiting in its IPAM"
t0=$SECONDS
if cni ADD ctrB "$B" "$CONF_B" "$E2E_TMP/b.out"; then
  e2e_log "ok: pod B's ADD succeeded in $((SECONDS - t0)) s while A's IPAM waited"
else
  e2e_fail "pod B's ADD failed after $((SECONDS - t0)) s: $(cat "$E2E_TMP/b.out")"
fi
e2e_expect "pod A's ADD was still running then" kill -0 "$APID"
touch "$GATE"
rc=0
wait "$APID" || rc=$?
e2e_expect "pod A's ADD succeeded once its IPAM answered (exit $rc)" test "$rc" -eq 0
e2e_expect "pod A has its address" bash -c "ip -n $A -o addr show dev eth0 | grep -q 198.19.40.2/24"
e2e_expect "DEL pod B" cni DEL ctrB "$B" "$CONF_B" "$E2E_TMP/bd.out"
e2e_expect "DEL pod A" cni DEL ctrA "$A" "$CONF_A" "$E2E_TMP/ad.out"
e2e_expect "nothing left in the state directory ($(ls -A "$STATE" | tr '\n' ' '))" test -z "$(ls -A "$STATE")"
