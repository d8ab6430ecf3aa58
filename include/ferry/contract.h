/* SPDX-License-Identifier: MIT */
/*
 * ferry kernel/userspace contract: the one definition of every structure that
 * crosses between the BPF programs (bpf/) and the C++ control plane
 * (userspace/). Plain C with fixed-width kernel types, included by both sides.
 *
 * Ownership: every field has exactly one writer, named in its comment.
 * Byte order: addresses and ports are kept in network order, exactly as they
 * sit in the frame, so the fast path never converts; everything else is host
 * order.
 *
 * Maps (pinned under FERRY_PIN_ROOT/<instance>/, all with BTF so that
 * `bpftool map dump pinned ...` prints field names):
 *   stats       per-CPU array, one struct ferry_stats           (BPF writes)
 *   conn_hash   hash, struct ferry_conn_key -> __u32 slot       (userspace writes)
 *   conn_state  mmapable array of struct ferry_conn_slot         (split, see below)
 *   activity    array of __u64 words, one bit per slot           (both set, userspace clears)
 *   events      ring buffer of struct ferry_event                (BPF writes)
 */
#ifndef FERRY_CONTRACT_H
#define FERRY_CONTRACT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FERRY_PIN_ROOT "/sys/fs/bpf/ferry"

/* Limits. The BPF maps are sized from these at load time. */
#define FERRY_MAX_CONNS_DEFAULT 131072u
#define FERRY_MAX_CONNS_LIMIT 262144u

/*
 * Per-CPU counters. X(field) lists them once; C++ iterates the same list to
 * print names, so the names on the wire and in `ferry stats` cannot drift.
 */
#define FERRY_STATS_FIELDS(X)                                                  \
	X(guest_frames)        /* every frame the guest sent */                    \
	X(arp)                                                                     \
	X(ipv4_tcp)                                                                \
	X(ipv4_udp)                                                                \
	X(ipv4_icmp)                                                               \
	X(ipv4_other)                                                              \
	X(ipv6_tcp)                                                                \
	X(ipv6_udp)                                                                \
	X(ipv6_icmp)                                                               \
	X(ipv6_other)                                                              \
	X(other)               /* neither ARP, IPv4 nor IPv6 */                    \
	X(malformed)           /* failed a length, offset or version check */      \
	X(guest_pure_acks)     /* TCP, ACK set, no payload, no SYN/FIN/RST */      \
	X(acks_absorbed)       /* pure ACKs consumed by the fast path */           \
	X(passed_to_userspace) /* frames handed on to the control plane */         \
	X(events_posted)       /* ring-buffer records written */                   \
	X(events_dropped)      /* ring buffer full */

struct ferry_stats {
#define FERRY_STATS_DECLARE(name) __u64 name;
	FERRY_STATS_FIELDS(FERRY_STATS_DECLARE)
#undef FERRY_STATS_DECLARE
};

/* Frame classes, as the classifier decides them (one counter each above). */
enum ferry_frame_class {
	FERRY_CLASS_ARP = 1,
	FERRY_CLASS_IPV4_TCP,
	FERRY_CLASS_IPV4_UDP,
	FERRY_CLASS_IPV4_ICMP,
	FERRY_CLASS_IPV4_OTHER,
	FERRY_CLASS_IPV6_TCP,
	FERRY_CLASS_IPV6_UDP,
	FERRY_CLASS_IPV6_ICMP,
	FERRY_CLASS_IPV6_OTHER,
	FERRY_CLASS_OTHER,
	FERRY_CLASS_MALFORMED,
};

/*
 * Connection key: as seen from the guest. IPv4 addresses are stored
 * IPv4-mapped (::ffff:a.b.c.d) so one key type serves both families.
 */
struct ferry_conn_key {
	__u8 guest_addr[16];
	__u8 peer_addr[16];
	__be16 guest_port;
	__be16 peer_port;
	__u8 family;     /* AF_INET (2) or AF_INET6 (10) */
	__u8 protocol;   /* IPPROTO_TCP */
	__u8 pad[2];     /* zero */
};

#endif /* FERRY_CONTRACT_H */
