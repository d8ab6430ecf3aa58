#!/usr/bin/env bash
# fault_guest_mac: inbound connections reach a guest that has sent nothing.
#
# A guest that is IPv4-only (IPv6 disabled: no RS, DAD or MLD at link-up)
# sends no frame until it answers one; `ferry attach` learned the guest's MAC
# only from its frames, so the SYN of a -t forward went to ff:ff:ff:ff:ff:ff
# and Linux dropped it (before the fix: no connection until the guest spoke
# first). Now ferry holds the frame and asks (ARP request), as a router does,
# or is told with --guest-mac. Checks, each with a fresh silent guest behind
# `ferry attach DEV -4 -t HP:80` (a web server on the guest's 198.18.0.2:80):
#   without --guest-mac: a client on H's 127.0.0.1 fetches a page; ferry's
#   counters show the frames that waited (held_for_mac > 0);
#   with --guest-mac (the veth peer's MAC): the same, nothing waits;
#   an IPv6-only guest, silent once its link-up is over, behind
#   `ferry attach DEV -6 -t ::1/HP:80`: ferry asks with a neighbour
#   solicitation, a client on H's ::1 fetches the page;
#   a bad --guest-mac is a usage error (2).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init

U=$(e2e_unique m)
H=${U}h
G=${U}g
DEV=fm$$$((RANDOM % 100))
DEV=${DEV:0:15}
HN=(nsenter "--net=/run/netns/$H")
GN=(nsenter "--net=/run/netns/$G")
e2e_on_exit "ip netns del $G"
e2e_on_exit "ip netns del $H"
if ! { ip netns add "$H" && ip netns add "$G"; }; then e2e_die "namespaces"; fi
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $DEV -q"
ip -n "$H" link set lo up
ip -n "$G" link set lo up
mkdir -p "$E2E_TMP/www"
echo "silent guest $$" >"$E2E_TMP/www/index.html"

timeout 5 "${HN[@]}" "$FERRY" attach lo --guest-mac ff:ff:ff:ff:ff:ff 2>"$ERR"
e2e_expect "a multicast --guest-mac -> 2" test $? -eq 2
timeout 5 "${HN[@]}" "$FERRY" attach lo --guest-mac nonsense 2>"$ERR"
e2e_expect "a malformed --guest-mac -> 2" test $? -eq 2

# A fresh veth to a guest with a web server on port 80: IPv4 only (family
# 4: silent from link-up on), or IPv6 only (family 6: no router
# solicitations, no DAD; its link-up MLD reports are over before ferry
# attaches, and it then sends nothing).
fresh_guest() {
  local family=$1
  ip -n "$H" link del "$DEV" 2>/dev/null
  ip link add "$DEV" netns "$H" mtu 1500 type veth peer name eth0 netns "$G" mtu 1500 || e2e_die "veth"
  if [[ $family == 4 ]]; then
    ip netns exec "$G" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
    ip -n "$G" addr add 198.18.0.2/24 dev eth0
  else
    ip netns exec "$G" sysctl -qw net.ipv6.conf.eth0.router_solicitations=0 net.ipv6.conf.eth0.accept_dad=0
    ip -n "$G" -6 addr add fd00:f::2/64 dev eth0 nodad
  fi
  ip -n "$H" link set "$DEV" up
  ip -n "$G" link set eth0 up
  if [[ $family == 4 ]]; then ip -n "$G" route add default via 198.18.0.1; else ip -n "$G" -6 route add default via fd00:f::1; fi
  e2e_kill_pid "${SRV:-}"
  local bind=198.18.0.2
  [[ $family == 6 ]] && bind=fd00:f::2
  "${GN[@]}" python3 -m http.server 80 --bind "$bind" --directory "$E2E_TMP/www" >"$E2E_TMP/http.log" 2>&1 &
  SRV=$!
  e2e_on_exit "e2e_kill_pid $SRV"
  for _ in $(seq 100); do "${GN[@]}" ss -Hltn 'sport = :80' | grep -q . && break; sleep 0.1; done
}

# Frames DEV received from the guest so far.
rx_frames() { ip -n "$H" -j -s link show "$DEV" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }

HP=$(e2e_free_port)
for mode in ask told ask6; do
  "${HN[@]}" "$FERRY" detach "$DEV" -q 2>/dev/null
  family=4 url="http://127.0.0.1:$HP/" fwd="127.0.0.1/$HP:80"
  [[ $mode == ask6 ]] && family=6 url="http://[::1]:$HP/" fwd="::1/$HP:80"
  fresh_guest $family
  [[ $family == 6 ]] && sleep 3  # the guest's link-up MLD reports: before ferry is there
  MAC=$(ip -n "$G" -j link show eth0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')
  extra=()
  [[ $mode == told ]] && extra=(--guest-mac "$MAC")
  timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" "-$family" -t "$fwd" "${extra[@]}" -q 2>"$ERR"
  e2e_expect "$mode: attach" test $? -eq 0
  rx0=$(rx_frames)
  sleep 1
  rx1=$(rx_frames)
  e2e_expect "$mode: the guest sends nothing while ferry is attached ($rx0 -> $rx1 frames)" test "$rx0" -eq "$rx1"
  body=$(timeout 15 "${HN[@]}" curl -sS -m 10 "$url" 2>"$E2E_TMP/curl.err")
  e2e_expect "$mode: a client reaches the silent guest's web server" test "$body" = "silent guest $$"
  [[ $body == "silent guest $$" ]] || cat "$E2E_TMP/curl.err" "$E2E_TMP/http.log"
  sleep 1.5  # the counters file is rewritten once a second
  held=$(timeout 5 "$FERRY" status "$DEV" -j | python3 -c 'import json,sys; print(json.load(sys.stdin)["attachments"][0]["service_counters"].get("held_for_mac"))')
  if [[ $mode == ask* ]]; then
    e2e_expect "$mode: frames waited for the guest's MAC (held_for_mac=$held)" test "${held:-0}" != None -a "${held:-0}" -gt 0
  else
    e2e_expect "told: nothing waited (held_for_mac=$held)" test "$held" = 0
  fi
done
