// See tap_queue_estimate.h.
#include "tapq/tap_queue_estimate.h"

#include <algorithm>

namespace ferry {

TapQueueEstimate::TapQueueEstimate(DevTxCounterSource& source, const PortCounters& written, unsigned mtu)
    : source_(source), port_(written), piece_max_(mtu + kPieceOverhead) {}

// Headroom: an eighth of the ring, 1 to 64 entries.
void TapQueueEstimate::set_capacity(uint32_t qlen) {
  capacity_ = qlen;
  headroom_ = std::clamp<uint32_t>(qlen / 8, 1, 64);
}

// Baseline: whatever the ring holds now is not ours (occupancy 0).
bool TapQueueEstimate::start(uint64_t now) {
  DevTxCounters d;
  const uint32_t qlen = source_.txqueuelen();
  if (qlen < 4 || !source_.read(&d)) return false;  // a ring too small to share is no estimate
  set_capacity(qlen);
  capacity_at_ = now;
  last_counted_ = d.tx_packets + d.tx_dropped;
  last_dropped_ = d.tx_dropped;
  started_ = true;
  release(now);
  open_window(d);
  counters_.releases = 0;  // the baseline is not a release
  return true;
}

// The ring taken as empty, the unit undecided (segments).
void TapQueueEstimate::release(uint64_t now) {
  if (!segments_) epoch_++;
  segments_ = true;
  decided_ = false;
  off_frames_ = static_cast<int64_t>(port_.tx_frames) - static_cast<int64_t>(last_counted_);
  off_segments_ = static_cast<int64_t>(port_.tx_segments) - static_cast<int64_t>(last_counted_);
  consumed_ = written_at_read_ = clean_lo_ = clean_hi_ = port_.tx_segments;
  progress_at_ = now;
  counters_.releases++;
}

void TapQueueEstimate::open_window(const DevTxCounters& d) {
  win_reads_ = d.tx_packets;
  win_read_bytes_ = d.tx_bytes;
  win_frames_ = port_.tx_frames;
  win_segments_ = port_.tx_segments;
  win_bytes_ = port_.tx_bytes;
}

// Frames or segments, from a window in which ferry wrote super-segments
// (otherwise the two units agree and nothing is learned). Whole frames are
// proven by reads larger on average than the guest's MTU allows a cut
// piece; cuts by kDecideReads reads no larger, averaging over half of it
// and below the geometric mean of our frames' and our segments' sizes (a
// window of small reads, ACK-sized frames, decides nothing).
bool TapQueueEstimate::decide(const DevTxCounters& d) {
  const uint64_t reads = d.tx_packets - win_reads_;
  if (reads == 0) return false;
  const double read_bytes = static_cast<double>(d.tx_bytes - win_read_bytes_);
  const double frames = static_cast<double>(port_.tx_frames - win_frames_);
  const double segments = static_cast<double>(port_.tx_segments - win_segments_);
  const double bytes = static_cast<double>(port_.tx_bytes - win_bytes_);
  const double read_avg = read_bytes / static_cast<double>(reads);
  bool cuts;
  if (frames > 0 && segments > frames && read_avg > static_cast<double>(piece_max_)) {
    cuts = false;
  } else if (reads < kDecideReads) {
    return false;  // the window goes on
  } else {
    open_window(d);
    if (frames == 0 || segments <= frames || 2 * read_avg <= static_cast<double>(piece_max_) ||
        read_avg * read_avg >= (bytes / frames) * (bytes / segments))
      return false;
    cuts = true;
  }
  open_window(d);
  const bool changed = cuts != segments_;
  if (changed || !decided_) {
    if (cuts)
      counters_.segmenting++;
    else
      counters_.whole_frames++;
  }
  decided_ = true;
  segments_ = cuts;
  if (changed) epoch_++;
  return changed;
}

uint64_t TapQueueEstimate::upper() const {
  const uint64_t w = written();
  return w > consumed_ ? w - consumed_ : 0;
}

// One reading: consumption, the drop-free interval, the unit, the baseline.
bool TapQueueEstimate::refresh(uint64_t now, bool force) {
  if (!force && read_at_ != 0 && now - read_at_ < kMinReadIntervalNs) return false;
  DevTxCounters d;
  read_at_ = now;
  if (!source_.read(&d)) {
    counters_.read_errors++;
    release(now);  // no evidence: never hold a sender on a guess
    return false;
  }
  counters_.reads++;
  if (now - capacity_at_ >= kCapacityReadNs) {
    capacity_at_ = now;
    if (const uint32_t qlen = source_.txqueuelen(); qlen >= 4) set_capacity(qlen);
  }
  const uint64_t counted = d.tx_packets + d.tx_dropped;
  const bool was_empty = written_at_read_ <= consumed_;  // empty at the last reading
  const bool moved = counted != last_counted_;
  if (moved || was_empty) progress_at_ = now;  // the stuck clock starts with a non-empty ring
  // Marks written since the last reading were not dropped if tx_dropped did not move.
  const uint64_t w_before = written_at_read_;
  const bool drop_free = d.tx_dropped == last_dropped_;
  last_counted_ = counted;
  last_dropped_ = d.tx_dropped;
  const bool switched = decide(d);

  // Occupancy is never negative: absorb it into the baseline (each unit).
  const int64_t c = static_cast<int64_t>(counted);
  const int64_t wf = static_cast<int64_t>(port_.tx_frames), ws = static_cast<int64_t>(port_.tx_segments);
  if (c + off_frames_ > wf) {
    off_frames_ = wf - c;
    if (!segments_) counters_.rebaselines++;
  }
  if (c + off_segments_ > ws) {
    off_segments_ = ws - c;
    if (segments_) counters_.rebaselines++;
  }
  consumed_ = static_cast<uint64_t>(c + (segments_ ? off_segments_ : off_frames_));
  const uint64_t w = written();
  if (drop_free && !switched) {
    if (clean_hi_ != w_before) clean_lo_ = w_before;
    clean_hi_ = w;
  } else {
    clean_lo_ = clean_hi_ = w;  // nothing proven yet in these units
  }
  written_at_read_ = w;
  if (w > consumed_ && now - progress_at_ >= kStuckNs) release(now);
  return true;
}

// From memory while the upper bound leaves `want`; else one reading.
uint32_t TapQueueEstimate::room(uint32_t want, uint64_t now) {
  if (!started_) return UINT32_MAX;
  const uint32_t limit = capacity_ - headroom_;
  uint64_t u = upper();
  if (u + want > limit) {
    refresh(now, false);
    u = upper();
  }
  return u >= limit ? 0 : static_cast<uint32_t>(limit - u);
}

// Unread and not dropped, as far as can be proven.
bool TapQueueEstimate::still_queued(Mark m, uint64_t now) {
  if (!started_ || m.epoch != epoch_ || m.index <= consumed_) return false;
  refresh(now, false);
  if (m.epoch != epoch_ || m.index <= consumed_) return false;
  return clean_lo_ < m.index && m.index <= clean_hi_;
}

}  // namespace ferry
