# shellcheck shell=bash disable=SC2016,SC2034
# lib_vm.sh: a real QEMU guest for ferry's VM scenarios (tests/e2e/vm_*.sh).
# Sourced after lib.sh and e2e_init.
#
# The guest: Debian's own kernel (linux-image-amd64, fetched with `apt-get
# download` and unpacked with `dpkg-deb -x` into BUILD/vm-cache/, once, then
# reused) and an initramfs built here from busybox-static, the virtio-net
# module chain and a test script (/init). QEMU 7.2 under TCG (no KVM needed),
# console on a serial file. The guest configures eth0 (static addresses from
# /etc/vm.conf), runs its checks, prints one line per check on the console
# ("VM: ok WHAT" / "VM: FAIL WHAT"), and powers off after "VM: END".
#
#   vm_require               skip (exit 0, with why) where QEMU cannot run
#   vm_kernel                sets VM_KERNEL, VM_MODULES (download on first use)
#   vm_initramfs OUT CONF [INIT]  packs the guest; CONF is a file of shell
#                            variables the guest script reads; INIT is the
#                            function that prints /init (default vm_guest_init
#                            below; lib_vm_soak.sh brings its own)
#   vm_boot LOG SECS ARGS... starts QEMU in the background (ARGS: -netdev/-device),
#                            bounded by SECS; sets VM_PID
#   vm_wait_line LOG TEXT SECS  until the console shows TEXT; false after SECS
#                            or when QEMU ended first
#   vm_collect LOG           turns the guest's "VM: ok/FAIL" lines into
#                            e2e results; fails when "VM: END" is missing
#   vm_serve_host SECS       the host side of the guest's checks, on H's
#                            loopback: a 16 MiB file (and 1 MiB over ::1) by
#                            HTTP, an upload sink that reads 16 MiB and
#                            answers their sha256; the same in the remote
#                            peer RP when e2e_remote_topology made one;
#                            writes the guest's CONF lines to $VM_CONF
#   vm_retry N CMD...        CMD until it succeeds, once a second, N times
#   vm_inbound_check PORT    waits for the guest's httpd, fetches its page
#                            through ferry's -t forward on 127.0.0.1:PORT,
#                            then lets the guest finish
# Traffic rule: the scenarios run all of this (ferry, QEMU, servers) inside a
# namespace of their own whose only interface is lo (vm_enter_namespace).

VM_MAC=52:54:00:12:34:56
VM_UPLOAD_BYTES=$((16 << 20))

# Skips the scenario where QEMU or the guest's parts cannot be had.
vm_require() {
  local q
  for q in qemu-system-x86_64 busybox; do
    if ! command -v "$q" >/dev/null; then
      e2e_log "SKIP: $q is not installed (scripts/install-deps.sh installs qemu-system-x86 and busybox-static)"
      exit 0
    fi
  done
  if ! timeout 30 qemu-system-x86_64 -machine q35,accel=tcg -nodefaults -display none -S \
    -daemonize -pidfile "$E2E_TMP/qemu-probe.pid" >/dev/null 2>&1; then
    e2e_log "SKIP: qemu-system-x86_64 cannot start a TCG machine here"
    exit 0
  fi
  kill "$(cat "$E2E_TMP/qemu-probe.pid")" 2>/dev/null || true
  # The guest has no libc: its busybox must be the static one.
  if ldd "$(command -v busybox)" >/dev/null 2>&1 || ! busybox --list | grep -qx cpio; then
    e2e_log "SKIP: busybox is not busybox-static (scripts/install-deps.sh installs it)"
    exit 0
  fi
}

# Re-runs the calling scenario inside a fresh namespace (only lo, up) and
# exits with its status; the namespace is removed afterwards. Inside, the
# scenario sees VM_NS set.
vm_enter_namespace() {
  [[ -n ${VM_NS:-} ]] && return 0
  local ns rc=0 inner
  ns=$(e2e_unique v)
  ip netns add "$ns" || e2e_die "cannot make namespace $ns"
  e2e_on_exit "ip netns del $ns"
  ip -n "$ns" link set lo up
  # nsenter (not `ip netns exec`) keeps bpffs and /sys as they are. In the
  # background, so that a TERM to us (ctest's timeout) reaches it too.
  VM_NS=$ns nsenter "--net=/run/netns/$ns" bash "$0" "$@" &
  inner=$!
  e2e_on_exit "e2e_kill_pid $inner"
  wait "$inner" || rc=$?
  # The scenario inside said PASS or FAIL; clean up without saying it twice.
  ip netns del "$ns" 2>/dev/null
  rm -rf "$E2E_TMP"
  trap - EXIT
  exit $rc
}

# Debian's kernel and modules, cached under the build dir (one download per
# build dir; concurrent scenarios take turns on a lock).
vm_kernel() {
  local cache=${FERRY_BUILD_DIR:-$(dirname "$FERRY")}/vm-cache
  mkdir -p "$cache" || e2e_die "cannot make $cache"
  (
    flock -w 600 9 || exit 3
    cd "$cache" || exit 3
    [[ -f ready ]] && exit 0
    rm -rf root ./*.deb
    # Stale package lists name a kernel the mirror no longer has: refresh once.
    apt-get download linux-image-amd64 >download.log 2>&1 ||
      { apt-get update -q >>download.log 2>&1 && apt-get download linux-image-amd64 >>download.log 2>&1; } || exit 4
    meta=$(ls linux-image-amd64_*.deb)
    image=$(dpkg-deb -f "$meta" Depends | sed -n 's/^\(linux-image-[^ ,]*\).*/\1/p')
    [[ -n $image ]] || exit 5
    apt-get download "$image" >>download.log 2>&1 ||
      { apt-get update -q >>download.log 2>&1 && apt-get download "$image" >>download.log 2>&1; } || exit 4
    dpkg-deb -x "${image}"_*.deb root || exit 6
    rm -f ./*.deb
    touch ready
  ) 9>"$cache/.lock"
  case $? in
    0) ;;
    4) e2e_die "apt-get download of Debian's kernel failed: $(tail -3 "$cache/download.log")" ;;
    *) e2e_die "could not prepare Debian's kernel in $cache" ;;
  esac
  VM_KERNEL=$(ls "$cache"/root/boot/vmlinuz-* | head -1)
  VM_MODULES=$(ls -d "$cache"/root/lib/modules/* | head -1)
  [[ -f $VM_KERNEL && -d $VM_MODULES ]] || e2e_die "no kernel in $cache/root"
}

# The start of every guest's /init: file systems, console, /etc/vm.conf,
# the ok/fail/check/finish helpers, the virtio-net modules, eth0 up (no
# addresses yet, no DAD).
vm_guest_prelude() {
  cat <<'INIT'
#!/bin/sh
# ferry's VM test guest. (Debian's static busybox wget segfaults with -T
# once /proc is mounted: time limits come from `timeout`.)
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
exec >/dev/console 2>&1
. /etc/vm.conf
ok() { echo "VM: ok $*"; }
fail() { echo "VM: FAIL $*"; }
check() { what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
finish() { echo "VM: END"; sync; poweroff -f; sleep 60; }
# Polls the host's /done (published once its fetches through -t ended)
# once a second, at most $1 times, then finishes.
await_done_and_finish() {
  i=0
  until timeout 10 wget -q -O /dev/null "http://$GW4:$HTTP_PORT/done" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt "$1" ] || { fail "the host never said done"; break; }
    sleep 1
  done
  finish
}

for m in virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci failover net_failover virtio_net; do
  insmod /lib/modules/$m.ko || fail "insmod $m"
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -e /sys/class/net/eth0 ] || { fail "eth0 appeared"; finish; }
ok "eth0 appeared ($(cat /sys/class/net/eth0/address))"
echo "VM: features $(cat /sys/class/net/eth0/device/features)"
ip link set lo up
echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
echo 0 > /proc/sys/net/ipv6/conf/eth0/dad_transmits
ip link set eth0 up
INIT
}

# The guest's /init: everything the guest does, reading /etc/vm.conf.
vm_guest_init() {
  vm_guest_prelude
  cat <<'INIT'
# Variables from /etc/vm.conf:
#   ADDR4 GW4 ADDR6 GW6      static addresses and gateways
#   DHCP                     1: DHCPv4 (busybox udhcpc) and SLAAC instead
#   HTTP_PORT BIG_SHA        16 MiB file at http://GW4:HTTP_PORT/big
#   HTTP6_PORT SMALL_SHA     1 MiB file at http://[GW6]:HTTP6_PORT/small
#   UP_PORT UP_BYTES         upload sink at GW4:UP_PORT
#   TOKEN                    what our httpd serves at /index.html
#   REMOTE4 REMOTE6 ...      (optional) a peer one veth hop away: the same
#                            files by HTTP and an upload sink at its addresses
if [ "${DHCP:-0}" = 1 ]; then
  # ferry's DHCP server and router advertisements configure us.
  cat > /bin/udhcpc.script <<'SCRIPT'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
[ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
for r in $router; do ip route add default via "$r" dev "$interface"; break; done
echo "VM: dhcp $ip/$mask router $router mtu ${mtu:-none} dns ${dns:-none}"
SCRIPT
  chmod +x /bin/udhcpc.script
  check "DHCPv4 lease (busybox udhcpc)" timeout 30 udhcpc -f -q -n -t 5 -i eth0 -s /bin/udhcpc.script
  slaac() { ip -6 addr show dev eth0 scope global | grep -q 'inet6 fd00:f:'; }
  route6() { ip -6 route show default | grep -q default; }
  i=0
  until slaac && route6; do [ $i -lt 150 ] || break; sleep 0.1; i=$((i + 1)); done
  check "SLAAC address and IPv6 default route from ferry's router advertisement" slaac
else
  ip addr add "$ADDR4" dev eth0
  ip -6 addr add "$ADDR6" dev eth0
  ip route add default via "$GW4"
  ip -6 route add default via "$GW6"
fi
echo "VM: config $(ip -o addr show dev eth0 | awk '{print $4}' | tr '\n' ' ')"

check "ping $GW4" ping -c 3 -W 10 "$GW4"
check "ping6 $GW6" ping6 -c 3 -W 10 "$GW6"

t0=$(date +%s)
got=$(timeout 180 wget -q -O - "http://$GW4:$HTTP_PORT/big" | sha256sum | cut -d' ' -f1)
check "16 MiB download over IPv4, sha256 matches ($(( $(date +%s) - t0 )) s)" [ -n "$got" -a "$got" = "$BIG_SHA" ]
got=$(timeout 60 wget -q -O - "http://[$GW6]:$HTTP6_PORT/small" | sha256sum | cut -d' ' -f1)
check "1 MiB download over IPv6, sha256 matches" [ -n "$got" -a "$got" = "$SMALL_SHA" ]

dd if=/dev/urandom of=/tmp/up bs=1048576 count=$((UP_BYTES / 1048576)) 2>/dev/null
want=$(sha256sum /tmp/up | cut -d' ' -f1)
t0=$(date +%s)
got=$(timeout 180 nc "$GW4" "$UP_PORT" < /tmp/up | head -1)
check "16 MiB upload over IPv4, the host's sha256 matches ($(( $(date +%s) - t0 )) s)" [ -n "$want" -a "$got" = "$want" ]
if [ -n "${REMOTE4:-}" ]; then
  # A peer one veth hop away (MTU $REMOTE_MTU), at its own addresses.
  got=$(timeout 180 wget -q -O - "http://$REMOTE4:$REMOTE_HTTP_PORT/big" | sha256sum | cut -d' ' -f1)
  check "16 MiB download from the peer $REMOTE4 one hop away (MTU $REMOTE_MTU), sha256 matches" [ -n "$got" -a "$got" = "$BIG_SHA" ]
  got=$(timeout 60 wget -q -O - "http://[$REMOTE6]:$REMOTE_HTTP6_PORT/small" | sha256sum | cut -d' ' -f1)
  check "1 MiB download from the peer $REMOTE6, sha256 matches" [ -n "$got" -a "$got" = "$SMALL_SHA" ]
  got=$(timeout 180 nc "$REMOTE4" "$REMOTE_UP_PORT" < /tmp/up | head -1)
  check "16 MiB upload to the peer $REMOTE4, its sha256 matches" [ -n "$want" -a "$got" = "$want" ]
fi
rm -f /tmp/up

mkdir -p /www
echo "$TOKEN" > /www/index.html
httpd -p 80 -h /www
echo "VM: httpd-ready"
# The host fetches our page through ferry's -t forward, then publishes /done.
await_done_and_finish 120
INIT
}

# Packs busybox, the virtio-net modules, /init (printed by INIT, default
# vm_guest_init) and CONF into OUT (gzip cpio).
vm_initramfs() {
  local out=$1 conf=$2 init=${3:-vm_guest_init} root=$E2E_TMP/initramfs m f
  rm -rf "$root"
  mkdir -p "$root"/{bin,proc,sys,dev,tmp,etc,lib/modules}
  cp "$(command -v busybox)" "$root/bin/busybox"
  for a in $(busybox --list); do
    [[ $a == busybox ]] || ln -sf busybox "$root/bin/$a"
  done
  for m in virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci failover net_failover virtio_net; do
    f=$(find "$VM_MODULES" -name "$m.ko*" | head -1)
    [[ -n $f ]] || e2e_die "module $m not in $VM_MODULES"
    case $f in
      *.ko.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
      *) cp "$f" "$root/lib/modules/$m.ko" ;;
    esac
  done
  "$init" >"$root/init"
  chmod 755 "$root/init"
  cp "$conf" "$root/etc/vm.conf"
  (cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$out" || e2e_die "cannot pack the initramfs"
}

# Boots the guest in the background: QEMU under `timeout SECS`, serial to LOG.
vm_boot() {
  local log=$1 secs=$2
  shift 2
  : >"$log"
  timeout -k 5 "$secs" qemu-system-x86_64 -machine q35,accel=tcg -m 512 -smp 1 -nodefaults \
    -display none -no-reboot -serial "file:$log" \
    -kernel "$VM_KERNEL" -initrd "$E2E_TMP/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 rdinit=/init" "$@" >"$E2E_TMP/qemu.out" 2>&1 &
  VM_PID=$!
  e2e_on_exit "e2e_kill_pid $VM_PID"
}

# Waits until LOG shows TEXT (a line containing it); false after SECS or
# when QEMU exited first.
vm_wait_line() {
  local log=$1 text=$2 secs=$3 i
  for ((i = 0; i < secs * 5; i++)); do
    grep -qF -- "$text" "$log" 2>/dev/null && return 0
    if ! kill -0 "$VM_PID" 2>/dev/null; then
      grep -qF -- "$text" "$log" 2>/dev/null
      return
    fi
    sleep 0.2
  done
  return 1
}

# The guest's verdicts as e2e results.
vm_collect() {
  local log=$1 line n=0 want=6  # eth0, ping, ping6, down over 4 and 6, up
  [[ -n ${RP:-} ]] && want=9       # and the peer's download over 4 and 6, upload
  while IFS= read -r line; do
    line=${line%$'\r'}
    case $line in
      *"VM: ok "*) e2e_log "ok: guest: ${line#*VM: ok }"; n=$((n + 1)) ;;
      *"VM: FAIL "*) e2e_fail "guest: ${line#*VM: FAIL }" ;;
      *"VM: config "* | *"VM: dhcp "*) e2e_log "guest: ${line#*VM: }" ;;
    esac
  done <"$log"
  if ! grep -q "VM: END" "$log"; then
    e2e_fail "the guest did not finish its checks (console: $log)"
    vm_show_console "$log"
  elif ((n < want)); then
    e2e_fail "only $n guest checks passed"
  fi
}

# vm_retry SECS CMD...: CMD until it succeeds, once a second, at most SECS
# times (for files that a service rewrites every second).
vm_retry() {
  local n=$1 i
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 1
  done
  return 1
}

# The console's last lines (after a failure).
vm_show_console() {
  e2e_log "--- guest console (last 30 lines)"
  tr -d '\r' <"$1" | tail -30 | sed 's/^/    /'
  [[ -s $E2E_TMP/qemu.out ]] && { e2e_log "--- qemu"; sed 's/^/    /' "$E2E_TMP/qemu.out"; }
}

# vm_upload_sink ADDR SECS [PREFIX...]: a server on ADDR (run under PREFIX,
# e.g. "${RPN[@]}") that reads VM_UPLOAD_BYTES from each client and answers
# their sha256. Sets SINK_PORT.
vm_upload_sink() {
  local addr=$1 secs=$2 portfile=$E2E_TMP/upload.$RANDOM.port
  shift 2
  "$@" /usr/bin/python3 -u - "$portfile" "$VM_UPLOAD_BYTES" "$secs" "$addr" >>"$E2E_TMP/upload.log" 2>&1 <<'PY' &
import hashlib, socket, sys, time
want, secs, addr = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.bind((addr, 0))
s.listen(4)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
end = time.time() + secs
s.settimeout(secs)
while time.time() < end:
    c, _ = s.accept()
    c.settimeout(max(1, end - time.time()))
    h, n = hashlib.sha256(), 0
    try:
        while n < want:
            d = c.recv(min(65536, want - n))
            if not d:
                break
            h.update(d)
            n += len(d)
        print(addr, "received", n, h.hexdigest(), flush=True)
        c.sendall((h.hexdigest() + "\n").encode())
    except OSError as e:
        print("upload:", e, flush=True)
    c.close()
PY
  e2e_on_exit "e2e_kill_pid $!"
  e2e_wait_file "$portfile" 5 || e2e_die "upload sink on $addr did not start"
  SINK_PORT=$(cat "$portfile")
}

# vm_http_in ADDR DIR PREFIX...: python's http.server on ADDR inside a
# namespace of ours (PREFIX: "${RPN[@]}"). Sets HTTP_PORT.
vm_http_in() {
  local addr=$1 dir=$2 log=$E2E_TMP/http.$RANDOM.log i
  shift 2
  "$@" /usr/bin/python3 -u -m http.server 0 --bind "$addr" --directory "$dir" >"$log" 2>&1 &
  e2e_on_exit "e2e_kill_pid $!"
  HTTP_PORT=
  for ((i = 0; i < 100; i++)); do
    HTTP_PORT=$(sed -n 's/.* port \([0-9]\+\).*/\1/p' "$log" 2>/dev/null | head -1)
    [[ -n $HTTP_PORT ]] && break
    sleep 0.05
  done
  [[ -n $HTTP_PORT ]] || e2e_die "http server on $addr did not start: $(cat "$log")"
}

# The host's side of the guest's checks, and the guest's configuration in
# $VM_CONF: on our namespace's loopback (the gateway's addresses) a 16 MiB
# and a 1 MiB file by HTTP and an upload sink; and, when e2e_remote_topology
# made a peer RP one veth hop away, the same there, which the guest reaches
# at the peer's own addresses through ferry's host sockets.
vm_serve_host() {
  local secs=$1
  VM_WWW=$E2E_TMP/www
  mkdir -p "$VM_WWW"
  head -c $((16 << 20)) /dev/urandom >"$VM_WWW/big"
  head -c $((1 << 20)) /dev/urandom >"$VM_WWW/small"
  e2e_http_server "$VM_WWW" 127.0.0.1
  local port4=$HTTP_PORT
  e2e_http_server "$VM_WWW" ::1
  local port6=$HTTP_PORT
  vm_upload_sink 127.0.0.1 "$secs"
  local up_port=$SINK_PORT
  VM_TOKEN=ferry-vm-$RANDOM$RANDOM
  VM_CONF=$E2E_TMP/vm.conf
  {
    echo "ADDR4=198.18.0.2/24 GW4=198.18.0.1 ADDR6=fd00:f::2/64 GW6=fd00:f::1"
    echo "HTTP_PORT=$port4 HTTP6_PORT=$port6 UP_PORT=$up_port UP_BYTES=$VM_UPLOAD_BYTES"
    echo "BIG_SHA=$(sha256sum "$VM_WWW/big" | cut -d' ' -f1)"
    echo "SMALL_SHA=$(sha256sum "$VM_WWW/small" | cut -d' ' -f1)"
    echo "TOKEN=$VM_TOKEN"
  } >"$VM_CONF"
  # DHCP and router advertisements where this ferry serves them.
  if "$FERRY" attach --help 2>&1 | grep -q -- --no-dhcp; then
    echo "DHCP=1" >>"$VM_CONF"
    e2e_log "the guest configures itself (ferry serves DHCP and router advertisements)"
  else
    e2e_log "note: this ferry serves no DHCP: the guest's configuration is static"
  fi
  if [[ -n ${RP:-} ]]; then
    vm_http_in "${REMOTE_P4[0]}" "$VM_WWW" "${RPN[@]}"
    echo "REMOTE4=${REMOTE_P4[0]} REMOTE_HTTP_PORT=$HTTP_PORT REMOTE_MTU=${REMOTE_MTU[0]}" >>"$VM_CONF"
    vm_http_in "${REMOTE_P6[0]}" "$VM_WWW" "${RPN[@]}"
    echo "REMOTE6=${REMOTE_P6[0]} REMOTE_HTTP6_PORT=$HTTP_PORT" >>"$VM_CONF"
    vm_upload_sink "${REMOTE_P4[0]}" "$secs" "${RPN[@]}"
    echo "REMOTE_UP_PORT=$SINK_PORT" >>"$VM_CONF"
  fi
  HTTP_PORT=$port4
}

# Host -> guest through ferry's -t forward (127.0.0.1:PORT -> guest:80),
# once the guest's httpd runs; then publishes /done for the guest.
vm_inbound_check() {
  local port=$1 log=$2 got
  if vm_wait_line "$log" "VM: httpd-ready" 300; then
    got=$(curl -s --max-time 30 "http://127.0.0.1:$port/index.html" || true)
    e2e_expect "host fetches the guest's page through -t $port:80" test "$got" = "$VM_TOKEN"
  else
    e2e_fail "the guest's httpd never came up"
  fi
  echo done >"$VM_WWW/done"
}
