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
 * Non-linear skbs: the kernel may leave headers beyond the linear area
 * (rare; TCP payload in page fragments is common and harmless). The parser
 * reports that instead of calling it malformed, and we pull the first
 * FERRY_PULL_LEN bytes in and parse once more. A second miss is counted as
 * OTHER and passed: userspace sees the whole frame anyway.
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

/* Bytes pulled into the linear area when headers lie beyond it. */
#define FERRY_PULL_LEN 600

/* Parses the skb, pulling headers into the linear area once if needed. */
static __always_inline void ferry_parse_skb(struct __sk_buff *skb, struct ferry_pkt *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 len = skb->len;

	if (ferry_parse(pkt, data, data_end, len) == FERRY_PARSE_OK)
		return;
	bpf_skb_pull_data(skb, len < FERRY_PULL_LEN ? len : FERRY_PULL_LEN);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	if (ferry_parse(pkt, data, data_end, len) == FERRY_PARSE_OK)
		return;
	pkt->class = FERRY_CLASS_OTHER;
}

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
