#!/usr/bin/env bash
# attach_refuse: `ferry attach` refuses devices it must not take, each with a
# one-line reason and exit 1, and leaves them as they were: lo, a bridge, a
# veth enslaved to a bridge, a veth holding an address, a vxlan device (an
# Ethernet link that is not a veth or tap). A plain veth and a tap are accepted; --force accepts the
# addressed veth. Everything happens in a namespace H of the test's own.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_init

U=$(e2e_unique r)
H=${U}h G=${U}g
HN=(nsenter "--net=/run/netns/$H")
e2e_on_exit "ip netns del $G"
e2e_on_exit "ip netns del $H"
ip netns add "$H" && ip netns add "$G" || e2e_die "namespaces"
ip -n "$H" link set lo up
ip -n "$H" link add br0 type bridge || e2e_die "bridge"
ip link add vport netns "$H" type veth peer name p1 netns "$G" || e2e_die "veth port"
ip -n "$H" link set vport master br0
ip link add vaddr netns "$H" type veth peer name p2 netns "$G" || e2e_die "veth addr"
ip -n "$H" addr add 198.19.77.1/24 dev vaddr
ip -n "$H" link add vx0 type vxlan id 77 dstport 4789 || e2e_die "vxlan"  # no remote: sends nothing
ip link add vok netns "$H" type veth peer name p3 netns "$G" || e2e_die "veth ok"
"${HN[@]}" ip tuntap add dev tapok mode tap || e2e_die "tap"
for d in br0 vport vaddr vx0 vok tapok; do ip -n "$H" link set "$d" up; done

# refused DEV WORD: attach fails (exit 1), one line naming why, nothing left.
refused() {
  local dev=$1 word=$2 rc=0
  timeout 30 "${HN[@]}" "$FERRY" attach "$dev" -q >"$OUT" 2>"$ERR" || rc=$?
  e2e_log "attach $dev: rc $rc: $(cat "$ERR")"
  e2e_expect "$dev refused with exit 1" test "$rc" -eq 1
  e2e_expect "$dev: one line" test "$(wc -l <"$ERR")" -eq 1
  e2e_expect "$dev: the reason says '$word'" grep -q -- "$word" "$ERR"
  e2e_expect "$dev: no run dir left" test ! -e "/run/ferry/$dev"
  e2e_expect "$dev: no pins left" test ! -e "/sys/fs/bpf/ferry/$dev"
}
refused lo "loopback"
refused br0 "bridge"
refused vport "enslaved"
refused vaddr "198.19.77.1/24"
refused vx0 "not a veth or a tap"
e2e_expect "vaddr keeps its address" bash -c "ip -n $H -o addr show dev vaddr | grep -q 198.19.77.1/24"
e2e_expect "vport is still a bridge port" bash -c "ip -n $H -d link show vport | grep -q 'master br0'"

# accepted DEV [OPTS]: attach succeeds, detach cleans up.
accepted() {
  local dev=$1
  shift
  if timeout 30 "${HN[@]}" "$FERRY" attach "$dev" -q "$@" 2>"$ERR"; then
    e2e_log "ok: attach $dev $*"
    e2e_on_exit "timeout 20 ${HN[*]} $FERRY detach $dev -q"
    timeout 20 "${HN[@]}" "$FERRY" detach "$dev" -q || e2e_fail "detach $dev"
  else
    e2e_fail "attach $dev $*: $(cat "$ERR")"
  fi
}
accepted vok
accepted tapok
accepted vaddr --force
