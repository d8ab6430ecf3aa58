/* SPDX-License-Identifier: MIT */
/*
 * conn_view.h - the read-only window onto a live translator's TCP table.
 *
 * Theory of operation: a running ferry (`ferry attach` service or `ferry run`)
 * mirrors every TCP flow of its translator into the pinned, BTF-described,
 * memory-mapped BPF array `conns` (FERRY_PIN_ROOT/<instance>/conns), one
 * struct ferry_conn_view per translator slot (same index). The translator's
 * flow observer fills a slot when the flow appears and zeroes it when the
 * flow goes; a periodic refresh (every FERRY_CONN_VIEW_REFRESH_MS) copies the
 * changing fields. Readers (`ferry conns`, `ferry status`, `bpftool map dump`)
 * never talk to the process, so they work while it is hung.
 *
 * Writer: userspace only (the instance's own process), through its mmap.
 * No BPF program reads or writes it. Readers tolerate torn slots: `seq` is
 * odd while a slot is being written, and a reader that sees it odd, or
 * changed across its copy, retries or skips the slot.
 *
 * This is a view, not the fast path's contract: the fast path's conn_hash /
 * conn_state (contract.h) are owned by the classifier and have different
 * writers. A free slot has state FERRY_CONN_FREE and every field zero but
 * `seq`, which keeps counting across the slot's flows (a reader's copy that
 * straddles a removal sees it change).
 */
#ifndef FERRY_CONN_VIEW_H
#define FERRY_CONN_VIEW_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define FERRY_CONN_VIEW_REFRESH_MS 250

/* ferry_conn_view.state (mirrors ferry::TcpState). */
enum ferry_conn_view_state {
	FERRY_CONN_FREE = 0,
	FERRY_CONN_CONNECTING = 1, /* guest SYN seen, host connect() pending */
	FERRY_CONN_SYN_RCVD = 2,   /* SYN-ACK sent to the guest */
	FERRY_CONN_SYN_SENT = 3,   /* inbound: SYN sent to the guest */
	FERRY_CONN_ESTABLISHED = 4,
};

/* ferry_conn_view.flags */
#define FERRY_CONN_F_INBOUND 0x01   /* accepted on a -t forward */
#define FERRY_CONN_F_GUEST_FIN 0x02 /* guest sent FIN */
#define FERRY_CONN_F_HOST_EOF 0x04  /* host peer closed its side */
#define FERRY_CONN_F_FIN_SENT 0x08  /* our FIN went to the guest */

struct ferry_conn_view {
	__u32 seq;           /* odd while being written */
	__u8 state;          /* enum ferry_conn_view_state */
	__u8 family;         /* AF_INET (2) / AF_INET6 (10) */
	__u8 flags;          /* FERRY_CONN_F_* */
	__u8 snd_shift;      /* guest's window scale */
	__u8 guest_addr[16]; /* IPv4 as ::ffff:a.b.c.d, network order */
	__u8 peer_addr[16];  /* as the guest sees it */
	__be16 guest_port;
	__be16 peer_port;
	__u32 snd_una;       /* oldest byte to the guest not yet ACKed */
	__u32 snd_nxt;       /* next byte to the guest */
	__u32 rcv_nxt;       /* next byte expected from the guest */
	__u32 snd_wnd;       /* guest's window, scaled, bytes */
	__u32 rcv_wnd;       /* window we advertise to the guest, bytes */
	__u16 mss;           /* segment size toward the guest */
	__u16 pad0;          /* zero */
	__u32 pad1;          /* zero; keeps the u64 below aligned without a hole */
	__u64 last_activity_ns; /* CLOCK_MONOTONIC of the last segment */
};

#ifdef __cplusplus
static_assert(sizeof(struct ferry_conn_view) == 80, "ferry_conn_view layout");
#else
_Static_assert(sizeof(struct ferry_conn_view) == 80, "ferry_conn_view layout");
#endif

#endif /* FERRY_CONN_VIEW_H */
