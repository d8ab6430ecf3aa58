// Is a ferry instance alive? Asked before removing what looks like a dead
// instance's pins (/sys/fs/bpf/ferry/NAME), files (/run/ferry-run/run-PID,
// /run/ferry/DEV) and cgroups.
//
// Theory of operation: kill(PID, 0) answers in the caller's PID namespace,
// where another namespace's live instance may not exist (or be someone
// else): two instances in different PID namespaces then removed each
// other's live pins. So every instance holds an exclusive flock on a lock
// file in its run directory (/run/ferry-run/run-PID/lock, and an attach
// service /run/ferry/DEV/lock) for its whole life, taken before it pins
// anything; the kernel drops it when the instance dies, however it dies,
// whatever PID namespace anyone looks from. A lock file that is held:
// alive; present and free: dead. No lock file at all (an instance of an
// older ferry, or /run not shared with it): the kill(PID, 0) answer, as
// before, for run-PID; an attached DEV is then not known to be dead.
//
// Ordering against a sweep (tools/ferry/stale_sweep.h): between making its
// directory and taking its lock, a starting instance looks dead. So the
// start (mkdir, open, flock) and the sweep's judging and removing one
// instance both run under SweepGuard, an exclusive flock on
// /run/ferry-run/sweep.lock: a sweep never sees an instance half-started,
// and never removes a directory an instance has just locked. Both hold it
// for milliseconds; it is root's (rootless ferry neither locks nor sweeps
// under /run).
#pragma once

#include <string>

namespace ferry {

// /run/ferry-run/<name>
std::string run_instance_dir(const std::string& name);

// Holds the sweep lock for its life (blocking until it is free); a failure
// to open it (not root, no /run) holds nothing: the caller goes on as if
// no sweep could run.
class SweepGuard {
 public:
  SweepGuard();
  ~SweepGuard();
  SweepGuard(const SweepGuard&) = delete;
  SweepGuard& operator=(const SweepGuard&) = delete;

 private:
  int fd_ = -1;
};

// Takes the lock of the instance whose run directory is `dir` (making the
// directory, 0700, under SweepGuard): the fd to keep open for the
// instance's life, or -1 with errno set (EWOULDBLOCK: a live instance
// holds it).
int hold_instance_lock(const std::string& dir);
// The same for run-PID and vm-PID: hold_instance_lock(run_instance_dir(name)).
int hold_run_instance_lock(const std::string& name);

// Whether `dir`'s lock file exists and no instance holds it: dead.
bool instance_lock_free(const std::string& dir);

// True when the instance `name` (run-PID, pid given) is known to be dead.
bool run_instance_is_stale(const std::string& name, int pid);

}  // namespace ferry
