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
 *   events      ring buffer of struct ferry_event                (BPF writes)
 *   attach_stats per-CPU array, one struct ferry_attach_stats    (BPF writes;
 *               the attach object's only)
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
 * Flows on the fast path at once: conn_hash's and conn_state's entries are
 * min(--max-conns, this). Only bulk flows are published (userspace's rule),
 * so this is far more than a guest moves at once; a flow beyond it stays on
 * the userspace path. conn_state is a preallocated, mmapped array (88 bytes
 * a slot): sized from --max-conns (131072) it was 11 MiB of every
 * instance's memory, most of it never used; at 4096 it is 352 KiB.
 */
#define FERRY_FASTPATH_SLOTS_MAX 4096u

/* conn_hash's and conn_state's entries for a given --max-conns. */
static inline __u32 ferry_fastpath_slots(__u32 max_conns)
{
	return max_conns < FERRY_FASTPATH_SLOTS_MAX ? max_conns : FERRY_FASTPATH_SLOTS_MAX;
}

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

/*
 * The attach object's own per-CPU counters: what crossed the attachment in
 * each direction. X(field) lists them once, as FERRY_STATS_FIELDS does.
 */
#define FERRY_ATTACH_STATS_FIELDS(X)                                           \
	X(from_guest_bytes) /* bytes of frames redirected into the tap */        \
	X(to_guest_frames)  /* frames ferry wrote, sent out of DEV */            \
	X(to_guest_bytes)                                                          \
	X(redirect_failed)  /* bpf_redirect refused (no tap / no DEV) */

struct ferry_attach_stats {
#define FERRY_ATTACH_STATS_DECLARE(name) __u64 name;
	FERRY_ATTACH_STATS_FIELDS(FERRY_ATTACH_STATS_DECLARE)
#undef FERRY_ATTACH_STATS_DECLARE
};

/*
 * Frame classes, as the parser (bpf/parse.h) decides them, each with the
 * counter above that counts it. X(CLASS, field) lists them once: the enum
 * below and the BPF side's per-class counting (bpf/stats.h) are generated
 * from it, so a class cannot be added without its counter. Values start at
 * 1 in this order (0 is never a class).
 */
#define FERRY_FRAME_CLASSES(X)                                                 \
	X(ARP, arp)                                                            \
	X(IPV4_TCP, ipv4_tcp)                                                  \
	X(IPV4_UDP, ipv4_udp)                                                  \
	X(IPV4_ICMP, ipv4_icmp)                                                \
	X(IPV4_OTHER, ipv4_other)                                              \
	X(IPV6_TCP, ipv6_tcp)                                                  \
	X(IPV6_UDP, ipv6_udp)                                                  \
	X(IPV6_ICMP, ipv6_icmp)                                                \
	X(IPV6_OTHER, ipv6_other)                                              \
	X(OTHER, other)                                                        \
	X(MALFORMED, malformed)

enum ferry_frame_class {
	FERRY_CLASS_NONE = 0, /* not a class: the parser always sets one below */
#define FERRY_CLASS_DECLARE(cls, field) FERRY_CLASS_##cls,
	FERRY_FRAME_CLASSES(FERRY_CLASS_DECLARE)
#undef FERRY_CLASS_DECLARE
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

/*
 * ---- Fast path: per-connection shared state -------------------------------
 *
 * conn_hash maps a ferry_conn_key (as seen from the guest: guest = source of
 * the guest's frames) to a slot index; conn_state holds one ferry_conn_slot
 * per index and is memory-mapped by userspace (BPF_F_MMAPABLE), so neither
 * side pays a syscall per update.
 *
 * One writer per field. Userspace owns the slot's life:
 *   publish:  (slot not in conn_hash) zero the whole slot, fill the
 *             userspace fields with gen = previous gen + 1 (never 0), seed
 *             ack_from_guest with snd_una and guest_window with the current
 *             window (the slot is not visible to BPF yet, so this is not a
 *             second writer), store flags with FERRY_SLOT_ELIGIBLE last
 *             (release), then insert the key into conn_hash;
 *   update:   snd_nxt, rcv_nxt, rtt_seq, flags, and wake_room, wake_ack,
 *             stall_epoch (in that order) as the connection moves (plain
 *             32-bit stores; BPF reads each once per frame);
 *   retire:   clear FERRY_SLOT_ELIGIBLE, delete the key from conn_hash,
 *             and only then reuse the index (events carry gen, so a late
 *             event for an old gen is recognised and ignored).
 * BPF writes the "BPF writes" fields of eligible slots only. ACKs that
 * pass to userspace (with data, SYN/FIN/RST, odd options) do not move
 * ack_from_guest: userspace's acknowledged sequence is the later (mod 2^32)
 * of its own snd_una and the slot's ack_from_guest.
 *
 * What the fast path absorbs (consumes after updating the slot): a TCP
 * segment of an eligible slot's flow, untagged, without IPv6 extension
 * headers, whose flags are exactly ACK (ECE/CWR allowed), with no payload, a
 * valid TCP checksum (and IPv4 header checksum, without IPv4 options, unless
 * the guest's stack left it CHECKSUM_PARTIAL, which only TC hooks can see:
 * at XDP every checksum is verified), options none or (with
 * FERRY_SLOT_TIMESTAMPS) only timestamps in a 12-byte block, a sequence
 * number equal to rcv_nxt, and an ACK number in [ack_from_guest, snd_nxt]
 * (modulo 2^32). Everything else passes: in particular the guest's
 * zero-window probes and keep-alives (no payload, sequence rcv_nxt - 1),
 * which userspace must answer with an ACK. Userspace stores rcv_nxt before
 * it acknowledges new guest data, so a stale value is only ever lower
 * (such ACKs pass, never wrongly absorbed).
 * An ACK equal to ack_from_guest, with the same window, while data is
 * outstanding (ack != snd_nxt), is a duplicate ACK.
 *
 * Wake-ups: userspace learns what BPF absorbed when it next looks at the
 * slot (a fold: a guest segment it handles, a host socket event, a timer);
 * there is no periodic scan. It is woken through `events` only when it must
 * act:
 *  - FIN_ACKED: everything including our FIN acknowledged (once per gen);
 *  - FAST_RETRANSMIT: the third duplicate ACK (once per duplicate run);
 *  - WINDOW_OPEN: after userspace armed a wake-up by bumping stall_epoch,
 *    on the first absorbed ACK that makes ferry_wake_due() true (once per
 *    epoch): the room it leaves (ack + window - snd_nxt) is > 0 and at
 *    least wake_room, or the ACK moves ack_from_guest to or past wake_ack.
 *    Userspace arms it when its sender stopped: on the guest's window
 *    (wake_room: a share of the window it stalled on; wake_ack = snd_nxt,
 *    everything acknowledged), or with its host socket's queue holding only
 *    bytes in flight (wake_room = FERRY_WAKE_ROOM_NONE; wake_ack: a share of
 *    them acknowledged, which frees that much of the queue for the host's
 *    sender, or all of them for a small flight). A window that grew meanwhile
 *    can never spend a FERRY_WAKE_ROOM_NONE wake-up while the bytes below
 *    wake_ack remain unacknowledged.
 * Userspace writes wake_room and wake_ack before it bumps stall_epoch.
 * No lost wake-up (Dekker): BPF stores ack_from_guest and guest_window,
 * then a fully ordered atomic (the acks_absorbed increment), then loads
 * stall_epoch and decides; userspace stores stall_epoch, then a full fence,
 * then loads ack_from_guest and guest_window and applies ferry_wake_due()
 * itself. Whichever of the two comes second sees the other's write, so an
 * ACK racing with the arming is either posted or seen by userspace (both
 * is harmless: a wake-up finding nothing new does nothing). Only a full
 * ring loses a WINDOW_OPEN (counted in events_dropped; the epoch stays
 * armed, so the next absorbed ACK posts again); userspace keeps its
 * retransmission or persist timer running while it waits, and that timer
 * folds first, so nothing waits longer than it.
 *
 * RTT: calling the clock for every ACK would be a third of the fast path's
 * cost, so BPF stamps only the ACK userspace times: rtt_seq is the end of
 * the segment the translator times, and the absorbed ACK that first moves
 * ack_from_guest to or past it stores its arrival in rtt_ack_ns (before the
 * ACK itself; read after it, it is that ACK's). A stamp from an earlier
 * rtt_seq is older than the segment timed now, and userspace takes no
 * sample from it.
 */
#define FERRY_WAKE_ROOM_NONE 0xffffffffu /* wake_room: no room suffices, only wake_ack wakes */

#define FERRY_SLOT_ELIGIBLE (1u << 0)    /* BPF may absorb this flow's pure ACKs */
#define FERRY_SLOT_TIMESTAMPS (1u << 1)  /* timestamps negotiated: TS-only ACKs ok */
#define FERRY_SLOT_FIN_PENDING (1u << 2) /* our FIN is sent (counted in snd_nxt) */

/*
 * The WINDOW_OPEN rule, for BPF (on each absorbed ACK of an armed slot) and
 * userspace (after it armed): ack moves the guest's acknowledged sequence
 * from una (the slot's ack_from_guest before it) with window win (scaled).
 */
static inline int ferry_wake_due(__u32 ack, __u32 una, __u32 win, __u32 snd_nxt,
				 __u32 wake_room, __u32 wake_ack)
{
	/* modulo 2^32: room in 1..2^31-1 is "> 0"; ack - wake_ack below
	 * 2^31 is "ack at or after wake_ack" (no casts: C++ includes this) */
	__u32 room = ack + win - snd_nxt;

	if (room - 1u < 0x7fffffffu && room >= wake_room)
		return 1;
	return ack != una && ack - wake_ack < 0x80000000u;
}

struct ferry_conn_slot {
	/* ---- userspace writes ---- */
	__u32 gen;          /* slot generation, != 0 while in use */
	__u32 flags;        /* FERRY_SLOT_* */
	__u32 snd_nxt;      /* next sequence number ferry sends to the guest */
	__u32 stall_epoch;  /* bumped when the sender stalls on the guest's window */
	__u8 guest_wscale;  /* the guest's window scale (0..14) */
	__u8 state;         /* userspace's TCP state, informational */
	__u16 mss;          /* informational */
	__u32 wake_room;    /* WINDOW_OPEN: this much room (bytes) wakes; 0 = any */
	__u32 rcv_nxt;      /* next sequence number expected from the guest */
	__u32 wake_ack;     /* WINDOW_OPEN: an ACK moving to or past this wakes */
	__u32 rtt_seq;      /* the timed segment's end: its ACK's arrival is stamped */
	/* ---- BPF writes ---- */
	__u32 ack_from_guest;   /* highest ACK absorbed (seeded at publish) */
	__u32 guest_window;     /* last window, scaled, in bytes */
	__u32 dup_acks;         /* consecutive duplicate ACKs */
	__u32 ts_recent;        /* last TSval from the guest (with timestamps) */
	__u32 stall_epoch_done; /* stall_epoch whose WINDOW_OPEN was posted */
	__u32 fin_gen_done;     /* gen whose "all acked, FIN pending" was posted */
	__u64 rtt_ack_ns;       /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) of the absorbed ACK
				 * that first reached rtt_seq; stored before ack_from_guest */
	__u64 acks_absorbed;    /* per-slot counter; its atomic increment orders the
				 * slot's stores before the wake-up decision */
	__u64 events_posted;    /* per-slot counter */
};

/* Ring-buffer record kinds (struct ferry_event.kind). */
enum ferry_event_kind {
	FERRY_EV_WINDOW_OPEN = 1, /* stalled (stall_epoch bumped) and the window reopened */
	FERRY_EV_FAST_RETRANSMIT, /* third duplicate ACK */
	FERRY_EV_FIN_ACKED,       /* everything up to snd_nxt acked while FIN pending */
};

struct ferry_event {
	__u32 slot;
	__u32 gen;      /* the slot's gen when posted */
	__u32 kind;     /* enum ferry_event_kind */
	__u32 ack;      /* the ACK that triggered it */
	__u32 window;   /* scaled guest window, bytes */
	__u32 dup_acks;
	__u64 time_ns;  /* bpf_ktime_get_ns() when posted */
};

/* events ring buffer size (bytes, power of two). */
#define FERRY_EVENTS_RING_BYTES (256u * 1024u)

#endif /* FERRY_CONTRACT_H */
