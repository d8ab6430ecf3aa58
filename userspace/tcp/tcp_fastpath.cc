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
// (fast_progress, also run by an expiring retransmission timer). The fast
// path wakes the translator through fast_progress() when the guest's ACKs
// reopened a window the sender stalled on (fast_stall), when they ACKed
// everything after the host socket ran dry (host_drained), on a run of
// duplicate ACKs, on the ACK of our FIN, and from its activity scan.
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

// The fast path's wake-up (window reopened, duplicate run, FIN acked, or
// the activity scan): fold, fast-retransmit as process_ack() would on the
// third duplicate, send, and finish the connection if both sides are done.
void TcpTranslator::fast_progress(uint32_t slot, bool dup_run, uint32_t dup_ack) {
  if (slot >= capacity_) return;
  TcpConn& c = conns_[slot];
  if (c.state != TcpState::established) return;
  fast_fold(slot);
  if (dup_run && dup_ack == c.snd_una && c.snd_una != c.snd_max && !c.in_recovery) {
    counters_.fast_retransmits++;
    start_recovery(slot, false, true);
  }
  send_data(slot);
  if (c.state == TcpState::established) maybe_finish(slot);
}

// Arms BPF's WINDOW_OPEN wake-up for a sender stopped on the guest's window;
// true when the window is open already and the fold moved something.
bool TcpTranslator::fast_stall(uint32_t slot) {
  return fast_ && fast_->stall(slot, conns_[slot]) && fast_fold(slot);
}

// The host socket holds only bytes in flight. Its kernel ACKs the host's
// sender only once they leave it (we peek, so its window stays closed), and a
// sender waiting for that ACK (Nagle's tail, a small send buffer) stalls until
// the delayed-ACK timer: with the fast path absorbing the guest's ACKs, ask
// for a wake-up once the guest has ACKed everything.
void TcpTranslator::host_drained(uint32_t slot) {
  TcpConn& c = conns_[slot];
  if (fast_ && c.snd_nxt != c.snd_una && fast_->drained(slot, c)) fast_fold(slot);
}

}  // namespace ferry
