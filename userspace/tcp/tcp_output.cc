// TCP translator, output: host bytes, our FIN, retransmissions and ACKs
// toward the guest.
//
// Theory of operation
// -------------------
// Host bytes wait in the host socket's receive queue until the guest ACKs
// them. send_data() peeks them (MSG_PEEK, SO_PEEK_OFF marking how far we
// sent) straight into the payload area of prebuilt frames, MSS-sized (or,
// with port offloads, super-segments of whole MSS up to 64 KiB), within the
// guest's window, and hands each frame to the emitter (tcp_emit.cc).
// process_ack() discards them once ACKed, so snd_una is the queue's head
// and retransmitting is resetting the peek offset (retransmit_range). When
// the host closed and the peek reached the end, our FIN rides on the last
// segment; otherwise it goes alone (send_fin) once every byte went out.
// A zero window arms the persist timer and, with the BPF fast path, asks
// it for a wake-up when the window reopens (fast_stall).
//
// Congestion control (congestion.h): what is in flight stays within the
// congestion window as well as the guest's window: send_data() sends
// min(guest window, cwnd - pipe). A sender stopped by cwnd has bytes in
// flight, so an ACK (absorbed by BPF: the same fast_stall wake-up, which a
// window larger than cwnd fires at the first absorbed ACK) or the RTO
// moves it on.
//
// ACKs of guest data: two full segments unacknowledged -> at the batch end
// (queue_ack / flush_acks); a smaller request waits up to kDelayedAckNs
// for the host's answer to carry it (ack_later); every segment we send
// carries rcv_nxt and cancels the wait (ack_sent). A duplicate ACK keeps the
// advertised right edge unchanged, or the guest would not count it.
//
// Fairness: one flow sends at most send_budget_ bytes (kSendBudget, in
// whole send units, at least one) per turn of the event loop. Without a
// bound, a download whose guest ACKs inside our own tap write (BPF absorbs
// the ACK, the stall check folds it and finds the window open again) kept
// sending for as long as its host socket had data: measured, 80 ready
// sockets x 27 64-KiB frames, one turn of about 90 ms, while the tap (the
// guest's ARP and NDP answers, its SYNs), the timers and other flows
// waited; a 100-stream download (MTU 65520, loaded machine) had up to
// 3,594 and 6,181 frames in a turn, 502 and 516 with this budget. A flow
// the budget stops goes on the resume list (defer_send); the loop does not
// sleep while that list is non-empty, and resume_sends() runs it in the
// next turn, after that turn's events: round robin among the busy flows,
// each turn as long as the ready flows' budgets. The list, not an epoll
// edge, carries it on: the host socket's EPOLLIN is edge-triggered and
// does not come again for bytes already queued. The size: Linux bounds
// what one flow queues below TCP to about a millisecond at its rate (TSQ)
// and a device's NAPI poll to 64 packets; here a turn costs an
// epoll_wait() and the batch end, a few microseconds, and 256 KiB (four
// super-segments, about 170 us of writes into the tap) keeps that to a
// few percent of a lone flow's time.
//
// The tap's queue: `ferry attach` on a VM's tap writes every frame into
// that tap's ring (txqueuelen entries) for QEMU to read; the ring full, the
// kernel drops it, ferry's write succeeds all the same, and only TCP's loss
// recovery finds out (issue 19: a 100 ms pause of the reader at a
// download's end cost its tail, the probe behind it, and an RTO). With an
// estimate of that ring (set_tap_queue, tapq/: frames written less those
// read and dropped, from the tap's counters), send_data() sends no more
// than the room it leaves, as Linux's TCP Small Queues bound what a flow
// keeps below it. A flow without room waits on the queue's list
// (queue_throttled) and goes on the resume list when a quarter of the
// ring (or 8 entries) is free again: checked when the guest's next segments arrive (it
// read something), else by a retry timer from 1 ms, doubling to 16 ms
// while there is none; never a busy loop. It never waits forever: the
// estimate drops a claim of a non-empty ring after 1 s without a frame
// read or dropped (a reader stopped for good, or a wrong estimate), and a
// flow that waited 200 ms sends one frame anyway (queue_forced: frames
// outside TCP, UDP say, keep the ring full). Only new data waits;
// retransmissions, probes, ACKs and our FIN do not (headroom is kept for
// them and for ARP/NDP answers).
//
// Loss recovery (RFC 6675 with RFC 6582's partial ACKs): start_recovery()
// at the third duplicate ACK, more than two MSS SACKed, or an RTO takes the
// flow off the fast path and cuts cwnd; repair() then resends every lost
// range at once, as far as cwnd allows: the holes below the highest byte
// the guest SACKed, the first segment at snd_una (a guest without SACK: a
// partial ACK marks the next), or after an RTO everything not SACKed
// (starting from a loss window of one MSS). Each frame is a whole send
// unit (an MSS, or a super-segment with offloads), never one MSS per
// round trip. An ACK of `recover` ends it (process_ack). A retransmission
// lost in turn (RFC 8985 6): each one records snd_max as rtx_fence and its
// first byte as rtx_last; once the guest SACKs a byte above the fence or
// that byte (sent no earlier than every retransmission, and the link is a
// FIFO), the resent bytes it still lacks are lost again and repair()
// starts over from snd_una, instead of waiting for the RTO (process_ack).
// Once the guest holds that last retransmission, every byte first sent
// before it (below the fence) that it lacks is lost too (RFC 8985 6.2 with
// no reordering), not only the segment a partial ACK names.
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "tcp/tcp_internal.h"
#include "tcp/tcp_translator.h"

namespace ferry {

using namespace tcp_detail;

// Peeks host data into frames and sends it within the guest's window; sends
// our FIN once the host has closed and every byte went out.
void TcpTranslator::send_data(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established) return;  // the caller folded absorbed ACKs
  if (c.in_recovery) repair(slot);  // lost bytes before new ones
  uint64_t now = now_ns();
  bool have_window = false;
  uint16_t raw_win = 0;
  bool stall_checked = false;
  for (int round = 0; round < 64; round++) {
    if (c.flags & kFinSent) {
      if (c.snd_nxt == c.fin_seq) send_fin(slot);  // go-back reached the FIN
      return;
    }
    if (!(c.flags & (kReadable | kHostEof))) return;
    uint32_t wnd_end = c.snd_una + c.snd_wnd;
    uint32_t avail = seq::gt(wnd_end, c.snd_nxt) ? wnd_end - c.snd_nxt : 0;
    const uint32_t cw_room = congestion_room(c) + std::exchange(probe_room_, 0);  // a loss probe's segment
    if (avail > 0 && cw_room < std::min<uint32_t>(avail, c.mss)) {
      // The congestion window, not the guest's, is the limit: bytes are in
      // flight (cwnd >= 1 MSS), so their ACK or the RTO moves us on; with
      // the fast path, its wake-up (see above).
      counters_.cwnd_limited++;
      if ((c.flags & kHostEof) && all_sent(c)) {
        send_fin(slot);
        return;
      }
      if (!stall_checked) {
        stall_checked = true;
        if (fast_stall(slot)) continue;
      }
      return;
    }
    avail = std::min(avail, cw_room);
    if (avail == 0) {
      if ((c.flags & kHostEof)) {
        // Zero window but the host closed: the FIN may go if all data went.
        if (all_sent(c)) {
          send_fin(slot);
          return;
        }
      }
      if (c.snd_una == c.snd_max && c.rtx_at == 0) {  // persist timer
        c.rtx_at = now + c.rto.rto();
        update_timer(slot);
      }
      if (!stall_checked) {  // BPF wakes us when ACKs open the window
        stall_checked = true;
        if (fast_stall(slot)) continue;
      }
      return;
    }
    // One frame's payload: an MSS, or with offloads as many whole MSS as fit
    // in one IP packet (the guest's stack takes it as a GSO super-segment).
    const uint32_t unit = send_unit(c);
    // The tap's queue toward the guest (see "The tap's queue"): no more
    // than its room; a flow that waited kQueueMaxWaitNs sends one unit.
    if (queue_) {
      const uint32_t qroom = queue_room(c, unit, now);
      const bool waited = c.queue_since != 0 && now - c.queue_since >= kQueueMaxWaitNs;
      if (qroom < std::min<uint32_t>(avail, c.mss) && !waited) {
        counters_.queue_throttled++;
        wait_for_queue(slot, now);
        return;
      }
      const bool forced = qroom < std::min<uint32_t>(avail, c.mss);
      if (forced) counters_.queue_forced++;
      c.queue_since = 0;
      avail = std::min(avail, forced ? unit : qroom);
    }
    // This turn's budget (see "Fairness"): whole send units, at least one.
    if (c.budget_turn != turn_) {
      c.budget_turn = turn_;
      c.budget_sent = 0;
    }
    if (c.budget_sent >= send_budget_) {
      defer_send(slot);
      return;
    }
    avail = std::min(avail, std::max(unit, (send_budget_ - c.budget_sent) / unit * unit));
    if (!have_window) {
      raw_win = window_to_advertise(slot);
      have_window = true;
    }
    size_t hdr = tcp_frame_header_len(c.v6, TcpOptions{});
    size_t n = 0;
    size_t want = 0;
    while (avail > 0 && n < frame_count_) {
      uint32_t l = std::min<uint32_t>(unit, avail);
      iov_[n].iov_base = frame_pool_.data() + n * frame_stride_ + hdr;
      iov_[n].iov_len = l;
      want += l;
      avail -= l;
      n++;
    }
    msghdr mh{};
    mh.msg_iov = iov_.data();
    mh.msg_iovlen = n;
    ssize_t r = recvmsg(c.fd, &mh, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c.flags &= static_cast<uint8_t>(~kReadable);
        host_drained(slot);
        return;
      }
      reset_both(slot, "host-error", errno);
      return;
    }
    if (r == 0) {
      c.flags &= static_cast<uint8_t>(~kReadable);
      c.flags |= kHostEof;
      send_fin(slot);
      return;
    }
    bool retrans = seq::lt(c.snd_nxt, c.snd_max);
    // The host closed and this peek reached the end of its data: our FIN
    // rides on the last segment (one frame, not two, for a server that
    // answers and closes).
    bool fin_too = (c.flags & kHostEof) && static_cast<size_t>(r) < want;
    if (fin_too) mark_fin(slot, c.snd_nxt + static_cast<uint32_t>(r));
    // The fast path's slot covers all of it before the first frame leaves
    // (the guest may ACK it at once).
    const uint32_t sent_end =
        seq::max(c.snd_max, c.snd_nxt + static_cast<uint32_t>(r) + (fin_too ? 1 : 0));
    size_t off = 0;
    for (size_t i = 0; i < n && off < static_cast<size_t>(r); i++) {
      size_t l = std::min(iov_[i].iov_len, static_cast<size_t>(r) - off);
      TcpSegment seg = segment_for(c);
      seg.seq = c.snd_nxt + static_cast<uint32_t>(off);
      seg.ack = c.rcv_nxt;
      bool last = off + l == static_cast<size_t>(r);
      seg.flags = tcpflag::kAck | (last ? tcpflag::kPsh : 0) | (last && fin_too ? tcpflag::kFin : 0);
      seg.window = raw_win;
      uint8_t* fb = frame_pool_.data() + i * frame_stride_;
      seg.payload = std::span<const uint8_t>(fb + hdr, l);
      seg.partial_checksum = offloads_;
      std::optional<uint32_t> sync_to;
      if (i == 0) sync_to = sent_end;  // once per batch, before its first frame
      emit(slot, seg, std::span<uint8_t>(fb, frame_stride_), sync_to);
      counters_.segments_to_guest++;
      off += l;
    }
    if (c.delack_off && now - c.rcv_data_at < kDelayedAckNs) c.delack_off = false;  // answers again
    ack_sent(slot);
    counters_.bytes_to_guest += static_cast<uint64_t>(r);
    c.budget_sent += static_cast<uint32_t>(r);
    if (!retrans) c.bytes_to_guest += static_cast<uint64_t>(r);
    c.snd_nxt += static_cast<uint32_t>(r) + (fin_too ? 1 : 0);
    c.snd_max = seq::max(c.snd_max, c.snd_nxt);
    if (retrans) counters_.retransmits++;
    if (!c.rtt_active && !retrans) {
      c.rtt_active = true;
      c.rtt_seq = c.snd_nxt;
      c.rtt_start = now;
    }
    if (c.rtx_at == 0 || c.snd_una == c.snd_nxt - static_cast<uint32_t>(r) - (fin_too ? 1 : 0))
      c.rtx_at = now + c.rto.rto();
    if (!retrans) c.probe_at = probe_deadline(c, now);  // new data: the tail-loss probe moves on
    update_timer(slot);
    if (fin_too) {
      c.flags &= static_cast<uint8_t>(~kReadable);
      return;
    }
    if (static_cast<size_t>(r) < want) {
      if (!(c.flags & kHostEof)) {
        c.flags &= static_cast<uint8_t>(~kReadable);
        host_drained(slot);
        return;
      }
    }
  }
}

// The flow spent this turn's budget with bytes and window left: the host
// socket's edge-triggered EPOLLIN will not come again for bytes already
// there, so the flow goes on the resume list (once), which keeps the loop
// from sleeping until resume_sends() ran it in a later turn.
void TcpTranslator::defer_send(uint32_t slot) {
  TcpConn& c = conns_[slot];
  counters_.send_deferred++;
  if (c.resume_queued) return;
  c.resume_queued = true;
  resume_.emplace_back(slot, c.gen);
}

// The timer client's part of each turn, after the I/O events: every flow
// deferred in an earlier turn sends its next budget (what BPF absorbed
// folded first, as at any entry point). A flow deferred in this very turn
// (its budget is spent) waits for the next one; a slot released or reused
// meanwhile is skipped.
void TcpTranslator::resume_sends() {
  if (resume_.empty()) return;
  resume_run_.swap(resume_);
  for (const auto& [slot, gen] : resume_run_) {
    TcpConn& c = conns_[slot];
    if (c.gen != gen || !c.resume_queued) continue;
    if (c.state != TcpState::established) {
      c.resume_queued = false;
      continue;
    }
    if (c.budget_turn == turn_ && c.budget_sent >= send_budget_) {
      resume_.emplace_back(slot, gen);  // still queued
      continue;
    }
    c.resume_queued = false;
    fast_fold(slot);
    send_data(slot);
  }
  resume_run_.clear();
}

// In bytes: whole frames of `unit` (a tap with TSO takes one per entry),
// or MSS segments (a tap that cuts them: one entry each).
uint32_t TcpTranslator::queue_room(const TcpConn& c, uint32_t unit, uint64_t now) {
  const bool segments = queue_->counts_segments();
  const uint32_t per_frame = segments ? (unit + c.mss - 1) / c.mss : 1;
  const uint64_t entries = queue_->room(per_frame, now);
  const uint64_t bytes = entries * (segments ? c.mss : unit);
  return static_cast<uint32_t>(std::min<uint64_t>(bytes, UINT32_MAX));
}

// On the wait list once; the retry timer armed if it was off.
void TcpTranslator::wait_for_queue(uint32_t slot, uint64_t now) {
  TcpConn& c = conns_[slot];
  if (c.queue_since == 0) c.queue_since = now;
  if (c.queue_waiting) return;
  c.queue_waiting = true;
  queue_wait_.emplace_back(slot, c.gen);
  if (queue_retry_at_ == 0) queue_retry_at_ = now + queue_backoff_ns_;
}

// A quarter of the usable ring free, or 8 entries (not one: a frame at a
// time would cost a turn each), or a wait of kQueueMaxWaitNs, wakes them all.
void TcpTranslator::wake_queue_waiters(uint64_t now, bool by_timer) {
  if (queue_wait_.empty()) {
    queue_retry_at_ = 0;
    return;
  }
  const uint32_t usable = queue_->capacity() - queue_->headroom();
  const uint32_t room = queue_->room(usable, now);
  bool overdue = false;
  for (const auto& [slot, gen] : queue_wait_) {
    const TcpConn& c = conns_[slot];
    if (c.gen == gen && c.queue_waiting && now - c.queue_since >= kQueueMaxWaitNs) overdue = true;
  }
  if (room < std::max<uint32_t>(1, std::min<uint32_t>(usable / 4, 8)) && !overdue) {
    if (by_timer) {
      queue_backoff_ns_ = std::min(queue_backoff_ns_ * 2, kQueueRetryMaxNs);
      queue_retry_at_ = now + queue_backoff_ns_;
    }
    return;
  }
  queue_backoff_ns_ = kQueueRetryMinNs;
  queue_retry_at_ = 0;
  for (const auto& [slot, gen] : queue_wait_) {
    TcpConn& c = conns_[slot];
    if (c.gen != gen || !c.queue_waiting) continue;
    c.queue_waiting = false;
    if (c.state != TcpState::established || c.resume_queued) continue;
    c.resume_queued = true;
    resume_.emplace_back(slot, gen);
  }
  queue_wait_.clear();
}

// Records that our FIN goes out at fin_seq (now, behind every byte of
// host data): the half-closed idle timeout starts.
void TcpTranslator::mark_fin(uint32_t slot, uint32_t fin_seq) {
  TcpConn& c = conns_[slot];
  c.fin_seq = fin_seq;
  c.flags |= kFinSent;
  uint64_t now = now_ns();
  c.state_at = std::min(c.state_at ? c.state_at : UINT64_MAX, now + timeouts_.half_closed_idle_ns);
  update_timer(slot);
}

// Our FIN (first time or again): after every byte of host data.
void TcpTranslator::send_fin(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (!(c.flags & kFinSent)) mark_fin(slot, c.snd_nxt);
  uint16_t w = window_to_advertise(slot);
  emit_control(slot, tcpflag::kFin | tcpflag::kAck, c.fin_seq, c.rcv_nxt, w, nullptr, true);
  ack_sent(slot);
  c.snd_nxt = c.fin_seq + 1;
  c.snd_max = seq::max(c.snd_max, c.snd_nxt);
  if (c.rtx_at == 0) {
    c.rtx_at = now_ns() + c.rto.rto();
    update_timer(slot);
  }
}

// The host closed and every byte of its data went out (the socket holds
// only what is in flight): the FIN may follow.
bool TcpTranslator::all_sent(const TcpConn& c) const {
  int inq = 0;
  return ioctl(c.fd, SIOCINQ, &inq) == 0 && static_cast<uint32_t>(inq) == c.snd_nxt - c.snd_una;
}

// One frame's payload: an MSS, or with offloads as many whole MSS as fit in
// one IP packet (the guest's stack takes it as a GSO super-segment).
uint32_t TcpTranslator::send_unit(const TcpConn& c) const {
  return offloads_ ? std::max<uint32_t>(c.mss, kMaxSuperSegment / c.mss * c.mss) : c.mss;
}

// RFC 6675's pipe: bytes in flight less what the guest SACKed and less what
// is lost and not yet resent (outside recovery: everything sent, unacked).
uint32_t TcpTranslator::pipe(const TcpConn& c) const {
  uint32_t flight = c.snd_max - c.snd_una;
  if (!c.in_recovery) return flight;
  uint32_t from = seq::max(c.rtx_nxt, c.snd_una);
  uint32_t lost = c.sacks.unsacked_in(from, seq::min(c.lost_end, c.snd_max));
  uint32_t gone = c.sacks.sacked_bytes() + lost;
  return flight > gone ? flight - gone : 0;
}

// What the congestion window lets go out now: cwnd - pipe.
uint32_t TcpTranslator::congestion_room(const TcpConn& c) const {
  uint32_t p = pipe(c), w = c.cc.cwnd();
  return w > p ? w - p : 0;
}

// Resends len bytes at seq (at most one send unit, all below the FIN) as
// one frame, leaving snd_nxt and the peek offset where they were. Returns
// the bytes resent, 0 when the socket had nothing there.
uint32_t TcpTranslator::retransmit_range(uint32_t slot, uint32_t sq, uint32_t len) {
  TcpConn& c = conns_[slot];
  c.rtt_active = false;  // Karn
  uint32_t data_end = (c.flags & kFinSent) ? c.fin_seq : c.snd_max;
  size_t hdr = tcp_frame_header_len(c.v6, TcpOptions{});
  uint8_t* fb = frame_pool_.data();
  len = std::min<uint32_t>({len, send_unit(c), static_cast<uint32_t>(frame_stride_ - hdr)});
  set_int(c.fd, SOL_SOCKET, SO_PEEK_OFF, static_cast<int>(sq - c.snd_una));
  ssize_t r = recv(c.fd, fb + hdr, len, MSG_PEEK | MSG_DONTWAIT);
  uint32_t cur = seq::min(c.snd_nxt, data_end) - c.snd_una;
  set_int(c.fd, SOL_SOCKET, SO_PEEK_OFF, static_cast<int>(cur));
  if (r <= 0) return 0;
  count_recovery_event(c, RecoveryEvent::retransmit);
  TcpSegment seg = segment_for(c);
  seg.seq = sq;
  seg.ack = c.rcv_nxt;
  // A FIN right behind this data goes with it (the last thing outstanding).
  const bool fin = (c.flags & kFinSent) && sq + static_cast<uint32_t>(r) == c.fin_seq;
  seg.flags = tcpflag::kAck | tcpflag::kPsh | (fin ? tcpflag::kFin : 0);
  seg.window = window_to_advertise(slot);
  seg.payload = std::span<const uint8_t>(fb + hdr, static_cast<size_t>(r));
  seg.partial_checksum = offloads_;
  emit(slot, seg, std::span<uint8_t>(fb, frame_stride_));
  return static_cast<uint32_t>(r);
}

// Resends what recovery counts as lost and not yet resent (the holes in
// [rtx_nxt, lost_end) the guest did not SACK, our FIN if it is there), in
// send units, while the congestion window has room. resend_first: the
// first hole goes out whatever cwnd says (fast retransmit, RFC 5681 3.2 (2),
// RFC 6675 5 (4.3)): right after the cut, pipe is the flight less the
// SACKed and lost bytes, well above half the flight, so waiting for room
// would leave the repair to the RTO when few ACKs follow.
void TcpTranslator::repair(uint32_t slot, bool resend_first) {
  TcpConn& c = conns_[slot];
  const uint32_t data_end = (c.flags & kFinSent) ? c.fin_seq : c.snd_max;
  for (int guard = 0; guard < 4096 && c.state == TcpState::established; guard++) {
    if (seq::lt(c.rtx_nxt, c.snd_una)) c.rtx_nxt = c.snd_una;
    const uint32_t limit = seq::min(c.lost_end, c.snd_max);
    uint32_t start = 0;
    uint32_t len = c.sacks.next_hole(c.rtx_nxt, limit, &start);
    if (len == 0) {
      if (seq::lt(c.rtx_nxt, limit)) c.rtx_nxt = limit;
      return;
    }
    uint32_t room = congestion_room(c);
    if (resend_first) room = std::max(room, send_unit(c));
    resend_first = false;
    // A frame smaller than an MSS only when nothing else is in flight.
    if (room == 0 || (room < std::min(len, uint32_t{c.mss}) && pipe(c) > 0)) return;
    if ((c.flags & kFinSent) && start == c.fin_seq) {
      count_recovery_event(c, RecoveryEvent::retransmit);
      emit_control(slot, tcpflag::kFin | tcpflag::kAck, c.fin_seq, c.rcv_nxt, window_to_advertise(slot));
      record_retransmission(slot, c.fin_seq, c.fin_seq + 1);
      continue;
    }
    len = std::min({len, room, data_end - start});
    const uint32_t sent = retransmit_range(slot, start, len);
    if (sent == 0) {
      c.rtx_nxt = limit;  // nothing there to resend (defensive)
      return;
    }
    record_retransmission(slot, start, start + sent);
    // The FIN went with the data's last bytes.
    if ((c.flags & kFinSent) && c.rtx_nxt == c.fin_seq) c.rtx_nxt++;
  }
}

// repair() resent [first, end): the pass goes on at end, and this is its
// last retransmission so far: snd_max now is the fence (what the guest
// SACKs above it left after this, process_ack()), and the recovery probe
// waits a PTO from now.
void TcpTranslator::record_retransmission(uint32_t slot, uint32_t first, uint32_t end) {
  TcpConn& c = conns_[slot];
  c.rtx_nxt = end;
  c.rtx_fence = c.snd_max;
  c.rtx_last = first;
  c.rtx_fenced = true;
  rearm_recovery_probe(slot);
}

// Counts a loss-recovery event in the translator's counters and in the
// flow's own tally (TcpRecoveryTally: the same events, per flow).
void TcpTranslator::count_recovery_event(TcpConn& c, RecoveryEvent e) {
  TcpRecoveryTally& t = c.recovery;
  switch (e) {
    case RecoveryEvent::retransmit:
      counters_.retransmits++;
      t.retransmits++;
      break;
    case RecoveryEvent::rto:
      counters_.rto_expired++;
      t.rto_expired++;
      break;
    case RecoveryEvent::tlp_probe:
      counters_.tlp_probes++;
      t.tlp_probes++;
      break;
    case RecoveryEvent::fast_recovery:
      counters_.fast_retransmits++;
      t.fast_recoveries++;
      break;
    case RecoveryEvent::tlp_recovery:
      counters_.tlp_recoveries++;
      t.tlp_recoveries++;
      break;
    case RecoveryEvent::lost_retransmit:
      counters_.lost_retransmits++;
      t.lost_retransmits++;
      break;
  }
}

// A retransmission of a fast recovery left: the recovery probe waits a
// PTO from now (tcp_timers.cc, recovery_probe).
void TcpTranslator::rearm_recovery_probe(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (c.tlp == kTlpRecovery) c.tlp = kTlpNone;
  c.probe_at = probe_deadline(c, now_ns());
  update_timer(slot);
}

// Loss recovery from snd_max on: the congestion window cut (halved, or the
// loss window after an RTO), the flow off the fast path (every ACK must
// reach process_ack()), and the lost bytes resent as cwnd allows. The
// caller counts why. retire_first: off the fast path before the repair (a
// fast-path wake-up or an RTO, where BPF has been absorbing this flow's
// ACKs); otherwise after it, when process_ack() syncs at its end. That
// order is not arbitrary: resending first, the guest's answer to the repair
// can still be absorbed, and folded from the retired slot; retiring first,
// measured in e2e tcp_loss (1 %, MTU 65520), a recovery that ended on a
// zero window left the flow published with no stall armed, and the guest's
// window update was absorbed with nothing to wake the sender (25 s stalls
// in 3 of 5 runs).
void TcpTranslator::start_recovery(uint32_t slot, bool rto, bool retire_first) {
  TcpConn& c = conns_[slot];
  const uint32_t flight = c.snd_max - c.snd_una;
  if (rto) {
    c.cc.on_rto(flight, c.rto.backoff() <= 1);  // the caller backed off already
    c.lost_end = c.snd_max;                      // everything not SACKed
  } else {
    c.cc.enter_recovery(flight);
    // The holes below the highest SACKed byte, and at least the first
    // segment (a guest without SACK, RFC 6582).
    c.lost_end = seq::max(c.sacks.high(c.snd_una), c.snd_una + send_unit(c));
  }
  counters_.cwnd_reductions++;
  c.tlp = kTlpNone;  // a loss probe's episode ends in recovery
  c.probe_at = 0;
  c.in_recovery = true;
  c.rto_recovery = rto;
  c.recover = c.snd_max;
  c.rtx_nxt = c.snd_una;
  c.rtx_fenced = false;
  if (retire_first) sync_fast_path(slot, c.snd_max);
  repair(slot, !rto);  // after an RTO the loss window is that one segment
}

// RST to the guest and to the host peer, slot freed.
void TcpTranslator::reset_both(uint32_t slot, const char* why, int err) {
  const TcpConn& c = conns_[slot];
  if (err != 0 && verbose()) log_flow_error(ends_of(c), "host", err);
  emit_control(slot, tcpflag::kRst | tcpflag::kAck, c.snd_nxt, c.rcv_nxt, 0);
  counters_.rst_to_guest++;
  release(slot, true, why);
}

// ---- ACKs of guest data ------------------------------------------------------------

// ACK now with the current window (also clears a pending delayed ACK).
void TcpTranslator::send_ack_now(uint32_t slot) {
  TcpConn& c = conns_[slot];
  ack_sent(slot);
  uint16_t w = window_to_advertise(slot);
  TcpOptions o;
  bool sack = rx_.sack_blocks(c, &o);
  emit_control(slot, tcpflag::kAck, c.snd_nxt, c.rcv_nxt, w, sack ? &o : nullptr, true);  // rcv_nxt: what BPF may absorb
}

// The host socket freed space: an ACK with the new window, but only when
// the right edge moved or an ACK is owed (an unchanged pure ACK would
// count as a duplicate at the guest). Also recomputes the interest in
// EPOLLOUT.
void TcpTranslator::send_window_update(uint32_t slot) {
  TcpConn& c = conns_[slot];
  const uint32_t edge = c.rcv_adv;
  window_to_advertise(slot);
  if (c.rcv_adv != edge || c.rcv_acked != c.rcv_nxt) send_ack_now(slot);
}

// Duplicate ACK: same ACK number and the *same* window as the last ACK
// (the right edge unchanged), or the guest would not count it as a
// duplicate (RFC 5681 §2: a window change makes it a window update).
void TcpTranslator::send_dup_ack(uint32_t slot) {
  TcpConn& c = conns_[slot];
  ack_sent(slot);
  uint32_t raw = std::min<uint32_t>(open_window(c) >> c.rcv_shift, 65535);
  TcpOptions o;
  bool sack = rx_.sack_blocks(c, &o);
  emit_control(slot, tcpflag::kAck, c.snd_nxt, c.rcv_nxt, static_cast<uint16_t>(raw), sack ? &o : nullptr);
}

// ACK of in-order guest data. Once two full segments are unacknowledged
// (RFC 1122 §4.2.3.2) it goes at the batch end; a smaller request waits up
// to kDelayedAckNs for the host's answer, whose first frame carries the
// ACK: a request/response exchange then costs one frame each way, not two.
// A delayed ACK that expires unanswered turns delaying off for the flow
// (a guest that waits for it, Nagle's algorithm, must not wait again)
// until host data once more follows guest data within kDelayedAckNs.
// That is Linux's pingpong mode with kDelayedAckNs as its ATO: a delayed
// ACK that fires leaves it (tcp_delack_timer_handler), data sent within
// the ATO of the last data received re-enters it (tcp_event_data_sent,
// threshold 1 since 2022), and out of it a small pushed segment is ACKed
// once the application has read it (tcp_cleanup_rbuf), here at the batch
// end. So an answer later than 1 ms costs one pure ACK (the timer's, or
// the next request's at once), and the first prompt answer ends that;
// Linux's ATO is 40 ms or more, ours is short because the guest is one
// hop away and a Nagle-bound guest waits it out at each miss.
void TcpTranslator::ack_later(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (c.delack_off || c.rcv_nxt - c.rcv_acked >= 2u * c.mss) {
    queue_ack(slot);
    return;
  }
  if (c.ack_at == 0) {
    c.ack_at = now_ns() + kDelayedAckNs;
    update_timer(slot);
  }
}

// A segment with ACK = rcv_nxt is leaving: nothing is pending any more.
void TcpTranslator::ack_sent(uint32_t slot) {
  TcpConn& c = conns_[slot];
  c.ack_pending = false;
  c.rcv_acked = c.rcv_nxt;
  if (c.ack_at) {
    c.ack_at = 0;
    update_timer(slot);
  }
}

// ACK at the end of this batch (one ACK for many segments).
void TcpTranslator::queue_ack(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (c.ack_pending) return;
  c.ack_pending = true;
  ack_list_.push_back(slot);
}

}  // namespace ferry
