// Flow table: open-addressing index over stable slots (see flow_table.h).
// Memory comes from anonymous mmap, so a table sized for 131072 flows costs
// resident memory only for the slots and buckets actually touched.
#include "tcp/flow_table.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace ferry {

namespace {

// Zero-filled anonymous memory of n bytes; throws on failure (only at start).
void* map_zeroed(size_t n) {
  void* p = mmap(nullptr, n ? n : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

}  // namespace

// Reserves slots, keys and a power-of-two index of at least 2 * capacity.
FlowTable::FlowTable(uint32_t capacity, SipKey key) : capacity_(capacity ? capacity : 1), key_(key) {
  size_t buckets = 16;
  while (buckets < size_t{capacity_} * 2) buckets <<= 1;
  mask_ = buckets - 1;
  keys_ = static_cast<ferry_conn_key*>(map_zeroed(sizeof(ferry_conn_key) * capacity_));
  used_ = static_cast<uint8_t*>(map_zeroed(capacity_));
  index_ = static_cast<uint32_t*>(map_zeroed(sizeof(uint32_t) * buckets));
  free_ = static_cast<uint32_t*>(map_zeroed(sizeof(uint32_t) * capacity_));
}

// Unmaps everything.
FlowTable::~FlowTable() {
  munmap(keys_, sizeof(ferry_conn_key) * capacity_);
  munmap(used_, capacity_);
  munmap(index_, sizeof(uint32_t) * (mask_ + 1));
  munmap(free_, sizeof(uint32_t) * capacity_);
}

// memcmp is exact because keys are built zeroed (padding included).
bool FlowTable::same(const ferry_conn_key& a, const ferry_conn_key& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

// Home bucket: keyed hash, masked.
size_t FlowTable::bucket_of(const ferry_conn_key& key) const {
  return static_cast<size_t>(siphash24(key_, &key, sizeof(key))) & mask_;
}

// Linear probe until the key or an empty bucket.
uint32_t FlowTable::lookup(const ferry_conn_key& key) const {
  for (size_t b = bucket_of(key);; b = (b + 1) & mask_) {
    uint32_t v = index_[b];
    if (v == 0) return kNoSlot;
    if (same(keys_[v - 1], key)) return v - 1;
  }
}

// Takes a slot (free list first, then the high-water mark) and indexes it.
uint32_t FlowTable::insert(const ferry_conn_key& key) {
  uint32_t slot;
  if (free_count_ > 0) {
    slot = free_[--free_count_];
  } else if (high_water_ < capacity_) {
    slot = high_water_++;
  } else {
    return kNoSlot;
  }
  keys_[slot] = key;
  used_[slot] = 1;
  size_t b = bucket_of(key);
  while (index_[b] != 0) b = (b + 1) & mask_;
  index_[b] = slot + 1;
  size_++;
  return slot;
}

// Unindexes with backward-shift deletion, then frees the slot.
void FlowTable::remove(uint32_t slot) {
  if (!used(slot)) return;
  size_t b = bucket_of(keys_[slot]);
  while (index_[b] != slot + 1) b = (b + 1) & mask_;
  // Shift later members of the probe run back into the hole, unless their
  // home bucket lies cyclically in (hole, current].
  size_t hole = b;
  for (size_t j = (hole + 1) & mask_; index_[j] != 0; j = (j + 1) & mask_) {
    size_t home = bucket_of(keys_[index_[j] - 1]);
    bool stays = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    index_[hole] = index_[j];
    hole = j;
  }
  index_[hole] = 0;
  used_[slot] = 0;
  std::memset(&keys_[slot], 0, sizeof(keys_[slot]));
  free_[free_count_++] = slot;
  size_--;
}

}  // namespace ferry
