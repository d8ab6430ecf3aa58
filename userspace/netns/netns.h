// Network namespaces: handles, creation, and scoped entry.
//
// Theory of operation: a network namespace is held by an open fd on its
// nsfs inode (/proc/<tid>/ns/net, /run/netns/<name>). NetnsFd owns such an
// fd. create_netns() makes a fresh anonymous namespace: it unshares
// CLONE_NEWNET in the calling thread only (a thread may do this alone in a
// multithreaded process), opens the thread's new namespace and setns()es back
// to the namespace it started in. The new namespace lives exactly as long as
// something refers to it (the returned fd, a process inside, a bind mount):
// nothing appears in /run/netns and nothing is left behind when the last
// reference goes.
//
// setns() moves the calling *thread*, not the process. Everything that binds
// to a namespace at creation time (sockets, netlink sockets, tun devices)
// belongs to the namespace the thread was in when it was made, and keeps it
// after the thread leaves. NetnsGuard enters a namespace for one scope and
// returns on destruction. Invariant: a thread never runs ferry's host-side
// code inside a guest namespace; so if the way back fails (which would mean
// the saved fd is broken), NetnsGuard aborts the process rather than go on
// opening "host" sockets inside the guest.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace ferry {

// Owns one fd of a network namespace (or -1). Move-only.
class NetnsFd {
 public:
  NetnsFd() = default;
  explicit NetnsFd(int fd) : fd_(fd) {}
  ~NetnsFd() { reset(); }
  NetnsFd(NetnsFd&& o) noexcept : fd_(o.release()) {}
  NetnsFd& operator=(NetnsFd&& o) noexcept;
  NetnsFd(const NetnsFd&) = delete;
  NetnsFd& operator=(const NetnsFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership; returns the fd.
  int release();
  // Closes the current fd (if any) and takes `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// The calling thread's current network namespace.
Result<NetnsFd> current_netns();

// A fresh, empty, anonymous network namespace (only `lo`, down). The calling
// thread ends in the namespace it started in. Needs CAP_SYS_ADMIN.
Result<NetnsFd> create_netns();

// Opens an existing namespace: `spec` containing a '/' is a path
// (/proc/1234/ns/net, /run/netns/x, /var/run/netns/x), anything else a name
// under /run/netns. Names with "..", empty names and non-netns files are
// refused (EINVAL).
Result<NetnsFd> open_netns(std::string_view spec);

// True when both fds refer to the same namespace (same nsfs inode).
bool same_netns(int fd_a, int fd_b);

// The nsfs inode number of the namespace (as shown by `ls -l /proc/self/ns`),
// 0 on error. Handy in messages and tests.
unsigned long netns_inode(int fd);

// Scoped entry into a namespace for the calling thread.
//
//   NetnsGuard g;
//   if (Status st = g.enter(ns.get()); !st) return st;
//   ... work inside ...
//   // back in the original namespace when g goes out of scope
class NetnsGuard {
 public:
  NetnsGuard() = default;
  ~NetnsGuard();
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;

  // Saves the current namespace and setns()es into `ns_fd`. One enter() per
  // guard (EBUSY otherwise). On failure the thread has not moved.
  Status enter(int ns_fd);
  // Returns to the saved namespace now (no-op when not entered). Aborts the
  // process if that fails: see the theory of operation.
  void leave();
  bool entered() const { return saved_.valid(); }

 private:
  NetnsFd saved_;
};

}  // namespace ferry
