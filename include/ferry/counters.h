/* SPDX-License-Identifier: MIT */
/*
 * The userspace translator's counters, one X-macro list per family: the one
 * place their names are written. The C++ structs that hold them (uint64_t
 * fields), the counters file a running instance writes once a second
 * (tools/ferry/counters_file.cc; read by `ferry stats`, `ferry status` and
 * the CNI plugin), the fast path's log line and the tests are generated
 * from these lists, so a counter cannot be added to one and missed by
 * another. The BPF side's lists (FERRY_STATS_FIELDS,
 * FERRY_ATTACH_STATS_FIELDS) are in contract.h.
 *
 * X(field, where): `where` is `published` when the counter is a line of the
 * counters file, keyed PREFIX + field (the prefix is the family's, below;
 * e.g. tcp_retransmits), or `internal` when it lives in memory only (tests,
 * -v logs). Published names are a stable interface: never rename one.
 */
#ifndef FERRY_COUNTERS_H
#define FERRY_COUNTERS_H

/* Translator::Counters, prefix "": guest frames as dispatched. */
#define FERRY_TRANSLATOR_COUNTERS(X)                                           \
	X(frames, published)                                                   \
	X(malformed, published)       /* failed parse_frame() */              \
	X(not_for_us, published)      /* wrong destination MAC, multicast MAC source, VLAN tag */ \
	X(unhandled, published)       /* well-formed, of no protocol we translate */ \
	X(protocol_unreachable, published) /* ... to the gateway, answered: protocol unreachable / parameter problem */ \
	X(fragmented, internal)       /* frames to the guest above its MTU, sent as IP fragments */ \
	X(held_for_mac, published)    /* frames that waited for the guest's MAC */ \
	X(held_dropped, published)    /* ... and were dropped (too big, pushed out, too old) */ \
	X(partial_checksums, published) /* TCP/UDP checksums taken in their partial form (ferry attach --hook xdp, driver mode) */

/* PortCounters, prefix "port_": the frame port (tap, stream socket). */
#define FERRY_PORT_COUNTERS(X)                                                 \
	X(rx_frames, published)                                                \
	X(rx_bytes, published)                                                 \
	X(tx_frames, published)                                                \
	X(tx_bytes, published)                                                 \
	X(tx_dropped, published) /* device queue full or error */ \
	X(tx_segments, internal) /* tx_frames with each TCP super-segment counted as its gso segments */

/* TcpTranslator::Counters, prefix "tcp_". */
#define FERRY_TCP_COUNTERS(X)                                                  \
	X(conns_outbound, published)   /* guest SYNs that got a host socket */ \
	X(conns_inbound, published)    /* accepted host connections */         \
	X(conns_established, internal)                                         \
	X(conns_closed, published)     /* slots released, any reason */        \
	X(limit_rejected, internal)    /* table full: RST to the guest / host client */ \
	X(connect_failed, published)   /* refused, unreachable, timed out */   \
	X(rst_to_guest, published)                                             \
	X(rst_from_guest, internal)                                            \
	X(rst_unknown_flow, internal)  /* RSTs for segments of no flow */      \
	X(time_wait_acks, published)   /* ACKs for segments of a flow in TIME-WAIT (the guest's FIN again) */ \
	X(bad_ack_rst, internal)       /* RST for an unacceptable ACK in a SYN state */ \
	X(challenge_acks, published)                                           \
	X(dropped_segments, published) /* out of window, bogus, malformed for TCP */ \
	X(ooo_segments, internal)      /* out of order from the guest (dup ACK sent) */ \
	X(ooo_kept_bytes, internal)    /* ... of which kept for reassembly */  \
	X(ooo_dropped, internal)       /* ... dropped (pool, chunk or ranges exhausted) */ \
	X(bytes_to_host, published)                                            \
	X(bytes_to_guest, published)                                           \
	X(segments_to_guest, internal)                                         \
	X(retransmits, published)      /* segments resent (RTO, fast, partial ACK) */ \
	X(fast_retransmits, published) /* fast recoveries: third duplicate ACK, or SACK */ \
	X(rto_expired, published)                                               \
	X(cwnd_reductions, published)  /* congestion window cut: fast recovery or RTO */ \
	X(cwnd_limited, internal)      /* send_data() stopped by the congestion window */ \
	X(send_deferred, published)    /* send_data() stopped by its per-turn budget with bytes and window left: resumed the next turn */ \
	X(queue_throttled, published)  /* send_data() stopped: the attached tap's queue toward the guest had no room (tapq/) */ \
	X(queue_forced, published)     /* ... a frame sent anyway after waiting 200 ms for room */ \
	X(probe_still_queued, published) /* tail-loss probes and RTOs put off: the flow's last frame still sat unread in that queue */ \
	X(tlp_probes, published)       /* tail-loss probes sent (RFC 8985 7): no ACK for 2 SRTT */ \
	X(tlp_recoveries, published)   /* ... whose answer revealed a loss, repaired without an RTO */ \
	X(lost_retransmits, published) /* recovery: resent bytes lost again (data sent after them SACKed), resent again without an RTO */ \
	X(zero_window_probes, published)                                        \
	X(partial_writes, internal)    /* host socket took less than offered */ \
	X(staged_bytes, internal)      /* bytes that went through staging */   \
	X(stage_exhausted, internal)   /* partial write with no staging chunk free */ \
	X(timeouts, internal)          /* connections ended by a state timeout */ \
	X(guest_tx_dropped, published)  /* send_to_guest() returned false */    \
	X(fast_timer_folds, published) /* absorbed ACKs an expiring retransmission timer folded first (a loss, or a fast-path wake-up that did not come) */ \
	X(fd_exhausted, internal)      /* socket()/accept() failed for lack of descriptors */

/* TapQueueEstimate (userspace/tapq), prefix "tapq_": `ferry attach` on a
 * tap, the estimate of how full its queue toward the guest's reader is. */
#define FERRY_TAP_QUEUE_COUNTERS(X)                                            \
	X(reads, published)       /* readings of the tap's counters (netlink) */ \
	X(read_errors, published) /* ... that failed (the estimate then starts over empty) */ \
	X(rebaselines, published) /* more consumed than written (the host's own frames): absorbed */ \
	X(segmenting, published)  /* decisions that the tap cuts super-segments into gso segments (no TSO: a guest with offloads off) */ \
	X(whole_frames, published) /* ... that it takes them whole (TSO) */ \
	X(releases, published)    /* estimates of a non-empty ring dropped (nothing read or dropped for 1 s) or started over */

/* UdpCounters, prefix "udp_". */
#define FERRY_UDP_COUNTERS(X)                                                  \
	X(guest_datagrams, published)      /* datagrams from the guest handed to on_guest_datagram */ \
	X(host_sent, internal)             /* of those, sent on a host socket */ \
	X(host_received, published)        /* datagrams read from host sockets */ \
	X(guest_sent, internal)            /* frames sent to the guest */      \
	X(flows_opened, published)                                             \
	X(source_port_kept, internal)      /* outbound flows sent from the guest's own source port */ \
	X(source_port_ephemeral, internal) /* outbound flows whose port the host could not bind */ \
	X(flows_expired, internal)         /* idle timeout */                  \
	X(flows_refused, published)        /* new flows refused at the limit (table full, or no descriptor) */ \
	X(unreachable_sent, internal)      /* ICMP errors sent to the guest */ \
	X(dropped, internal)               /* refused destinations, malformed, no socket */ \
	X(too_big, internal)               /* host datagrams larger than an IP packet allows */ \
	X(fragmented, internal)            /* host datagrams sent to the guest as IP fragments */ \
	X(send_errors, internal)           /* host send failures (other than refused) and guest link refusals */

/* services::Dhcp4Counters, prefix "dhcp4_". */
#define FERRY_DHCP4_COUNTERS(X)                                                \
	X(discovers, internal)                                                 \
	X(requests, internal)                                                  \
	X(informs, internal)                                                   \
	X(releases, internal)                                                  \
	X(declines, internal)                                                  \
	X(offers, published)                                                   \
	X(acks, published)                                                     \
	X(naks, published)                                                     \
	X(malformed, published) /* parse_dhcp4() refused it, or it was not to port 67 */ \
	X(ignored, internal)    /* well formed but not ours (relayed, other server, no IPv4) */ \
	X(send_failed, internal)

/* services::RaCounters, prefix "ra_". */
#define FERRY_RA_COUNTERS(X)                                                   \
	X(solicitations, internal) /* valid RS received */                     \
	X(adverts, published)      /* RAs sent (solicited and periodic) */     \
	X(malformed, published)    /* RS failing RFC 4861 6.1.1 */             \
	X(send_failed, internal)

/* services::Dhcp6Counters, prefix "dhcp6_". */
#define FERRY_DHCP6_COUNTERS(X)                                                \
	X(solicits, internal)                                                  \
	X(requests, internal)                                                  \
	X(renews, internal)                                                    \
	X(rebinds, internal)                                                   \
	X(confirms, internal)                                                  \
	X(releases, internal)                                                  \
	X(declines, internal)                                                  \
	X(info_requests, internal)                                             \
	X(advertises, published)                                               \
	X(replies, published)                                                  \
	X(malformed, published) /* failed parse_dhcp6() */                     \
	X(ignored, internal)    /* well formed but invalid for its type, not our server id, no IPv6 */ \
	X(send_failed, internal)

/* services::DnsCounters, prefix "dns_". */
#define FERRY_DNS_COUNTERS(X)                                                  \
	X(queries, published)    /* valid queries relayed (first send) */      \
	X(retries, internal)     /* guest retransmissions sent to the next upstream */ \
	X(answers, published)    /* answers relayed to the guest */            \
	X(malformed, published)  /* queries failing check_dns_query */         \
	X(table_full, published) /* queries dropped: kMaxInFlight in flight */ \
	X(timeouts, published)   /* slots expired unanswered */                \
	X(stray, internal)       /* host datagrams matching no query in flight */ \
	X(send_failed, internal) /* host sendto or guest link refused */

/* AutoForward::Counters, prefix "auto_": -t/-u auto (ferry run), the
 * guest's listening sockets followed (userspace/autofwd/). */
#define FERRY_AUTO_FORWARD_COUNTERS(X)                                         \
	X(scans, published)           /* rounds that read the guest's socket tables */ \
	X(scan_errors, published)     /* rounds skipped: a table could not be read */ \
	X(malformed_lines, published) /* table lines that did not parse (skipped) */ \
	X(opened, published)          /* host forwards opened (port and protocol) */ \
	X(closed, published)          /* ... closed: the guest stopped listening */ \
	X(open_failed, published)     /* attempts the host refused (privileged port, in use) */

/* NsTcpRelay::Counters (userspace/nsfwd), prefix "ns_tcp_": ferry run -T,
 * the guest's loopback connections relayed to the host's loopback. */
#define FERRY_NS_TCP_COUNTERS(X)                                               \
	X(accepted, published)       /* guest connections taken on */          \
	X(refused_full, published)   /* reset: the table was full */           \
	X(connect_failed, published) /* reset: the host's port refused (or another connect error) */ \
	X(reset, published)          /* ended by an error on either side */    \
	X(closed, published)         /* ended by both sides' end of stream */  \
	X(bytes_to_host, published)                                            \
	X(bytes_to_guest, published)

/* NsUdpRelay::Counters (userspace/nsfwd), prefix "ns_udp_": ferry run -U. */
#define FERRY_NS_UDP_COUNTERS(X)                                               \
	X(flows_opened, published)                                             \
	X(flows_closed, published)   /* idle */                                \
	X(dropped_full, published)   /* a new source's datagram: table full or no descriptor */ \
	X(send_errors, published)    /* a datagram the host's (or the guest's) socket refused */ \
	X(host_errors, published)    /* ICMP errors read on a flow (port unreachable) */ \
	X(datagrams_to_host, published)                                        \
	X(datagrams_to_guest, published)                                       \
	X(bytes_to_host, published)                                            \
	X(bytes_to_guest, published)

/* GatewayCounters (userspace/gateway), prefix "gateway_": what the
 * gateway answered itself (ARP, NDP, ICMP echo to its addresses) and the
 * guest's ICMP echo flows to other hosts. */
#define FERRY_GATEWAY_COUNTERS(X)                                              \
	X(arp_replies, published)                                              \
	X(arp_ignored, published)    /* probes, gratuitous, replies, own address */ \
	X(ndp_adverts, published)                                              \
	X(ndp_ignored, published)    /* DAD, router solicitations, own address, other NDP */ \
	X(echo_replies, published)   /* answered by ferry (gateway address) */ \
	X(echo_forwarded, published) /* guest echo requests sent from a host socket */ \
	X(echo_refused, published)   /* refused by the destination policy (answered "prohibited") */ \
	X(echo_relayed, published)   /* host echo replies relayed to the guest */ \
	X(echo_expired, published)   /* echo flows closed by the idle timeout or evicted */ \
	X(icmp_ignored, published)   /* well-formed ICMP we have no business with (MLD, errors, replies) */ \
	X(dropped, published)        /* malformed, invalid or unsupported */   \
	X(send_failed, published)    /* GuestLink refused a frame, or a host send failed */ \
	X(solicits, published)       /* ARP requests / neighbour solicitations for the guest's MAC */

/* FastPathBridge::Counters: the TCP fast path's userspace side, printed
 * (every one, in this order) by its -v line at exit; not in the file. */
#define FERRY_FASTPATH_BRIDGE_COUNTERS(X)                                      \
	X(published, internal)                                                 \
	X(retired, internal)                                                   \
	X(publish_failed, internal)                                            \
	X(no_slot, internal)       /* publish found every map slot taken */    \
	X(event_wakeups, internal) /* ring-buffer readiness handled */         \
	X(events, internal)        /* records consumed */                      \
	X(window_open, internal)                                               \
	X(fast_retransmit, internal)                                           \
	X(fin_acked, internal)                                                 \
	X(stale_events, internal)  /* for a retired flow or an older gen */    \
	X(folds, internal)         /* progress() that found new absorbed ACKs */ \
	X(stalls, internal)        /* stall(): on the guest's window */        \
	X(cwnd_stalls, internal)   /* stall(): on the congestion window */     \
	X(stall_open, internal)    /* stall() found the window already open */ \
	X(drained, internal)       /* drained(): wake-ups armed for ACKs of a dry socket's bytes */

#ifdef __cplusplus
/* One `uint64_t field = 0;` per entry: a counter struct's body. */
#define FERRY_COUNTER_DECLARE(field, where) uint64_t field = 0;
#endif

#endif /* FERRY_COUNTERS_H */
