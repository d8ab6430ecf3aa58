/* SPDX-License-Identifier: MIT */
/*
 * fastpath.h - the pure-ACK fast path, one decision core for every hook.
 *
 * Theory of operation
 * -------------------
 * A program that sees the guest's frames before the control plane does
 * (ferry_classify.bpf.c: TC egress of `ferry run`'s tap; ferry_attach.bpf.c:
 * tcx ingress of `ferry attach`'s DEV) includes this header once. It uses
 * the fast-path maps (conn_hash, conn_state, events: bpf/maps.h;
 * layouts and writers in include/ferry/contract.h) and brings
 * ferry_fastpath_pure_ack(), which the program calls after parsing
 * (parse.h) and counting the frame's class (stats.h): it counts
 * guest_pure_acks and, when the frame was absorbed, acks_absorbed; the
 * caller then consumes the frame instead of passing it on (at TC egress
 * with TC_ACT_STOLEN, so the guest's stack is not told of a drop).
 * Both programs therefore make the same decision on the same frame, and
 * userspace (userspace/bpf/fastpath_maps.h) drives either copy of the maps the
 * same way.
 *
 * ferry_absorb_ack: a pure ACK of a flow that userspace put in conn_hash and
 * marked eligible in its conn_state slot, fully validated (see the contract
 * for the exact rule), updates the slot (ACK, scaled window, duplicate-ACK
 * count, TSval, per-slot counters; the arrival time only for the ACK of
 * the segment userspace times, rtt_seq: the clock costs a third of the
 * path). Userspace folds the slot at its own next wake-up; it is woken
 * through the `events` ring buffer only when it must act (the contract's
 * "Wake-ups"): the third duplicate ACK, everything acknowledged while its
 * FIN waits, or, once it armed a wake-up (stall_epoch bumped), the first
 * ACK that makes ferry_wake_due() true. Each fires once (per duplicate
 * run, per slot generation, per stall epoch), with a forced wake-up, so a
 * wake-up is never one per ACK. The first two are decided before the slot
 * changes: if the ring is full the ACK is not absorbed but passed, and
 * nothing in the slot changes (userspace then sees the ACK itself).
 * WINDOW_OPEN is decided after the slot's stores and a fully ordered
 * atomic, which pairs with userspace's fence after it arms (no lost
 * wake-up: see the contract). Sequence comparisons are modulo 2^32
 * (signed difference).
 *
 * Checksums: a frame from the guest's own stack usually arrives as
 * CHECKSUM_PARTIAL (at TC egress of a tap, and at ingress of a veth's host
 * end, which keeps the sender's skb state): its checksum is right by
 * construction. Any other frame's TCP checksum is verified here (inline
 * sums over the header and the pseudo-header); a wrong one passes to
 * userspace. XDP (ferry_fastpath_pure_ack_xdp) has no skb and so no
 * CHECKSUM_PARTIAL: it verifies every frame, and a guest's unfinished
 * checksum fails that and passes, exactly like a wrong one (userspace
 * judges it), so XDP absorbs the ACKs of guests that send full checksums,
 * the guests `--hook xdp` is for.
 */
#ifndef FERRY_BPF_FASTPATH_H
#define FERRY_BPF_FASTPATH_H

#include "stats.h"

#include <bpf/bpf_core_read.h>

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

#define FERRY_CHECKSUM_PARTIAL 3

/* Sequence-space comparison modulo 2^32: a before b. */
static __always_inline int ferry_seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

/* Folds a 64-bit one's-complement sum to 16 bits. */
static __always_inline __u32 ferry_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u32)sum;
}

/*
 * One's-complement sum (unfolded) of n 32-bit words at p, which the caller
 * has bounds-checked. Inline loads and adds: for the 20- to 52-byte spans a
 * pure ACK has, a bpf_csum_diff() call costs more than the sum itself.
 */
static __always_inline __u64 ferry_sum32(const void *p, const int n)
{
	const __u32 *w = p;
	__u64 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < n; i++)
		sum += w[i];
	return sum;
}

/* True when the kernel will complete the skb's checksum (CHECKSUM_PARTIAL). */
static __always_inline int ferry_skb_csum_partial(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

	return BPF_CORE_READ_BITFIELD(kskb, ip_summed) == FERRY_CHECKSUM_PARTIAL;
}

/*
 * True when the frame's TCP checksum is right. Only the header lengths the
 * fast path takes (20 and 32 bytes, no payload) are summed; anything else is
 * "not verified". The IPv4 header checksum is checked as well (userspace
 * checks it too).
 */
static __always_inline int ferry_tcp_csum_ok(struct ferry_pkt *pkt, void *data, void *data_end)
{
	__u32 l3 = pkt->l3_off, l4 = pkt->l4_off, hlen = pkt->tcp_hdr_len;
	__u8 *th, *ip;
	__u64 sum;

	if (l3 > FERRY_ETH_HLEN + FERRY_VLAN_HLEN || l4 > FERRY_MAX_L4_OFF)
		return 0;
	th = data + l4;
	ip = data + l3;
	if (hlen == 20) {
		if ((void *)(th + 20) > data_end)
			return 0;
		sum = ferry_sum32(th, 5);
	} else if (hlen == 32) {
		if ((void *)(th + 32) > data_end)
			return 0;
		sum = ferry_sum32(th, 8);
	} else {
		return 0;
	}
	if (pkt->family == FERRY_AF_INET) {
		if ((void *)(ip + 20) > data_end)
			return 0;
		/* the IPv4 header checksum too, as userspace checks it (a frame
		 * with options is left to userspace) */
		if (l4 != l3 + 20)
			return 0;
		if (ferry_fold(ferry_sum32(ip, 5)) != 0xffff)
			return 0;
		sum += ferry_sum32(ip + 12, 2); /* source and destination */
	} else {
		if ((void *)(ip + 40) > data_end)
			return 0;
		sum += ferry_sum32(ip + 8, 8);
	}
	/* zero, protocol and TCP length, as 16-bit words in network order */
	sum += bpf_htonl((FERRY_IPPROTO_TCP << 16) | hlen);
	return ferry_fold(sum) == 0xffff;
}

/* Posts one event with a forced wake-up; 0 when the ring is full. */
static __always_inline int ferry_post(struct ferry_stats *st, __u32 slot, __u32 gen, __u32 kind,
				      __u32 ack, __u32 window, __u32 dups)
{
	struct ferry_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev) {
		st->events_dropped++;
		return 0;
	}
	ev->slot = slot;
	ev->gen = gen;
	ev->kind = kind;
	ev->ack = ack;
	ev->window = window;
	ev->dup_acks = dups;
	ev->time_ns = bpf_ktime_get_ns();
	/* the control plane must act on every kind we post: wake it now */
	bpf_ringbuf_submit(ev, BPF_RB_FORCE_WAKEUP);
	st->events_posted++;
	return 1;
}

/*
 * The fast path: absorbs a validated pure ACK of an eligible flow. The
 * checksum is verified unless csum_trusted (the skb is CHECKSUM_PARTIAL).
 * Returns 1 when the frame was absorbed (caller drops it), 0 when it must
 * pass.
 */
static __always_inline int ferry_absorb_ack(struct ferry_pkt *pkt, struct ferry_stats *st,
					    void *data, void *data_end, int csum_trusted)
{
	struct ferry_conn_slot *s;
	__u32 *slotp, slot, flags, gen, snd_nxt, una, ack, win, dups, epoch, rtt_seq, kind = 0;
	int dup = 0;

	if (pkt->class != FERRY_CLASS_IPV4_TCP && pkt->class != FERRY_CLASS_IPV6_TCP)
		return 0;
	if (pkt->has_vlan)
		return 0; /* userspace drops tagged frames: so must we */
	if (pkt->family == FERRY_AF_INET6 && pkt->l4_off != pkt->l3_off + 40)
		return 0; /* extension headers: never on a stack's ACK; userspace judges them */
	if ((pkt->tcp_flags & ~(FERRY_TCP_ECE | FERRY_TCP_CWR)) != FERRY_TCP_ACK ||
	    pkt->payload_len != 0)
		return 0;
	slotp = bpf_map_lookup_elem(&conn_hash, &pkt->key);
	if (!slotp)
		return 0;
	slot = *slotp;
	s = bpf_map_lookup_elem(&conn_state, &slot);
	if (!s)
		return 0;
	flags = *(volatile __u32 *)&s->flags; /* published last by userspace */
	if (!(flags & FERRY_SLOT_ELIGIBLE))
		return 0;
	/* options: none, or only timestamps (+NOP/EOL) when negotiated */
	if (pkt->tcp_hdr_len == 20) {
		if (pkt->tcp_opts)
			return 0;
	} else if (pkt->tcp_hdr_len != 32 || pkt->tcp_opts != FERRY_OPT_TS ||
		   !(flags & FERRY_SLOT_TIMESTAMPS)) {
		return 0;
	}
	if (!csum_trusted && !ferry_tcp_csum_ok(pkt, data, data_end))
		return 0;

	if (pkt->seq != s->rcv_nxt)
		return 0; /* a probe or keep-alive (rcv_nxt - 1), or data in flight */
	gen = s->gen;
	snd_nxt = s->snd_nxt;
	una = s->ack_from_guest;
	ack = pkt->ack;
	if (ferry_seq_before(ack, una) || ferry_seq_before(snd_nxt, ack))
		return 0; /* old, or acknowledges what we never sent */
	win = (__u32)pkt->window << (s->guest_wscale > 14 ? 14 : s->guest_wscale);
	dups = s->dup_acks;
	if (ack == una) {
		/* same ACK, same window, data outstanding: a duplicate */
		if (win == s->guest_window && ack != snd_nxt) {
			dup = 1;
			dups++;
		}
	} else {
		dups = 0;
	}

	/* decided before the slot changes: a full ring passes the ACK */
	if ((flags & FERRY_SLOT_FIN_PENDING) && ack == snd_nxt && s->fin_gen_done != gen)
		kind = FERRY_EV_FIN_ACKED;
	else if (dup && dups == 3)
		kind = FERRY_EV_FAST_RETRANSMIT;
	if (kind && !ferry_post(st, slot, gen, kind, ack, win, dups))
		return 0; /* ring full: let userspace see this ACK itself */

	/* the ACK that reaches the timed segment's end: its arrival, before
	 * the ACK itself (read after it, it is that ACK's) */
	rtt_seq = s->rtt_seq;
	if (ferry_seq_before(una, rtt_seq) && !ferry_seq_before(ack, rtt_seq))
		s->rtt_ack_ns = bpf_ktime_get_ns();
	s->ack_from_guest = ack;
	s->guest_window = win;
	s->dup_acks = dups;
	if (pkt->tcp_opts & FERRY_OPT_TS)
		s->ts_recent = pkt->ts_val;
	if (kind == FERRY_EV_FIN_ACKED)
		s->fin_gen_done = gen;
	if (kind)
		s->events_posted++;
	/* fully ordered: the stores above before the loads below (pairs with
	 * userspace's fence after it bumps stall_epoch: no lost wake-up) */
	__sync_fetch_and_add(&s->acks_absorbed, 1);

	epoch = *(volatile __u32 *)&s->stall_epoch;
	if (!kind && epoch != s->stall_epoch_done &&
	    ferry_wake_due(ack, una, win, snd_nxt, s->wake_room, s->wake_ack)) {
		/* a full ring leaves the epoch armed: the next ACK posts */
		if (ferry_post(st, slot, gen, FERRY_EV_WINDOW_OPEN, ack, win, dups)) {
			s->stall_epoch_done = epoch;
			s->events_posted++;
		}
	}
	return 1;
}

/*
 * Counts a parsed guest frame's pure ACK and absorbs it when it may. Returns
 * 1 when absorbed (the caller drops the frame and does not count it as
 * passed), 0 when the frame goes on to the control plane.
 */
static __always_inline int ferry_fastpath_pure_ack(struct __sk_buff *skb, struct ferry_pkt *pkt,
						   struct ferry_stats *st)
{
	if (!ferry_count_pure_ack(st, pkt))
		return 0;
	if (!ferry_absorb_ack(pkt, st, (void *)(long)skb->data, (void *)(long)skb->data_end,
			      ferry_skb_csum_partial(skb)))
		return 0;
	st->acks_absorbed++;
	return 1;
}

/*
 * The same at XDP: no skb, so no CHECKSUM_PARTIAL; every checksum is
 * verified (see the theory of operation).
 */
static __always_inline int ferry_fastpath_pure_ack_xdp(struct xdp_md *ctx, struct ferry_pkt *pkt,
						       struct ferry_stats *st)
{
	if (!ferry_count_pure_ack(st, pkt))
		return 0;
	if (!ferry_absorb_ack(pkt, st, (void *)(long)ctx->data, (void *)(long)ctx->data_end, 0))
		return 0;
	st->acks_absorbed++;
	return 1;
}

#endif /* FERRY_BPF_FASTPATH_H */
