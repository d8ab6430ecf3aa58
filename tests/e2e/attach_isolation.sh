#!/usr/bin/env bash
# attach_isolation: guest frames on an attached veth never reach the host
# namespace's IP stack: the host does not route them, even when it could.
#
# Topology: H (host side, ip_forward=1, DEV has 198.18.0.1/24 so H *would*
# route the guest), G (guest 198.18.0.2/24, default via 198.18.0.1), X (a
# third namespace, 198.19.5.2/24 behind H's 198.19.5.1/24). A sniffer in X
# records every packet whose source is the guest's address.
#   control, no ferry: the guest's ping to X is forwarded by H (ForwDatagrams
#     grows, X sees 198.18.0.2): the test can fail;
#   ferry attached: frames to DEV's own MAC (the MAC H's stack accepts), ICMP,
#     UDP and TCP to X: ForwDatagrams in H does not move and X sees no packet
#     from 198.18.0.2. (Through ferry's gateway MAC, ferry may translate the
#     ping with its own socket: that reaches X from 198.19.5.1, not routed.)
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
command -v tcpdump >/dev/null || e2e_die "tcpdump missing"

U=$(e2e_unique a)
H=${U}h G=${U}g X=${U}x
DEV=fi$$$((RANDOM % 100))
DEV=${DEV:0:15}
HN=(nsenter "--net=/run/netns/$H")
e2e_on_exit "ip netns del $X"
e2e_on_exit "ip netns del $G"
e2e_on_exit "ip netns del $H"
if ! { ip netns add "$H" && ip netns add "$G" && ip netns add "$X"; }; then e2e_die "namespaces"; fi
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $DEV -q"
for n in "$H" "$G" "$X"; do ip -n "$n" link set lo up; done
ip link add "$DEV" netns "$H" type veth peer name eth0 netns "$G" || e2e_die "veth G"
ip link add xh netns "$H" type veth peer name eth0 netns "$X" || e2e_die "veth X"
"${HN[@]}" sysctl -qw net.ipv4.ip_forward=1
ip -n "$H" addr add 198.18.0.1/24 dev "$DEV"
ip -n "$H" addr add 198.19.5.1/24 dev xh
ip -n "$H" link set "$DEV" up
ip -n "$H" link set xh up
ip -n "$G" addr add 198.18.0.2/24 dev eth0
ip -n "$G" link set eth0 up
ip -n "$G" route add default via 198.18.0.1
ip -n "$X" addr add 198.19.5.2/24 dev eth0
ip -n "$X" link set eth0 up
ip -n "$X" route add default via 198.19.5.1
DEV_MAC=$(ip -n "$H" -o link show "$DEV" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')

# IP forwarding counter of H.
# shellcheck disable=SC2016  # awk program, not shell
forwarded() { "${HN[@]}" awk '/^Ip:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "ForwDatagrams") c = i; h = 1 } else print $c }' /proc/net/snmp; }

# sniff FILE: records packets from the guest's address arriving in X, in the background.
sniff() {
  ip netns exec "$X" timeout 30 tcpdump -i eth0 -n -U -w "$1" src host 198.18.0.2 2>/dev/null &
  SNIFF=$!
  e2e_on_exit "e2e_kill_pid $SNIFF"
  sleep 1
}
seen() { tcpdump -r "$1" -n 2>/dev/null | wc -l; }
stop_sniff() { sleep 0.5; e2e_kill_pid "$SNIFF"; }

# ---- control: without ferry, H routes the guest to X
sniff "$E2E_TMP/control.pcap"
f0=$(forwarded)
timeout 5 ip netns exec "$G" ping -c 2 -W 1 198.19.5.2 >/dev/null
ctl=$?
f1=$(forwarded)
stop_sniff
e2e_log "control: ping rc $ctl, ForwDatagrams $f0 -> $f1, X saw $(seen "$E2E_TMP/control.pcap") packets from the guest"
e2e_expect "control: H forwards the guest without ferry" test "$f1" -gt "$f0"
e2e_expect "control: X sees the guest's address" test "$(seen "$E2E_TMP/control.pcap")" -gt 0

# ---- with ferry (DEV holds an address, which ferry refuses without --force)
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q 2>"$ERR" && e2e_die "attach of an addressed device succeeded"
timeout 30 "${HN[@]}" "$FERRY" attach "$DEV" -q --force 2>"$ERR" || e2e_die "attach: $(cat "$ERR")"
# Frames to the MAC H's own stack accepts: the strongest temptation to route.
ip -n "$G" neigh replace 198.18.0.1 lladdr "$DEV_MAC" dev eth0 nud permanent
sniff "$E2E_TMP/ferry.pcap"
f0=$(forwarded)
timeout 5 ip netns exec "$G" ping -c 2 -W 1 198.19.5.2 >/dev/null
timeout 5 ip netns exec "$G" bash -c 'echo x >/dev/udp/198.19.5.2/9; echo y >/dev/udp/198.19.5.2/53'
timeout 3 ip netns exec "$G" bash -c 'exec 3<>/dev/tcp/198.19.5.2/80' 2>/dev/null
# Through ferry's own gateway MAC as well (ARP answered by ferry).
ip -n "$G" neigh del 198.18.0.1 dev eth0
timeout 5 ip netns exec "$G" ping -c 2 -W 1 198.19.5.2 >/dev/null
timeout 3 ip netns exec "$G" bash -c 'echo z >/dev/udp/198.19.5.2/9'
f1=$(forwarded)
stop_sniff
e2e_log "ferry: ForwDatagrams $f0 -> $f1, X saw $(seen "$E2E_TMP/ferry.pcap") packets from the guest"
e2e_expect "with ferry: H forwarded nothing" test "$f1" -eq "$f0"
e2e_expect "with ferry: X saw no packet from the guest's address" test "$(seen "$E2E_TMP/ferry.pcap")" -eq 0
timeout 5 "$FERRY" status "$DEV" -j >"$OUT"
e2e_expect "ferry saw the guest's frames" python3 -c "
import json; a = json.load(open('$OUT'))['attachments'][0]; assert a['counters']['guest_frames'] >= 6, a"
timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q
e2e_expect "detach -> 0" test $? -eq 0
