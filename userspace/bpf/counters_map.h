// Reading a pinned per-CPU counters map: the one reader behind `ferry stats`,
// `ferry status` and the tests, for `stats` and `attach_stats` alike.
//
// Theory of operation: a counters map (include/ferry/contract.h) is a
// BPF_MAP_TYPE_PERCPU_ARRAY with one entry, key 0, whose value is a struct
// of __u64 counters that BPF bumps on the CPU it runs on. The reader opens
// the pin with bpf_obj_get, checks the map's type and value size against the
// struct it expects (a stale or foreign pin is an error, not garbage),
// fetches every possible CPU's copy in one lookup (each copy rounded up to 8
// bytes by the kernel) and sums them word by word. Nothing is cached: each
// call is one open, one lookup, one close.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "common/status.h"

namespace ferry {

// Sums the per-CPU copies of key 0 of the counters map pinned at path into
// out, value_size bytes of u64 counters.
Status sum_percpu_counters(const std::string& path, void* out, size_t value_size);

// The counters struct T (ferry_stats, ferry_attach_stats) pinned at path,
// summed over the CPUs.
template <class T>
Result<T> read_counters_map(const std::string& path) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % 8 == 0, "a struct of __u64 counters");
  T v{};
  if (Status st = sum_percpu_counters(path, &v, sizeof(T)); !st.ok()) return st;
  return v;
}

}  // namespace ferry
