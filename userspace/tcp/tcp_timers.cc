// TCP translator, timers: one deadline per connection in a TimerHeap, no
// syscall per tick.
//
// Theory of operation
// -------------------
// A connection has three deadlines; the heap holds the earliest
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
// Retries are bounded (SYN: 5, data: 10), then both sides are reset, so
// memory is bounded under any guest behaviour. With the BPF fast path an
// expiring retransmission timer first folds what BPF absorbed
// (fast_progress): those ACKs may have answered it.
#include "tcp/tcp_internal.h"
#include "tcp/tcp_translator.h"

namespace ferry {

using namespace tcp_detail;

// Earliest of all connections' deadlines.
uint64_t TcpTranslator::next_deadline_ns() const {
  uint64_t d = timers_.top_deadline();
  if (listeners_resume_at_ && listeners_resume_at_ < d) d = listeners_resume_at_;
  return d == TimerHeap::kNone ? kNever : d;
}

// Runs every expired connection timer (and resumes paused listeners).
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
      update_timer(slot);
    }
  }
}

// Sets the slot's heap deadline to the earlier of its timers.
void TcpTranslator::update_timer(uint32_t slot) {
  const TcpConn& c = conns_[slot];
  uint64_t d = TimerHeap::kNone;
  if (c.rtx_at) d = c.rtx_at;
  if (c.state_at && c.state_at < d) d = c.state_at;
  if (c.ack_at && c.ack_at < d) d = c.ack_at;
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
        if (++c.retries > timeouts_.max_retries) {
          counters_.timeouts++;
          reset_both(slot, "retransmit-timeout");
          return;
        }
        counters_.rto_expired++;
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

}  // namespace ferry
