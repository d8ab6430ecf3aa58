// TCP translator, input: a guest segment on an ESTABLISHED flow, its ACK,
// and its data into the host socket.
//
// Theory of operation
// -------------------
// segment_established() checks a segment in RFC 9293 §3.10.7.4's order:
// sequence number (acceptable, else an ACK), RST (RFC 5961: exact resets,
// in-window gets a challenge ACK), SYN (challenge ACK), ACK (one below
// SND.UNA - MAX.SND.WND: dropped with a challenge ACK, RFC 5961 5.2; only
// one of SND.UNA or beyond moves the window), data, FIN.
// What lies beyond the right edge we advertised (rcv_adv) is trimmed.
//
// process_ack() is the only writer of what the guest acknowledged, its
// window and the duplicate-ACK count: ACKed bytes are discarded from the
// host socket (recv MSG_TRUNC: snd_una is the queue's head), RTT is sampled
// (Karn), the guest's SACK blocks go to the scoreboard, acknowledged bytes
// grow the congestion window (congestion.h), the third duplicate or more
// than two MSS SACKed start loss recovery (start_recovery), and a partial
// ACK marks the next segment lost (RFC 6582). The BPF fast path absorbs
// pure ACKs in its place; fast_fold() replays what it absorbed through
// here, so cwnd grows by the bytes of a fold (RFC 3465).
//
// guest_data(): in-order payload is written with send(MSG_DONTWAIT) and
// ACKed at the batch end, or up to 1 ms later on the host's answer
// (ack_later). A partial write stages the tail (guest_rx_buffers.h) and
// ACKs the whole segment; while bytes are staged, new data is appended
// behind them; staged bytes drain on EPOLLOUT (flush_stage). Out-of-order
// data goes to the reassembly ring and gets a duplicate ACK (with SACK
// blocks); once the hole is filled, flush_ooo() writes the run at once.
// A guest FIN shuts the host socket's write side once nothing is staged.
//
// Any hard socket error resets both sides (reset_both); the slot is then
// free (c.state == TcpState::free) and callers stop there.
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "tcp/tcp_internal.h"
#include "tcp/tcp_translator.h"

namespace ferry {

using namespace tcp_detail;

// ESTABLISHED (and half-closed): RFC 9293 §3.10.7.4 in order: sequence
// check, RST, SYN, ACK, data, FIN.
void TcpTranslator::segment_established(uint32_t slot, const ParsedFrame& f,
                                        std::span<const uint8_t> frame) {
  TcpConn& c = conns_[slot];
  uint8_t fl = f.tcp.flags;
  uint32_t sq = f.tcp.seq;
  uint64_t now = now_ns();
  c.last_activity = now;
  if (fl & tcpflag::kRst) return guest_rst(slot, sq);
  std::span<const uint8_t> payload = frame.subspan(f.tcp.payload_offset, f.tcp.payload_len);
  bool fin = (fl & tcpflag::kFin) != 0;
  uint32_t seg_len = static_cast<uint32_t>(payload.size()) + (fin ? 1u : 0u);
  if (!segment_acceptable(c, sq, seg_len)) {
    // Old duplicates (the guest missed our ACK), probes, out of window.
    counters_.dropped_segments++;
    send_ack_now(slot);
    return;
  }
  if (fl & tcpflag::kSyn) {
    counters_.challenge_acks++;  // RFC 5961 §4
    send_ack_now(slot);
    return;
  }
  if (!(fl & tcpflag::kAck)) {
    counters_.dropped_segments++;
    return;
  }
  // RFC 9293 3.10.7.4: what lies beyond the window's right edge (rcv_adv)
  // is trimmed, a FIN there too; a zero-window probe is thus not taken.
  const uint32_t edge = seq::gt(c.rcv_adv, c.rcv_nxt) ? c.rcv_adv : c.rcv_nxt;
  const bool trimmed = seq::gt(sq + seg_len, edge);
  if (trimmed) {
    payload = payload.first(seq::gt(edge, sq) ? std::min<size_t>(edge - sq, payload.size()) : 0);
    fin = false;
  }
  fast_fold(slot);  // absorbed ACKs first: this one may duplicate them
  // RFC 5961 5.2: an ACK below SND.UNA - MAX.SND.WND is no ACK the guest
  // could have sent lately (a blind injection guessing the sequence
  // number): the segment is dropped, its data not delivered, and a
  // challenge ACK tells a real guest where we are (as Linux does).
  if (seq::lt(f.tcp.ack, c.snd_una - c.max_snd_wnd)) {
    counters_.challenge_acks++;
    send_ack_now(slot);
    return;
  }
  bool pure = seg_len == 0;
  seg_len = static_cast<uint32_t>(payload.size()) + (fin ? 1u : 0u);
  uint32_t wnd_before = c.snd_una + c.snd_wnd;
  if (!process_ack(slot, sq, f.tcp.ack, f.tcp.window, pure, now_ns(), &f.tcp.opts)) {
    send_ack_now(slot);  // ACK of data never sent
    return;
  }
  if (c.state != TcpState::established) return;
  if (seg_len > 0) {
    guest_data(slot, sq, payload, fin);
    if (c.state != TcpState::established) return;
  }
  if (trimmed) send_ack_now(slot);  // tell the guest at once where the window ends
  uint32_t wnd_after = c.snd_una + c.snd_wnd;
  // A closed window with nothing in flight also goes to send_data(): it arms
  // the persist timer and the fast path's wake-up (a recovery that ends on
  // a zero window left the flow published with neither, and the guest's
  // window update, absorbed by BPF, then woke nobody).
  const bool closed_idle = c.snd_wnd == 0 && c.snd_una == c.snd_max && c.rtx_at == 0;
  // In loss recovery every ACK may let a repair or new data go (cwnd).
  if (seq::gt(wnd_after, wnd_before) || seq::gt(wnd_after, c.snd_nxt) ||
      (c.flags & kFinSent) || closed_idle || c.in_recovery)
    send_data(slot);
  if (c.state == TcpState::established) maybe_finish(slot);
}

// RFC 5961 §3 for every synchronized state (and CONNECTING, where the
// SYN's own sequence number also counts as exact): the exact next sequence
// number resets the flow (the host peer gets a RST too), one elsewhere in
// the window we advertised gets a challenge ACK, anything else is ignored.
void TcpTranslator::guest_rst(uint32_t slot, uint32_t sq) {
  const TcpConn& c = conns_[slot];
  if (sq == c.rcv_nxt || (c.state == TcpState::connecting && sq == c.irs)) {
    counters_.rst_from_guest++;
    release(slot, true, "guest-reset");
  } else if (seq::in_range(sq, c.rcv_nxt, c.rcv_adv)) {  // empty while CONNECTING
    counters_.challenge_acks++;
    send_ack_now(slot);
  }
}

// ACK and window from the guest: advances snd_una (discarding ACKed bytes
// from the host socket), samples RTT (Karn) from when the ACK arrived
// (arrived_ns; 0 = unknown, no sample: an ACK the fast path absorbed long
// before it is folded must not teach the estimator the delay), counts
// duplicate ACKs (fast retransmit at three, NewReno partial ACKs), updates
// the send window.
// A duplicate is an ACK of snd_una, without data, with data outstanding,
// and either the same window (RFC 5681 2) or, when it carries SACK blocks,
// bytes SACKed that were not before (RFC 6675 2; a D-SACK alone reports a
// duplicate segment, not a loss, and does not count): a
// Linux guest's window grows with each segment it queues behind a hole
// (receive autotuning), so the window test alone never counted its
// duplicates and every loss waited for the RTO (issue 19).
bool TcpTranslator::process_ack(uint32_t slot, uint32_t sq, uint32_t ack, uint16_t raw_window,
                                bool pure_ack, uint64_t arrived_ns, const TcpOptions* opts) {
  TcpConn& c = conns_[slot];
  if (seq::gt(ack, c.snd_max)) return false;
  uint32_t wnd = static_cast<uint32_t>(raw_window) << c.snd_shift;
  uint64_t now = now_ns();
  const bool sack = opts != nullptr && opts->has_sack_blocks;
  bool probe_loss = false, probe_dsack = false;
  // The last retransmission of this recovery as it was before this ACK
  // (the rule below may end the fence).
  const bool fenced = c.in_recovery && c.rtx_fenced;
  const uint32_t fence = c.rtx_fence, last_rtx = c.rtx_last;
  const uint32_t sacked_before = c.sacks.sacked_bytes();
  if (sack) {
    const uint32_t una = seq::max(ack, c.snd_una);
    for (uint8_t i = 0; i < opts->sack_count && i < 4; i++)
      c.sacks.add(opts->sack[i][0], opts->sack[i][1], una, c.snd_max);
    // In recovery, holes below a newly SACKed byte are lost too.
    if (c.in_recovery) c.lost_end = seq::max(c.lost_end, c.sacks.high(una));
    if (c.tlp != kTlpNone) {
      // The guest holds bytes at or above the loss probe: what lies below
      // it unSACKed went a PTO earlier on a FIFO link, lost (tcp_timers.cc).
      probe_loss = c.tlp != kTlpRecovery && seq::gt(c.sacks.high(una), c.tlp_seq);
      // A D-SACK (RFC 2883: the first block below the ACK, or inside the
      // second) of the probe's bytes: the probe was a duplicate.
      const uint32_t s0 = opts->sack[0][0], e0 = opts->sack[0][1];
      const bool dsack = seq::le(e0, ack) || (opts->sack_count > 1 && seq::ge(s0, opts->sack[1][0]) &&
                                              seq::le(e0, opts->sack[1][1]));
      probe_dsack = dsack && seq::lt(s0, c.tlp_end) && seq::gt(e0, c.tlp_seq);
    }
    // RFC 8985 6 for retransmissions, on a FIFO link: the guest SACKed a
    // byte first sent after our last retransmission (at or above the
    // fence), or that retransmission itself (the last of a pass, which
    // resends in ascending order: a tail with no new data behind it), so
    // the resent bytes below rtx_nxt it still lacks are lost again:
    // repair() resends them now, not after the RTO.
    uint32_t hole = 0, sacked_end = 0;
    if (c.in_recovery && c.rtx_fenced &&
        (seq::gt(c.sacks.high(una), c.rtx_fence) || c.sacks.covers(c.rtx_last, &sacked_end)) &&
        c.sacks.next_hole(una, seq::max(c.rtx_nxt, una), &hole) > 0) {
      count_recovery_event(c, RecoveryEvent::lost_retransmit);
      c.rtx_nxt = una;
      c.rtx_fenced = false;
    }
  }
  if (seq::gt(ack, c.snd_una)) {
    const uint32_t flight = c.snd_max - c.snd_una;
    const uint32_t newly = ack - c.snd_una;
    uint32_t acked = newly;
    if ((c.flags & kFinSent) && seq::gt(ack, c.fin_seq)) {
      acked--;  // the FIN is not a byte in the socket
      c.flags |= kFinAcked;
    }
    while (acked > 0) {
      ssize_t r = recv(c.fd, nullptr, acked, MSG_TRUNC | MSG_DONTWAIT);
      if (r <= 0) break;
      acked -= static_cast<uint32_t>(std::min<ssize_t>(r, acked));
    }
    c.snd_una = ack;
    c.sacks.prune(ack);
    if (seq::lt(c.snd_nxt, c.snd_una)) c.snd_nxt = c.snd_una;
    if (c.snd_una == c.snd_max && pure_ack) {
      // The socket's queue may now be empty: have its kernel ACK the host's
      // sender now, not at its delayed-ACK timer (40 ms), which a sender
      // holding a small segment (Nagle) or out of send buffer waits for.
      // Not when guest data comes with this ACK: what we write to the host
      // next carries the ACK (a request/response flow would otherwise cost
      // the host an extra pure ACK per exchange: +10 us pinned RR).
      set_int(c.fd, IPPROTO_TCP, TCP_QUICKACK, 1);
    }
    if (c.rtt_active && seq::ge(ack, c.rtt_seq)) {
      if (arrived_ns >= c.rtt_start && arrived_ns != 0) c.rto.sample(arrived_ns - c.rtt_start);
      c.rtt_active = false;
    }
    c.retries = 0;
    c.rto.reset_backoff();
    c.dupacks = 0;
    if (c.in_recovery && seq::lt(ack, c.recover)) {
      // Partial ACK (RFC 6582): the segment at snd_una is lost too, unless
      // this recovery resent it already; repair() resends it. cwnd grows
      // only in slow start after an RTO.
      c.rtx_nxt = seq::max(c.rtx_nxt, c.snd_una);
      c.lost_end = seq::max(c.lost_end, c.snd_una + send_unit(c));
      if (c.rto_recovery) c.cc.on_ack(newly, flight);
    } else if (c.in_recovery) {
      c.in_recovery = false;  // the recovery point is acknowledged
      if (c.rto_recovery)
        c.cc.on_ack(newly, flight);  // slow start goes on
      else
        c.cc.exit_recovery(c.snd_max - c.snd_una);
      c.rto_recovery = false;
    } else {
      c.cc.on_ack(newly, flight);
    }
    if (c.tlp == kTlpRecovery) c.tlp = kTlpNone;  // progress: the recovery probe may go again
    if (c.tlp != kTlpNone && seq::ge(ack, c.tlp_end)) probe_answered(c, flight, probe_dsack);
    c.rtx_at = (c.snd_una == c.snd_max) ? 0 : now + c.rto.rto();
    c.probe_at = probe_deadline(c, now);
    update_timer(slot);
  } else if (ack == c.snd_una && pure_ack && c.snd_max != c.snd_una &&
             (sack ? c.sacks.sacked_bytes() > sacked_before : wnd == c.snd_wnd)) {
    if (c.dupacks < 255) c.dupacks++;
  }
  // RFC 8985 6.2 on a FIFO link (reordering window 0): the guest holds the
  // last retransmission (ACKed or SACKed), so every byte first sent before
  // it (below the fence) that it still lacks is lost, not only the
  // segment a partial ACK names (RFC 6582). Seen in the tap soak: the tail
  // of a download's first transmissions lost behind the hole, the hole's
  // repair ACKed, and with pipe still counting that tail above cwnd nothing
  // went until the RTO (200 ms).
  uint32_t last_end = 0;
  if (fenced && c.in_recovery && c.snd_una != c.snd_max &&
      (seq::gt(c.snd_una, last_rtx) || c.sacks.covers(last_rtx, &last_end)))
    c.lost_end = seq::max(c.lost_end, seq::min(fence, c.snd_max));
  // Loss (RFC 6675 5): three duplicates, or more than two MSS SACKed above
  // snd_una (a tap does not reorder; one SACKed super-segment is enough).
  if (!c.in_recovery && c.snd_una != c.snd_max &&
      (c.dupacks >= 3 || c.sacks.sacked_bytes() > 2u * c.mss || probe_loss)) {
    count_recovery_event(c, probe_loss ? RecoveryEvent::tlp_recovery : RecoveryEvent::fast_recovery);
    start_recovery(slot, false, false);  // synced below
  }
  // The window moves only with an ACK of SND.UNA or beyond (RFC 9293
  // 3.10.7.4): an old ACK's window was measured from an older left edge.
  if (seq::ge(ack, c.snd_una) &&
      (seq::lt(c.snd_wl1, sq) || (c.snd_wl1 == sq && seq::le(c.snd_wl2, ack)))) {
    if (c.snd_wnd == 0 && wnd > 0 && c.snd_una == c.snd_max) {
      // The zero window reopens: the persist probes' back-off ends with it
      // (RFC 6298 5.7; Linux's tcp_ack_probe), or the data sent next is
      // timed by it, and a burst whose tail a full tap queue dropped waited
      // up to 60 s for its first repair (issue 19).
      c.rto.reset_backoff();
      c.retries = 0;
    }
    c.snd_wnd = wnd;
    c.max_snd_wnd = std::max(c.max_snd_wnd, wnd);
    c.snd_wl1 = sq;
    c.snd_wl2 = ack;
  }
  sync_fast_path(slot, c.snd_max);  // recovery moves it off/on the fast path
  return true;
}

// Guest payload (and FIN) at sq: in-order bytes go to the host socket.
void TcpTranslator::guest_data(uint32_t slot, uint32_t sq, std::span<const uint8_t> payload,
                               bool fin) {
  TcpConn& c = conns_[slot];
  uint32_t end = sq + static_cast<uint32_t>(payload.size());
  if (c.flags & kGuestFin) {
    send_ack_now(slot);  // retransmitted FIN or data after FIN: re-ACK
    return;
  }
  if (seq::gt(sq, c.rcv_nxt)) {
    counters_.ooo_segments++;
    if (!payload.empty()) {  // a FIN here is not kept: it comes again
      size_t kept = rx_.ooo_store(c, sq, payload);
      if (kept)
        counters_.ooo_kept_bytes += kept;
      else
        counters_.ooo_dropped++;
    }
    send_dup_ack(slot);  // the guest fast-retransmits after three
    return;
  }
  if (seq::lt(end, c.rcv_nxt) || (end == c.rcv_nxt && !fin)) {
    send_ack_now(slot);  // entirely old
    return;
  }
  payload = payload.subspan(c.rcv_nxt - sq);
  if (!payload.empty()) {
    if (!flush_stage(slot) && c.state == TcpState::free) return;
    size_t accepted = write_to_host(slot, payload);
    if (c.state == TcpState::free) return;
    c.rcv_nxt += static_cast<uint32_t>(accepted);
    c.rcv_data_at = now_ns();
    if (accepted < payload.size()) {
      send_ack_now(slot);
      return;
    }
    if (c.ooo && !c.stage && !fin) {
      if (!flush_ooo(slot)) return;  // the hole is filled: out-of-order data follows
    }
  }
  if (fin) return guest_fin(slot);
  ack_later(slot);
}

// In-order bytes to the host socket, or behind bytes still staged; the
// unwritten tail of a partial write is staged when a chunk is free. Returns
// how many bytes were taken (written or staged); the flow may be reset.
size_t TcpTranslator::write_to_host(uint32_t slot, std::span<const uint8_t> payload) {
  TcpConn& c = conns_[slot];
  if (GuestRxBuffers::staged(c) > 0) {  // an earlier tail still waits: behind it
    size_t taken = rx_.stage_append(c, payload);
    counters_.staged_bytes += taken;
    return taken;
  }
  ssize_t n = send(c.fd, payload.data(), payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      reset_both(slot, "host-error", errno);
      return 0;
    }
    n = 0;
  }
  size_t accepted = static_cast<size_t>(n);
  wrote_to_host(c, accepted);
  if (accepted < payload.size()) {
    counters_.partial_writes++;
    c.sndbuf_known = false;  // the estimate was too high
    std::span<const uint8_t> tail = payload.subspan(accepted);
    if (rx_.stage_tail(c, tail)) {
      counters_.staged_bytes += tail.size();
      accepted = payload.size();
    } else {
      counters_.stage_exhausted++;
    }
    set_events(slot, c.armed | EPOLLOUT);
  }
  return accepted;
}

// The guest's FIN, in order: the host socket's write side shuts once
// nothing is staged; the ACK waits for the host's FIN, which usually
// follows at once and carries it. When our own FIN is already ACKed (the
// host closed first, as an HTTP/1.0 server does), this segment ends the
// connection: maybe_finish() closes the socket before the segment's
// handling returns, and close() sends the same FIN, so shutdown() would be
// one syscall per connection for nothing.
void TcpTranslator::guest_fin(uint32_t slot) {
  TcpConn& c = conns_[slot];
  rx_.ooo_release(c);
  c.rcv_nxt++;
  if (c.flags & kFinSent) c.closed_first = true;  // ours went first, or both crossed
  c.flags |= kGuestFin;
  if (!c.stage) {
    if (!(c.flags & kFinAcked)) shutdown(c.fd, SHUT_WR);
    c.flags |= kShutWr;
  }
  ack_later(slot);
  uint64_t now = now_ns();
  c.state_at = std::min(c.state_at ? c.state_at : UINT64_MAX, now + timeouts_.half_closed_idle_ns);
  update_timer(slot);
}

// Writes out-of-order data that has become contiguous at rcv_nxt; false
// when the connection was reset meanwhile.
bool TcpTranslator::flush_ooo(uint32_t slot) {
  TcpConn& c = conns_[slot];
  while (c.ooo) {
    iovec iv[2];
    int pieces = rx_.ooo_ready(c, iv);
    if (pieces == 0) break;
    size_t len = iv[0].iov_len + iv[1].iov_len;
    msghdr mh{};
    mh.msg_iov = iv;
    mh.msg_iovlen = static_cast<size_t>(pieces);
    ssize_t n = sendmsg(c.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_events(slot, c.armed | EPOLLOUT);
        break;
      }
      reset_both(slot, "host-error", errno);
      return false;
    }
    c.rcv_nxt += static_cast<uint32_t>(n);
    wrote_to_host(c, static_cast<size_t>(n));
    queue_ack(slot);
    if (static_cast<size_t>(n) < len) {
      counters_.partial_writes++;
      set_events(slot, c.armed | EPOLLOUT);
      break;
    }
  }
  return true;
}

// Writes staged guest bytes; true when nothing is staged any more.
bool TcpTranslator::flush_stage(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (!c.stage) return true;
  for (std::span<const uint8_t> p = rx_.stage_pending(c); !p.empty(); p = rx_.stage_pending(c)) {
    ssize_t n = send(c.fd, p.data(), p.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_events(slot, c.armed | EPOLLOUT);
        return false;
      }
      if (errno == EINTR) continue;
      reset_both(slot, "host-error", errno);
      return false;
    }
    wrote_to_host(c, static_cast<size_t>(n));
    GuestRxBuffers::stage_consumed(c, static_cast<size_t>(n));
  }
  rx_.stage_release(c);
  if (c.ooo && !flush_ooo(slot)) return false;
  if ((c.flags & kGuestFin) && !(c.flags & kShutWr)) {
    shutdown(c.fd, SHUT_WR);
    c.flags |= kShutWr;
    maybe_finish(slot);
  }
  return true;
}

// Bytes just written to the host socket use up the free-space estimate.
void TcpTranslator::wrote_to_host(TcpConn& c, size_t n) {
  c.sndbuf_free -= static_cast<int64_t>(n);
  c.bytes_to_host += n;
  counters_.bytes_to_host += n;
}

}  // namespace ferry
