// Is a `ferry run` instance alive? Asked before removing what looks like a
// dead instance's pins (/sys/fs/bpf/ferry/run-PID) and files
// (/run/ferry-run/run-PID).
//
// Theory of operation: kill(PID, 0) answers in the caller's PID namespace,
// where another namespace's live instance may not exist (or be someone
// else): two instances in different PID namespaces then removed each
// other's live pins. So every instance holds an exclusive flock on
// /run/ferry-run/run-PID/lock for its whole life, taken before it pins
// anything; the kernel drops it when the instance dies, however it dies,
// whatever PID namespace anyone looks from. A lock file that is held: alive;
// present and free: dead. No lock file at all (an instance of an older
// ferry, or /run not shared with it): the kill(PID, 0) answer, as before.
#pragma once

#include <string>

namespace ferry {

// /run/ferry-run/<name>
std::string run_instance_dir(const std::string& name);

// Takes the lock of instance `name` (making its directory, 0700): the fd to
// keep open for the instance's life, or -1 with errno set (EWOULDBLOCK: a
// live instance holds it).
int hold_run_instance_lock(const std::string& name);

// True when the instance `name` (run-PID, pid given) is known to be dead.
bool run_instance_is_stale(const std::string& name, int pid);

}  // namespace ferry
