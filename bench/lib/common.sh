# shellcheck shell=bash disable=SC2153  # BENCH_NOTES is set by bench/run
# bench/lib/common.sh: bookkeeping shared by bench/run and the system plug-ins.
#
# Theory of operation: everything the benchmark creates is registered here the
# moment it exists (background PIDs, network namespaces, the one global sysctl
# it may change), and bench_cleanup, run from the EXIT/INT/TERM trap, undoes
# all of it in reverse: kill our PIDs (TERM, then KILL), delete our
# namespaces, write back net.core.wmem_max. Nothing is found by name or
# pattern: only what is in these lists is touched.
#
# Invariants: BENCH_PIDS holds only PIDs this shell started with `&`, each
# as PID:STARTTIME (field 22 of /proc/PID/stat), and a PID is signalled only
# while its start time still matches, so a PID that exited and was reused by
# someone else's process is never touched;
# BENCH_NETNS only namespaces created by bench_netns_add (all named
# ferrybench-<pid>-<tag>); BENCH_WMEM_ORIG is read before the first change.

BENCH_PIDS=()
BENCH_NETNS=()
BENCH_WMEM_ORIG=""
BENCH_TAG="ferrybench-$$"

# Prints a timestamped progress line on stderr, and appends it to
# $BENCH_RUN_LOG when bench/run set one (the output directory's run.log).
log() {
	local line
	line=$(printf '[%s] %s' "$(date +%H:%M:%S)" "$*")
	printf '%s\n' "$line" >&2
	[[ -z ${BENCH_RUN_LOG:-} ]] || printf '%s\n' "$line" >>"$BENCH_RUN_LOG"
}

# Echoes the start time (clock ticks since boot) of PID, or nothing.
proc_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	awk '{ print $20 }' <<<"${stat##*) }"
}

# Adds a line to the report's notes (once per distinct text).
bench_note() {
	grep -qxF -- "$1" "$BENCH_NOTES" 2>/dev/null || printf '%s\n' "$1" >>"$BENCH_NOTES"
}

# Registers a PID we started in the background.
bench_track_pid() { BENCH_PIDS+=("$1:$(proc_starttime "$1")"); }

# Forgets a PID (it was reaped).
bench_untrack_pid() {
	local i
	for i in "${!BENCH_PIDS[@]}"; do
		[[ ${BENCH_PIDS[$i]%%:*} == "$1" ]] && unset 'BENCH_PIDS[i]'
	done
	return 0
}

# True if tracked entry PID:STARTTIME still names the process we started.
bench_pid_is_ours() {
	local pid=${1%%:*} start=${1#*:}
	[[ -n $pid && -n $start && $(proc_starttime "$pid") == "$start" ]]
}

# Stops one of our PIDs: TERM, up to 3 s grace, then KILL; reaps it.
bench_stop_pid() {
	local pid=$1 i entry=""
	[[ -n $pid ]] || return 0
	for i in "${BENCH_PIDS[@]}"; do
		[[ ${i%%:*} == "$pid" ]] && entry=$i
	done
	if [[ -n $entry ]] && bench_pid_is_ours "$entry"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 30; i++)); do
			bench_pid_is_ours "$entry" || break
			sleep 0.1
		done
		bench_pid_is_ours "$entry" && kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	bench_untrack_pid "$pid"
	return 0
}

# Creates a network namespace named ferrybench-<pid>-<tag> and registers it;
# its name is left in BENCH_NETNS_NAME (not echoed: a $(...) subshell would
# register it in a copy of BENCH_NETNS that the trap never sees).
bench_netns_add() {
	BENCH_NETNS_NAME="$BENCH_TAG-$1"
	ip netns add "$BENCH_NETNS_NAME" || return 1
	BENCH_NETNS+=("$BENCH_NETNS_NAME")
	ip -n "$BENCH_NETNS_NAME" link set lo up
}

# Deletes one of our namespaces (and forgets it).
bench_netns_del() {
	local name=$1 i
	ip netns del "$name" 2>/dev/null
	for i in "${!BENCH_NETNS[@]}"; do
		[[ ${BENCH_NETNS[$i]} == "$name" ]] && unset 'BENCH_NETNS[i]'
	done
	return 0
}

# Raises net.core.wmem_max to $1 bytes, remembering the original value once.
bench_wmem_set() {
	[[ -n $BENCH_WMEM_ORIG ]] || BENCH_WMEM_ORIG=$(sysctl -n net.core.wmem_max)
	sysctl -q -w net.core.wmem_max="$1"
}

# Writes net.core.wmem_max back if we changed it.
bench_wmem_restore() {
	[[ -n $BENCH_WMEM_ORIG ]] || return 0
	if [[ $(sysctl -n net.core.wmem_max) != "$BENCH_WMEM_ORIG" ]]; then
		sysctl -q -w net.core.wmem_max="$BENCH_WMEM_ORIG"
	fi
	return 0
}

# The trap: undo everything we made, in reverse order of creation.
bench_cleanup() {
	local i
	trap - EXIT INT TERM
	local pids=("${BENCH_PIDS[@]}")
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		bench_stop_pid "${pids[$i]%%:*}"
	done
	for i in "${BENCH_NETNS[@]}"; do
		ip netns del "$i" 2>/dev/null
	done
	bench_wmem_restore
}

# Runs a command in network namespace path $1 ("" = this namespace).
in_ns() {
	local ns=$1
	shift
	if [[ -z $ns ]]; then
		"$@"
	else
		nsenter --net="$ns" -- "$@"
	fi
}

# Sets LAUNCH to the command prefix that starts a system's host side in
# SYS_LAUNCH_NS (the remote-peer row), or to nothing. A prefix array, not a
# function like in_ns: `func &` would fork a subshell, and $! would be the
# subshell instead of the process (nsenter execs, so $! stays the process).
launch_prefix() {
	LAUNCH=()
	[[ -n ${SYS_LAUNCH_NS:-} ]] && LAUNCH=(nsenter "--net=/run/netns/$SYS_LAUNCH_NS" --)
	return 0
}

# Echoes utime+stime of PID in seconds (all threads), or nothing if gone.
proc_cpu_s() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
	awk -v hz="$(getconf CLK_TCK)" '{ print ($12 + $13) / hz }' <<<"${stat##*) }"
}

# Echoes a TCP port no socket of this namespace uses, from 20000-32767: below
# the ephemeral range (32768-60999), so that the tens of thousands of
# connections the translators open cannot take it between runs.
free_port() {
	local p i
	for ((i = 0; i < 50; i++)); do
		p=$((20000 + RANDOM % 12768))
		if [[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Waits up to 3 s until something listens on TCP port $2 in namespace $1.
wait_listen() {
	local ns=$1 port=$2 i
	for ((i = 0; i < 60; i++)); do
		[[ -n $(in_ns "$ns" ss -Hltn "sport = :$port" 2>/dev/null) ]] && return 0
		sleep 0.05
	done
	return 1
}
