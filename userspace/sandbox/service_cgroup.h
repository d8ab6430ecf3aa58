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
//   2. mkdir ferry/DEV, write memory.max (bytes, or "max"): the limit of
//      everything below it;
//   3. mkdir ferry/DEV/service, a leaf, and our pid into its cgroup.procs;
//      the translator, forked later, is born there. With --mark the
//      translator moves on into the leaf beside it, ferry/DEV/translator
//      (below): still under DEV's memory.max. Both processes sit in leaves,
//      so DEV may enable controllers for its children (cgroup v2's "no
//      internal processes" rule) should a later version want to.
// At the end the service moves back to the cgroup it came from and
// removes ferry/DEV/service, ferry/DEV/translator and ferry/DEV (`ferry
// detach` removes what a killed service left: remove_service_cgroups).
// Not cgroup v2 (a v1 or hybrid machine) or not writable: nothing happens,
// and the caller notes it in the log.
//
// The --mark cgroup (bpf/mark_cgroup.h) is a directory of the cgroup2
// hierarchy named after the same instance, translator_cgroup_dir():
//   * the service has a cgroup of its own (unified hierarchy):
//     <service cgroup>/translator;
//   * otherwise (a hybrid machine, cgroup2 mounted beside the v1
//     controllers, e.g. /sys/fs/cgroup/unified; or `ferry run`, which is no
//     service): <cgroup2 mount>/ferry/NAME/translator.
// make_translator_cgroup() makes it (a leftover of a killed instance of the
// same name is removed and made again), remove_translator_cgroup() removes
// it and, when it made it, ferry/NAME.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace ferry::sandbox {

inline constexpr const char* kCgroupRoot = "/sys/fs/cgroup";
// The leaves of a service's cgroup (see above).
inline constexpr const char* kServiceLeaf = "service";
inline constexpr const char* kTranslatorLeaf = "translator";

// Whether root is a cgroup v2 mount we may write.
bool writable_cgroup2(const std::string& root);

// Steps 1-3 above under root (no file-system check: the caller made it).
// Returns the service's cgroup directory (root/ferry/NAME; the pid is in
// its leaf `service`).
Result<std::string> join_service_cgroup(const std::string& root, const std::string& name,
                                        std::optional<uint64_t> memory_max, pid_t pid);

// Moves pid back to the cgroup path `home` (as /proc/self/cgroup names it,
// relative to root) and removes dir with its leaves; best effort.
void leave_service_cgroup(const std::string& root, const std::string& dir, const std::string& home, pid_t pid);

// The --mark cgroup of instance NAME: service_dir/translator when the
// service has a cgroup of its own (service_dir not empty), else
// cgroup2/ferry/NAME/translator.
std::string translator_cgroup_dir(const std::string& cgroup2, const std::string& service_dir,
                                  const std::string& name);
// Makes dir (translator_cgroup_dir) and the parents it lacks below the
// cgroup2 mount; a leftover dir is removed and made again.
Status make_translator_cgroup(const std::string& dir);
// Removes dir and, when it is not inside the service's cgroup, its parent
// ferry/NAME; best effort (a cgroup with a process left stays).
void remove_translator_cgroup(const std::string& dir, const std::string& service_dir);

// What a killed instance NAME left under a cgroup2 mount, in every layout
// this and earlier versions made: ferry/NAME/{translator,service} and
// ferry/NAME, and the old ferry-NAME; best effort.
void remove_service_cgroups(const std::string& cgroup2, const std::string& name);

// Every instance's cgroups under cgroup2/ferry/NAME whose instance
// is_dead(NAME) says is gone: what an instance killed with SIGKILL left
// (remove_service_cgroups each, which takes an old ferry-NAME of the same
// name too). With old_layout_is_ours, the old layout's top-level
// cgroup2/ferry-NAME entries alone (no version since 6d56f87 makes them;
// their instances died before it) go too, where NAME is dead and
// old_layout_is_ours(path) proves the directory ferry's (it carries
// ferry's mark program: bpf/mark_cgroup.h): a name alone proves nothing
// at a hierarchy's top. Entries modified less than min_age_s ago are left
// alone: an instance may be between making its cgroup and joining it.
// rmdir() refuses a cgroup that still holds a process or a child, so a
// live instance's cgroup survives a wrong answer. Returns how many
// instances' cgroups went; best effort.
size_t remove_dead_instance_cgroups(const std::string& cgroup2, bool (*is_dead)(const std::string& name),
                                    long min_age_s = 10,
                                    bool (*old_layout_is_ours)(const std::string& path) = nullptr);

// Where the cgroup2 hierarchy is mounted ("" when nowhere).
std::string cgroup2_mount();

// This process's cgroup v2 path ("/user.slice/..."), "" when unknown.
std::string current_cgroup();

// "256M", "1G", "1048576", "max" -> bytes (nullopt for max); false if malformed.
bool parse_memory_size(const std::string& text, std::optional<uint64_t>* out);

}  // namespace ferry::sandbox
