// The per-CPU counters reader: see counters_map.h.
#include "bpf/counters_map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ferry {

Status sum_percpu_counters(const std::string& path, void* out, size_t value_size) {
  std::memset(out, 0, value_size);
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return Status::from_errno(path);
  bpf_map_info info{};
  uint32_t info_len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &info_len) != 0) {
    Status st = Status::from_errno(path);
    close(fd);
    return st;
  }
  if (info.type != BPF_MAP_TYPE_PERCPU_ARRAY || info.value_size != value_size) {
    close(fd);
    return Status::failure(path + ": not a per-CPU counters map of " + std::to_string(value_size) +
                           " bytes (value size " + std::to_string(info.value_size) + ")");
  }
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) {
    close(fd);
    return Status(-ncpu, "count possible CPUs");
  }
  // Each CPU's copy comes back rounded up to 8 bytes: a whole number of words.
  const size_t words = value_size / 8;
  std::vector<uint64_t> per_cpu(words * static_cast<size_t>(ncpu));
  const uint32_t key = 0;
  const int rc = bpf_map_lookup_elem(fd, &key, per_cpu.data());
  const int err = errno;
  close(fd);
  if (rc != 0) return Status(err, "read " + path);
  std::vector<uint64_t> sum(words, 0);
  for (size_t c = 0; c < static_cast<size_t>(ncpu); c++)
    for (size_t i = 0; i < words; i++) sum[i] += per_cpu[c * words + i];
  std::memcpy(out, sum.data(), value_size);
  return {};
}

}  // namespace ferry
