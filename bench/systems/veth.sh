# shellcheck shell=bash disable=SC2034  # SYS_* are read by bench/run
# bench/systems/veth.sh: the limit. Two namespaces of our own, H (host side,
# where the servers run) and G (guest side, where the clients run), joined by
# a plain veth pair; the kernel routes, nothing translates. No translator
# process, so no CPU-per-byte and no pinning of a translator.
#
# Plug-in interface (every system file): <name>_start MTU sets
#   SYS_GUEST_NS    namespace path the clients run in
#   SYS_HOST_NS     namespace path the servers run in ("" = the root one)
#   SYS_SERVER_BIND address the servers listen on
#   SYS_SERVER_ADDR address the clients connect to
#   SYS_TRANSLATOR_PID  the translating process ("" if none)
# and returns 0, or sets SYS_ERROR and returns 1; <name>_stop undoes it.
# When SYS_LAUNCH_NS is set (the remote-peer row: a namespace name under
# /run/netns), the system's host side lives in that namespace instead of the
# root one: the translator is started there (its host sockets are that
# namespace's), SYS_LAUNCH_IF names its link to the remote peer, and bench/run
# then points SYS_HOST_NS and the server address at the peer.
#
# Here, with SYS_LAUNCH_NS, there is no H of our own: the guest namespace G is
# joined to SYS_LAUNCH_NS, which routes between G and the peer (the limit of
# a real two-hop path, nothing translating).

VETH_H=""
VETH_G=""

# Starts the veth pair at MTU $1.
veth_start() {
	local mtu=$1 h
	if [[ -n ${SYS_LAUNCH_NS:-} ]]; then
		h=$SYS_LAUNCH_NS
	else
		bench_netns_add veth-h && VETH_H=$BENCH_NETNS_NAME || { SYS_ERROR="cannot create namespace"; return 1; }
		h=$VETH_H
	fi
	bench_netns_add veth-g && VETH_G=$BENCH_NETNS_NAME || { SYS_ERROR="cannot create namespace"; return 1; }
	if ! ip link add fbv0 netns "$h" mtu "$mtu" type veth peer name fbv1 netns "$VETH_G" mtu "$mtu"; then
		SYS_ERROR="cannot create the veth pair"
		return 1
	fi
	ip -n "$h" addr add 198.18.0.1/24 dev fbv0
	ip -n "$VETH_G" addr add 198.18.0.2/24 dev fbv1
	ip -n "$h" link set fbv0 up
	ip -n "$VETH_G" link set fbv1 up
	if [[ -n ${SYS_LAUNCH_NS:-} ]]; then
		# H routes between G and the peer (H is ours and has no other link).
		ip -n "$VETH_G" route add default via 198.18.0.1
		nsenter --net="/run/netns/$h" -- sysctl -q -w net.ipv4.ip_forward=1
	fi
	SYS_GUEST_NS=/run/netns/$VETH_G
	SYS_HOST_NS=/run/netns/$h
	SYS_SERVER_BIND=198.18.0.1
	SYS_SERVER_ADDR=198.18.0.1
	SYS_TRANSLATOR_PID=""
	return 0
}

# Removes the namespaces it made (the veth pair goes with them).
veth_stop() {
	[[ -n $VETH_G ]] && bench_netns_del "$VETH_G"
	[[ -n $VETH_H ]] && bench_netns_del "$VETH_H"
	VETH_H=""
	VETH_G=""
}
