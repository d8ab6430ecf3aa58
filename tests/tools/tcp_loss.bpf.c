/* SPDX-License-Identifier: MIT */
/*
 * tcp_loss: a TC program that drops TCP frames at random, for loss tests
 * (this kernel has no netem). Drops when bpf_get_prandom_u32() % 1000000 <
 * LOSS_PPM; only TCP over IPv4/IPv6 is touched, so ARP and NDP keep working.
 * The verdict is TC_ACT_STOLEN, not TC_ACT_SHOT: on egress SHOT makes
 * dev_queue_xmit() return NET_XMIT_DROP, so the sending TCP learns of the
 * drop at once and simply sends again (no loss as the peer sees it); STOLEN
 * reports success and the frame is silently gone, like a lost packet. Turn
 * off GSO on the device too, or one drop takes a whole 64 KiB burst.
 * Frames it keeps get TC_ACT_UNSPEC, so the next filter (ferry's own
 * classifier on the tap's egress) still runs: add this one with a lower
 * pref (runs first).
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
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef LOSS_PPM
#define LOSS_PPM 10000
#endif

SEC("tc")
int tcp_loss(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u8 proto;

	if ((void *)(eth + 1) > end)
		return TC_ACT_UNSPEC;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		__u8 *p = (__u8 *)(eth + 1) + 9;
		if ((void *)(p + 1) > end)
			return TC_ACT_UNSPEC;
		proto = *p;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		__u8 *p = (__u8 *)(eth + 1) + 6;
		if ((void *)(p + 1) > end)
			return TC_ACT_UNSPEC;
		proto = *p;
	} else {
		return TC_ACT_UNSPEC;
	}
	if (proto != IPPROTO_TCP)
		return TC_ACT_UNSPEC;
	if (bpf_get_prandom_u32() % 1000000 < LOSS_PPM)
		return TC_ACT_STOLEN;
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
