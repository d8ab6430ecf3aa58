// TCP translator, BPF fast-path glue: what the translator asks of
// TcpFastPath besides the slot sync (which the emitter does, tcp_emit.cc).
//
// Theory of operation
// -------------------
// While a flow is published, BPF absorbs the guest's pure ACKs into a
// shared slot. fast_fold() replays the latest of them through
// process_ack(), as if that ACK had arrived here, once at each entry point
// before snd_una or the window is used: a guest segment
// (segment_established), a host socket event (host_event), a wake-up
// (fast_progress, also run by an expiring retransmission timer). There is
// no periodic scan: the fast path wakes the translator through
// fast_progress() only when it must act, on wake-ups the translator arms
// whenever its sender stops with nothing to do until the guest ACKs: the
// window it stalled on reopened (fast_stall), enough of the bytes a dry
// host socket holds are ACKed (host_drained); and on a run of duplicate
// ACKs and the ACK of our FIN. A wake-up is spent when it comes, so
// fast_progress() arms again if its send stops the same way (invariant:
// bytes in flight or a closed window always have a wake-up armed, unless
// the per-turn send budget deferred the flow to the next turn, and the
// retransmission or persist timer bounds the wait on one that is lost).
#include <algorithm>

#include "tcp/tcp_internal.h"
#include "tcp/tcp_translator.h"

namespace ferry {

using namespace tcp_detail;

// Feeds the fast path's latest absorbed ACK and window through
// process_ack(), as if that ACK had arrived here when BPF took it (the
// later ACK wins; the window only from an ACK not older than the last
// window update). Never a duplicate: BPF counts those and wakes
// fast_progress(). True on a change.
bool TcpTranslator::fast_fold(uint32_t slot) {
  if (!fast_) return false;
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established) return false;
  uint32_t ack = 0, wnd = 0;
  uint64_t arrived = 0;
  if (!fast_->progress(slot, &ack, &wnd, &arrived)) return false;
  bool advance = seq::gt(ack, c.snd_una);
  bool window = seq::ge(ack, c.snd_wl2) && wnd != c.snd_wnd;
  if (!advance && !window) return false;
  uint32_t raw = std::min<uint32_t>(wnd >> c.snd_shift, 65535);
  // BPF absorbs pure ACKs only; the RTT sample is taken from their arrival
  return process_ack(slot, c.snd_wl1, ack, static_cast<uint16_t>(raw), true, arrived);
}

// The fast path's wake-up (window reopened, ACKs of a drained socket's
// bytes, duplicate run, FIN acked) or an expiring timer: fold,
// fast-retransmit as process_ack() would on the third duplicate, send, and
// finish the connection if both sides are done. The wake-up that brought
// us here is spent: a socket that stays dry with bytes in flight arms the
// next one (a window stall arms its own in send_data()).
void TcpTranslator::fast_progress(uint32_t slot, bool dup_run, uint32_t dup_ack) {
  if (slot >= capacity_) return;
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established) return;
  fast_fold(slot);
  if (dup_run && dup_ack == c.snd_una && c.snd_una != c.snd_max && !c.in_recovery) {
    count_recovery_event(c, RecoveryEvent::fast_recovery);
    start_recovery(slot, false, true);
  }
  const bool dry = !(c.flags & (kReadable | kHostEof));
  send_data(slot);  // a readable socket that runs dry arms in there
  if (c.state != TcpState::established) return;
  if (dry) host_drained(slot);
  if (c.state == TcpState::established) maybe_finish(slot);
}

// Arms BPF's WINDOW_OPEN wake-up for a sender stopped on the guest's window;
// true when the window is open already and the fold moved something.
bool TcpTranslator::fast_stall(uint32_t slot) {
  return fast_ && fast_->stall(slot, conns_[slot]) && fast_fold(slot);
}

// The host socket holds only bytes in flight. They leave it only once the
// guest ACKs them, and only then does its kernel open the host's sender's
// window again or ACK it (we peek, so its window stays closed; a sender
// waiting for that ACK, Nagle's tail or a small send buffer, stalls until
// the delayed-ACK timer): with the fast path absorbing the guest's ACKs,
// ask for a wake-up once enough of them are ACKed (FastPathBridge::drained).
void TcpTranslator::host_drained(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (fast_ && c.snd_nxt != c.snd_una && fast_->drained(slot, c)) fast_fold(slot);
}

}  // namespace ferry
