# shellcheck shell=bash disable=SC2034  # SYS_* are read by bench/run
# bench/systems/ferry.sh: ferry itself, started the way a person would:
# `ferry run -m MTU [--no-fastpath] -- sleep N` (not -q: its warnings, such
# as "no BPF fast path", go to the log, and the report quotes them). ferry makes the namespace
# and its tap (guest 198.18.0.2/24, gateway 198.18.0.1 = the host's
# 127.0.0.1) and forks the `sleep` into it; the clients join that namespace
# through /proc/<sleep>/ns/net. ferry runs with the machine's stock sysctls,
# in SYS_LAUNCH_NS for the remote-peer row (nsenter execs: $! is ferry).
# $FERRY_BIN is set by bench/run (empty, with $FERRY_UNAVAILABLE saying why,
# when the build failed).

FERRY_PID=""

# Echoes the ferry binary system $1 runs: the --baseline one for
# ferry-baseline, the one under test for every other ferry-* system.
ferry_bin_of() {
	if [[ $1 == ferry-baseline ]]; then echo "$FERRY_BASELINE_BIN"; else echo "$FERRY_BIN"; fi
}

# Starts ferry at MTU $1; extra ferry options follow. FERRY_RUN_BIN (default
# $FERRY_BIN) names the binary, FERRY_RUN_TAG its log file.
ferry_start() {
	local mtu=$1 bin=${FERRY_RUN_BIN:-$FERRY_BIN}
	shift
	if [[ -z $bin || ! -x $bin ]]; then
		SYS_ERROR=${FERRY_UNAVAILABLE:-"ferry binary not found"}
		return 1
	fi
	local log="$BENCH_LOGS/ferry${FERRY_RUN_TAG:-}$*-$mtu.log"
	log=${log// /}
	launch_prefix
	"${LAUNCH[@]}" "$bin" run -m "$mtu" "$@" -- sleep 3600 >"$log" 2>&1 &
	FERRY_PID=$!
	bench_track_pid "$FERRY_PID"
	local i holder=""
	for ((i = 0; i < 50; i++)); do
		holder=$(pgrep -P "$FERRY_PID" -x sleep | head -n1)
		[[ -n $holder ]] && break
		kill -0 "$FERRY_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [[ -z $holder ]]; then
		SYS_ERROR="ferry run did not start the guest: $(tr '\n' ' ' <"$log" | tail -c 200)"
		return 1
	fi
	# The guest is configured before CMD is forked; give the addresses a moment anyway.
	for ((i = 0; i < 20; i++)); do
		nsenter --net="/proc/$holder/ns/net" ip -4 addr 2>/dev/null | grep -q 198.18.0.2 && break
		sleep 0.1
	done
	# ferry goes on without its fast path when BPF does not load: say so.
	if [[ " $* " != *" --no-fastpath "* ]]; then
		if [[ ! -d /sys/fs/bpf/ferry/run-$FERRY_PID ]] || grep -q "no BPF fast path" "$log"; then
			local why
			why=$(grep -m1 -o 'no BPF fast path.*' "$log" | cut -c1-160)
			bench_note "ferry, MTU $mtu: the BPF fast path was not active (${why:-no pins under /sys/fs/bpf/ferry/run-$FERRY_PID}): these rows are ferry's userspace path"
		fi
	fi
	SYS_GUEST_NS=/proc/$holder/ns/net
	SYS_HOST_NS=""
	SYS_SERVER_BIND=127.0.0.1
	SYS_SERVER_ADDR=198.18.0.1
	# Since the sandbox (17a85ea) the root process only supervises and a
	# child, ferry-translator, translates: its CPU is what CPU s/GB means and
	# what pinning must move (the supervisor's own is a counters write a
	# second). The child's comm is cut to 15 characters.
	local translator=""
	for ((i = 0; i < 20; i++)); do
		translator=$(pgrep -P "$FERRY_PID" -x ferry-translate | head -n1)
		[[ -n $translator ]] && break
		sleep 0.1
	done
	SYS_TRANSLATOR_PID=${translator:-$FERRY_PID}
	return 0
}

# Stops ferry (it forwards TERM to the sleep and exits with it).
ferry_stop() {
	bench_stop_pid "$FERRY_PID"
	FERRY_PID=""
}

# ferry with its translator unsandboxed (--no-sandbox: root, every
# capability, no seccomp filter, the host's filesystem): paired with `ferry`
# to measure what the sandbox costs.
ferry_nosandbox_start() { ferry_start "$1" --no-sandbox; }

# Stops ferry --no-sandbox.
ferry_nosandbox_stop() { ferry_stop; }

# The --baseline binary, started the same way as ferry: paired with `ferry`
# to measure a change (before/after).
ferry_baseline_start() { FERRY_RUN_BIN=$FERRY_BASELINE_BIN FERRY_RUN_TAG=-baseline ferry_start "$1"; }

# Stops the baseline ferry.
ferry_baseline_stop() { ferry_stop; }

# ferry with the BPF fast path switched off.
ferry_nofastpath_start() { ferry_start "$1" --no-fastpath; }

# Stops ferry --no-fastpath.
ferry_nofastpath_stop() { ferry_stop; }

# Echoes "pure absorbed": the BPF counters guest_pure_acks and acks_absorbed
# of the running `ferry run` (`ferry stats -j run-PID`); nothing without BPF.
ferry_bpf_acks() {
	[[ -n $FERRY_PID ]] || return 0
	timeout 5 "${FERRY_RUN_BIN:-$FERRY_BIN}" stats -j "run-$FERRY_PID" 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    sys.exit()
for i in d.get("instances", []):
    c = i.get("counters") or {}
    if "guest_pure_acks" in c:
        print(c["guest_pure_acks"], c.get("acks_absorbed", 0))
'
}

# The same for ferry --no-fastpath (no BPF: nothing).
ferry_nofastpath_bpf_acks() { ferry_bpf_acks; }

# The same for the baseline (with its own binary's stats).
ferry_baseline_bpf_acks() { FERRY_RUN_BIN=$FERRY_BASELINE_BIN ferry_bpf_acks; }

# The same for ferry --no-sandbox.
ferry_nosandbox_bpf_acks() { ferry_bpf_acks; }
