#!/usr/bin/env bash
# remote_silent: inbound connections from a remote client to guests that
# have not sent a single frame yet (the real path, DESIGN.md "Test
# topology"): ferry does not know their MAC address from their traffic and
# must resolve it, as a router does.
#
# ferry runs in host namespace RH, which reaches the remote peer RP over an
# MTU-1500 veth (e2e_remote_topology -H); a client in RP connects to RH's own
# address on the link (10.77.X.1). Two silent guests, IPv4 only with IPv6
# disabled (so nothing is sent at link-up: no router or neighbour
# solicitation, no MLD report), each running a server that answers a line:
#  * `ferry attach` on the host end of a veth to guest namespace G, with a
#    `-t` forward;
#  * a pod made by a real CNI client (libcni 1.3.0) with ferry-cni as its
#    main plugin (host-local IPv4 only) and a portMappings forward.
# Before the connection the guest's eth0 has sent no packet (checked from its
# counters), so the forwarded SYN is ferry's first frame to it.
#
# Issue 11: ferry's forwarded SYN went to ff:ff:ff:ff:ff:ff (the guest MAC
# was only learned from the guest's first frame), which Linux drops: no
# answer until the guest had pinged once.
E2E_NAME=remote_silent
# shellcheck source=tests/e2e/cni_clients.sh
source "$(dirname "${BASH_SOURCE[0]}")/cni_clients.sh"
e2e_init
command -v socat >/dev/null || e2e_die "socat missing (scripts/install-deps.sh installs it)"
cni_clients_build
cni_topology
e2e_remote_topology -H "$H" 1500
H4=${REMOTE_H4[0]}

# Packets eth0 of namespace $1 has sent.
tx_packets() { ip -n "$1" -s -j link show eth0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["packets"])'; }

# ask PORT WANT WHAT: a client in RP connects to H4:PORT until it reads WANT
# (20 s at most).
ask() {
  local port=$1 want=$2 what=$3 got='' i
  for ((i = 0; i < 20; i++)); do
    got=$(timeout 5 "${RPN[@]}" socat -T 4 - "TCP4:$H4:$port" </dev/null 2>/dev/null)
    [[ $got == "$want" ]] && break
    sleep 0.5
  done
  e2e_expect "$what: answered ($got)" test "$got" = "$want"
}

# diagnose NS PORT WANT: after a failed ask, the guest in NS pings the gateway
# once and the client asks again; says whether the guest's first frame was
# what was missing (log only, not a check).
diagnose() {
  local ns=$1 port=$2 want=$3 got
  timeout 5 nsenter --net="$ns" ping -c 1 -W 2 198.18.0.1 >/dev/null 2>&1 ||
    timeout 5 nsenter --net="$ns" ping -c 1 -W 2 198.19.30.1 >/dev/null 2>&1
  got=$(timeout 5 "${RPN[@]}" socat -T 4 - "TCP4:$H4:$port" </dev/null 2>/dev/null)
  if [[ $got == "$want" ]]; then
    e2e_log "note: answered once the guest had sent a frame (a ping): ferry did not know its MAC before"
  else
    e2e_log "note: no answer even after the guest sent a frame ($got)"
  fi
}

# ---- ferry attach, silent guest G
G=$(e2e_unique g)
DEV=fs$$$((RANDOM % 100))
DEV=${DEV:0:15}
ip netns add "$G" || e2e_die "ip netns add $G"
e2e_on_exit "ip netns del $G"
ip netns exec "$G" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip link add "$DEV" netns "$RH" mtu 1500 type veth peer name eth0 netns "$G" mtu 1500 || e2e_die "veth"
ip -n "$RH" link set "$DEV" up
T1=$(e2e_free_port)
timeout 30 "${RHN[@]}" "$FERRY" attach "$DEV" -q -4 -a 198.18.0.2/24 -t "$T1:80" 2>"$ERR" ||
  e2e_die "attach failed: $(cat "$ERR" "/run/ferry/$DEV/log" 2>/dev/null)"
ip -n "$G" addr add 198.18.0.2/24 dev eth0
ip -n "$G" link set eth0 up
ip -n "$G" route add default via 198.18.0.1
nsenter --net="/run/netns/$G" timeout 60 socat TCP4-LISTEN:80,reuseaddr,fork 'SYSTEM:echo attach-$((6*7))' &
e2e_on_exit "e2e_kill_pid $!"
sleep 1
e2e_expect "G has sent nothing yet (tx $(tx_packets "$G"))" test "$(tx_packets "$G")" = 0
ask "$T1" attach-42 "RP -> $H4:$T1 -> silent attach guest"
if ((E2E_FAILED)); then
  diagnose "/run/netns/$G" "$T1" attach-42
  tail -20 "/run/ferry/$DEV/log" 2>/dev/null | sed 's/^/    /'
fi
timeout 20 "${RHN[@]}" "$FERRY" detach "$DEV" -q

# ---- ferry-cni, silent IPv4-only pod
NET=remotesilent$$
ip netns exec "$P" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
M1=$(e2e_free_port)
cni_conf 11.conflist '{"cniVersion":"1.1.0","name":"'$NET'","plugins":[{"type":"ferry-cni",
  "stateDir":"'"$CNI_T/state"'","capabilities":{"portMappings":true},
  "ipam":{"type":"host-local","dataDir":"'"$CNI_T/ipam"'","ranges":[[{"subnet":"198.19.30.0/24"}]],
          "routes":[{"dst":"0.0.0.0/0"}]}}]}'
export CAP_ARGS='{"portMappings":[{"hostPort":'$M1',"containerPort":80,"protocol":"tcp"}]}'
cni_run 11 pod1 add "$NET" "$PNS"
unset CAP_ARGS
cni_ok "ADD (IPv4-only pod, port mapping $M1 -> 80)"
((RC == 0)) || exit 1
PDEV=$(cni_json 'r["interfaces"][0]["name"]')
nsenter --net="$PNS" timeout 60 socat TCP4-LISTEN:80,reuseaddr,fork 'SYSTEM:echo pod-$((6*7))' &
e2e_on_exit "e2e_kill_pid $!"
sleep 1
e2e_expect "the pod has sent nothing yet (tx $(tx_packets "$P"))" test "$(tx_packets "$P")" = 0
ask "$M1" pod-42 "RP -> $H4:$M1 -> silent CNI pod"
if ((E2E_FAILED)); then
  diagnose "$PNS" "$M1" pod-42
  cni_ferry_log "$PDEV"
fi
cni_run 11 pod1 del "$NET" "$PNS"
cni_ok "DEL"
