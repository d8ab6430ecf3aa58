/* SPDX-License-Identifier: MIT */
/*
 * tcp_drop_first_data.bpf.c: a TC program for tests that drops the first
 * TCP segment carrying payload (IPv4) that passes it, once, silently
 * (TC_ACT_STOLEN: the sender's TCP is not told and must retransmit after
 * its RTO), and lets everything else through.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

__u32 dropped = 0;

SEC("tc")
int drop_first_data(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_TCP)
		return TC_ACT_UNSPEC;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > end)
		return TC_ACT_UNSPEC;
	if (bpf_ntohs(ip->tot_len) <= ip->ihl * 4 + tcp->doff * 4)
		return TC_ACT_UNSPEC; /* no payload */
	if (dropped == 0) { /* one flow at a time in the tests: no race to mind */
		dropped = 1;
		return TC_ACT_STOLEN;
	}
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
