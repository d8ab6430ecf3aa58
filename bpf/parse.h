/* SPDX-License-Identifier: MIT */
/*
 * parse.h - the one frame parser and classifier shared by every BPF hook.
 *
 * Theory of operation
 * -------------------
 * ferry_parse() walks one Ethernet frame top to bottom: Ethernet (plus at
 * most one 802.1Q/802.1ad tag), then ARP, IPv4 or IPv6, then TCP, UDP or
 * ICMP/ICMPv6, and fills a struct ferry_pkt with the frame's class (enum
 * ferry_frame_class from the contract) and the fields the fast path needs
 * (connection key, sequence and acknowledgement numbers, window, option
 * summary, payload length).
 *
 * Two lengths bound every access, and they mean different things:
 *   wire_len  the frame's real length (skb->len for TC, the whole buffer's
 *             for XDP). A header or declared length that does not fit in it is
 *             the guest's fault: class FERRY_CLASS_MALFORMED.
 *   data_end  the end of the directly readable (linear) bytes. The kernel
 *             may keep payload, and rarely headers, in page fragments.
 *             A header that fits in wire_len but not before data_end is not
 *             malformed: ferry_parse() returns FERRY_PARSE_NONLINEAR.
 * Hooks call ferry_parse_skb() (TC) or ferry_parse_xdp(), the one pull
 * strategy, explained at ferry_parse_skb() below.
 *
 * Every read is preceded by a comparison against data_end on the very
 * pointer that is then dereferenced, and every variable offset is first
 * bounded by a constant, so the verifier accepts the code without help.
 * Loops (IPv6 extension headers, TCP options) have constant trip limits.
 *
 * Classes: fragments (IPv4 MF/offset, IPv6 fragment header) and unknown
 * upper protocols are IPVx_OTHER; an L3 header whose version, header length
 * or total length is inconsistent, or an L4 header that is cut short or has
 * an impossible length field (TCP data offset < 5 or past the segment, UDP
 * length outside [8, IP payload], malformed TCP option list) is MALFORMED.
 * Trailing Ethernet padding beyond the IP total length is ignored.
 *
 * Nothing here writes to the frame's bytes or to a map (ferry_parse_skb may
 * move headers into the linear area): the caller decides.
 */
#ifndef FERRY_BPF_PARSE_H
#define FERRY_BPF_PARSE_H

#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "defs.h"
#include "ferry/contract.h"

/* ferry_parse() results. */
#define FERRY_PARSE_OK 0        /* pkt->class is final */
#define FERRY_PARSE_NONLINEAR 1 /* headers beyond data_end; pull and retry */

/* Option summary bits (struct ferry_pkt.tcp_opts). */
#define FERRY_OPT_MSS (1u << 0)
#define FERRY_OPT_WSCALE (1u << 1)
#define FERRY_OPT_SACK_PERM (1u << 2)
#define FERRY_OPT_SACK (1u << 3)
#define FERRY_OPT_TS (1u << 4)
#define FERRY_OPT_UNKNOWN (1u << 5) /* any other kind */

/* Bounds: headers deeper than this are passed unparsed (class OTHER). */
#define FERRY_IPV6_MAX_EXT 6       /* extension headers walked */
#define FERRY_MAX_L4_OFF 512       /* deepest L4 header we read */
#define FERRY_TCP_MAX_OPT_LEN 40
/* The deepest byte the parser reads: a full TCP header at the deepest L4 offset. */
#define FERRY_PARSE_MAX_HDR (FERRY_MAX_L4_OFF + 60)

struct ferry_pkt {
	__u32 class;       /* enum ferry_frame_class */
	__u32 wire_len;    /* whole frame */
	__u32 l3_off;      /* IP/ARP header offset from the Ethernet header */
	__u32 l4_off;      /* TCP/UDP/ICMP header offset */
	__u32 l4_len;      /* L4 header + payload, from the IP length fields */
	__u16 ethertype;   /* host order, after the VLAN tag */
	__u16 vlan_tci;    /* host order; 0 without a tag */
	__u8 has_vlan;
	__u8 family;      /* FERRY_AF_INET/6 once L3 is known */
	__u8 l4proto;      /* final protocol / next header */
	__u8 tcp_flags;
	__u8 tcp_hdr_len;  /* data offset * 4 */
	__u8 pure_ack;     /* ACK, no SYN/FIN/RST/URG, no payload */
	__u8 pad0[2];
	__u16 tcp_opts;    /* FERRY_OPT_* */
	__u16 window;      /* raw, unscaled, host order */
	__u32 seq;         /* host order */
	__u32 ack;         /* host order */
	__u32 payload_len; /* TCP/UDP payload bytes */
	__u32 ts_val;      /* host order, with FERRY_OPT_TS */
	__u32 ts_ecr;
	struct ferry_conn_key key; /* TCP and UDP: guest = source */
};

/* Header access helper: yields a pointer to n bytes at off, or classifies. */
#define FERRY_HDR(ptr, type, data, data_end, off, n, pkt, on_short)            \
	do {                                                                   \
		if ((__u64)(off) + (n) > (pkt)->wire_len) {                    \
			(pkt)->class = FERRY_CLASS_MALFORMED;                  \
			on_short;                                              \
		}                                                              \
		ptr = (type)((void *)(data) + (off));                          \
		if ((void *)ptr + (n) > (data_end))                            \
			return FERRY_PARSE_NONLINEAR;                          \
	} while (0)

/* Stores an IPv4 address IPv4-mapped (::ffff:a.b.c.d), as the key wants. */
static __always_inline void ferry_map_v4(__u8 dst[16], __u32 addr_be)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr_be, 4);
}

/* The TCP option walk's input, state and output, on the caller's stack. */
struct ferry_opt_walk {
	__u8 buf[64];     /* the options, copied; bytes past optlen are zero */
	__u32 optlen;     /* 0..40 */
	__u32 off;        /* walk position */
	__u32 ts_val;     /* host order, with FERRY_OPT_TS */
	__u32 ts_ecr;
	__u32 opts;       /* FERRY_OPT_* */
	__s32 bad;        /* set when the list is malformed */
};

/* Big-endian 32-bit read from the walk buffer. */
static __always_inline __u32 ferry_be32_at(const __u8 *buf, __u32 at)
{
	return ((__u32)buf[at & 0x3f] << 24) | ((__u32)buf[(at + 1) & 0x3f] << 16) |
	       ((__u32)buf[(at + 2) & 0x3f] << 8) | (__u32)buf[(at + 3) & 0x3f];
}

/*
 * One step of the TCP option walk (a bpf_loop callback): consumes one
 * option at w->off; returns 1 to stop. Why bpf_loop: an open loop whose body
 * branches per option kind makes the verifier follow every sequence of kinds
 * (it gave up after a million instructions); a callback is verified once.
 * Malformed: length < 2 or past the end, or a wrong length for MSS, window
 * scale, SACK-permitted or timestamps.
 */
static long ferry_tcp_opt_step(__u64 index, void *ctx)
{
	struct ferry_opt_walk *w = ctx;
	__u32 o = w->off, optlen = w->optlen, kind, len;

	if (o >= optlen || o >= FERRY_TCP_MAX_OPT_LEN || optlen > FERRY_TCP_MAX_OPT_LEN)
		return 1;
	kind = w->buf[o & 0x3f];
	if (kind == FERRY_TCPOPT_EOL)
		return 1;
	if (kind == FERRY_TCPOPT_NOP) {
		w->off = o + 1;
		return 0;
	}
	len = w->buf[(o + 1) & 0x3f];
	if (o + 2 > optlen || len < 2 || o + len > optlen)
		goto bad;
	switch (kind) {
	case FERRY_TCPOPT_MSS:
		if (len != 4)
			goto bad;
		w->opts |= FERRY_OPT_MSS;
		break;
	case FERRY_TCPOPT_WSCALE:
		if (len != 3)
			goto bad;
		w->opts |= FERRY_OPT_WSCALE;
		break;
	case FERRY_TCPOPT_SACK_PERM:
		if (len != 2)
			goto bad;
		w->opts |= FERRY_OPT_SACK_PERM;
		break;
	case FERRY_TCPOPT_SACK:
		w->opts |= FERRY_OPT_SACK;
		break;
	case FERRY_TCPOPT_TIMESTAMP:
		if (len != 10)
			goto bad;
		w->opts |= FERRY_OPT_TS;
		w->ts_val = ferry_be32_at(w->buf, o + 2);
		w->ts_ecr = ferry_be32_at(w->buf, o + 6);
		break;
	default:
		w->opts |= FERRY_OPT_UNKNOWN;
		break;
	}
	w->off = o + len;
	return 0;
bad:
	w->bad = 1;
	return 1;
}

/*
 * Copies the options out of the frame and walks them; -1 when malformed.
 * The layout almost every established segment carries, NOP NOP TIMESTAMP
 * (Linux, the BSDs, Windows with timestamps on), is read in place without
 * the copy and the walk: they cost about 100 ns per frame in
 * BPF_PROG_TEST_RUN, which a pure ACK cannot afford (issue 18).
 */
static __always_inline int ferry_parse_tcp_opts(struct ferry_pkt *pkt, __u8 *opts,
						void *data_end, __u32 optlen)
{
	struct ferry_opt_walk w;
	__u32 k;

	if (optlen == 12) {
		__u32 val, ecr;

		if ((void *)(opts + 12) > data_end)
			return -1; /* caller made the whole header linear */
		if (opts[0] == FERRY_TCPOPT_NOP && opts[1] == FERRY_TCPOPT_NOP &&
		    opts[2] == FERRY_TCPOPT_TIMESTAMP && opts[3] == 10) {
			__builtin_memcpy(&val, opts + 4, 4);
			__builtin_memcpy(&ecr, opts + 8, 4);
			pkt->tcp_opts = FERRY_OPT_TS;
			pkt->ts_val = bpf_ntohl(val);
			pkt->ts_ecr = bpf_ntohl(ecr);
			return 0;
		}
	}
	__builtin_memset(&w, 0, sizeof(w));
	w.optlen = optlen;
	for (k = 0; k < FERRY_TCP_MAX_OPT_LEN; k++) {
		__u8 *p = opts + k;

		if (k >= optlen)
			break;
		if ((void *)(p + 1) > data_end)
			return -1; /* caller made the whole header linear */
		w.buf[k] = *p;
	}
	bpf_loop(FERRY_TCP_MAX_OPT_LEN, ferry_tcp_opt_step, &w, 0);
	if (w.bad)
		return -1;
	pkt->tcp_opts = w.opts;
	pkt->ts_val = w.ts_val;
	pkt->ts_ecr = w.ts_ecr;
	return 0;
}

/* Parses the L4 header at pkt->l4_off; class is already the L3+proto one. */
static __always_inline int ferry_parse_l4(struct ferry_pkt *pkt, void *data, void *data_end)
{
	__u32 off = pkt->l4_off;

	if (off > FERRY_MAX_L4_OFF) {
		/* legal but deeper than we look: leave it to userspace */
		pkt->class = pkt->family == FERRY_AF_INET ? FERRY_CLASS_IPV4_OTHER
							  : FERRY_CLASS_IPV6_OTHER;
		return FERRY_PARSE_OK;
	}

	if (pkt->l4proto == FERRY_IPPROTO_TCP) {
		struct tcphdr *th;
		__u8 *b;
		__u32 hlen;

		if (pkt->l4_len < 20) {
			pkt->class = FERRY_CLASS_MALFORMED;
			return FERRY_PARSE_OK;
		}
		FERRY_HDR(b, __u8 *, data, data_end, off, 20, pkt, return FERRY_PARSE_OK);
		th = (struct tcphdr *)b;
		hlen = (b[12] >> 4) * 4;
		if (hlen < 20 || hlen > pkt->l4_len) {
			pkt->class = FERRY_CLASS_MALFORMED;
			return FERRY_PARSE_OK;
		}
		pkt->tcp_hdr_len = (__u8)hlen;
		pkt->tcp_flags = b[13];
		pkt->seq = bpf_ntohl(th->seq);
		pkt->ack = bpf_ntohl(th->ack_seq);
		pkt->window = bpf_ntohs(th->window);
		pkt->key.guest_port = th->source;
		pkt->key.peer_port = th->dest;
		pkt->payload_len = pkt->l4_len - hlen;
		if (hlen > 20) {
			__u8 *opts;
			/* the full header must be readable before walking options */
			FERRY_HDR(opts, __u8 *, data, data_end, off, hlen, pkt,
				  return FERRY_PARSE_OK);
			if (ferry_parse_tcp_opts(pkt, opts + 20, data_end, hlen - 20) < 0) {
				pkt->class = FERRY_CLASS_MALFORMED;
				return FERRY_PARSE_OK;
			}
		}
		pkt->pure_ack = (pkt->tcp_flags & FERRY_TCP_ACK) &&
				!(pkt->tcp_flags & (FERRY_TCP_SYN | FERRY_TCP_FIN |
						    FERRY_TCP_RST | FERRY_TCP_URG)) &&
				pkt->payload_len == 0;
		return FERRY_PARSE_OK;
	}

	if (pkt->l4proto == FERRY_IPPROTO_UDP) {
		struct udphdr *uh;
		__u32 ulen;

		if (pkt->l4_len < 8) {
			pkt->class = FERRY_CLASS_MALFORMED;
			return FERRY_PARSE_OK;
		}
		FERRY_HDR(uh, struct udphdr *, data, data_end, off, 8, pkt,
			  return FERRY_PARSE_OK);
		ulen = bpf_ntohs(uh->len);
		if (ulen < 8 || ulen > pkt->l4_len) {
			pkt->class = FERRY_CLASS_MALFORMED;
			return FERRY_PARSE_OK;
		}
		pkt->key.guest_port = uh->source;
		pkt->key.peer_port = uh->dest;
		pkt->payload_len = ulen - 8;
		return FERRY_PARSE_OK;
	}

	/* ICMP and ICMPv6: every message type has an 8-byte header */
	if (pkt->l4_len < 8) {
		pkt->class = FERRY_CLASS_MALFORMED;
		return FERRY_PARSE_OK;
	}
	return FERRY_PARSE_OK;
}

/* Parses the IPv4 header at pkt->l3_off and, if not a fragment, its L4. */
static __always_inline int ferry_parse_ipv4(struct ferry_pkt *pkt, void *data, void *data_end)
{
	struct iphdr *ip;
	__u8 *b;
	__u32 off = pkt->l3_off; /* 14 or 18 */
	__u32 ihl, tot, frag;

	pkt->family = FERRY_AF_INET;
	pkt->class = FERRY_CLASS_IPV4_OTHER;
	FERRY_HDR(b, __u8 *, data, data_end, off, 20, pkt, return FERRY_PARSE_OK);
	ip = (struct iphdr *)b;
	if ((b[0] >> 4) != 4) {
		pkt->class = FERRY_CLASS_MALFORMED;
		return FERRY_PARSE_OK;
	}
	ihl = (b[0] & 0xf) * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (ihl < 20 || tot < ihl || off + tot > pkt->wire_len) {
		pkt->class = FERRY_CLASS_MALFORMED;
		return FERRY_PARSE_OK;
	}
	pkt->l4proto = ip->protocol;
	pkt->l4_off = off + ihl;
	pkt->l4_len = tot - ihl;
	ferry_map_v4(pkt->key.guest_addr, ip->saddr);
	ferry_map_v4(pkt->key.peer_addr, ip->daddr);
	pkt->key.family = FERRY_AF_INET;
	pkt->key.protocol = ip->protocol;

	frag = bpf_ntohs(ip->frag_off);
	if (frag & (FERRY_IP_MF | FERRY_IP_OFFMASK))
		return FERRY_PARSE_OK; /* fragments are userspace's */

	switch (ip->protocol) {
	case FERRY_IPPROTO_TCP:
		pkt->class = FERRY_CLASS_IPV4_TCP;
		break;
	case FERRY_IPPROTO_UDP:
		pkt->class = FERRY_CLASS_IPV4_UDP;
		break;
	case FERRY_IPPROTO_ICMP:
		pkt->class = FERRY_CLASS_IPV4_ICMP;
		break;
	default:
		return FERRY_PARSE_OK;
	}
	return ferry_parse_l4(pkt, data, data_end);
}

/* Parses the IPv6 header, walks extension headers, then its L4. */
static __always_inline int ferry_parse_ipv6(struct ferry_pkt *pkt, void *data, void *data_end)
{
	struct ipv6hdr *ip6;
	__u8 *b;
	__u32 off = pkt->l3_off;
	__u32 plen, end, nh;
	int i;

	pkt->family = FERRY_AF_INET6;
	pkt->class = FERRY_CLASS_IPV6_OTHER;
	FERRY_HDR(b, __u8 *, data, data_end, off, 40, pkt, return FERRY_PARSE_OK);
	ip6 = (struct ipv6hdr *)b;
	if ((b[0] >> 4) != 6) {
		pkt->class = FERRY_CLASS_MALFORMED;
		return FERRY_PARSE_OK;
	}
	plen = bpf_ntohs(ip6->payload_len);
	end = off + 40 + plen; /* end of the IPv6 packet, padding excluded */
	if (end > pkt->wire_len) {
		pkt->class = FERRY_CLASS_MALFORMED;
		return FERRY_PARSE_OK;
	}
	__builtin_memcpy(pkt->key.guest_addr, &ip6->saddr, 16);
	__builtin_memcpy(pkt->key.peer_addr, &ip6->daddr, 16);
	pkt->key.family = FERRY_AF_INET6;

	nh = ip6->nexthdr;
	off += 40;
	for (i = 0; i < FERRY_IPV6_MAX_EXT; i++) {
		__u8 *eh;

		if (nh != FERRY_IPPROTO_HOPOPTS && nh != FERRY_IPPROTO_ROUTING &&
		    nh != FERRY_IPPROTO_DSTOPTS)
			break;
		if (off > FERRY_MAX_L4_OFF)
			return FERRY_PARSE_OK; /* too deep for us: OTHER */
		if (off + 8 > end) {
			pkt->class = FERRY_CLASS_MALFORMED;
			return FERRY_PARSE_OK;
		}
		FERRY_HDR(eh, __u8 *, data, data_end, off, 2, pkt, return FERRY_PARSE_OK);
		nh = eh[0];
		off += ((__u32)eh[1] + 1) * 8;
		if (off > end) {
			pkt->class = FERRY_CLASS_MALFORMED;
			return FERRY_PARSE_OK;
		}
	}
	pkt->l4proto = (__u8)nh;
	pkt->key.protocol = (__u8)nh;
	pkt->l4_off = off;
	pkt->l4_len = end - off;

	switch (nh) {
	case FERRY_IPPROTO_TCP:
		pkt->class = FERRY_CLASS_IPV6_TCP;
		break;
	case FERRY_IPPROTO_UDP:
		pkt->class = FERRY_CLASS_IPV6_UDP;
		break;
	case FERRY_IPPROTO_ICMPV6:
		pkt->class = FERRY_CLASS_IPV6_ICMP;
		break;
	default:
		/* fragment header, more extension headers than we walk, others */
		return FERRY_PARSE_OK;
	}
	return ferry_parse_l4(pkt, data, data_end);
}

/*
 * Parses one frame; see the theory of operation above. Returns
 * FERRY_PARSE_OK with pkt->class set, or FERRY_PARSE_NONLINEAR.
 */
static __always_inline int ferry_parse(struct ferry_pkt *pkt, void *data, void *data_end,
				       __u32 wire_len)
{
	struct ethhdr *eth;
	__u32 off = FERRY_ETH_HLEN;
	__u16 proto;

	__builtin_memset(pkt, 0, sizeof(*pkt));
	pkt->wire_len = wire_len;
	FERRY_HDR(eth, struct ethhdr *, data, data_end, 0, FERRY_ETH_HLEN, pkt,
		  return FERRY_PARSE_OK);
	proto = bpf_ntohs(eth->h_proto);
	if (proto == FERRY_ETH_P_8021Q || proto == FERRY_ETH_P_8021AD) {
		__be16 *tag;

		FERRY_HDR(tag, __be16 *, data, data_end, FERRY_ETH_HLEN, FERRY_VLAN_HLEN, pkt,
			  return FERRY_PARSE_OK);
		pkt->has_vlan = 1;
		pkt->vlan_tci = bpf_ntohs(tag[0]);
		proto = bpf_ntohs(tag[1]);
		off += FERRY_VLAN_HLEN;
	}
	pkt->ethertype = proto;
	pkt->l3_off = off;

	switch (proto) {
	case FERRY_ETH_P_ARP: {
		__u8 *arp;

		/* Ethernet/IPv4 ARP body: 8 fixed + 2 * (6 + 4) */
		FERRY_HDR(arp, __u8 *, data, data_end, off, 28, pkt, return FERRY_PARSE_OK);
		pkt->class = FERRY_CLASS_ARP;
		return FERRY_PARSE_OK;
	}
	case FERRY_ETH_P_IP:
		return ferry_parse_ipv4(pkt, data, data_end);
	case FERRY_ETH_P_IPV6:
		return ferry_parse_ipv6(pkt, data, data_end);
	default:
		pkt->class = FERRY_CLASS_OTHER;
		return FERRY_PARSE_OK;
	}
}

/*
 * Parses a TC hook's frame (wire length skb->len). The one pull strategy
 * of every hook: parse what is linear; only when a header lies beyond the
 * linear area, pull the bytes the parser can read at most
 * (FERRY_PARSE_MAX_HDR, or the whole frame when shorter) and parse once
 * more; a frame still not parsed counts as OTHER (it goes on all the same).
 * Why not pull up front: a guest's TCP data segment reaches TC (tap egress,
 * veth ingress) with only its headers linear (66 bytes) and the payload in
 * page fragments, and it is a clone (its TCP keeps the original for
 * retransmission), so bpf_skb_pull_data() must first copy the head
 * (skb_ensure_writable). Measured on a veth's ingress (iperf3, MTU 1500):
 * 18627 of 18642 frames had fewer than 128 linear bytes and were clones, and
 * none had its headers beyond the linear part: an up-front pull copies on
 * nearly every data segment for nothing, and a short one still leaves deep
 * headers (IPv4 + TCP options, IPv6 extension headers) unparsed.
 */
static __always_inline void ferry_parse_skb(struct __sk_buff *skb, struct ferry_pkt *pkt)
{
	__u32 len = skb->len;

	if (ferry_parse(pkt, (void *)(long)skb->data, (void *)(long)skb->data_end, len) ==
	    FERRY_PARSE_OK)
		return;
	bpf_skb_pull_data(skb, len < FERRY_PARSE_MAX_HDR ? len : FERRY_PARSE_MAX_HDR);
	if (ferry_parse(pkt, (void *)(long)skb->data, (void *)(long)skb->data_end, len) ==
	    FERRY_PARSE_OK)
		return;
	pkt->class = FERRY_CLASS_OTHER;
}

/*
 * Parses an XDP hook's frame; returns its wire length. The wire length is
 * the whole buffer's (bpf_xdp_get_buff_len), not data_end - data: a program
 * without BPF_F_XDP_HAS_FRAGS gets every frame linear from veth, tun and
 * generic XDP (they linearize or limit the MTU), but BPF_PROG_TEST_RUN
 * hands it fragments past 3520 bytes, and a truncated wire length would call
 * a whole frame malformed. XDP has no pull: headers beyond the linear area
 * (never seen outside a test run) count as OTHER, as on TC.
 */
static __always_inline __u32 ferry_parse_xdp(struct xdp_md *ctx, struct ferry_pkt *pkt)
{
	__u32 len = (__u32)bpf_xdp_get_buff_len(ctx);

	if (ferry_parse(pkt, (void *)(long)ctx->data, (void *)(long)ctx->data_end, len) !=
	    FERRY_PARSE_OK)
		pkt->class = FERRY_CLASS_OTHER;
	return len;
}

#endif /* FERRY_BPF_PARSE_H */
