// Congestion control toward the guest: how much ferry may have in flight
// on a connection, and which bytes the guest's SACK blocks say it holds.
// Pure state, no sockets: the translator feeds it events and asks it for
// room (tcp_output.cc, tcp_input.cc, tcp_timers.cc).
//
// Theory of operation
// -------------------
// A guest link is a queue that can overflow: a tap whose reader (QEMU
// under TCG) is slow drops what does not fit (issue 19). Sending the
// guest's whole advertised window at once then loses the tail of every
// window; the repair must not wait for RTOs. Standard TCP sender rules:
//
//   CongestionWindow (RFC 5681, RFC 6928, RFC 3465, RFC 6582/6675)
//     cwnd starts at IW = min(10 MSS, max(2 MSS, 14600)) (RFC 6928).
//     Slow start (cwnd < ssthresh): cwnd += bytes acknowledged; congestion
//     avoidance: one MSS per cwnd of bytes acknowledged. Appropriate byte
//     counting (RFC 3465) without its per-ACK limit L: with the BPF fast
//     path the translator learns of ACKs in folds (many ACKs at once), so
//     it grows by the bytes a fold acknowledged, never per ACK. cwnd grows
//     only while the sender used at least half of it (it is the limit, not
//     the guest's window; RFC 7661's idea), so a window-limited flow does
//     not build a cwnd it never tested.
//     Loss detected by duplicate ACKs or SACK (enter_recovery): ssthresh =
//     max(flight / 2, 2 MSS), cwnd = ssthresh (RFC 6675 5; once per
//     recovery); the recovery ends when the ACK passes the recovery point
//     (exit_recovery: cwnd = min(ssthresh, flight + MSS), RFC 6582 3.2).
//     A retransmission timeout (on_rto): ssthresh = max(flight / 2, 2 MSS)
//     on the first timeout of a chain only, cwnd = 1 MSS (the loss window),
//     then slow start again.
//   SackScoreboard (RFC 2018, RFC 6675)
//     The sequence ranges above snd_una the guest reported holding, merged
//     across ACKs, at most kMaxRanges (a reader's pauses leave a hole per
//     pause: 10 and more in one window, seen in the tap soak). On overflow
//     the smallest range between the lowest and the highest is forgotten:
//     its bytes count in flight and are resent, spurious but harmless; the
//     lowest (where a retransmission pass lands) and the highest (which
//     holes are lost) stay. Everything
//     below snd_una is dropped (prune). Bytes in holes below the highest
//     SACKed byte are lost (a tap is a FIFO: it does not reorder).
//
// The "pipe" (RFC 6675: bytes in flight) is the translator's: flight less
// SACKed bytes less lost bytes not yet retransmitted (see tcp_output.cc).
#pragma once

#include <cstdint>

namespace ferry {

class CongestionWindow {
 public:
  static constexpr uint32_t kMaxCwnd = 1u << 30;

  // A new connection with segment size mss: the initial window (iw bytes
  // instead of RFC 6928's when not 0).
  void init(uint32_t mss, uint32_t iw = 0);
  uint32_t cwnd() const { return cwnd_; }
  uint32_t ssthresh() const { return ssthresh_; }
  bool slow_start() const { return cwnd_ < ssthresh_; }
  // Bytes newly acknowledged by cumulative ACK (one ACK or a fold of many)
  // outside loss recovery; flight: bytes that were in flight before them.
  void on_ack(uint32_t acked, uint32_t flight);
  // Loss detected by duplicate ACKs or SACK with flight bytes in flight:
  // halve.
  void enter_recovery(uint32_t flight);
  // The recovery point was acknowledged; flight: what is still in flight.
  void exit_recovery(uint32_t flight);
  // The retransmission timer expired: the loss window. first: the first
  // timeout since data was last acknowledged (ssthresh halves only then).
  void on_rto(uint32_t flight, bool first);

 private:
  uint32_t mss_ = 536;
  uint32_t cwnd_ = 0;
  uint32_t ssthresh_ = kMaxCwnd;
  uint32_t bytes_acked_ = 0;  // congestion avoidance: counts towards one MSS of growth
};

class SackScoreboard {
 public:
  static constexpr int kMaxRanges = 32;
  struct Range {
    uint32_t start, end;  // [start, end) in sequence numbers
  };

  // Adds the guest's block [start, end), clipped to (una, max]; blocks
  // outside it (stale, or a D-SACK below una) are ignored.
  void add(uint32_t start, uint32_t end, uint32_t una, uint32_t max);
  // Forgets everything below una (acknowledged cumulatively).
  void prune(uint32_t una);
  void clear() { n_ = 0; }
  bool empty() const { return n_ == 0; }
  // Bytes SACKed.
  uint32_t sacked_bytes() const;
  // The end of the highest SACKed range, or `una` when there is none.
  uint32_t high(uint32_t una) const;
  // True when seq lies inside a SACKed range; *end is that range's end.
  bool covers(uint32_t seq, uint32_t* end) const;
  // The first byte at or after `from` that is not SACKed, and the length
  // of the gap from there to the next SACKed range (or to `limit`); 0 when
  // nothing is missing before limit.
  uint32_t next_hole(uint32_t from, uint32_t limit, uint32_t* start) const;
  // Bytes in [from, limit) that are not SACKed.
  uint32_t unsacked_in(uint32_t from, uint32_t limit) const;
  int size() const { return n_; }
  const Range& range(int i) const { return r_[i]; }

 private:
  Range r_[kMaxRanges] = {};  // sorted, disjoint, not adjacent
  int n_ = 0;
};

}  // namespace ferry
