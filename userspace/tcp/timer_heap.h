// Timer heap: one deadline per slot in an indexed binary min-heap, so setting,
// moving or cancelling a connection's timer is O(log n) with no syscall, and
// the earliest deadline is O(1). The translator reports the top through
// TimerClient::next_deadline_ns().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ferry {

class TimerHeap {
 public:
  static constexpr uint64_t kNone = UINT64_MAX;
  explicit TimerHeap(uint32_t capacity);

  // Sets (or moves) slot's deadline; kNone cancels.
  void set(uint32_t slot, uint64_t deadline);
  void cancel(uint32_t slot) { set(slot, kNone); }
  uint64_t deadline(uint32_t slot) const;
  bool empty() const { return heap_.empty(); }
  uint64_t top_deadline() const { return heap_.empty() ? kNone : heap_[0].deadline; }
  uint32_t top_slot() const { return heap_[0].slot; }
  size_t size() const { return heap_.size(); }

 private:
  struct Entry {
    uint64_t deadline;
    uint32_t slot;
  };
  void sift_up(size_t i);
  void sift_down(size_t i);
  void place(size_t i, const Entry& e);

  std::vector<Entry> heap_;
  std::vector<uint32_t> pos_;  // slot -> heap index + 1, 0 when absent
};

}  // namespace ferry
