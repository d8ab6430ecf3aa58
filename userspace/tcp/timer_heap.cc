// Indexed binary min-heap of (deadline, slot); pos_ maps a slot to its place.
#include "tcp/timer_heap.h"

namespace ferry {

// Reserves room for every slot up front (no allocation later).
TimerHeap::TimerHeap(uint32_t capacity) : pos_(capacity, 0) { heap_.reserve(capacity); }

// Deadline of slot, kNone when not queued.
uint64_t TimerHeap::deadline(uint32_t slot) const {
  if (slot >= pos_.size() || pos_[slot] == 0) return kNone;
  return heap_[pos_[slot] - 1].deadline;
}

// Stores e at i and records its position.
void TimerHeap::place(size_t i, const Entry& e) {
  heap_[i] = e;
  pos_[e.slot] = static_cast<uint32_t>(i + 1);
}

// Moves entry i towards the root while it is earlier than its parent.
void TimerHeap::sift_up(size_t i) {
  Entry e = heap_[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (heap_[p].deadline <= e.deadline) break;
    place(i, heap_[p]);
    i = p;
  }
  place(i, e);
}

// Moves entry i towards the leaves while a child is earlier.
void TimerHeap::sift_down(size_t i) {
  Entry e = heap_[i];
  size_t n = heap_.size();
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && heap_[c + 1].deadline < heap_[c].deadline) c++;
    if (heap_[c].deadline >= e.deadline) break;
    place(i, heap_[c]);
    i = c;
  }
  place(i, e);
}

// Insert, move or remove.
void TimerHeap::set(uint32_t slot, uint64_t deadline) {
  if (slot >= pos_.size()) return;
  uint32_t p = pos_[slot];
  if (deadline == kNone) {
    if (p == 0) return;
    size_t i = p - 1;
    pos_[slot] = 0;
    Entry last = heap_.back();
    heap_.pop_back();
    if (i < heap_.size()) {
      place(i, last);
      sift_up(i);
      sift_down(pos_[last.slot] - 1);
    }
    return;
  }
  if (p == 0) {
    heap_.push_back({deadline, slot});
    pos_[slot] = static_cast<uint32_t>(heap_.size());
    sift_up(heap_.size() - 1);
    return;
  }
  size_t i = p - 1;
  uint64_t old = heap_[i].deadline;
  heap_[i].deadline = deadline;
  if (deadline < old)
    sift_up(i);
  else
    sift_down(i);
}

}  // namespace ferry
