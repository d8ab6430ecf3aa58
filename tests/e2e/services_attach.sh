#!/usr/bin/env bash
# services_attach: a guest that runs only stock clients configures itself
# through `ferry attach` on a veth with MTU 1500 (the guest's end starts at
# 9000: only the MTU that DHCP hands out makes full-size frames pass).
#
# Topology: namespace H (host side: ferry, and dnsmasq as the host's resolver
# on 127.0.0.53 with one fixed record, no upstream; ferry reads a resolv.conf
# naming it, bound over /etc/resolv.conf in a private mount namespace) and
# namespace G (the guest, nothing configured), one veth. Clients nobody here
# wrote, from Debian:
#   busybox udhcpc: address /24, default route, MTU 1500, DNS and search list
#     (the resolv.conf its script writes);
#   ISC dhclient with Debian's dhclient-script (/etc overlaid, so the real
#     /etc is untouched): address, default route, the --route of option 121,
#     MTU, and the resolv.conf the script writes;
#   rdisc6 reading every field of the router advertisement;
#   the kernel's SLAAC address in fd00:f::/64, which then pings the gateway;
#   dhclient -6: fd00:f::2 and the resolv.conf with fd00:f::1;
#   dig through the forwarder on the gateway: UDP over IPv4 and IPv6, TCP
#     over IPv4, each answering the record dnsmasq holds;
#   ferry's counters show the exchanges; --no-dhcp/--no-ra/--no-dhcpv6/
#     --no-dns leave every client without an answer.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init
for tool in busybox dhclient dhclient-script rdisc6 dnsmasq dig; do
  command -v "$tool" >/dev/null || [[ -x /sbin/$tool ]] || e2e_die "$tool missing (scripts/install-deps.sh)"
done

U=$(e2e_unique s)
H=${U}h
G=${U}g
DEV=fs$$$((RANDOM % 100))
DEV=${DEV:0:15}
HN=(nsenter "--net=/run/netns/$H")
GN=(nsenter "--net=/run/netns/$G")
T=$E2E_TMP
RECORD=svc.ferry.test
RECORD_ADDR=198.18.7.7

e2e_on_exit "ip netns del $G"
e2e_on_exit "ip netns del $H"
if ! { ip netns add "$H" && ip netns add "$G"; }; then e2e_die "namespaces"; fi
ip -n "$H" link set lo up
ip -n "$G" link set lo up
ip link add "$DEV" netns "$H" mtu 1500 type veth peer name eth0 netns "$G" mtu 9000 || e2e_die "veth"
ip -n "$G" link set eth0 up

# The host's resolver: dnsmasq on 127.0.0.53 in H, one record, nothing else.
"${HN[@]}" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --user=root \
  --listen-address=127.0.0.53 --bind-interfaces --pid-file="$T/dnsmasq.pid" \
  --address="/$RECORD/$RECORD_ADDR" 2>"$T/dnsmasq.err" &
DNSMASQ=$!
e2e_on_exit "e2e_kill_pid $DNSMASQ"
printf 'nameserver 127.0.0.53\nsearch host.example\n' >"$T/host-resolv.conf"

# attach ARGS...: ferry attach DEV in H, reading our resolv.conf.
attach() {
  timeout 30 "${HN[@]}" unshare -m sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' \
    sh "$T/host-resolv.conf" "$FERRY" attach "$DEV" -q "$@" 2>"$ERR"
}
detach() { timeout 20 "${HN[@]}" "$FERRY" detach "$DEV" -q; }
e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $DEV -q"
counter() { sed -n "s/^$1=//p" "/run/ferry/$DEV/counters" 2>/dev/null; }
# wait_counter NAME MIN: until ferry's counters file shows NAME >= MIN (10 s).
wait_counter() {
  local i v
  for i in $(seq 1 50); do
    v=$(counter "$1")
    [[ -n $v && $v -ge $2 ]] && return 0
    sleep 0.2
  done
  e2e_log "counter $1=${v:-none}, wanted >= $2"
  return 1
}

attach --search corp.example,example.test --hostname guest7 --route 10.9.0.0/16
e2e_expect "attach -> 0" test $? -eq 0 || { cat "$ERR"; e2e_die "attach failed"; }

# ---- busybox udhcpc
cat >"$T/udhcpc.sh" <<'EOF'
#!/bin/sh
env | grep -E '^(ip|mask|subnet|router|dns|domain|search|mtu|hostname|lease|serverid|staticroutes)=' | sort > "$OUT_DIR/udhcpc.$1"
case "$1" in
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    for r in $router; do ip route add default via "$r" dev "$interface"; done
    : > "$OUT_DIR/udhcpc-resolv.conf"
    [ -n "$search" ] && echo "search $search" >> "$OUT_DIR/udhcpc-resolv.conf"
    for d in $dns; do echo "nameserver $d" >> "$OUT_DIR/udhcpc-resolv.conf"; done
    ;;
esac
EOF
chmod +x "$T/udhcpc.sh"
OUT_DIR=$T timeout 30 "${GN[@]}" env OUT_DIR="$T" busybox udhcpc -f -q -n -t 5 -i eth0 -s "$T/udhcpc.sh" \
  -O mtu -O search -O staticroutes >"$T/udhcpc.log" 2>&1
e2e_expect "udhcpc got a lease" test $? -eq 0 || cat "$T/udhcpc.log"
e2e_expect "udhcpc: address 198.18.0.2/24" grep -q "inet 198.18.0.2/24" <(ip -n "$G" addr show eth0)
e2e_expect "udhcpc: default route via 198.18.0.1" grep -q "default via 198.18.0.1" <(ip -n "$G" route)
e2e_expect "udhcpc: MTU 1500" grep -q "mtu 1500 " <(ip -n "$G" link show eth0)
e2e_expect "udhcpc: hostname guest7, lease 3600" grep -qx "hostname=guest7" "$T/udhcpc.bound"
e2e_expect "udhcpc: lease 3600" grep -qx "lease=3600" "$T/udhcpc.bound"
e2e_expect "udhcpc: domain corp.example" grep -qx "domain=corp.example" "$T/udhcpc.bound"
e2e_expect "udhcpc: classless routes (option 121)" grep -qx "staticroutes=10.9.0.0/16 198.18.0.1 0.0.0.0/0 198.18.0.1" "$T/udhcpc.bound"
e2e_expect "udhcpc resolv.conf: the forwarder" grep -qx "nameserver 198.18.0.1" "$T/udhcpc-resolv.conf"
e2e_expect "udhcpc resolv.conf: the search list" grep -qx "search corp.example example.test" "$T/udhcpc-resolv.conf"

# ---- ISC dhclient with Debian's dhclient-script; /etc overlaid
ip -n "$G" -4 addr flush dev eth0  # IPv6 (the link-local address) stays
ip -n "$G" -4 route flush dev eth0
ip -n "$G" link set eth0 mtu 9000
mkdir -p "$T/up" "$T/work"
# dhclient -6 binds to the link-local address, which must be past DAD
# (Debian's dhclient-script does not wait for it).
no_tentative() {
  local i
  for i in $(seq 1 50); do
    ip -n "$G" -6 addr show dev eth0 | grep -q tentative || return 0
    sleep 0.2
  done
  ip -n "$G" -6 addr show dev eth0
  return 1
}
e2e_expect "the guest's IPv6 addresses pass DAD" no_tentative
timeout 60 "${GN[@]}" unshare -m sh -c '
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/up,workdir=$1/work" /etc || exit 99
  timeout 25 dhclient -v -1 -lf "$1/lease4" -pf "$1/pid4" eth0 || exit 1
  cp /etc/resolv.conf "$1/dhclient4-resolv.conf"
  timeout 25 dhclient -6 -v -1 -lf "$1/lease6" -pf "$1/pid6" eth0 || exit 2
  cp /etc/resolv.conf "$1/dhclient6-resolv.conf"
  exit 0' sh "$T" >"$T/dhclient.log" 2>&1
rc=$?
# Bound, each dhclient went to the background to renew later: ours to end,
# by the PIDs they wrote (SIGKILL: no release, no script run).
for p in "$T/pid4" "$T/pid6"; do
  e2e_on_exit "[[ -s $p ]] && kill -9 \$(cat $p)"
done
e2e_expect "dhclient and dhclient -6 bound (rc $rc)" test $rc -eq 0
[[ $rc -eq 0 ]] || { tail -20 "$T/dhclient.log"; ip -n "$G" -6 addr show eth0; }
e2e_expect "dhclient: address 198.18.0.2/24" grep -q "inet 198.18.0.2/24" <(ip -n "$G" addr show eth0)
e2e_expect "dhclient: default route via 198.18.0.1" grep -q "default via 198.18.0.1" <(ip -n "$G" route)
e2e_expect "dhclient: option 121 route 10.9.0.0/16" grep -q "10.9.0.0/16 via 198.18.0.1" <(ip -n "$G" route)
e2e_expect "dhclient: MTU 1500" grep -q "mtu 1500 " <(ip -n "$G" link show eth0)
e2e_expect "dhclient resolv.conf: the forwarder" grep -qx "nameserver 198.18.0.1" "$T/dhclient4-resolv.conf"
e2e_expect "dhclient resolv.conf: search list" grep -Eq "^search corp.example\.? example.test\.?$" "$T/dhclient4-resolv.conf"
e2e_expect "dhclient -6: fd00:f::2" grep -q "inet6 fd00:f::2/" <(ip -n "$G" -6 addr show eth0)
e2e_expect "dhclient -6 resolv.conf: fd00:f::1" grep -qx "nameserver fd00:f::1" "$T/dhclient6-resolv.conf"
e2e_expect "the real /etc/resolv.conf is untouched" bash -c "! grep -q 198.18.0.1 /etc/resolv.conf"

# ---- router advertisement, every field, and SLAAC
timeout 20 "${GN[@]}" rdisc6 -1 -w 3000 eth0 >"$T/rdisc6.txt" 2>&1
e2e_expect "rdisc6 got an advertisement" test $? -eq 0 || cat "$T/rdisc6.txt"
ra_field() { grep -Eq "^ *$1 *: *$2" "$T/rdisc6.txt" || { e2e_log "rdisc6: no '$1: $2'"; return 1; }; }
e2e_expect "RA hop limit 64" ra_field "Hop limit" "64 "
e2e_expect "RA M flag" ra_field "Stateful address conf\." "Yes"
e2e_expect "RA O flag" ra_field "Stateful other conf\." "Yes"
e2e_expect "RA router lifetime 1800" ra_field "Router lifetime" "1800 "
e2e_expect "RA source link-layer address" ra_field "Source link-layer address" "02:66:65:72:72:79"
e2e_expect "RA MTU 1500" ra_field "MTU" "1500 bytes"
e2e_expect "RA prefix fd00:f::/64" ra_field "Prefix" "fd00:f::/64"
e2e_expect "RA prefix on-link" ra_field "On-link" "Yes"
e2e_expect "RA prefix autonomous" ra_field "Autonomous address conf\." "Yes"
e2e_expect "RA RDNSS fd00:f::1" ra_field "Recursive DNS server" "fd00:f::1"
e2e_expect "RA DNSSL" ra_field "DNS search list" "corp.example example.test"
e2e_expect "RA from the gateway's link-local address" grep -q "from fe80::66:65ff:fe72:7279" "$T/rdisc6.txt"
slaac=""
for i in $(seq 1 50); do
  slaac=$(ip -n "$G" -6 -o addr show dev eth0 scope global | awk '/mngtmpaddr/ { sub("/.*", "", $4); print $4; exit }')
  [[ -n $slaac ]] && break
  sleep 0.2
done
e2e_expect "SLAAC address in fd00:f::/64 ($slaac)" bash -c "[[ '$slaac' == fd00:f::* ]]"
e2e_expect "default route from the RA" grep -q "default via fe80::66:65ff:fe72:7279" <(ip -n "$G" -6 route)
if [[ -n $slaac ]]; then
  e2e_expect "the SLAAC address pings the gateway" timeout 10 "${GN[@]}" ping -6 -c 2 -W 2 -I "$slaac" fd00:f::1
fi

# ---- DNS through the forwarder (the gateway) to dnsmasq on H's 127.0.0.53
ip -n "$G" -6 addr add fd00:f::2/64 dev eth0 nodad 2>/dev/null
dig_ok() { [[ $(timeout 15 "${GN[@]}" dig +short +time=3 +tries=2 "$@" "$RECORD" A 2>&1) == "$RECORD_ADDR" ]]; }
e2e_expect "dig over UDP/IPv4 via 198.18.0.1" dig_ok @198.18.0.1
e2e_expect "dig over TCP/IPv4 via 198.18.0.1" dig_ok +tcp @198.18.0.1
e2e_expect "dig over UDP/IPv6 via fd00:f::1" dig_ok @fd00:f::1
e2e_expect "counters: DHCPv4 ACKs" wait_counter dhcp4_acks 2
e2e_expect "counters: DHCPv6 replies" wait_counter dhcp6_replies 1
e2e_expect "counters: RAs" wait_counter ra_adverts 2
e2e_expect "counters: DNS answers" wait_counter dns_answers 2
detach

# ---- every service off: no client gets an answer
attach --no-dhcp --no-ra --no-dhcpv6 --no-dns
e2e_expect "attach with services off -> 0" test $? -eq 0
timeout 20 "${GN[@]}" busybox udhcpc -f -q -n -t 2 -T 1 -i eth0 -s /bin/true >/dev/null 2>&1
e2e_expect "--no-dhcp: udhcpc gets no lease" test $? -ne 0
timeout 10 "${GN[@]}" rdisc6 -1 -r 2 -w 1000 eth0 >/dev/null 2>&1
e2e_expect "--no-ra: rdisc6 gets no advertisement" test $? -ne 0
e2e_expect "--no-dns: no answer on the gateway's port 53" bash -c "! timeout 10 ${GN[*]} dig +short +time=1 +tries=1 @198.18.0.1 $RECORD A | grep -qx $RECORD_ADDR"
e2e_expect "counters: no DHCP offers" test "$(counter dhcp4_offers)" = 0
detach


