// Flow table: fixed-size map from a TCP 5-tuple (struct ferry_conn_key, as
// the guest sees the connection) to a stable slot number.
//
// Theory of operation: `capacity` slots are reserved once; a slot, once
// given to a flow, keeps its number until the flow is removed, so the BPF
// fast path can index a shared array by it. Free slots come from a LIFO free
// list (recently freed, cache-warm slots first) backed by a high-water mark,
// so nothing is touched before it is used. The index is an open-addressing
// table of 2^k >= 2 * capacity buckets holding slot+1 (0 = empty), probed
// linearly from a SipHash-2-4 of the key under a random key (a guest cannot
// aim tuples at one bucket); removal shifts later entries back (no
// tombstones), so lookups stay O(1) expected at load <= 1/2 for ever.
// Invariants: every used slot's key is in the index exactly once; the index
// holds nothing else; used + free + never-used = capacity.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "ferry/contract.h"
#include "tcp/siphash.h"

namespace ferry {

inline constexpr uint32_t kNoSlot = UINT32_MAX;

class FlowTable {
 public:
  explicit FlowTable(uint32_t capacity, SipKey key = random_sip_key());
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;
  ~FlowTable();

  // Slot of key, or kNoSlot.
  uint32_t lookup(const ferry_conn_key& key) const;
  // Adds key (which must not be present); its slot, or kNoSlot when full.
  uint32_t insert(const ferry_conn_key& key);
  // Removes the flow in slot (no-op for a free slot).
  void remove(uint32_t slot);
  // Key stored for a used slot.
  const ferry_conn_key& key(uint32_t slot) const { return keys_[slot]; }
  bool used(uint32_t slot) const { return slot < capacity_ && used_[slot]; }

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return size_; }

  // Key equality over the whole (padded, zeroed) structure.
  static bool same(const ferry_conn_key& a, const ferry_conn_key& b);

 private:
  size_t bucket_of(const ferry_conn_key& key) const;

  uint32_t capacity_;
  uint32_t size_ = 0;
  size_t mask_;          // buckets - 1
  SipKey key_;
  ferry_conn_key* keys_;   // capacity_, mmap'd (zero pages until used)
  uint8_t* used_;          // capacity_
  uint32_t* index_;        // buckets, slot + 1
  uint32_t* free_;         // LIFO of freed slots
  uint32_t free_count_ = 0;
  uint32_t high_water_ = 0;  // slots >= this were never used
};

}  // namespace ferry
