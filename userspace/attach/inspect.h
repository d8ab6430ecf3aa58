// Reading a ferry instance from its pins alone (`ferry status`, `ferry conns`):
// no message to the process, so it works while the process is hung or gone.
//
// Theory of operation: maps are opened with bpf_obj_get on their pins (the
// per-CPU counters through bpf/counters_map.h's one reader). The `conns` view is
// mmap'd read-only and walked; a slot is copied only when its `seq` is even
// and unchanged across the copy (a torn slot is retried a few times, then
// skipped), so a reader never reports half-written flows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "ferry/conn_view.h"
#include "ferry/contract.h"

namespace ferry::attach {

struct ConnEntry {
  uint32_t slot = 0;
  ferry_conn_view v{};
};
// Every live slot of the `conns` view pinned at path.
Result<std::vector<ConnEntry>> read_conns(const std::string& path);
// The same from a view kept in a plain file (a rootless `ferry run`:
// attach/conn_view_file.h).
Result<std::vector<ConnEntry>> read_conns_file(const std::string& path);

// Text forms for output.
const char* conn_state_name(uint8_t state);
std::string conn_addr(const uint8_t addr[16], uint8_t family);

// JSON string literal of s (quotes, escapes).
std::string json_str(const std::string& s);

}  // namespace ferry::attach
