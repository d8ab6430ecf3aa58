// Network namespaces: see netns.h for the theory of operation.
//
// Every fd opened here is O_CLOEXEC, so a guest command started with exec()
// never inherits a handle on the host's namespace.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netns/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ferry {

namespace {

constexpr const char* kThreadNetns = "/proc/thread-self/ns/net";
constexpr std::string_view kRunNetns = "/run/netns/";

// Opens a namespace file read-only and close-on-exec.
Result<NetnsFd> open_ns_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open network namespace " + path);
  NetnsFd ns(fd);
  // Refuse files that are not network namespaces: setns() would otherwise
  // fail later with a less helpful EINVAL, far from the user's typo.
  int type = ::ioctl(fd, NS_GET_NSTYPE);
  if (type < 0) return Status(errno == ENOTTY ? EINVAL : errno, path + " is not a namespace file");
  if (type != CLONE_NEWNET) return Status(EINVAL, path + " is not a network namespace");
  return ns;
}

}  // namespace

// Move-assigns, closing what this handle held.
NetnsFd& NetnsFd::operator=(NetnsFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

// Gives up ownership without closing.
int NetnsFd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

// Closes the held fd and takes a new one.
void NetnsFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

// Opens the calling thread's namespace (not the process's: setns is per thread).
Result<NetnsFd> current_netns() {
  int fd = ::open(kThreadNetns, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(std::string("open ") + kThreadNetns);
  return NetnsFd(fd);
}

// Unshares a new namespace in this thread, keeps an fd on it, and goes back.
Result<NetnsFd> create_netns() {
  Result<NetnsFd> saved = current_netns();
  if (!saved) return saved.status();
  if (::unshare(CLONE_NEWNET) != 0) return Status::from_errno("unshare(CLONE_NEWNET)");
  Result<NetnsFd> fresh = current_netns();
  int open_err = fresh ? 0 : fresh.status().err();
  if (::setns(saved->get(), CLONE_NEWNET) != 0) {
    // The thread is stranded in the new namespace: see netns.h.
    std::fprintf(stderr, "ferry: cannot return to the original network namespace: %s\n",
                 std::strerror(errno));
    std::abort();
  }
  if (!fresh) return Status(open_err, "open the new network namespace");
  return fresh;
}

// Opens a namespace by path or by name under /run/netns.
Result<NetnsFd> open_netns(std::string_view spec) {
  if (spec.empty()) return Status(EINVAL, "empty network namespace name");
  std::string path;
  if (spec.find('/') != std::string_view::npos) {
    path.assign(spec);
  } else {
    if (spec == "." || spec == "..") {
      return Status(EINVAL, "bad network namespace name '" + std::string(spec) + "'");
    }
    path.assign(kRunNetns);
    path.append(spec);
  }
  return open_ns_path(path);
}

// Compares nsfs inodes (st_dev and st_ino identify a namespace).
bool same_netns(int fd_a, int fd_b) {
  struct stat a {}, b {};
  if (::fstat(fd_a, &a) != 0 || ::fstat(fd_b, &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The namespace's inode number, 0 when fstat fails.
unsigned long netns_inode(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  return static_cast<unsigned long>(st.st_ino);
}

// Returns to the saved namespace if still inside.
NetnsGuard::~NetnsGuard() { leave(); }

// Saves the current namespace, then moves the thread into ns_fd.
Status NetnsGuard::enter(int ns_fd) {
  if (saved_.valid()) return Status(EBUSY, "NetnsGuard already entered");
  Result<NetnsFd> cur = current_netns();
  if (!cur) return cur.status();
  if (::setns(ns_fd, CLONE_NEWNET) != 0) return Status::from_errno("setns into the network namespace");
  saved_ = std::move(*cur);
  return Status();
}

// Moves the thread back; aborts if the kernel refuses (see netns.h).
void NetnsGuard::leave() {
  if (!saved_.valid()) return;
  if (::setns(saved_.get(), CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "ferry: cannot return to the original network namespace: %s\n",
                 std::strerror(errno));
    std::abort();
  }
  saved_.reset();
}

}  // namespace ferry
