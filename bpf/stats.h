/* SPDX-License-Identifier: MIT */
/*
 * stats.h - counting a guest frame in the `stats` map, for every hook.
 *
 * Theory of operation
 * -------------------
 * Each program that sees the guest's frames takes this CPU's counters once
 * per frame (ferry_stats_get), counts the frame and its class
 * (ferry_count_frame: the class -> counter mapping is generated from the
 * contract's FERRY_FRAME_CLASSES list, so no hook keeps its own switch) and
 * its pure ACK (ferry_count_pure_ack), then the frame's fate
 * (passed_to_userspace or acks_absorbed: the caller's, as it decides).
 * Invariants, per CPU and so in the sum:
 *   guest_frames = sum of the per-class counters
 *   guest_frames = passed_to_userspace + acks_absorbed
 *   guest_pure_acks <= ipv4_tcp + ipv6_tcp
 */
#ifndef FERRY_BPF_STATS_H
#define FERRY_BPF_STATS_H

#include "maps.h"
#include "parse.h"

/* Returns this CPU's counters (never NULL in practice: key 0 of a 1-array). */
static __always_inline struct ferry_stats *ferry_stats_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

/* Counts one guest frame and its class (its fate is the caller's to count). */
static __always_inline void ferry_count_frame(struct ferry_stats *st, const struct ferry_pkt *pkt)
{
	st->guest_frames++;
	switch (pkt->class) {
#define FERRY_COUNT_CLASS(cls, field)                                          \
	case FERRY_CLASS_##cls:                                                \
		st->field++;                                                   \
		break;
		FERRY_FRAME_CLASSES(FERRY_COUNT_CLASS)
#undef FERRY_COUNT_CLASS
	default:
		st->other++; /* FERRY_CLASS_NONE: never set by the parser */
		break;
	}
}

/* Counts the frame's pure ACK, if it is one; returns whether it was. */
static __always_inline int ferry_count_pure_ack(struct ferry_stats *st, const struct ferry_pkt *pkt)
{
	if (!pkt->pure_ack || pkt->class == FERRY_CLASS_MALFORMED)
		return 0;
	st->guest_pure_acks++;
	return 1;
}

#endif /* FERRY_BPF_STATS_H */
