/* SPDX-License-Identifier: MIT */
/*
 * tcp_loss: a TC program that drops TCP frames at random, for loss tests
 * (this kernel has no netem). Drops when bpf_get_prandom_u32() % 1000000 <
 * LOSS_PPM; only TCP over IPv4/IPv6 is touched, so ARP and NDP keep working.
 * The verdict is TC_ACT_STOLEN, not TC_ACT_SHOT: on egress SHOT makes
 * dev_queue_xmit() return NET_XMIT_DROP, so the sending TCP learns of the
 * drop at once and simply sends again (no loss as the peer sees it); STOLEN
 * reports success and the frame is silently gone, like a lost packet.
 * Frames it keeps get TC_ACT_UNSPEC, so the next filter (ferry's own
 * classifier on the tap's egress) still runs: add this one with a lower
 * pref (runs first).
 *
 * A frame here is an skb, and most data moves in large ones: the guest's
 * TCP builds GSO skbs whatever `ethtool -K gso off` says (the device then
 * segments them after TC egress), and ferry writes super-segments to a tap
 * with a vnet header. 16 MiB was some 170-280 data frames per direction
 * at MTU 65520 and 330-800 toward the guest at MTU 1500 (measured), so 1 %
 * random loss dropped no data in a direction a few times in a hundred runs.
 * So loss is made certain: when LOSS_SURE_BY data frames (TCP with
 * payload) have passed with none of them dropped, the next one is dropped.
 *
 * Counters, per loaded instance (tc loads the object once per hook, so one
 * set per direction; tests/tools/tcp_loss_counts.py reads them): TCP
 * frames, those dropped, data frames, data frames dropped, and how many
 * of those the LOSS_SURE_BY rule dropped (random loss had dropped none).
 *
 * Build: clang-19 -O2 -g -target bpf -I/usr/include/$(gcc -dumpmachine)
 *        -DLOSS_PPM=10000 -c tcp_loss.bpf.c
 * Attach (inside the guest namespace, both directions):
 *   tc qdisc add dev eth0 clsact     (ferry run may have made it already)
 *   tc filter add dev eth0 ingress pref 1 bpf da obj tcp_loss.o sec tc
 *   tc filter add dev eth0 egress pref 1 bpf da obj tcp_loss.o sec tc
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef LOSS_PPM
#define LOSS_PPM 10000
#endif
#ifndef LOSS_SURE_BY
#define LOSS_SURE_BY 20
#endif

/* Ethernet, IPv4 with options, TCP with options. */
#define HEADERS_MAX (14 + 60 + 60)

__u64 tcp_frames, dropped, data_frames, data_dropped, sure_dropped;

/* The TCP payload length of the frame, or -1 when it is not TCP. */
static __always_inline int tcp_payload(struct __sk_buff *skb)
{
	void *data, *end;
	struct ethhdr *eth;
	struct tcphdr *tcp;
	int l4_len;

	/* The headers may lie outside the linear part (a tap's large frames
	 * are paged): make them readable, or the frame is not seen at all. */
	bpf_skb_pull_data(skb, skb->len < HEADERS_MAX ? skb->len : HEADERS_MAX);
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return -1;
		tcp = (void *)ip + ip->ihl * 4;
		/* a GSO frame over 64 KiB (the guest's at MTU 65520) says 0 */
		l4_len = (ip->tot_len ? bpf_ntohs(ip->tot_len) : skb->len - ETH_HLEN) - ip->ihl * 4;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return -1;
		tcp = (void *)(ip6 + 1);
		l4_len = ip6->payload_len ? bpf_ntohs(ip6->payload_len) : skb->len - ETH_HLEN - sizeof(*ip6);
	} else {
		return -1;
	}
	if ((void *)(tcp + 1) > end)
		return 0; /* TCP, its header beyond the linear part: count as no payload */
	return l4_len > tcp->doff * 4 ? l4_len - tcp->doff * 4 : 0;
}

SEC("tc")
int tcp_loss(struct __sk_buff *skb)
{
	const int payload = tcp_payload(skb);
	int drop;

	if (payload < 0)
		return TC_ACT_UNSPEC;
	__sync_fetch_and_add(&tcp_frames, 1);
	if (payload > 0)
		__sync_fetch_and_add(&data_frames, 1);
	drop = bpf_get_prandom_u32() % 1000000 < LOSS_PPM;
	if (!drop && payload > 0 && data_dropped == 0 && data_frames >= LOSS_SURE_BY) {
		drop = 1;
		__sync_fetch_and_add(&sure_dropped, 1);
	}
	if (!drop)
		return TC_ACT_UNSPEC;
	__sync_fetch_and_add(&dropped, 1);
	if (payload > 0)
		__sync_fetch_and_add(&data_dropped, 1);
	return TC_ACT_STOLEN;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
