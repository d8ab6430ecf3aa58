# shellcheck shell=bash disable=SC2034
# lib_podman.sh: helpers of the podman_*.sh scenarios (Debian 12's podman 4.3
# with ferry as its network). Sourced after lib.sh.
#
# Nothing global of the machine's podman is used or changed: each scenario
# has its own containers.conf (CONTAINERS_CONF), its own storage (--root,
# --runroot, vfs), its own CNI configuration directory, engine tmp_dir and
# file locks (not the machine-wide /libpod_lock shared memory), and a
# busybox image imported from a tarball (no registry is needed).
# What Podman itself still writes outside them, whatever the configuration:
# its CNI result cache /var/lib/cni/results (an entry per running
# container, removed when the network goes) and containers/image's
# /var/lib/containers/cache/blob-info-cache-v1.boltdb (on import).
#
#   podman_need                 skips the scenario (exit 0, a clear message)
#                               when podman or runc is not installed
#   podman_setup [PLUGIN_DIR]   private configuration in a new directory
#                               PM_DIR (removed at exit); sets PM (the podman
#                               command line, an array), PM_CONF, PM_CNI
#                               (network config dir), PM_IMAGE
#   podman_rootfs_tar DIR       DIR/rootfs.tar: busybox-static and its
#                               applets, /www
#   podman_image DIR            that tarball imported as PM_IMAGE
#   podman_conflist NAME JSON   writes PM_CNI/NAME.conflist
#   podman_first_nameservers    up to 3 nameservers of /etc/resolv.conf
#   podman_servers WWW          the servers a container talks to, in the
#                               scenario's host namespace H ("${HN[@]}") and
#                               peer RP ("${RPN[@]}", at $PEER): see there
#
# Podman 4.3 facts that shape the configuration (see also
# /work/shared/notes/real-clients-on-this-machine.md): crun refuses a hybrid
# cgroup machine, so the runtime is runc; root may lack CAP_SYS_RESOURCE, so
# default_ulimits stay at the current limits; libcni 1.1.2 in podman takes
# cniVersion 1.0.0 at most.

# Skips the scenario when podman cannot run here at all.
podman_need() {
  local t
  for t in podman runc; do
    if ! command -v "$t" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$t ]]; then
      e2e_log "SKIP: $t is not installed (scripts/install-deps.sh installs podman and runc)"
      exit 0
    fi
  done
}

# podman_setup [CNI_PLUGIN_DIR]: a private podman configuration. Its
# directory has a short name: podman refuses a runroot longer than 50
# characters.
podman_setup() {
  local plugins=${1:-$(cd "$(dirname "$FERRY")" && pwd)} dir
  dir=$(mktemp -d /tmp/fpm.XXXXXX) || e2e_die "mktemp"
  e2e_on_exit "rm -rf $dir"
  PM_DIR=$dir
  PM_CONF=$dir/containers.conf
  PM_CNI=$dir/cni
  PM_IMAGE=localhost/ferry-e2e-busybox:$$
  mkdir -p "$PM_CNI" "$dir/tmp" "$dir/storage" "$dir/rr"
  local nofile
  nofile=$(ulimit -n)
  cat >"$PM_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["$plugins", "/usr/lib/cni"]
network_config_dir = "$PM_CNI"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/tmp"
lock_type = "file"
EOF
  export CONTAINERS_CONF=$PM_CONF
  PM=(podman --root "$dir/storage" --runroot "$dir/rr" --storage-driver vfs)
}

# podman_rootfs_tar DIR: DIR/rootfs.tar, a busybox-static root file system
# (the applets' links, /www/index.html for httpd).
podman_rootfs_tar() {
  local root=$1/rootfs a
  mkdir -p "$root/bin" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/www"
  cp /bin/busybox "$root/bin/busybox" || e2e_die "no /bin/busybox (busybox-static)"
  for a in $("$root/bin/busybox" --list); do
    [[ $a == busybox ]] || ln -sf busybox "$root/bin/$a"
  done
  echo "served by httpd inside a podman container" >"$root/www/index.html"
  tar -C "$root" -cf "$1/rootfs.tar" . || e2e_die "image tarball"
}

# podman_image DIR: that root file system imported as image PM_IMAGE.
podman_image() {
  podman_rootfs_tar "$1"
  timeout 60 "${PM[@]}" import -q "$1/rootfs.tar" "$PM_IMAGE" >/dev/null 2>"$1/import.err" ||
    e2e_die "podman import: $(cat "$1/import.err")"
}

# podman_conflist NAME JSON: one network configuration list.
podman_conflist() { printf '%s\n' "$2" >"$PM_CNI/$1.conflist"; }

# The host's resolvers (at most 3, as glibc and ferry's forwarder read them).
podman_first_nameservers() { awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf 2>/dev/null | head -3; }

# podman_servers WWW: what the containers of a scenario reach, all inside
# its own namespaces (killed at exit):
#   H 127.0.0.1:8081 and [::1]:8081   http, serving WWW
#   PEER:8082                         http, serving WWW (its 100 MiB blob)
#   PEER:8083                         socat writing one upload to $E2E_TMP/up
#                                     (SOCAT: its PID, to wait for)
#   the host's IPv4 resolvers         addresses on H's loopback, answered by a
#                                     dnsmasq holding RECORD -> RECORD_ADDR:
#                                     ferry's forwarder relays to them
podman_servers() {
  local www=$1 ns listen=()
  "${HN[@]}" python3 -m http.server 8081 --bind 127.0.0.1 --directory "$www" >"$E2E_TMP/h4.log" 2>&1 &
  e2e_on_exit "e2e_kill_pid $!"
  "${HN[@]}" python3 -c 'import http.server, socket, sys, os
os.chdir(sys.argv[1])
class S(http.server.ThreadingHTTPServer): address_family = socket.AF_INET6
S(("::1", 8081), http.server.SimpleHTTPRequestHandler).serve_forever()' "$www" >"$E2E_TMP/h6.log" 2>&1 &
  e2e_on_exit "e2e_kill_pid $!"
  "${RPN[@]}" python3 -m http.server 8082 --bind "$PEER" --directory "$www" >"$E2E_TMP/peer.log" 2>&1 &
  e2e_on_exit "e2e_kill_pid $!"
  "${RPN[@]}" timeout 150 socat -u "TCP-LISTEN:8083,bind=$PEER,reuseaddr" "OPEN:$E2E_TMP/up,creat,trunc" \
    2>"$E2E_TMP/socat.err" &
  SOCAT=$!
  e2e_on_exit "e2e_kill_pid $SOCAT"
  RECORD=svc.ferry.test RECORD_ADDR=198.51.100.7
  for ns in $(podman_first_nameservers); do
    [[ $ns == *:* ]] && continue
    [[ $ns == 127.* ]] || ip -n "$H" addr add "$ns/32" dev lo
    listen+=("--listen-address=$ns")
  done
  ((${#listen[@]})) || e2e_die "/etc/resolv.conf names no IPv4 resolver: ferry's forwarder would have no upstream"
  "${HN[@]}" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --user=root \
    "${listen[@]}" --bind-interfaces --pid-file="$E2E_TMP/dnsmasq.pid" --address="/$RECORD/$RECORD_ADDR" \
    2>"$E2E_TMP/dnsmasq.err" &
  e2e_on_exit "e2e_kill_pid $!"
  "${HN[@]}" bash -c 'for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8081) 2>/dev/null &&
    (exec 3<>/dev/tcp/::1/8081) 2>/dev/null && exit 0; sleep 0.1; done; exit 1' ||
    e2e_die "H's http servers did not start"
}
