#!/usr/bin/env bash
# podman_rootless: rootless Podman (Debian 12's 4.3, run by an ordinary user
# this scenario creates and removes) with ferry as the network of its
# containers, the way README's "Rootless Podman" shows:
#   podman unshare ferry run -t HOSTPORT:8080 -- sh -c 'echo $$ >FILE; exec sleep ...' &
#   podman run --network ns:/proc/$(cat FILE)/ns/net IMAGE ...
# (`podman unshare` makes ferry's user namespace a child of Podman's, so the
# container's runtime, root there, may join ferry's network namespace; from
# a plain `ferry run` Podman gets "permission denied", also checked.)
# Checks: rootless Podman on a ferry-cni network is refused at once with a
# message saying why (ferry-cni runs in Podman's user namespace; before, it
# made the veth and then failed in ferry attach on bpffs); then, with ferry
# under podman unshare: the container has ferry's addresses and routes; a name resolves
# through ferry's DNS forwarder; it reaches our servers on the host's
# loopback through the gateway (IPv4 and IPv6) and a peer one veth hop away
# (MTU 1500): 100 MiB down (busybox wget) and up (busybox nc) with sha256;
# a container's httpd on port 8080 answers on the host through ferry's
# -t forward, from the host's loopback and from the peer; after
# `podman stop`/`rm` and SIGTERM to ferry, ferry and its translator have
# ended and its run directory is gone.
# Topology: everything of the user's runs in a host namespace H of our own
# (no route out) joined to a peer RP, in a mount namespace where a 0666 tun
# node of ours stands for the machine's /dev/net/tun (0600 here; rootless
# ferry needs it open to all, as udev makes it). The user, its home and
# subordinate ids go at exit, failure too; its processes are ended by PID.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib_podman.sh"
e2e_init
podman_need
for t in setpriv useradd userdel newuidmap dnsmasq socat curl; do
  command -v "$t" >/dev/null || e2e_die "$t missing (scripts/install-deps.sh)"
done

T=$E2E_TMP
e2e_remote_topology 1500  # H: the host side, where podman runs
H=$RH HN=("${RHN[@]}") PEER=${REMOTE_P4[0]}

# ---- the user
U=fpm$$
# A machine without /etc/subuid (a minimal image): made for the test, and
# removed after the user (exit commands run last registered first).
for f in /etc/subuid /etc/subgid; do
  [[ -e $f ]] || { : >"$f" && e2e_on_exit "rm -f $f"; }
done
useradd -M -d /nonexistent -s /bin/sh "$U" || e2e_die "useradd $U"
e2e_on_exit "podman_user_gone $U"
podman_user_gone() {
  local p
  for p in $(ps -u "$1" -o pid= 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  for p in $(seq 50); do [[ -z $(ps -u "$1" -o pid= 2>/dev/null) ]] && break; sleep 0.1; done
  userdel "$1" 2>/dev/null
}
grep -q "^$U:" /etc/subuid || usermod --add-subuids 200000-265535 --add-subgids 200000-265535 "$U" ||
  e2e_die "no subordinate ids for $U"
USER_UID=$(id -u "$U")

# ---- the user's directory: ferry, podman configuration, image, data
D=$(mktemp -d /tmp/fpr.XXXXXX) || e2e_die "mktemp"
e2e_on_exit "rm -rf $D"
chmod 755 "$D"
mkdir -p "$D/bin" "$D/dev" "$D/u/xdg" "$D/u/home"
cp "$FERRY" "$D/bin/ferry"
cp "$(dirname "$FERRY")/ferry-cni" "$D/bin/ferry-cni"
chmod 755 "$D/bin" "$D/bin/ferry" "$D/bin/ferry-cni"
mknod -m 0666 "$D/dev/tun" c 10 200 || e2e_die "mknod a tun node"
podman_setup
PM=(podman --root "$D/u/storage" --runroot "$D/u/rr" --storage-driver vfs)
sed -e "s|$PM_DIR/|$D/u/|g" -e "s|^cni_plugin_dirs = .*|cni_plugin_dirs = [\"$D/bin\", \"/usr/lib/cni\"]|" \
  "$PM_CONF" >"$D/containers.conf"
chmod 644 "$D/containers.conf"
mkdir -p "$D/u/cni" "$D/u/tmp"
# a ferry-cni network, which rootless Podman cannot use (checked below)
printf '{"cniVersion":"1.0.0","name":"ferrycni","plugins":[{"type":"ferry-cni","stateDir":"%s"}]}\n' \
  "$D/u/cnistate" >"$D/u/cni/ferrycni.conflist"
podman_rootfs_tar "$T"
cp "$T/rootfs.tar" "$D/image.tar"
mkdir -p "$D/www"
head -c $((100 << 20)) /dev/urandom >"$D/www/blob"
echo "loopback-of-H" >"$D/www/hello"
SUM=$(sha256sum <"$D/www/blob" | cut -d' ' -f1)
chmod -R a+rX "$D/www" "$D/image.tar"
chown -R "$U:" "$D/u"
chmod 700 "$D/u/xdg"

# ---- servers: H's loopback (v4, v6), the peer, DNS
podman_servers "$D/www"

# ---- what the user runs (in H, with the 0666 tun node)
HOSTPORT=$(e2e_free_port)
cat >"$D/inside.sh" <<EOF
echo "== addr"; ip -o addr show dev eth0
echo "== route"; ip route; ip -6 route
echo "== dns"; nslookup -type=a $RECORD 198.18.0.1 2>&1
echo "== h4"; wget -q -O - http://198.18.0.1:8081/hello
echo "== h6"; wget -q -O - "http://[fd00:f::1]:8081/hello"
echo "== down"; wget -q -O - http://$PEER:8082/blob | sha256sum
echo "== up"; nc -w 30 $PEER 8083 </blob; echo "nc exit \$?"
echo "== end"
EOF
cat >"$D/user.sh" <<EOF
export HOME=$D/u/home XDG_RUNTIME_DIR=$D/u/xdg CONTAINERS_CONF=$D/containers.conf PATH=$D/bin:\$PATH
PM="${PM[*]}"
U=$D/u
wait_file() { for i in \$(seq 100); do [ -s "\$1" ] && return 0; sleep 0.2; done; return 1; }
echo "== id"; id -u
\$PM import -q $D/image.tar $PM_IMAGE >/dev/null || { echo "import failed"; exit 1; }
# a ferry-cni network: Podman runs the plugin in a user namespace of its own
echo "== cni"; timeout 60 \$PM run --rm --network ferrycni $PM_IMAGE true 2>&1; echo "exit \$?"
ls \$U/cnistate/*.json 2>/dev/null
# a plain ferry run: Podman may not join its namespace
ferry run -q -- sh -c 'echo \$\$ >'\$U/plain.pid'; exec sleep 30' >\$U/plain.log 2>&1 &
PLAIN=\$!
wait_file \$U/plain.pid
echo "== plain"; \$PM run --rm --network ns:/proc/\$(cat \$U/plain.pid)/ns/net $PM_IMAGE true 2>&1; echo "exit \$?"
kill \$PLAIN; wait \$PLAIN
# ferry under podman unshare: the way that works
\$PM unshare ferry run -q --pid \$U/ferry.pid -t $HOSTPORT:8080 -- sh -c 'echo \$\$ >'\$U/ns.pid'; exec sleep 150' >\$U/ferry.log 2>&1 &
wait_file \$U/ns.pid && wait_file \$U/ferry.pid || { echo "ferry did not start"; cat \$U/ferry.log; exit 1; }
NS=/proc/\$(cat \$U/ns.pid)/ns/net
echo "== ferry \$(cat \$U/ferry.pid)"
\$PM run --rm --network ns:\$NS -v $D/inside.sh:/inside.sh:ro -v $D/www/blob:/blob:ro $PM_IMAGE sh /inside.sh
echo "== run exit \$?"
\$PM run -d --name web$$ --network ns:\$NS $PM_IMAGE httpd -f -p 8080 -h /www >/dev/null
echo "== web exit \$?"
touch \$U/web.ready
wait_file \$U/web.done
\$PM stop -t 2 web$$ >/dev/null 2>&1; echo "== stop exit \$?"
\$PM rm web$$ >/dev/null; echo "== rm exit \$?"
kill -TERM \$(cat \$U/ferry.pid)
wait
echo "== ferry run ended"
EOF
chmod 755 "$D/user.sh" "$D/inside.sh"

start=$(date +%s)
timeout -k 5 240 "${HN[@]}" unshare -m bash -c 'mount --bind "$0" /dev/net/tun && exec "$@"' "$D/dev/tun" \
  setpriv --reuid "$U" --regid "$U" --init-groups sh "$D/user.sh" >"$T/user.out" 2>"$T/user.err" &
USERJOB=$!
e2e_on_exit "e2e_kill_pid $USERJOB"
for ((i = 0; i < 900; i++)); do
  [[ -e $D/u/web.ready ]] || ! kill -0 "$USERJOB" 2>/dev/null && break
  sleep 0.2
done
e2e_expect "the container's httpd answers via ferry's -t $HOSTPORT:8080 on H's loopback" bash -c \
  "for i in \$(seq 50); do ${HN[*]} curl -sS -m 5 http://127.0.0.1:$HOSTPORT/ 2>/dev/null | grep -q 'served by httpd' && exit 0; sleep 0.2; done; exit 1"
e2e_expect "... and to the peer one hop away" bash -c \
  "${RPN[*]} curl -sS -m 10 http://${REMOTE_H4[0]}:$HOSTPORT/ | grep -q 'served by httpd'"
FPID=$(cat "$D/u/ferry.pid" 2>/dev/null || echo 0)
TPIDS=$(pgrep -P "$FPID" 2>/dev/null | tr '\n' ' ')
e2e_expect "ferry ($FPID) runs as $U" test "$(ps -o uid= -p "$FPID" 2>/dev/null | tr -d ' ')" = "$USER_UID"
touch "$D/u/web.done"
wait "$USERJOB"
rc=$?
e2e_log "user's script: exit $rc, $(($(date +%s) - start)) s"

section() { awk -v s="$1" 'index($0, "== " s) == 1 { on = 1; next } /^== / { on = 0 } on' "$T/user.out"; }
e2e_expect "podman ran as $U" grep -qx "$USER_UID" <(section id)
e2e_expect "a ferry-cni network, rootless: refused at once, saying why" \
  grep -q "ferry-cni runs in a user namespace (rootless Podman?)" <(section cni)
e2e_expect "... and nothing recorded" test -z "$(section cni | grep '\.json$')"
e2e_expect "a plain ferry run's namespace: podman refuses (permission denied)" grep -q "permission denied" <(section plain)
e2e_expect "eth0 has ferry's IPv4 address" grep -q "inet 198.18.0.2/24" <(section addr)
e2e_expect "eth0 has ferry's IPv6 address" grep -q "inet6 fd00:f::2/64" <(section addr)
e2e_expect "IPv4 default route via ferry's gateway" grep -q "^default via 198.18.0.1 dev eth0" <(section route)
e2e_expect "$RECORD resolves through ferry's forwarder" grep -Eq "^Address:?[[:space:]]+$RECORD_ADDR\$" <(section dns)
e2e_expect "H's loopback over IPv4 via the gateway" grep -qx "loopback-of-H" <(section h4)
e2e_expect "H's loopback over IPv6 via the gateway" grep -qx "loopback-of-H" <(section h6)
e2e_expect "100 MiB from the peer, sha256 intact" grep -q "^$SUM " <(section down)
wait "$SOCAT"
e2e_expect "100 MiB to the peer (nc exit 0)" grep -qx "nc exit 0" <(section up)
e2e_expect "100 MiB to the peer, sha256 intact" test "$(sha256sum <"$T/up" | cut -d' ' -f1)" = "$SUM"
e2e_expect "podman run: exit 0" grep -qx "== run exit 0" "$T/user.out"
e2e_expect "podman run -d httpd: exit 0" grep -qx "== web exit 0" "$T/user.out"
e2e_expect "podman stop / rm: exit 0" bash -c "grep -qx '== stop exit 0' '$T/user.out' && grep -qx '== rm exit 0' '$T/user.out'"
e2e_expect "ferry run ended on SIGTERM" grep -qx "== ferry run ended" "$T/user.out"
left=()
for p in $FPID $TPIDS; do [[ $p != 0 && -d /proc/$p && $(ps -o stat= -p "$p") != Z* ]] && left+=("process $p"); done
[[ -e $D/u/xdg/ferry-run/run-$FPID ]] && left+=("$D/u/xdg/ferry-run/run-$FPID")
for p in $(ps -u "$U" -o pid=,comm= | awk '$2 ~ /^ferry/ { print $1 }'); do left+=("process $p of $U"); done
e2e_expect "nothing of ferry's left (${left[*]:-})" test ${#left[@]} -eq 0
if ((E2E_FAILED)); then
  sed 's/^/    /' "$T/user.out" | tail -50
  sed 's/^/    err: /' "$T/user.err" | tail -20
  sed 's/^/    ferry: /' "$D/u/ferry.log" 2>/dev/null | tail -10
fi
