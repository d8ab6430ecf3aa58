# shellcheck shell=bash disable=SC2034  # SYS_* are read by bench/run
# bench/systems/pasta.sh: pasta (Debian's passt package) into a namespace of
# ours, as /work/shared/notes/peers-on-this-machine.md describes: explicit
# addresses (otherwise it copies the host's), --runas 0 (as root it would
# drop to nobody and fail to join the namespace), no port forwarding, -f so
# that $! is pasta itself. The guest reaches the host's 127.0.0.1 through the
# gateway address 10.0.2.2.
#
# pasta-tuned is the same with net.core.wmem_max raised to 32 MiB for its rows
# only (pasta sizes its socket buffers when it starts); pasta_tuned_stop and
# the global trap write the original value back.

PASTA_NS=""
PASTA_PID=""

# Starts pasta at MTU $1 in a fresh namespace.
pasta_start() {
	local mtu=$1
	bench_netns_add pasta && PASTA_NS=$BENCH_NETNS_NAME || { SYS_ERROR="cannot create namespace"; return 1; }
	# In SYS_LAUNCH_NS (no default route there) pasta needs its outer
	# interface named (-i), or it finds no "external routable interface".
	local outer=()
	[[ -n ${SYS_LAUNCH_IF:-} ]] && outer=(-i "$SYS_LAUNCH_IF")
	launch_prefix
	"${LAUNCH[@]}" pasta -f -q --runas 0 --config-net --netns "$PASTA_NS" \
		"${outer[@]}" -I eth0 -4 -a 10.0.2.15 -n 24 -g 10.0.2.2 \
		-m "$mtu" -t none -u none -T none -U none >"$BENCH_LOGS/pasta-$mtu.log" 2>&1 &
	PASTA_PID=$!
	bench_track_pid "$PASTA_PID"
	local i
	for ((i = 0; i < 50; i++)); do
		ip -n "$PASTA_NS" -4 addr show dev eth0 2>/dev/null | grep -q 10.0.2.15 && break
		kill -0 "$PASTA_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! kill -0 "$PASTA_PID" 2>/dev/null; then
		SYS_ERROR="pasta exited: $(tail -n1 "$BENCH_LOGS/pasta-$mtu.log")"
		return 1
	fi
	SYS_GUEST_NS=/run/netns/$PASTA_NS
	SYS_HOST_NS=""
	SYS_SERVER_BIND=127.0.0.1
	SYS_SERVER_ADDR=10.0.2.2
	SYS_TRANSLATOR_PID=$PASTA_PID
	return 0
}

# Stops pasta and removes its namespace.
pasta_stop() {
	bench_stop_pid "$PASTA_PID"
	[[ -n $PASTA_NS ]] && bench_netns_del "$PASTA_NS"
	PASTA_PID=""
	PASTA_NS=""
}

# pasta with net.core.wmem_max = 32 MiB (set before pasta starts).
pasta_tuned_start() {
	bench_wmem_set $((32 * 1024 * 1024)) || { SYS_ERROR="cannot raise net.core.wmem_max"; return 1; }
	pasta_start "$@"
}

# Stops pasta and restores net.core.wmem_max.
pasta_tuned_stop() {
	pasta_stop
	bench_wmem_restore
}
