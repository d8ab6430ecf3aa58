// The guest namespace's socket tables: see listen_tables.h.
#include "autofwd/listen_tables.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "netns/netns.h"

namespace ferry {

ListenTables& ListenTables::operator=(ListenTables&& o) noexcept {
  if (this != &o) {
    reset();
    fds_ = o.fds_;
    o.fds_.fill(-1);
  }
  return *this;
}

Result<ListenTables> ListenTables::open_here() {
  static constexpr const char* kPaths[kCount] = {"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6",
                                                 "/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"};
  ListenTables t;
  for (int i = 0; i < kCount; i++) {
    int fd = open(kPaths[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && (i == kTcp6 || i == kUdp6)) fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::from_errno(std::string("open ") + kPaths[i]);
    t.fds_[static_cast<size_t>(i)] = fd;
  }
  return t;
}

Result<ListenTables> ListenTables::open_in(int ns_fd) {
  NetnsGuard guard;
  if (Status st = guard.enter(ns_fd); !st) return st;
  return open_here();
}

Result<ListenTables> ListenTables::adopt(const std::vector<int>& fds) {
  if (fds.size() != kCount) {
    for (int fd : fds) close(fd);
    return Status(EPROTO, "expected " + std::to_string(kCount) + " socket tables, got " + std::to_string(fds.size()));
  }
  ListenTables t;
  for (size_t i = 0; i < kCount; i++) t.fds_[i] = fds[i];
  return t;
}

std::vector<int> ListenTables::release() {
  std::vector<int> out(fds_.begin(), fds_.end());
  fds_.fill(-1);
  return out;
}

void ListenTables::reset() {
  for (int& fd : fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

}  // namespace ferry
