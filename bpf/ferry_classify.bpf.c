/* SPDX-License-Identifier: MIT */
/*
 * ferry_classify.bpf.c - the classifier on the guest's transmit path.
 *
 * Theory of operation
 * -------------------
 * ferry_tc_egress runs at clsact egress of the tap that `ferry run` holds,
 * i.e. on every frame the guest sends, before it reaches the tap fd. It
 * parses the frame with the shared core (parse.h), counts it in the per-CPU
 * `stats` map (one struct ferry_stats at key 0), and returns TC_ACT_OK so
 * the frame goes on to the control plane.
 *
 * Counting invariants (per CPU, summed by userspace):
 *   guest_frames = arp + ipv4_* + ipv6_* + other + malformed
 *   guest_frames = passed_to_userspace + acks_absorbed
 *   guest_pure_acks <= ipv4_tcp + ipv6_tcp
 *
 * Non-linear skbs: the kernel may leave headers beyond the linear area
 * (rare; TCP payload in page fragments is common and harmless). The parser
 * reports that instead of calling it malformed, and we pull the first
 * FERRY_PULL_LEN bytes in and parse once more. A second miss is counted as
 * OTHER and passed: userspace sees the whole frame anyway.
 *
 * Fast path (ferry_absorb_ack): a pure ACK of a flow that userspace put in
 * conn_hash and marked eligible in its conn_state slot, fully validated (see
 * the contract for the exact rule), updates the slot (ACK, scaled window,
 * duplicate-ACK count, TSval, time, per-slot counters), sets the slot's
 * activity bit and is dropped (TC_ACT_SHOT, counted as acks_absorbed).
 * The control plane is woken through the `events` ring buffer only when it
 * must act: the window reopened after it stalled (stall_epoch bumped) by at
 * least the slot's wake_room bytes, the
 * third duplicate ACK, or everything acknowledged while its FIN waits. Each
 * fires once (per stall epoch, per duplicate run, per slot generation).
 * Those records are posted with a forced wake-up; anything informational
 * would use BPF_RB_NO_WAKEUP, so a wake-up is never one per ACK. If the ring
 * is full the ACK is not absorbed but passed, and nothing in the slot
 * changes: userspace then sees the ACK itself. Sequence comparisons are
 * modulo 2^32 (signed difference).
 *
 * Checksums: a frame from the guest's own stack usually reaches TC egress
 * as CHECKSUM_PARTIAL (its checksum is finished later, on the way to the tap
 * fd, by the kernel): such a checksum is right by construction. Any other
 * frame's TCP checksum is verified here (bpf_csum_diff over the header and
 * the pseudo-header); a wrong one passes to userspace.
 */
#include "parse.h"

#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Bytes pulled into the linear area when headers lie beyond it. */
#define FERRY_PULL_LEN 600

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FERRY_MAX_CONNS_DEFAULT); /* set at load */
	__type(key, struct ferry_conn_key);
	__type(value, __u32);
} conn_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FERRY_MAX_CONNS_DEFAULT); /* set at load */
	__type(key, __u32);
	__type(value, struct ferry_conn_slot);
} conn_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FERRY_ACTIVITY_WORDS(FERRY_MAX_CONNS_DEFAULT)); /* set at load */
	__type(key, __u32);
	__type(value, __u64);
} activity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FERRY_EVENTS_RING_BYTES);
} events SEC(".maps");

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

#define FERRY_CHECKSUM_PARTIAL 3

/* Returns this CPU's counters (never NULL in practice: key 0 of a 1-array). */
static __always_inline struct ferry_stats *ferry_stats_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

/* Adds one frame of class `class` to the per-class counters. */
static __always_inline void ferry_count_class(struct ferry_stats *st, __u32 class)
{
	switch (class) {
	case FERRY_CLASS_ARP:
		st->arp++;
		break;
	case FERRY_CLASS_IPV4_TCP:
		st->ipv4_tcp++;
		break;
	case FERRY_CLASS_IPV4_UDP:
		st->ipv4_udp++;
		break;
	case FERRY_CLASS_IPV4_ICMP:
		st->ipv4_icmp++;
		break;
	case FERRY_CLASS_IPV4_OTHER:
		st->ipv4_other++;
		break;
	case FERRY_CLASS_IPV6_TCP:
		st->ipv6_tcp++;
		break;
	case FERRY_CLASS_IPV6_UDP:
		st->ipv6_udp++;
		break;
	case FERRY_CLASS_IPV6_ICMP:
		st->ipv6_icmp++;
		break;
	case FERRY_CLASS_IPV6_OTHER:
		st->ipv6_other++;
		break;
	case FERRY_CLASS_MALFORMED:
		st->malformed++;
		break;
	default:
		st->other++;
		break;
	}
}

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
 * True when the TCP checksum is right, or will be made right by the kernel
 * (CHECKSUM_PARTIAL). Only the header lengths the fast path takes (20 and
 * 32 bytes, no payload) are summed; anything else is "not verified".
 */
static __always_inline int ferry_tcp_csum_ok(struct __sk_buff *skb, struct ferry_pkt *pkt,
					     void *data, void *data_end)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	__u32 l3 = pkt->l3_off, l4 = pkt->l4_off, hlen = pkt->tcp_hdr_len;
	__u8 *th, *ip;
	__u64 sum;
	__s64 r;

	if (BPF_CORE_READ_BITFIELD(kskb, ip_summed) == FERRY_CHECKSUM_PARTIAL)
		return 1;
	if (l3 > FERRY_ETH_HLEN + FERRY_VLAN_HLEN || l4 > FERRY_MAX_L4_OFF)
		return 0;
	th = data + l4;
	ip = data + l3;
	if (hlen == 20) {
		if ((void *)(th + 20) > data_end)
			return 0;
		r = bpf_csum_diff(NULL, 0, (__be32 *)th, 20, 0);
	} else if (hlen == 32) {
		if ((void *)(th + 32) > data_end)
			return 0;
		r = bpf_csum_diff(NULL, 0, (__be32 *)th, 32, 0);
	} else {
		return 0;
	}
	if (r < 0)
		return 0;
	sum = (__u32)r;
	if (pkt->family == FERRY_AF_INET) {
		__u32 a, b;

		if ((void *)(ip + 20) > data_end)
			return 0;
		__builtin_memcpy(&a, ip + 12, 4);
		__builtin_memcpy(&b, ip + 16, 4);
		sum += (__u64)a + b;
	} else {
		if ((void *)(ip + 40) > data_end)
			return 0;
		r = bpf_csum_diff(NULL, 0, (__be32 *)(ip + 8), 32, 0);
		if (r < 0)
			return 0;
		sum += (__u32)r;
	}
	/* zero, protocol and TCP length, as 16-bit words in network order */
	sum += bpf_htonl((FERRY_IPPROTO_TCP << 16) | hlen);
	return ferry_fold(sum) == 0xffff;
}

/* Posts one event with a forced wake-up; 0 when the ring is full. */
static __always_inline int ferry_post(struct ferry_stats *st, __u32 slot, __u32 gen, __u32 kind,
				      __u32 ack, __u32 window, __u32 dups, __u64 now)
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
	ev->time_ns = now;
	/* the control plane must act on every kind we post: wake it now */
	bpf_ringbuf_submit(ev, BPF_RB_FORCE_WAKEUP);
	st->events_posted++;
	return 1;
}

/*
 * The fast path: absorbs a validated pure ACK of an eligible flow. Returns
 * 1 when the frame was absorbed (caller drops it), 0 when it must pass.
 */
static __always_inline int ferry_absorb_ack(struct __sk_buff *skb, struct ferry_pkt *pkt,
					    struct ferry_stats *st)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ferry_conn_slot *s;
	__u32 *slotp, slot, idx, flags, gen, snd_nxt, una, ack, win, dups, kind = 0;
	__u64 now, *word;
	int dup = 0;

	if (pkt->class != FERRY_CLASS_IPV4_TCP && pkt->class != FERRY_CLASS_IPV6_TCP)
		return 0;
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
	if (!ferry_tcp_csum_ok(skb, pkt, data, data_end))
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
	now = bpf_ktime_get_ns();

	/* at most one wake-up per ACK, the most urgent first */
	if ((flags & FERRY_SLOT_FIN_PENDING) && ack == snd_nxt && s->fin_gen_done != gen)
		kind = FERRY_EV_FIN_ACKED;
	else if (dup && dups == 3)
		kind = FERRY_EV_FAST_RETRANSMIT;
	else if (s->stall_epoch != s->stall_epoch_done && (__s32)(ack + win - snd_nxt) > 0 &&
		 ack + win - snd_nxt >= s->wake_room)
		kind = FERRY_EV_WINDOW_OPEN; /* enough room: batch wake-ups (wake_room) */
	if (kind && !ferry_post(st, slot, gen, kind, ack, win, dups, now))
		return 0; /* ring full: let userspace see this ACK itself */

	s->ack_from_guest = ack;
	s->guest_window = win;
	s->dup_acks = dups;
	if (pkt->tcp_opts & FERRY_OPT_TS)
		s->ts_recent = pkt->ts_val;
	s->last_ack_ns = now;
	s->acks_absorbed++;
	if (kind == FERRY_EV_FIN_ACKED)
		s->fin_gen_done = gen;
	else if (kind == FERRY_EV_WINDOW_OPEN)
		s->stall_epoch_done = s->stall_epoch;
	if (kind)
		s->events_posted++;

	idx = slot / 64;
	word = bpf_map_lookup_elem(&activity, &idx);
	if (word && !(*word & (1ull << (slot % 64))))
		__sync_fetch_and_or(word, 1ull << (slot % 64));
	return 1;
}

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
	st->guest_frames++;
	ferry_count_class(st, pkt.class);
	if (pkt.pure_ack && pkt.class != FERRY_CLASS_MALFORMED) {
		st->guest_pure_acks++;
		if (ferry_absorb_ack(skb, &pkt, st)) {
			st->acks_absorbed++;
			return TC_ACT_SHOT;
		}
	}
	st->passed_to_userspace++;
	return TC_ACT_OK;
}
