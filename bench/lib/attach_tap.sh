# shellcheck shell=bash disable=SC2034  # SYS_* are read by bench/run
# bench/lib/attach_tap.sh: the `ferry attach` tap-guest scenario (ACK-heavy
# rows ack_attach_tap and ack_attach_tap_offloads_off), for ferry and
# ferry-nofastpath.
#
# Theory of operation: a VM on a tap, without a VM. Namespace H (ours) holds
# tap fta<pid>, the device `ferry attach` serves, and the servers on
# 127.0.0.1; namespace G (ours) is the guest, with its own tap eth0 at MTU
# 1500 (198.18.0.2/24 via 198.18.0.1). bench/tools/tap_relay holds both
# taps' fds and copies frames between them with their virtio_net_hdr, as
# QEMU's tap backend does: the guest's ACKs reach ferry CHECKSUM_PARTIAL,
# its data as GSO frames, ferry's super-segments reach the guest whole.
# Host->guest bulk twice, each with a fresh attachment: with the offloads on
# (QEMU's default virtio-net), then off, as a VM without virtio offloads:
# the relay's taps announce none (TUNSETOFFLOAD 0), so the kernel cuts
# ferry's super-segments to MTU size before the relay reads them, and the
# guest (also `ethtool -K eth0 tso off gso off gro off tx off`) ACKs every
# second segment. `ferry attach` runs inside
# H through nsenter (bpffs stays visible), is stopped with `ferry detach`,
# and the relay's exit removes both taps; the namespaces are registered for
# the exit trap like every other.

ATTACH_H="" ATTACH_G="" ATTACH_DEV="" ATTACH_RELAY="" ATTACH_BIN=""

# Echoes "pure absorbed" from `ferry status DEV -j` (the attachment's BPF counters).
attach_bpf_acks() {
	nsenter --net="/run/netns/$ATTACH_H" -- timeout 5 "$ATTACH_BIN" status "$ATTACH_DEV" -j 2>/dev/null |
		python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except Exception:
    sys.exit()
for a in d.get("attachments", []):
    c = a.get("counters") or {}
    if "guest_pure_acks" in c:
        print(c["guest_pure_acks"], c.get("acks_absorbed", 0))
'
}

# Starts the relay (offloads $2: on|off) and `ferry attach` (with
# --no-fastpath for $1 = ferry-nofastpath, the --baseline binary for
# ferry-baseline); sets the SYS_* variables.
# 1 with SYS_ERROR on failure.
attach_tap_start() {
	local sys=$1 offloads=$2 opts=() i
	[[ $sys == ferry-nofastpath ]] && opts=(--no-fastpath)
	ATTACH_BIN=$(ferry_bin_of "$sys")
	[[ -n $ATTACH_BIN && -x $ATTACH_BIN ]] || { SYS_ERROR=${FERRY_UNAVAILABLE:-"ferry binary not found"}; return 1; }
	[[ -n $TAP_RELAY ]] || { SYS_ERROR="tap_relay did not compile"; return 1; }
	bench_netns_add attach-h && ATTACH_H=$BENCH_NETNS_NAME || { SYS_ERROR="cannot create namespace"; return 1; }
	bench_netns_add attach-g && ATTACH_G=$BENCH_NETNS_NAME || { SYS_ERROR="cannot create namespace"; return 1; }
	ATTACH_DEV=fta$$
	ATTACH_DEV=${ATTACH_DEV:0:15}
	local log="$BENCH_LOGS/tap_relay-$sys-$offloads-$REP.log"
	"$TAP_RELAY" --ns-a "/run/netns/$ATTACH_H" --tap-a "$ATTACH_DEV" --ns-b "/run/netns/$ATTACH_G" --tap-b eth0 \
		--offloads "$offloads" --seconds 600 >"$log" 2>&1 &
	ATTACH_RELAY=$!
	bench_track_pid "$ATTACH_RELAY"
	for ((i = 0; i < 50; i++)); do
		grep -q '^ready' "$log" 2>/dev/null && break
		kill -0 "$ATTACH_RELAY" 2>/dev/null || break
		sleep 0.1
	done
	grep -q '^ready' "$log" || { SYS_ERROR="tap_relay did not start: $(tail -n1 "$log")"; return 1; }
	# The host's own stack stays off the guest's link, as for a VM's tap.
	nsenter --net="/run/netns/$ATTACH_H" -- sysctl -q -w "net.ipv6.conf.$ATTACH_DEV.disable_ipv6=1"
	# A queue as deep as a VM's ring: with offloads off each 64 KiB
	# super-segment ferry sends is cut into ~45 frames on their way to the
	# relay, and the default 1000-frame queue overflows (as QEMU's TX ring
	# does without offloads): the scenario measures bulk, not loss recovery.
	ip -n "$ATTACH_H" link set "$ATTACH_DEV" mtu 1500 txqueuelen 10000 up
	ip -n "$ATTACH_G" link set eth0 mtu 1500 up
	ip -n "$ATTACH_G" addr add 198.18.0.2/24 dev eth0
	ip -n "$ATTACH_G" route add default via 198.18.0.1
	if [[ $offloads == off ]] && ! nsenter --net="/run/netns/$ATTACH_G" -- ethtool -K eth0 tso off gso off gro off tx off \
		>>"$BENCH_LOGS/ethtool.log" 2>&1; then
		SYS_ERROR="ethtool -K eth0 failed in the guest"
		return 1
	fi
	if ! nsenter --net="/run/netns/$ATTACH_H" -- timeout 30 "$ATTACH_BIN" attach "$ATTACH_DEV" -q "${opts[@]}" \
		>"$BENCH_LOGS/attach-$sys-$offloads-$REP.log" 2>&1; then
		SYS_ERROR="ferry attach failed: $(tail -n1 "$BENCH_LOGS/attach-$sys-$offloads-$REP.log" | cut -c1-150)"
		return 1
	fi
	local svc translator=""
	svc=$(cat "/run/ferry/$ATTACH_DEV/pid" 2>/dev/null)
	for ((i = 0; i < 20; i++)); do
		[[ -n $svc ]] && translator=$(pgrep -P "$svc" -x ferry-translate | head -n1)
		[[ -n $translator ]] && break
		sleep 0.1
	done
	SYS_GUEST_NS=/run/netns/$ATTACH_G
	SYS_HOST_NS=/run/netns/$ATTACH_H
	SYS_SERVER_BIND=127.0.0.1
	SYS_SERVER_ADDR=198.18.0.1
	SYS_TRANSLATOR_PID=${translator:-$svc}
	SYS_BPF_ACKS=attach_bpf_acks
	return 0
}

# Detaches ferry, stops the relay (its taps go with it), removes the namespaces.
attach_tap_stop() {
	[[ -n $ATTACH_H && -n $ATTACH_DEV ]] &&
		nsenter --net="/run/netns/$ATTACH_H" -- timeout 20 "$ATTACH_BIN" detach "$ATTACH_DEV" -q >/dev/null 2>&1
	[[ -n $ATTACH_RELAY ]] && bench_stop_pid "$ATTACH_RELAY"
	[[ -n $ATTACH_G ]] && bench_netns_del "$ATTACH_G"
	[[ -n $ATTACH_H ]] && bench_netns_del "$ATTACH_H"
	ATTACH_H="" ATTACH_G="" ATTACH_DEV="" ATTACH_RELAY="" ATTACH_BIN="" SYS_BPF_ACKS=""
}

# The scenario for system $1 (ferry, ferry-baseline or ferry-nofastpath), one repetition:
# offloads on, then off, each with its own attachment.
run_attach_tap() {
	local sys=$1 m scen offloads
	for offloads in on off; do
		scen=ack_attach_tap
		[[ $offloads == off ]] && scen=ack_attach_tap_offloads_off
		SYS_ERROR="" SYS_HAS_TRANSLATOR=1 SYS_TRANSLATOR_PID=""
		if over_budget || ! attach_tap_start "$sys" "$offloads"; then
			local why=${SYS_ERROR:-"skipped: the run's ${BUDGET_S} s budget was spent"}
			log "$sys, attach tap, offloads $offloads: n/a ($why)"
			for m in gbps machine_cpu_s_per_gb guest_acks_per_gb cpu_s_per_gb; do
				record_na "$sys" "${scen}_$m" 1500 false "$why"
			done
			attach_tap_stop
			continue
		fi
		log "$sys, attach tap, offloads $offloads, repetition $((REP + 1)) of $REPS (load $(cut -d' ' -f1 /proc/loadavg))"
		cut -d' ' -f1 /proc/loadavg >>"$OUT_DIR/load.txt"
		measure_tput "$sys" 1500 down "$scen"
		attach_tap_stop
	done
}
