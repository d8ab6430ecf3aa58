// Retransmission timeout estimator, RFC 6298.
//
// SRTT/RTTVAR from samples (alpha 1/8, beta 1/4, K = 4), RTO = SRTT +
// max(G, 4 * RTTVAR) with a 1 ms clock granularity G. Deviation from the RFC:
// the minimum RTO is 200 ms (as Linux's TCP_RTO_MIN), not 1 s: the guest sits
// on a local link where 1 s would turn every lost segment into a long stall.
// The initial RTO is 1 s (RFC 6298 §2.1); back-off doubles up to 60 s. Tests
// raise the minimum (set_min) so that a test process stalled by a loaded
// machine does not see a timer act where the test checks that none does. Karn's
// rule is the caller's job: it feeds samples only from segments that were not
// retransmitted.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ferry {

class RtoEstimator {
 public:
  static constexpr uint64_t kInitialNs = 1'000'000'000;
  static constexpr uint64_t kMinNs = 200'000'000;
  static constexpr uint64_t kMaxNs = 60'000'000'000;
  static constexpr uint64_t kGranularityNs = 1'000'000;

  // Feeds one RTT measurement (ns).
  void sample(uint64_t rtt) {
    if (!have_) {
      srtt_ = rtt;
      rttvar_ = rtt / 2;
      have_ = true;
    } else {
      uint64_t diff = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
      rttvar_ = (3 * rttvar_ + diff) / 4;
      srtt_ = (7 * srtt_ + rtt) / 8;
    }
    backoff_ = 0;
  }
  // Doubles the timeout after a retransmission timer expired.
  void back_off() {
    if (backoff_ < 16) backoff_++;
  }
  void reset_backoff() { backoff_ = 0; }
  // Minimum RTO (a test knob, TcpTranslator::Timeouts::min_rto_ns); at most kMaxNs.
  void set_min(uint64_t ns) { min_ns_ = std::min(ns, kMaxNs); }
  // Current timeout including back-off.
  uint64_t rto() const {
    uint64_t base = have_ ? srtt_ + std::max(kGranularityNs, 4 * rttvar_) : kInitialNs;
    base = std::clamp(base, min_ns_, kMaxNs);
    uint64_t r = base << backoff_;
    return std::min(r, kMaxNs);
  }
  uint64_t srtt() const { return srtt_; }
  uint64_t rttvar() const { return rttvar_; }
  bool has_sample() const { return have_; }
  unsigned backoff() const { return backoff_; }

 private:
  uint64_t srtt_ = 0, rttvar_ = 0;
  uint64_t min_ns_ = kMinNs;
  bool have_ = false;
  uint8_t backoff_ = 0;
};

}  // namespace ferry
