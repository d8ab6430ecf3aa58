#!/usr/bin/env bash
# podman_cni: rootful podman (Debian 12's 4.3, CNI backend) with ferry-cni as
# the network of its containers, used as a podman user would:
#  * `podman run --network NET`: the container has IPAM's IPv4 and IPv6
#    addresses on eth0 (MTU 1500), default routes via the gateways, ferry's
#    DNS forwarder first in /etc/resolv.conf with the network's search list;
#    a name resolves through the forwarder (to a dnsmasq of our own);
#  * it reaches our servers on the host's loopback through the gateway
#    (IPv4 and IPv6), and a peer one veth hop away (MTU 1500): 100 MiB down
#    (busybox wget) and 100 MiB up (busybox nc), sha256 checked both ways;
#  * `podman run -d -p HOSTPORT:80 --ip --mac-address` publishes the
#    container's busybox httpd, on the host's loopback and to the peer one
#    hop away; the container has the address and MAC asked for (Podman
#    passes both in CNI_ARGS: IP=, MAC=); another container reaches it through the
#    gateway and the published port (not at its address: refused);
#  * a pod (`podman pod create --network NET -p`) serves its httpd container;
#  * `podman stop` then `podman rm` (and `podman pod rm`) leave nothing of ferry's: no fy* link, no
#    /run/ferry/DEV, no pins under /sys/fs/bpf/ferry/DEV, no cgroup
#    .../ferry/DEV, no live service, no ferry-cni record, no IPAM lease, no
#    podman network namespace.
# Topology: podman (and so ferry-cni and the ferry service) run in a host
# namespace H of our own (nsenter --net; no route out of the machine), joined
# to a peer namespace RP by one veth. The host's resolvers (from
# /etc/resolv.conf, where ferry's forwarder sends queries) are addresses on
# H's loopback, answered by a dnsmasq in H.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib_podman.sh"
e2e_init
podman_need
for t in dnsmasq socat curl; do command -v "$t" >/dev/null || e2e_die "$t missing"; done

T=$E2E_TMP
e2e_remote_topology 1500  # H: the host side, where podman runs
H=$RH HN=("${RHN[@]}") PEER=${REMOTE_P4[0]}
X=$((($$ % 200) + 20))
NET=ferrye2e$$
SUB4=198.19.$X
SUB6=fd00:f:$X
podman_setup
# Podman's default reserves each published port itself (binds it after the
# network is up), where ferry already listens: the variant without it.
NORESERVE=$PM_DIR/noreserve.conf
sed "/^\[engine\]$/a enable_port_reservation = false" "$PM_CONF" >"$NORESERVE"
podman_image "$T"
PMH=("${HN[@]}" "${PM[@]}")
# Everything podman made is removed at exit, failure too (containers first).
e2e_on_exit "timeout 60 ${PMH[*]} rm -f -t 0 -a"
e2e_on_exit "timeout 60 ${PMH[*]} pod rm -f -t 0 -a"
ls /run/netns >"$T/netns.before"

# ---- servers: H's loopback (v4 and v6), the peer, DNS
mkdir -p "$T/www"
echo "loopback-of-H" >"$T/www/hello"
head -c $((100 << 20)) /dev/urandom >"$T/www/blob"
SUM=$(sha256sum <"$T/www/blob" | cut -d' ' -f1)
podman_servers "$T/www"

podman_conflist "$NET" '{ "cniVersion": "1.0.0", "name": "'"$NET"'", "plugins": [
  { "type": "ferry-cni", "mtu": 1500, "mapGateway": true, "stateDir": "'"$T/state"'",
    "dns": { "nameservers": ["'"$SUB4.1"'"], "search": ["ferry.test"] },
    "capabilities": { "portMappings": true, "ips": true },
    "ipam": { "type": "host-local", "dataDir": "'"$T/ipam"'",
      "ranges": [[ { "subnet": "'"$SUB4.0/24"'", "gateway": "'"$SUB4.1"'" } ]
                ,[ { "subnet": "'"$SUB6::/64"'", "gateway": "'"$SUB6::1"'" } ]],
      "routes": [ { "dst": "0.0.0.0/0" }, { "dst": "::/0" } ] } } ] }'

# ---- a container on the network: addresses, routes, DNS, traffic
cat >"$T/inside.sh" <<EOF
echo "== addr"; ip -o addr show dev eth0
echo "== link"; ip -o link show dev eth0
echo "== route"; ip route; ip -6 route
echo "== resolv"; cat /etc/resolv.conf
echo "== dns"; nslookup -type=a $RECORD 2>&1
echo "== h4"; wget -q -O - http://$SUB4.1:8081/hello
echo "== h6"; wget -q -O - "http://[$SUB6::1]:8081/hello"
echo "== down"; wget -q -O - http://$PEER:8082/blob | sha256sum
echo "== up"; nc -w 30 $PEER 8083 </blob; echo "nc exit \$?"
echo "== end"
EOF
start=$(date +%s)
timeout 150 "${PMH[@]}" run --rm --network "$NET" -v "$T/inside.sh:/inside.sh:ro" -v "$T/www/blob:/blob:ro" \
  "$PM_IMAGE" sh /inside.sh >"$T/inside.out" 2>"$T/inside.err"
rc=$?
e2e_log "podman run: exit $rc, $(($(date +%s) - start)) s"
section() { awk -v s="== $1" '$0 == s { on = 1; next } /^== / { on = 0 } on' "$T/inside.out"; }
e2e_expect "podman run --network $NET: exit 0" test "$rc" -eq 0
e2e_expect "eth0 has IPAM's IPv4 address" grep -q "inet $SUB4.2/24" <(section addr)
e2e_expect "eth0 has IPAM's IPv6 address" grep -q "inet6 $SUB6::2/64" <(section addr)
e2e_expect "eth0 MTU 1500" grep -q "mtu 1500" <(section link)
e2e_expect "IPv4 default route via the gateway" grep -q "^default via $SUB4.1 dev eth0" <(section route)
e2e_expect "IPv6 default route via the gateway" grep -q "^default via $SUB6::1 dev eth0" <(section route)
e2e_expect "resolv.conf: ferry's forwarder first" test "$(section resolv | awk '$1 == "nameserver" { print $2; exit }')" = "$SUB4.1"
e2e_expect "resolv.conf: the network's search list" grep -qx "search ferry.test" <(section resolv)
e2e_expect "$RECORD resolves through ferry's forwarder" grep -Eq "^Address:?[[:space:]]+$RECORD_ADDR\$" <(section dns)
e2e_expect "H's loopback over IPv4 via the gateway" grep -qx "loopback-of-H" <(section h4)
e2e_expect "H's loopback over IPv6 via the gateway" grep -qx "loopback-of-H" <(section h6)
e2e_expect "100 MiB from the peer, sha256 intact" grep -q "^$SUM " <(section down)
wait "$SOCAT"
e2e_expect "100 MiB to the peer (nc exit 0)" grep -qx "nc exit 0" <(section up)
e2e_expect "100 MiB to the peer, sha256 intact" test "$(sha256sum <"$T/up" | cut -d' ' -f1)" = "$SUM"
if ((E2E_FAILED)); then sed 's/^/    /' "$T/inside.out" "$T/inside.err" | tail -40; fi

# What ferry-cni's services keep per device: state, pins, cgroups (fy*:
# ferry-cni's host ends). Other scenarios' may come and go meanwhile: only
# new names count, and not those of a live service in another namespace.
ferry_paths() { ls -d /run/ferry/fy* /sys/fs/bpf/ferry/fy* /sys/fs/cgroup/ferry/fy* /sys/fs/cgroup/unified/ferry/fy* 2>/dev/null | sort; }
ferry_paths >"$T/paths.before"
H_NS=$(stat -L -c 'net:[%i]' "/run/netns/$H")
new_ferry_paths() {
  local p dev pid
  for p in $(ferry_paths | comm -13 "$T/paths.before" -); do
    dev=$(basename "$p")
    pid=$(cat "/run/ferry/$dev/pid" 2>/dev/null || echo 0)
    if ((pid > 0)) && [[ -e /proc/$pid/ns/net && $(readlink "/proc/$pid/ns/net") != "$H_NS" ]]; then continue; fi
    echo "$p"
  done
}
# Prints what is left of ferry's after podman removed its containers.
leftovers() {
  local l f n
  for l in $(ip -n "$H" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^fy'); do echo "link $l"; done
  new_ferry_paths
  for f in "$T"/state/*.json; do [[ -e $f ]] && echo "record $f"; done
  for f in "$T/ipam/$NET"/*; do
    [[ -e $f ]] || continue
    case $(basename "$f") in lock | last_reserved_ip.*) ;; *) echo "lease $f" ;; esac
  done
  for n in $(ls /run/netns | comm -13 "$T/netns.before" -); do [[ $n == netns-* || $n == cni-* ]] && echo "netns $n"; done
  return 0
}

# ---- a published port with podman's defaults: its own reservation of the
# port fails the start (documented); the failed start leaves nothing
HOSTPORT=$(e2e_free_port)
timeout 60 "${PMH[@]}" run -d --name "res$$" --network "$NET" -p "$HOSTPORT:80" "$PM_IMAGE" \
  httpd -f -p 80 -h /www >/dev/null 2>"$T/res.err"
rc=$?
e2e_expect "with enable_port_reservation (podman's default) -p fails: exit $rc: $(head -c 200 "$T/res.err")" \
  grep -q "cannot listen on the TCP port.*address already in use" "$T/res.err"
timeout 60 "${PMH[@]}" rm -f "res$$" >/dev/null 2>&1
left=$(leftovers)
e2e_expect "the failed start + rm left nothing ($left)" test -z "$left"

# ---- a published port: podman run -d -p (without podman's reservation)
HOSTPORT=$(e2e_free_port)
WEBMAC=02:42:c6:13:00:32
CONTAINERS_CONF=$NORESERVE timeout 60 "${PMH[@]}" run -d --name "web$$" --network "$NET" -p "$HOSTPORT:80" \
  --ip "$SUB4.50" --mac-address "$WEBMAC" "$PM_IMAGE" httpd -f -p 80 -h /www >"$T/web.id" 2>"$T/web.err"
rc=$?
e2e_expect "podman run -d -p $HOSTPORT:80 --ip --mac-address: exit $rc" test $rc -eq 0
((rc == 0)) || sed 's/^/    /' "$T/web.err"
timeout 30 "${PMH[@]}" exec "web$$" ip -o link show eth0 >"$T/web.link" 2>&1
timeout 30 "${PMH[@]}" exec "web$$" ip -o -4 addr show eth0 >"$T/web.addr" 2>&1
e2e_expect "--ip $SUB4.50: the container's address ($(head -c 80 "$T/web.addr"))" grep -q "inet $SUB4.50/24" "$T/web.addr"
e2e_expect "--mac-address $WEBMAC: the container's eth0 ($(grep -o 'link/ether [0-9a-f:]*' "$T/web.link"))" \
  grep -q "link/ether $WEBMAC" "$T/web.link"
e2e_expect "published port answers on H's loopback" bash -c \
  "for i in \$(seq 50); do ${HN[*]} curl -sS -m 5 http://127.0.0.1:$HOSTPORT/ 2>/dev/null | grep -q 'served by httpd' && exit 0; sleep 0.2; done; exit 1"
e2e_expect "published port answers on H's ::1" bash -c \
  "${HN[*]} curl -sS -m 5 -g 'http://[::1]:$HOSTPORT/' | grep -q 'served by httpd'"
e2e_expect "published port answers the peer one hop away" bash -c \
  "${RPN[*]} curl -sS -m 10 http://${REMOTE_H4[0]}:$HOSTPORT/ | grep -q 'served by httpd'"
# another container reaches it through its published port on the gateway;
# not at its own address (each container has a translator of its own, no
# link between them: ferry's host connection to that address is refused)
timeout 60 "${PMH[@]}" run --rm --network "$NET" "$PM_IMAGE" sh -c "echo '== gw'; wget -q -O - http://$SUB4.1:$HOSTPORT/;
  echo '== direct'; timeout 10 wget -q -O - http://$SUB4.50/ 2>&1; echo \"exit \$?\"" >"$T/peer.out" 2>&1
e2e_expect "another container reaches it through the gateway and -p" grep -q "served by httpd" <(sed -n '/^== gw/,/^== direct/p' "$T/peer.out")
e2e_expect "... and not at its address (refused at once: $(sed -n '/^== direct/,$p' "$T/peer.out" | tr '\n' ' '))" \
  grep -q "Connection refused" <(sed -n '/^== direct/,$p' "$T/peer.out")
DEV=$(ip -n "$H" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^fy' | head -1)
SVC=$(cat "/run/ferry/$DEV/pid" 2>/dev/null || echo 0)
e2e_expect "a ferry service ($SVC) serves $DEV" test "$SVC" -gt 0 -a -d "/proc/$SVC"
# what the leftover check below looks for is there now
e2e_expect "its state and pins exist while it runs ($(new_ferry_paths | tr '\n' ' '))" \
  test -d "/run/ferry/$DEV" -a -d "/sys/fs/bpf/ferry/$DEV"
timeout 60 "${PMH[@]}" stop -t 2 "web$$" >/dev/null 2>"$T/stop.err"
rc=$?
e2e_expect "podman stop: exit $rc $(cat "$T/stop.err")" test $rc -eq 0
timeout 60 "${PMH[@]}" rm "web$$" >/dev/null 2>"$T/rm.err"
rc=$?
e2e_expect "podman rm: exit $rc $(cat "$T/rm.err")" test $rc -eq 0

# ---- a pod: the network is its infra container's, -p is the pod's
PODPORT=$(e2e_free_port)
CONTAINERS_CONF=$NORESERVE timeout 60 "${PMH[@]}" pod create --name "pod$$" --network "$NET" -p "$PODPORT:80" \
  --infra-image "$PM_IMAGE" --infra-command "sleep 600" >/dev/null 2>"$T/pod.err" &&
  CONTAINERS_CONF=$NORESERVE timeout 60 "${PMH[@]}" run -d --pod "pod$$" "$PM_IMAGE" httpd -f -p 80 -h /www >/dev/null 2>>"$T/pod.err"
rc=$?
e2e_expect "podman pod create --network $NET -p $PODPORT:80, httpd in it: exit $rc $(head -c 200 "$T/pod.err")" test $rc -eq 0
e2e_expect "the pod's published port answers on H's loopback" bash -c \
  "for i in \$(seq 50); do ${HN[*]} curl -sS -m 5 http://127.0.0.1:$PODPORT/ 2>/dev/null | grep -q 'served by httpd' && exit 0; sleep 0.2; done; exit 1"
timeout 60 "${PMH[@]}" pod rm -f -t 0 "pod$$" >/dev/null 2>"$T/podrm.err"
rc=$?
e2e_expect "podman pod rm: exit $rc $(cat "$T/podrm.err")" test $rc -eq 0

# ---- nothing of ferry's left
[[ -n $DEV ]] || e2e_fail "no ferry device seen while the container ran"
if ((SVC > 0)); then
  # dead is enough: on a machine whose PID 1 reaps late it may stay a zombie
  for ((i = 0; i < 100; i++)); do
    [[ $(ps -o stat= -p "$SVC" 2>/dev/null) == Z* || ! -d /proc/$SVC ]] && break
    sleep 0.1
  done
  [[ $(ps -o stat= -p "$SVC" 2>/dev/null) == Z* || ! -d /proc/$SVC ]] || e2e_fail "service $SVC alive after podman rm"
fi
left=$(leftovers)
e2e_expect "stop + rm left nothing ($left)" test -z "$left"
