// Sockets made inside the guest's namespace: see sockets_in_namespace.h.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netns/sockets_in_namespace.h"

#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <span>
#include <string>

#include "netns/fd_passing.h"
#include "netns/unprivileged_guest_ns.h"

namespace ferry {

namespace {

constexpr size_t kMaxMessage = 512;

// The helper's last message ("K", or the failure) and its exit.
[[noreturn]] void finish(int sock, const Status& st) {
  const std::string msg = st.ok() ? "K" : "E" + std::to_string(st.err()) + " " + st.what();
  _exit(send_with_fds(sock, std::string_view(msg).substr(0, kMaxMessage), {}) && st.ok() ? 0 : 1);
}

// The helper: enter, open, send; never returns.
[[noreturn]] void helper(int sock, int userns_fd, int netns_fd, const std::function<Status(std::vector<int>*)>& open) {
  Status entered = userns_fd >= 0 ? enter_guest_namespaces(userns_fd, netns_fd)
                                  : (::setns(netns_fd, CLONE_NEWNET) == 0
                                         ? Status()
                                         : Status::from_errno("enter the guest's network namespace"));
  if (!entered) finish(sock, entered);
  std::vector<int> fds;
  const Status opened = open(&fds);
  if (!opened) finish(sock, opened);
  const std::span<const int> all(fds);
  for (size_t at = 0; at < all.size(); at += kMaxFdsPerMessage) {
    const std::span<const int> batch = all.subspan(at, std::min(kMaxFdsPerMessage, all.size() - at));
    if (!send_with_fds(sock, "F", batch)) finish(sock, Status::from_errno("hand the guest's sockets back"));
  }
  finish(sock, Status());
}

}  // namespace

Result<std::vector<int>> open_sockets_in_namespace(int userns_fd, int netns_fd,
                                                   const std::function<Status(std::vector<int>*)>& open) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return Status::from_errno("socketpair for the guest's sockets");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const Status st = Status::from_errno("fork a helper for the guest's sockets");
    ::close(sv[0]);
    ::close(sv[1]);
    return st;
  }
  if (pid == 0) {
    ::close(sv[0]);
    helper(sv[1], userns_fd, netns_fd, open);
  }
  ::close(sv[1]);
  std::vector<int> fds;
  Status outcome(EPROTO, "bad answer from the guest's socket helper");
  char buf[kMaxMessage + 1];
  while (true) {
    bool truncated = false;
    const ssize_t n = recv_with_fds(sv[0], buf, kMaxMessage, &fds, &truncated);
    if (n <= 0) {
      outcome = Status(n < 0 ? errno : EPIPE, "the guest's socket helper ended without an answer");
      break;
    }
    if (truncated) break;
    if (buf[0] == 'F') continue;
    if (buf[0] == 'K' && n == 1) {
      outcome = Status();
    } else if (buf[0] == 'E') {
      buf[n] = '\0';
      char* rest = nullptr;
      const long err = std::strtol(buf + 1, &rest, 10);
      outcome = Status(err > 0 ? static_cast<int>(err) : EIO, (rest && *rest == ' ') ? rest + 1 : "");
    }
    break;
  }
  ::close(sv[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!outcome) {
    for (int fd : fds) ::close(fd);
    return outcome;
  }
  return fds;
}

}  // namespace ferry
