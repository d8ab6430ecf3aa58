// Constants and small helpers shared by the files that define
// TcpTranslator (tcp_translator.cc, tcp_handshake.cc, tcp_input.cc,
// tcp_output.cc, tcp_emit.cc, tcp_timers.cc, tcp_fastpath.cc). Private to
// userspace/tcp: nothing outside includes it.
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "codec/addr.h"
#include "codec/frame.h"
#include "tcp/tcp_conn.h"
#include "tcp/tcp_seq.h"

namespace ferry::tcp_detail {

namespace seq = tcpseq;

// The connection's flag bits under one spelling: tcpconn::k* (tcp_conn.h).
using namespace ::ferry::tcpconn;

// SACK (RFC 2018) is offered so that, with out-of-order guest data held for
// reassembly, the guest learns of every hole at once: measured with 5 %
// loss at MTU 1500, a guest without it recovers one hole per round trip
// (plus RTOs) and a 16 MiB upload does not finish in 100 s. The guest's
// SACK blocks drive our own loss recovery (congestion.h, tcp_output.cc).
inline constexpr bool kOfferSack = true;

inline constexpr uint64_t kListenerBit = uint64_t{1} << 55;
inline constexpr uint32_t kGenMask = 0xffffff;
inline constexpr uint32_t kDefaultMss = 536;  // RFC 9293 §3.7.1 when the guest sent none
// How long an ACK of a small guest request may wait for the host's answer
// to carry it (RFC 1122 §4.2.3.2 allows up to 500 ms; the guest's stack is
// one hop away, so its RTO and loss probes are far beyond this).
inline constexpr uint64_t kDelayedAckNs = 1'000'000;
// Tail-loss probe timeout (RFC 8985 7.2): 2 SRTT, but at least
// Timeouts::min_probe_ns (tcp_translator.h), plus the guest's worst-case
// delayed ACK when a single segment is in flight (its ACK may wait for a
// second one; RFC 8985's WCDelAckT).
inline constexpr uint64_t kWorstDelayedAckNs = 200'000'000;
inline constexpr uint32_t kMinMss = 88;  // as Linux's TCP_MIN_MSS: a hostile guest's MSS 1
inline constexpr uint32_t kBaseEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;
// Largest super-segment payload: an IPv4 packet's 65535 bytes less headers.
inline constexpr uint32_t kMaxSuperSegment = 65535 - 20 - 20;

// Our MSS for a family: the guest MTU less IP and TCP headers.
inline uint32_t our_mss(unsigned mtu, bool v6) {
  long m = static_cast<long>(mtu) - static_cast<long>(v6 ? kIpv6HeaderLen : kIpv4HeaderLen) -
           static_cast<long>(kTcpHeaderLen);
  if (m < static_cast<long>(kMinMss)) m = kMinMss;
  // The IP length fields bound a segment: 16 bits of total length (IPv4,
  // headers included) or of payload length (IPv6, its header excluded).
  long cap = v6 ? 65535 - static_cast<long>(kTcpHeaderLen)
                : 65535 - static_cast<long>(kIpv4HeaderLen + kTcpHeaderLen);
  if (m > cap) m = cap;
  return static_cast<uint32_t>(m);
}

// setsockopt for an int value; errors are the caller's to ignore.
inline int set_int(int fd, int level, int opt, int v) {
  return setsockopt(fd, level, opt, &v, sizeof(v));
}

// The window we last advertised, unchanged: rcv_adv - rcv_nxt.
inline uint32_t open_window(const TcpConn& c) {
  return seq::gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv - c.rcv_nxt : 0;
}

// RFC 9293 3.10.7.4's first check: is a segment of seg_len (payload plus
// FIN) at sq inside the window we advertised? A zero window takes only an
// empty segment at RCV.NXT, or one with data starting there (trimmed later:
// a zero-window probe is answered with an ACK, its byte not taken).
inline bool segment_acceptable(const TcpConn& c, uint32_t sq, uint32_t seg_len) {
  const uint32_t wnd = open_window(c);
  if (seg_len == 0) return sq == c.rcv_nxt || (wnd > 0 && seq::in_range(sq, c.rcv_nxt, c.rcv_nxt + wnd));
  return sq == c.rcv_nxt ||
         (seq::lt(sq, c.rcv_nxt + std::max<uint32_t>(wnd, 1)) && seq::gt(sq + seg_len, c.rcv_nxt));
}

}  // namespace ferry::tcp_detail
