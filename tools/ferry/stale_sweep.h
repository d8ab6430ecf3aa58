// What dead ferry instances left, removed when the next one starts.
//
// Theory of operation: an instance killed with SIGKILL (or a machine that
// lost power with /run and bpffs kept) cannot remove its own state. At the
// start of `ferry run`, `ferry vm` and an attach service,
// sweep_dead_instances() removes, for every instance known to be dead:
//   run-PID, vm-PID    its directory under run_base_dir() (the counters
//                      file, the lock), its pins under /sys/fs/bpf/ferry/
//                      (cleanup_stale_instances) and its cgroups;
//   an attached DEV    /run/ferry/DEV (lock, pid, state, log, counters),
//                      its pins under /sys/fs/bpf/ferry/DEV and its cgroups,
//                      what `ferry detach DEV` removes, but only once nothing
//                      of it acts on DEV any more: no pinned DEV link, or the
//                      link's device is gone (attach/datapath.h,
//                      dev_link_active). While DEV exists its dead service's
//                      link keeps the guest's frames from the host's stack;
//                      that stays for `ferry detach DEV` (or the next
//                      `ferry attach DEV`) to undo;
//   old-layout cgroups <cgroup2>/ferry-NAME of a dead NAME, only when it
//                      carries ferry's mark program (bpf/mark_cgroup.h) and
//                      is empty (rmdir refuses one with a process or child).
// "Dead" is the instance's lock (common/instance_lock.h): its lock file
// exists and nobody holds it, whatever PID namespace it ran in; a run
// directory without a lock file (an older ferry's) falls back to kill(PID,
// 0) for run-PID and is kept for a DEV. Each instance is judged and removed
// under SweepGuard, which a starting instance also holds from making its
// directory until it holds its lock: a sweep never takes a starting
// instance for a dead one, and never removes what one just locked. Root
// sweeps /run and the cgroups; a rootless ferry only its own run base
// (judged by kill(PID, 0): it holds no lock).
#pragma once

#include <string>

namespace ferry::cli {

// The sweep above; best effort (nothing it cannot remove stops a start).
void sweep_dead_instances();

// Whether instance NAME is known to be gone: run-PID and vm-PID by their
// lock (run_instance_is_stale), an attached DEV when its lock file is free
// (common/instance_lock.h); any other name is kept (false).
bool instance_is_dead(const std::string& name);

}  // namespace ferry::cli
