/* SPDX-License-Identifier: MIT */
/*
 * ferry_ns_steer.bpf.c - `ferry run -T all` with one listener per family.
 *
 * Theory of operation
 * -------------------
 * `-T all` forwards some 37000 ports of the guest's loopback to the host's.
 * One listening socket per port and family is 74000 descriptors, more than
 * a default hard limit allows. Instead this BPF_PROG_TYPE_SK_LOOKUP
 * program, attached to the guest's network namespace, runs when the kernel
 * looks for the listener of a TCP SYN: a SYN to 127.0.0.1 (or ::1) on a
 * port marked in steer_ports is given the family's listener from
 * steer_listeners (bpf_sk_assign), whatever port that listener is bound
 * to. The relay learns the port the guest asked for from the accepted
 * socket's local address (getsockname), which is the SYN's destination.
 * Anything else (another address, an unmarked port, UDP, an empty slot)
 * passes untouched to the kernel's own lookup. Maps: include/ferry/ns_steer.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ferry/ns_steer.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, FERRY_STEER_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} steer_listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FERRY_STEER_PORTS);
	__type(key, __u32);
	__type(value, __u8);
} steer_ports SEC(".maps");

SEC("sk_lookup")
int ferry_ns_steer(struct bpf_sk_lookup *ctx)
{
	__u32 slot;

	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	if (ctx->family == AF_INET) {
		if (ctx->local_ip4 != bpf_htonl(0x7f000001))
			return SK_PASS;
		slot = FERRY_STEER_V4;
	} else if (ctx->family == AF_INET6) {
		if (ctx->local_ip6[0] || ctx->local_ip6[1] || ctx->local_ip6[2] ||
		    ctx->local_ip6[3] != bpf_htonl(1))
			return SK_PASS;
		slot = FERRY_STEER_V6;
	} else {
		return SK_PASS;
	}
	__u32 port = ctx->local_port;
	__u8 *on = bpf_map_lookup_elem(&steer_ports, &port);
	if (!on || !*on)
		return SK_PASS;
	struct bpf_sock *sk = bpf_map_lookup_elem(&steer_listeners, &slot);
	if (!sk)
		return SK_PASS;
	bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	return SK_PASS;
}
