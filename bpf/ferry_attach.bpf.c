/* SPDX-License-Identifier: MIT */
/*
 * ferry_attach.bpf.c - joins an existing device (a veth's host end, a tap) to
 * a private tap whose fd ferry holds, so the unchanged translator serves it.
 *
 * Theory of operation
 * -------------------
 *   guest -> DEV (receive) --[dev ingress: count, redirect]--> ferry's tap
 *          (tap xmit) -> tap fd -> translator
 *   translator -> tap fd -> tap (receive) --[tap ingress: redirect]--> DEV
 *          (xmit) -> guest
 * Two hooks can take the guest's frames on DEV:
 *   ferry_attach_dev_tc   tcx ingress on DEV, bpf_redirect(tap, egress);
 *   ferry_attach_dev_xdp  XDP on DEV, bpf_redirect_map(tx_port) into the tap
 *                         (tun implements ndo_xdp_xmit).
 * Either way every guest frame is parsed with the shared core (parse.h,
 * whose ferry_parse_skb/ferry_parse_xdp are the one pull strategy) and
 * counted in `stats` (bpf/stats.h, as the classifier counts) before it is
 * redirected; nothing is ever passed up DEV's stack, so a guest frame
 * never reaches the host's IP layer: it leaves through the tap or, when the
 * redirect fails (tap gone because the service died), it is dropped.
 *
 * Fast path: ferry_attach_dev_tc runs the classifier's pure-ACK core
 * (fastpath.h: conn_hash, conn_state, events, the same decision
 * as `ferry run`) before the redirect; an absorbed ACK is dropped
 * (TC_ACT_SHOT, acks_absorbed) and never reaches the tap. The veth keeps
 * the guest's CHECKSUM_PARTIAL skb state up to DEV's ingress, so the core's
 * checksum rule holds here as on the tap. ferry_attach_dev_xdp runs the
 * same core with every TCP checksum verified (ferry_fastpath_pure_ack_xdp):
 * native XDP has lost CHECKSUM_PARTIAL, so a guest's unfinished checksum
 * fails verification and is redirected like any wrong one; a guest that
 * sends full checksums (what --hook xdp needs anyway) has its pure ACKs
 * absorbed (XDP_DROP). Counting invariant, as for the classifier:
 * guest_frames = passed_to_userspace + acks_absorbed.
 *
 * Measured on this machine (kernel 6.18, 2 vCPU, iperf3 guest -> 127.0.0.1
 * in the host namespace through ferry attach, 1 stream, Gbit/s), with the
 * offloading private tap: MTU 65520: tc 3.9, xdp (generic) 3.3-4.3;
 * MTU 1500: tc 3.5, xdp (driver) 0 with the guest's default checksum
 * offload (native XDP loses CHECKSUM_PARTIAL) and 0.8 without it. tcx
 * ingress is the default (full table in userspace/attach/datapath.h).
 *
 * The frames ferry writes into the tap arrive as receive on the tap:
 * ferry_attach_tap_tc (tcx ingress on the tap) sends them out of DEV.
 *
 * Configuration is read-only data set before load: the two ifindexes.
 * The `conns` view that the service pins beside these maps is no program's:
 * it comes from the map-only object bpf/ferry_conns.bpf.c.
 */
#include "fastpath.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile __u32 tap_ifindex = 0;
const volatile __u32 dev_ifindex = 0;

/* Direction counters of the attachment itself (per CPU); the struct is the
 * contract's (include/ferry/contract.h, FERRY_ATTACH_STATS_FIELDS). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_attach_stats);
} attach_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tx_port SEC(".maps");

/* Counts `len` bytes of a guest frame that goes on to the tap. */
static __always_inline void count_bytes(__u32 len)
{
	__u32 zero = 0;
	struct ferry_attach_stats *as = bpf_map_lookup_elem(&attach_stats, &zero);

	if (as)
		as->from_guest_bytes += len;
}

/* Counts a redirect the kernel refused. */
static __always_inline void count_failed(void)
{
	__u32 zero = 0;
	struct ferry_attach_stats *as = bpf_map_lookup_elem(&attach_stats, &zero);

	if (as)
		as->redirect_failed++;
}

SEC("tc")
int ferry_attach_dev_tc(struct __sk_buff *skb)
{
	struct ferry_stats *st = ferry_stats_get();
	struct ferry_pkt pkt;
	__u32 len = skb->len;
	long rc;

	ferry_parse_skb(skb, &pkt); /* a frame not parsed is still redirected */
	if (st) {
		ferry_count_frame(st, &pkt);
		/* the fast path, before the redirect: an absorbed ACK is dropped
		 * here and never reaches the tap */
		if (ferry_fastpath_pure_ack(skb, &pkt, st))
			return TC_ACT_SHOT;
		st->passed_to_userspace++;
	}
	count_bytes(len);
	rc = bpf_redirect(tap_ifindex, 0);
	if (rc != TC_ACT_REDIRECT) {
		count_failed();
		return TC_ACT_SHOT; /* never up DEV's stack */
	}
	return (int)rc;
}

/* The fast path with verified checksums, then the redirect into the tap. */
SEC("xdp")
int ferry_attach_dev_xdp(struct xdp_md *ctx)
{
	struct ferry_stats *st = ferry_stats_get();
	struct ferry_pkt pkt;
	__u32 len = ferry_parse_xdp(ctx, &pkt);
	long rc;

	if (st) {
		ferry_count_frame(st, &pkt);
		/* the fast path with every checksum verified: a guest's partial
		 * checksum (offloads on) fails and passes to userspace */
		if (ferry_fastpath_pure_ack_xdp(ctx, &pkt, st))
			return XDP_DROP;
		st->passed_to_userspace++;
	}
	count_bytes(len);
	rc = bpf_redirect_map(&tx_port, 0, XDP_DROP);
	if (rc != XDP_REDIRECT)
		count_failed();
	return (int)rc;
}

SEC("tc")
int ferry_attach_tap_tc(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct ferry_attach_stats *as = bpf_map_lookup_elem(&attach_stats, &zero);
	long rc;

	if (as) {
		as->to_guest_frames++;
		as->to_guest_bytes += skb->len;
	}
	rc = bpf_redirect(dev_ifindex, 0);
	if (rc != TC_ACT_REDIRECT) {
		count_failed();
		return TC_ACT_SHOT;
	}
	return (int)rc;
}
