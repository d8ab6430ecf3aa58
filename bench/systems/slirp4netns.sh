# shellcheck shell=bash disable=SC2034  # SYS_* are read by bench/run
# bench/systems/slirp4netns.sh: slirp4netns (libslirp) into a namespace of
# ours. It configures tap0 as 10.0.2.100/24 with gateway 10.0.2.2, which
# reaches the host's 127.0.0.1.

SLIRP_NS=""
SLIRP_PID=""

# Starts slirp4netns at MTU $1 in a fresh namespace.
slirp4netns_start() {
	local mtu=$1
	bench_netns_add slirp && SLIRP_NS=$BENCH_NETNS_NAME || { SYS_ERROR="cannot create namespace"; return 1; }
	launch_prefix
	"${LAUNCH[@]}" slirp4netns --configure --mtu="$mtu" --netns-type=path "/run/netns/$SLIRP_NS" tap0 \
		>"$BENCH_LOGS/slirp4netns-$mtu.log" 2>&1 &
	SLIRP_PID=$!
	bench_track_pid "$SLIRP_PID"
	local i
	for ((i = 0; i < 50; i++)); do
		ip -n "$SLIRP_NS" -4 addr show dev tap0 2>/dev/null | grep -q 10.0.2.100 && break
		kill -0 "$SLIRP_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! kill -0 "$SLIRP_PID" 2>/dev/null; then
		SYS_ERROR="slirp4netns exited: $(tail -n1 "$BENCH_LOGS/slirp4netns-$mtu.log")"
		return 1
	fi
	SYS_GUEST_NS=/run/netns/$SLIRP_NS
	SYS_HOST_NS=""
	SYS_SERVER_BIND=127.0.0.1
	SYS_SERVER_ADDR=10.0.2.2
	SYS_TRANSLATOR_PID=$SLIRP_PID
	return 0
}

# Stops slirp4netns and removes its namespace.
slirp4netns_stop() {
	bench_stop_pid "$SLIRP_PID"
	[[ -n $SLIRP_NS ]] && bench_netns_del "$SLIRP_NS"
	SLIRP_PID=""
	SLIRP_NS=""
}
