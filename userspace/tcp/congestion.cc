// Congestion window and SACK scoreboard: see congestion.h for the theory of
// operation.
#include "tcp/congestion.h"

#include <algorithm>

#include "tcp/tcp_seq.h"

namespace ferry {

namespace seq = tcpseq;

// ---- CongestionWindow -----------------------------------------------------------------

// IW (RFC 6928): min(10 MSS, max(2 MSS, 14600 bytes)).
void CongestionWindow::init(uint32_t mss, uint32_t iw) {
  mss_ = std::max<uint32_t>(mss, 1);
  cwnd_ = iw != 0 ? std::min(iw, kMaxCwnd) : std::min<uint32_t>(10 * mss_, std::max<uint32_t>(2 * mss_, 14600));
  ssthresh_ = kMaxCwnd;
  bytes_acked_ = 0;
}

// Slow start: the bytes acknowledged; congestion avoidance: one MSS per
// cwnd acknowledged (RFC 3465 2.1). Only while cwnd was the limit.
void CongestionWindow::on_ack(uint32_t acked, uint32_t flight) {
  if (acked == 0 || uint64_t{flight} * 2 < cwnd_) return;
  if (cwnd_ < ssthresh_) {
    uint32_t to_ss = std::min(acked, ssthresh_ - cwnd_);
    cwnd_ = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{cwnd_} + to_ss, kMaxCwnd));
    acked -= to_ss;
    if (acked == 0) return;
  }
  bytes_acked_ += acked;
  while (bytes_acked_ >= cwnd_ && cwnd_ < kMaxCwnd) {
    bytes_acked_ -= cwnd_;
    cwnd_ += mss_;
  }
}

// RFC 6675 5 (3): ssthresh = cwnd = max(FlightSize / 2, 2 MSS).
void CongestionWindow::enter_recovery(uint32_t flight) {
  ssthresh_ = std::max<uint32_t>(flight / 2, 2 * mss_);
  cwnd_ = ssthresh_;
  bytes_acked_ = 0;
}

// RFC 6582 3.2 (3), option 1: min(ssthresh, max(FlightSize, MSS) + MSS),
// so that no burst follows the recovery.
void CongestionWindow::exit_recovery(uint32_t flight) {
  cwnd_ = std::min<uint32_t>(ssthresh_, std::max(flight, mss_) + mss_);
  bytes_acked_ = 0;
}

// RFC 5681 3.1 (4), (5): ssthresh once per timeout chain, cwnd = LW.
void CongestionWindow::on_rto(uint32_t flight, bool first) {
  if (first) ssthresh_ = std::max<uint32_t>(flight / 2, 2 * mss_);
  cwnd_ = mss_;
  bytes_acked_ = 0;
}

// ---- SackScoreboard ------------------------------------------------------------------

// Merges [start, end) (clipped to (una, max]) into the sorted ranges.
void SackScoreboard::add(uint32_t start, uint32_t end, uint32_t una, uint32_t max) {
  if (!seq::lt(start, end) || seq::le(end, una) || seq::gt(end, max)) return;
  if (seq::lt(start, una)) start = una;
  // Ranges that overlap or touch [start, end) are absorbed into it.
  Range merged{start, end};
  Range out[kMaxRanges + 1];
  int m = 0;
  bool placed = false;
  for (int i = 0; i < n_; i++) {
    const Range& r = r_[i];
    if (seq::lt(r.end, merged.start)) {
      out[m++] = r;  // wholly below
    } else if (seq::gt(r.start, merged.end)) {
      if (!placed) {
        out[m++] = merged;
        placed = true;
      }
      out[m++] = r;  // wholly above
    } else {
      merged.start = seq::min(merged.start, r.start);
      merged.end = seq::max(merged.end, r.end);
    }
  }
  if (!placed) out[m++] = merged;
  // Too many (one over at most): forget the smallest range between the
  // lowest and the highest. The lowest is what recovery resends around
  // (the pass's retransmissions land there: forgetting it counted them in
  // flight again, pipe stayed at cwnd and nothing went until the RTO,
  // issue 19), the highest says which holes are lost; a small range in
  // between costs the fewest spurious resends and the least pipe.
  int forget = -1;
  if (m > kMaxRanges) {
    forget = 1;
    for (int i = 2; i < m - 1; i++)
      if (out[i].end - out[i].start <= out[forget].end - out[forget].start) forget = i;
  }
  n_ = 0;
  for (int i = 0; i < m; i++)
    if (i != forget) r_[n_++] = out[i];
}

// Ranges below una go; one that straddles it is cut.
void SackScoreboard::prune(uint32_t una) {
  int k = 0;
  for (int i = 0; i < n_; i++) {
    Range r = r_[i];
    if (seq::le(r.end, una)) continue;
    if (seq::lt(r.start, una)) r.start = una;
    r_[k++] = r;
  }
  n_ = k;
}

uint32_t SackScoreboard::sacked_bytes() const {
  uint32_t n = 0;
  for (int i = 0; i < n_; i++) n += r_[i].end - r_[i].start;
  return n;
}

uint32_t SackScoreboard::high(uint32_t una) const { return n_ ? r_[n_ - 1].end : una; }

bool SackScoreboard::covers(uint32_t s, uint32_t* end) const {
  for (int i = 0; i < n_; i++) {
    if (seq::in_range(s, r_[i].start, r_[i].end)) {
      *end = r_[i].end;
      return true;
    }
  }
  return false;
}

uint32_t SackScoreboard::next_hole(uint32_t from, uint32_t limit, uint32_t* start) const {
  uint32_t s = from;
  for (int i = 0; i < n_ && seq::lt(s, limit); i++) {
    const Range& r = r_[i];
    if (seq::le(r.end, s)) continue;
    if (seq::gt(r.start, s)) {
      *start = s;
      return seq::min(r.start, limit) - s;
    }
    s = r.end;  // inside this range: the hole starts behind it
  }
  if (!seq::lt(s, limit)) return 0;
  *start = s;
  return limit - s;
}

uint32_t SackScoreboard::unsacked_in(uint32_t from, uint32_t limit) const {
  if (!seq::lt(from, limit)) return 0;
  uint32_t n = limit - from;
  for (int i = 0; i < n_; i++) {
    uint32_t a = seq::max(r_[i].start, from), b = seq::min(r_[i].end, limit);
    if (seq::lt(a, b)) n -= b - a;
  }
  return n;
}

}  // namespace ferry
