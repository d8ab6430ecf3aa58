/* SPDX-License-Identifier: MIT */
/*
 * ferry_classify.bpf.c - the classifier on the guest's transmit path.
 *
 * Theory of operation
 * -------------------
 * ferry_tc_egress runs at clsact egress of the tap that `ferry run` holds,
 * i.e. on every frame the guest sends, before it reaches the tap fd. It
 * parses the frame with the shared core (parse.h), counts it in the per-CPU
 * `stats` map (stats.h, with its invariants; the maps are bpf/maps.h's),
 * and returns TC_ACT_OK so the frame goes on to the control plane.
 *
 * Non-linear skbs: ferry_parse_skb() (parse.h), the pull strategy of every
 * hook, makes headers linear only when they are not. A frame it still
 * cannot parse is counted as OTHER and passed: userspace sees it whole.
 *
 * Fast path: the shared core (fastpath.h, also used by ferry_attach.bpf.c)
 * absorbs a validated pure ACK of an eligible flow: it updates the flow's
 * conn_state slot, posts a ring-buffer event only when userspace must act,
 * and the frame is consumed here (TC_ACT_STOLEN: the sender sees success;
 * counted as acks_absorbed).
 * A frame from the guest's own stack usually reaches TC egress as
 * CHECKSUM_PARTIAL, which the core accepts; any other checksum it verifies.
 */
#include "fastpath.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("tc")
int ferry_tc_egress(struct __sk_buff *skb)
{
	struct ferry_stats *st = ferry_stats_get();
	struct ferry_pkt pkt;

	ferry_parse_skb(skb, &pkt);
	if (!st)
		return TC_ACT_OK;
	ferry_count_frame(st, &pkt);
	/* STOLEN, not SHOT: SHOT makes dev_queue_xmit() return NET_XMIT_DROP to
	 * the guest's stack, and its TCP takes every absorbed ACK for local
	 * congestion (tcp_enter_cwr); a packet socket sees ENOBUFS */
	if (ferry_fastpath_pure_ack(skb, &pkt, st))
		return TC_ACT_STOLEN;
	st->passed_to_userspace++;
	return TC_ACT_OK;
}
