// A cgroup of its own for each `ferry attach` service (cgroup v2).
//
// Theory of operation: a service started by a container runtime's CNI call
// would otherwise live (and be charged) in whatever cgroup the runtime ran
// the plugin in. When /sys/fs/cgroup is a writable cgroup v2 hierarchy, the
// service moves itself, before it makes anything (so its BPF maps and
// socket buffers are charged there too), into /sys/fs/cgroup/ferry/DEV:
//   1. mkdir ferry/ (it holds no process, only services: cgroup v2's
//      no-internal-process rule) and enable the memory controller for its
//      children ("+memory" into ferry/cgroup.subtree_control; without it the
//      service is still placed, with no memory.max);
//   2. mkdir ferry/DEV, write memory.max (bytes, or "max"), then our pid
//      into cgroup.procs; the translator, forked later, is born there.
// At the end the service moves back to the cgroup it came from and
// removes ferry/DEV (`ferry detach` removes one a killed service left).
// Not cgroup v2 (a v1 or hybrid machine) or not writable: nothing happens,
// and the caller notes it in the log.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace ferry::sandbox {

inline constexpr const char* kCgroupRoot = "/sys/fs/cgroup";

// Whether root is a cgroup v2 mount we may write.
bool writable_cgroup2(const std::string& root);

// Steps 1-2 above under root (no file-system check: the caller made it).
// Returns the cgroup's directory.
Result<std::string> join_service_cgroup(const std::string& root, const std::string& name,
                                        std::optional<uint64_t> memory_max, pid_t pid);

// Moves pid back to the cgroup path `home` (as /proc/self/cgroup names it,
// relative to root) and removes dir; best effort.
void leave_service_cgroup(const std::string& root, const std::string& dir, const std::string& home, pid_t pid);

// This process's cgroup v2 path ("/user.slice/..."), "" when unknown.
std::string current_cgroup();

// "256M", "1G", "1048576", "max" -> bytes (nullopt for max); false if malformed.
bool parse_memory_size(const std::string& text, std::optional<uint64_t>* out);

}  // namespace ferry::sandbox
