// TCP translator, timers: one deadline per connection in a TimerHeap, no
// syscall per tick.
//
// Theory of operation
// -------------------
// A connection has four deadlines; the heap holds the earliest
// (update_timer), and on_timer() runs every connection whose deadline
// passed:
//   rtx_at:   SYN / SYN-ACK retransmission (with back-off), data or FIN
//             RTO (RFC 6298, min 200 ms, see rto.h; it starts loss
//             recovery from a loss window of one MSS, congestion.h),
//             zero-window persist probes (an old sequence
//             number makes the guest ACK with its current window)
//   state_at: connect timeout (10 s: refuse), idle timeout (2 h, 60 s when
//             either side has closed), checked lazily against
//             last_activity, so traffic never touches the heap
//   ack_at:   delayed ACK of a small guest request or FIN (1 ms; see
//             ack_later()), cancelled by any segment that carries the ACK;
//             one that expires turns delaying off for the flow
//   probe_at: tail-loss probe (RFC 8985 7), see below
//
// Tail-loss probe: a burst whose tail the guest's link dropped, with
// nothing sent behind it, brings no SACK and no duplicate ACK, so only
// the RTO (200 ms at least, and cwnd down to one MSS) would repair it.
// Outside recovery, with SACK and bytes in flight, every new-data send and
// every ACK that moves snd_una sets probe_at = now + PTO (probe_deadline:
// 2 SRTT, at least timeouts_.min_probe_ns, + kWorstDelayedAckNs for a
// single segment in flight, never after rtx_at). When it expires
// (loss_probe) one new segment goes out if the guest's window has room,
// beyond cwnd, or else the last segment again; the RTO restarts from the
// probe. One probe per episode (tlp, tlp_seq, tlp_end): the guest's
// answer decides, in
// process_ack() (tcp_input.cc):
//   * a SACK at or above the probe: every byte below it not SACKed was
//     sent at least a PTO earlier on a FIFO link and is lost (RFC 8985 6's
//     time rule, with no reordering): loss recovery starts
//     (tlp_recoveries);
//   * the ACK of tlp_end: a resent probe that the guest did not report as
//     a duplicate (D-SACK) repaired the loss itself: cwnd is cut as in a
//     fast recovery (RFC 8985 7.4.2; tlp_recoveries); new data, or a
//     duplicate, end the episode without a cut.
// Recovery or the RTO end the episode too. In a fast recovery the same
// timer guards the recovery's own tail (recovery_probe): armed at each
// retransmission and cumulative ACK, it resends what went last once, so
// the guest's SACK of it shows the retransmissions before it lost. With the BPF fast path the
// expiring probe timer folds what BPF absorbed first (fast_progress): if
// those ACKs moved snd_una, the probe is re-armed instead of sent.
// `ferry attach` on a tap: a probe or an RTO whose flow's last frame still
// sits unread in the tap's queue waits instead (tail_still_queued).
// Retries are bounded (SYN: 5, data: 10), then both sides are reset, so
// memory is bounded under any guest behaviour. With the BPF fast path an
// expiring retransmission timer first folds what BPF absorbed
// (fast_progress): those ACKs may have answered it.
#include <algorithm>

#include "tcp/tcp_internal.h"
#include "tcp/tcp_translator.h"

namespace ferry {

using namespace tcp_detail;

// Earliest of all connections' deadlines.
uint64_t TcpTranslator::next_deadline_ns() const {
  if (!resume_.empty()) return 0;  // deferred sends: the loop polls, it does not sleep
  uint64_t d = timers_.top_deadline();
  if (listeners_resume_at_ && listeners_resume_at_ < d) d = listeners_resume_at_;
  if (queue_retry_at_ && queue_retry_at_ < d) d = queue_retry_at_;  // room in the tap's queue
  return d == TimerHeap::kNone ? kNever : d;
}

// Runs every expired connection timer (and resumes paused listeners), then
// the flows waiting for room in the tap's queue whose retry came
// (wake_queue_waiters) and the sends the per-turn budget deferred
// (resume_sends, tcp_output.cc).
void TcpTranslator::on_timer(uint64_t now) {
  if (listeners_resume_at_ && listeners_resume_at_ <= now) {
    listeners_resume_at_ = 0;
    for (size_t i = 0; i < listeners_.size(); i++)
      loop_.modify(listeners_[i].fd, EPOLLIN, tag_, kListenerBit | i);
  }
  for (int guard = 0; guard < 100000 && !timers_.empty() && timers_.top_deadline() <= now; guard++) {
    uint32_t slot = timers_.top_slot();
    TcpConn& c = conns_[slot];
    uint32_t gen = c.gen;
    handle_timer(slot, now);
    if (c.state == TcpState::free) {
      timers_.cancel(slot);
    } else if (c.gen == gen && timers_.deadline(slot) <= now) {
      // Defensive: a handler that left an expired deadline must not spin.
      if (c.rtx_at && c.rtx_at <= now) c.rtx_at = 0;
      if (c.state_at && c.state_at <= now) c.state_at = 0;
      if (c.ack_at && c.ack_at <= now) c.ack_at = 0;
      if (c.probe_at && c.probe_at <= now) c.probe_at = 0;
      update_timer(slot);
    }
  }
  if (queue_retry_at_ && queue_retry_at_ <= now) wake_queue_waiters(now, true);
  resume_sends();
}

// Sets the slot's heap deadline to the earlier of its timers.
void TcpTranslator::update_timer(uint32_t slot) {
  const TcpConn& c = conns_[slot];
  uint64_t d = TimerHeap::kNone;
  if (c.rtx_at) d = c.rtx_at;
  if (c.state_at && c.state_at < d) d = c.state_at;
  if (c.ack_at && c.ack_at < d) d = c.ack_at;
  if (c.probe_at && c.probe_at < d) d = c.probe_at;
  timers_.set(slot, d);
}

// One connection's expired timers.
void TcpTranslator::handle_timer(uint32_t slot, uint64_t now) {
  TcpConn& c = conns_[slot];
  if (c.ack_at && c.ack_at <= now) {
    c.ack_at = 0;
    if (c.state == TcpState::established && c.rcv_acked != c.rcv_nxt) {
      c.delack_off = true;  // no answer came: this flow ACKs at once from now on
      send_ack_now(slot);
    }
  }
  if (c.state_at && c.state_at <= now) {
    if (c.state == TcpState::connecting) {
      counters_.connect_failed++;
      counters_.timeouts++;
      return refuse(slot, true, "connect-timeout");
    }
    bool half = (c.flags & (kGuestFin | kFinSent)) != 0;
    uint64_t limit = half ? timeouts_.half_closed_idle_ns : timeouts_.idle_ns;
    if (c.last_activity + limit > now) {
      c.state_at = c.last_activity + limit;
    } else {
      counters_.timeouts++;
      return reset_both(slot, "idle-timeout");
    }
  }
  if (c.probe_at && c.probe_at <= now) {
    c.probe_at = 0;
    if (fast_ && c.state == TcpState::established) {
      fast_progress(slot);  // absorbed ACKs first: they re-arm the probe if they moved snd_una
      if (c.state == TcpState::free) return;
    }
    if (c.probe_at == 0) {
      if (tail_still_queued(slot, now))
        c.probe_at = probe_deadline(c, now);  // unread, not lost: another PTO
      else if (c.in_recovery)
        recovery_probe(slot, now);
      else
        loss_probe(slot, now);
    }
    if (c.state == TcpState::free) return;
  }
  if (fast_ && c.rtx_at && c.rtx_at <= now && c.state == TcpState::established) {
    // absorbed ACKs may have answered this timer; counted: a wake-up that
    // should have brought them did not come (ring full, or a bug)
    if (fast_fold(slot)) counters_.fast_timer_folds++;
    fast_progress(slot);
    if (c.state == TcpState::free) return;
  }
  if (c.rtx_at && c.rtx_at <= now) {
    c.rtx_at = 0;
    rtx_timer(slot, now);
    if (c.state == TcpState::free) return;
  }
  update_timer(slot);
}

// The retransmission timer expired (rtx_at already cleared): resend the
// SYN or SYN-ACK, or the first hole (RTO), or probe a zero window; reset
// both sides once the retries are spent.
void TcpTranslator::rtx_timer(uint32_t slot, uint64_t now) {
  TcpConn& c = conns_[slot];
  switch (c.state) {
    case TcpState::syn_rcvd:
    case TcpState::syn_sent:
      if (++c.retries > timeouts_.syn_retries) {
        counters_.timeouts++;
        if (c.state == TcpState::syn_rcvd)
          reset_both(slot, "syn-timeout");  // snd_nxt is our SYN-ACK's iss + 1
        else
          release(slot, true, "syn-timeout");  // the host client sees a reset
        return;
      }
      c.rto.back_off();
      c.rtt_active = false;
      if (c.state == TcpState::syn_rcvd)
        send_syn_ack(slot);
      else
        send_syn(slot);
      c.rtx_at = now + c.rto.rto();
      break;
    case TcpState::established:
      if (c.snd_una != c.snd_max) {
        if (tail_still_queued(slot, now)) {
          c.rtx_at = now + c.rto.rto();  // unread, not lost: no retry, no back-off
          break;
        }
        if (++c.retries > timeouts_.max_retries) {
          counters_.timeouts++;
          reset_both(slot, "retransmit-timeout");
          return;
        }
        count_recovery_event(c, RecoveryEvent::rto);
        c.tlp = kTlpNone;  // the probe's episode ends with it
        c.rto.back_off();
        c.dupacks = 0;
        start_recovery(slot, true, true);  // cwnd: one MSS, then slow start
        c.rtx_at = now + c.rto.rto();
      } else if ((c.flags & (kReadable | kHostEof)) && !(c.flags & kFinSent) &&
                 seq::ge(c.snd_nxt, c.snd_una + c.snd_wnd)) {
        // Zero-window probe: an old sequence number makes the guest ACK
        // with its current window.
        counters_.zero_window_probes++;
        uint16_t w = window_to_advertise(slot);
        emit_control(slot, tcpflag::kAck, c.snd_una - 1, c.rcv_nxt, w);
        c.rto.back_off();
        c.rtx_at = now + c.rto.rto();
      }
      break;
    default:
      break;
  }
}

// Linux's skb_still_in_host_queue() for a flight: on a FIFO queue, a probe
// or a retransmission sent now goes behind the flow's last frame, which
// the guest has not even read; once it reads it, it ACKs or SACKs it
// (and a SACK repairs any hole below at once). So while that frame is
// provably in the tap's queue (TapQueueEstimate::still_queued: unread and
// not dropped), the PTO and the RTO wait instead: no spurious probe, no
// cwnd cut for a reader that paused. Bounded: kQueueHoldMaxNs with
// snd_una unmoved, then they act as usual (a guest that reads and never
// ACKs).
bool TcpTranslator::tail_still_queued(uint32_t slot, uint64_t now) {
  TcpConn& c = conns_[slot];
  if (queue_ == nullptr || c.queue_mark == 0 || c.state != TcpState::established) return false;
  if (c.queue_hold_since == 0 || c.queue_hold_una != c.snd_una) {
    c.queue_hold_since = now;
    c.queue_hold_una = c.snd_una;
  } else if (now - c.queue_hold_since >= kQueueHoldMaxNs) {
    return false;
  }
  if (!queue_->still_queued(TapQueueEstimate::Mark{c.queue_mark, c.queue_epoch}, now)) return false;
  counters_.probe_still_queued++;
  return true;
}

// RFC 8985 7.2: PTO = 2 SRTT (at least timeouts_.min_probe_ns), + the guest's
// worst-case delayed ACK with one segment in flight, capped by the RTO;
// with SACK, a sample, bytes in flight, and no probe of this episode out
// yet; outside recovery, or in a fast recovery once a retransmission left
// (the recovery probe: no delayed ACK there, a guest ACKs a segment that
// fills or lies beyond a hole at once, RFC 5681 4.2).
uint64_t TcpTranslator::probe_deadline(const TcpConn& c, uint64_t now) const {
  if (c.state != TcpState::established || !(c.flags & kSack) || c.tlp != kTlpNone ||
      c.snd_una == c.snd_max || !c.rto.has_sample())
    return 0;
  if (c.in_recovery && (c.rto_recovery || !c.rtx_fenced)) return 0;
  uint64_t pto = std::max<uint64_t>(2 * c.rto.srtt(), timeouts_.min_probe_ns);
  if (!c.in_recovery && c.snd_max - c.snd_una <= c.mss) pto += kWorstDelayedAckNs;
  const uint64_t at = now + pto;
  return c.rtx_at != 0 && c.rtx_at < at ? c.rtx_at : at;
}

// RFC 8985 7.3: the probe timer expired with no ACK for a PTO. One new
// segment (beyond cwnd) when the host has data and the guest's window
// room, else the last segment (or our FIN) again; the RTO restarts.
void TcpTranslator::loss_probe(uint32_t slot, uint64_t now) {
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established || c.in_recovery || c.tlp != kTlpNone ||
      c.snd_una == c.snd_max)
    return;
  count_recovery_event(c, RecoveryEvent::tlp_probe);
  const uint32_t before = c.snd_max;
  if ((c.flags & kReadable) && !(c.flags & kFinSent) &&
      seq::ge(c.snd_una + c.snd_wnd, c.snd_nxt + c.mss)) {
    probe_room_ = c.mss;
    send_data(slot);
    probe_room_ = 0;
    if (c.state != TcpState::established) return;
  }
  if (c.snd_max != before) {
    c.tlp = kTlpNewData;
    c.tlp_seq = before;
  } else {
    const uint32_t data_end = (c.flags & kFinSent) ? c.fin_seq : c.snd_max;
    const uint32_t len = std::min<uint32_t>(c.mss, data_end - c.snd_una);
    c.tlp = kTlpRetransmit;
    c.tlp_seq = data_end - len;
    if (len > 0) {
      retransmit_range(slot, c.tlp_seq, len);  // a FIN behind it goes along
    } else {  // only our FIN is outstanding
      count_recovery_event(c, RecoveryEvent::retransmit);
      emit_control(slot, tcpflag::kFin | tcpflag::kAck, c.fin_seq, c.rcv_nxt, window_to_advertise(slot));
    }
  }
  c.tlp_end = c.snd_max;
  c.probe_at = 0;  // one per episode (send_data() may have armed it)
  c.rtx_at = now + c.rto.rto();
}

// The recovery probe: a fast recovery's last retransmissions (or new data
// sent after them) were lost in turn with nothing behind them (a tap's full
// queue drops a pass's tail), so the guest has no later segment to SACK and
// RFC 8985 6 cannot tell; RFC 8985 7.2 and Linux (tcp_schedule_loss_probe)
// arm no probe in recovery, and the RTO (200 ms at least, cwnd to one MSS)
// repaired it: measured in the tap soak, a 4 MiB download of 0.05 s took
// 0.28-0.30 s. TLP's remedy applied to this tail: after a PTO with no
// cumulative progress, what went last is sent once more (one send unit,
// beyond cwnd, as a TLP; of the pass's last retransmission, the first
// part the guest still lacks). The guest either lacked it, and its SACK of it
// marks the retransmissions below as lost again (RFC 8985 6 on a FIFO
// link: process_ack()), or held it (a D-SACK, nothing changes). Either
// way the RTO restarts from the probe (RFC 8985 7.3, Linux's
// tcp_send_loss_probe): a PTO capped at the RTO (2 SRTT at or above it)
// falls due with it, and the RTO must not follow the probe at once.
// One per pass: the next retransmission or cumulative ACK re-arms it
// (kTlpRecovery until then).
void TcpTranslator::recovery_probe(uint32_t slot, uint64_t now) {
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established || !c.in_recovery || c.rto_recovery || !c.rtx_fenced ||
      c.tlp != kTlpNone || c.snd_una == c.snd_max)
    return;
  const uint32_t data_end = (c.flags & kFinSent) ? c.fin_seq : c.snd_max;
  uint32_t start = 0, len = 0;
  if (seq::gt(data_end, c.rtx_fence)) {  // new data left after the pass: its last segment
    len = std::min<uint32_t>(c.mss, data_end - c.snd_una);
    start = data_end - len;
    uint32_t sacked_end = 0;
    if (c.sacks.covers(start, &sacked_end)) return;  // it arrived
  } else {
    // What the guest still lacks of the pass's last retransmission, not
    // only whether it got its first byte: the first segments of one
    // super-segment can arrive without the last (traced in the tap soak:
    // 18 of 24), and the ACK then passes its start.
    start = seq::max(c.rtx_last, c.snd_una);
    uint32_t hole = 0;
    len = c.sacks.next_hole(start, seq::min(c.rtx_nxt, data_end), &hole);
    if (len > 0) {
      start = hole;
      len = std::min(len, send_unit(c));
    }
  }
  // Only our FIN is missing, and the pass resent it (alone or behind data).
  const bool fin_only = len == 0 && (c.flags & kFinSent) && start == c.fin_seq && seq::gt(c.rtx_nxt, c.fin_seq);
  if (len == 0 && !fin_only) return;  // it arrived: the guest's ACKs go on (or the RTO)
  count_recovery_event(c, RecoveryEvent::tlp_probe);
  c.tlp = kTlpRecovery;
  c.tlp_seq = start;
  c.tlp_end = c.snd_max;
  if (fin_only) {
    count_recovery_event(c, RecoveryEvent::retransmit);
    emit_control(slot, tcpflag::kFin | tcpflag::kAck, c.fin_seq, c.rcv_nxt, window_to_advertise(slot));
  } else {
    retransmit_range(slot, start, len);  // a FIN right behind it goes along
  }
  c.rtx_at = now + c.rto.rto();
}

// RFC 8985 7.4.2 (as Linux's tcp_process_tlp_ack, deciding at the ACK of
// tlp_end): a resent probe that the guest did not report as a duplicate
// repaired a loss: cwnd is cut once, as for a fast recovery.
void TcpTranslator::probe_answered(TcpConn& c, uint32_t flight, bool dsack) {
  if (c.tlp == kTlpRetransmit && !dsack && !c.in_recovery) {
    count_recovery_event(c, RecoveryEvent::tlp_recovery);
    counters_.cwnd_reductions++;
    c.cc.enter_recovery(flight);
  }
  c.tlp = kTlpNone;
}

}  // namespace ferry
