// The guest namespace's socket tables, held open: what -t/-u auto reads.
//
// Theory of operation: /proc/net/{tcp,tcp6,udp,udp6} describe the sockets
// of the network namespace of the process that opens them, and an open
// file keeps describing that namespace (it holds a reference to it) after
// the opener has left it. So ferry opens the four files once, in the
// guest's namespace and before the translator's sandbox (which has no /proc
// and may not open files), and the translator re-reads the same fds with
// pread(fd, ..., 0) for as long as it runs. Root's `ferry run` opens them
// in a scope that entered the guest's namespace (netns/netns.h NetnsGuard);
// rootless, the helper that made the namespace opens them there and hands
// them back with the tap (run_rootless.h). A table the kernel lacks (IPv6
// disabled at boot) is /dev/null instead: it reads as an empty table.
#pragma once

#include <array>
#include <vector>

#include "common/status.h"

namespace ferry {

class ListenTables {
 public:
  enum Table { kTcp4, kTcp6, kUdp4, kUdp6, kCount };

  ListenTables() = default;
  ~ListenTables() { reset(); }
  ListenTables(ListenTables&& o) noexcept : fds_(o.fds_) { o.fds_.fill(-1); }
  ListenTables& operator=(ListenTables&& o) noexcept;
  ListenTables(const ListenTables&) = delete;
  ListenTables& operator=(const ListenTables&) = delete;

  // Opens the four tables of the calling thread's current network
  // namespace (/proc/thread-self/net/...).
  static Result<ListenTables> open_here();
  // The same, for the network namespace behind ns_fd (entered for the call).
  static Result<ListenTables> open_in(int ns_fd);
  // Takes kCount fds in Table order (as fds() gave them); fails (closing
  // them) on any other count.
  static Result<ListenTables> adopt(const std::vector<int>& fds);

  bool valid() const { return fds_[kTcp4] >= 0; }
  int fd(Table t) const { return fds_[t]; }
  // Gives the fds up, in Table order (to hand them to another process).
  std::vector<int> release();
  void reset();

 private:
  std::array<int, kCount> fds_{-1, -1, -1, -1};
};

}  // namespace ferry
