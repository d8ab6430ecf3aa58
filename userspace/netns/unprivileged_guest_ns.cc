// The guest's namespaces without privileges: see unprivileged_guest_ns.h.
//
// The helper's one message: "O" + text with the fds [userns, netns,
// handed-back...] attached, or "E" + errno (decimal) + " " + what failed.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netns/unprivileged_guest_ns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "netns/fd_passing.h"
#include "netns/user_namespace.h"

namespace ferry {

namespace {

constexpr size_t kMaxMessage = 1 + HandBack::kMaxText + 64;
static_assert(2 + HandBack::kMaxFds <= kMaxFdsPerMessage);

// The helper: steps 1-4 of the theory of operation; never returns.
[[noreturn]] void helper(int sock, const std::function<Status(HandBack*)>& setup) {
  auto fail = [sock](const Status& st) {
    const std::string msg = "E" + std::to_string(st.err()) + " " + st.what();
    send_with_fds(sock, msg.substr(0, kMaxMessage), {});
    _exit(1);
  };
  if (Status st = enter_new_user_namespace(0, 0); !st) {
    if (st.err() == EPERM || st.err() == ENOSPC || st.err() == EUSERS)  // a limit or a policy, not a bug
      fail(Status(st.err(), st.what() + " (this system allows no new user namespace here: "
                                           "user.max_user_namespaces, kernel.unprivileged_userns_clone or a "
                                           "security module's rule)"));
    fail(st);
  }
  if (::unshare(CLONE_NEWNET) != 0) fail(Status::from_errno("unshare(CLONE_NEWNET) in the new user namespace"));
  const int userns = ::open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
  if (userns < 0) fail(Status::from_errno("open /proc/self/ns/user"));
  const int netns = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (netns < 0) fail(Status::from_errno("open /proc/self/ns/net"));
  HandBack back;
  if (Status st = setup(&back); !st) fail(st);
  if (back.fds.size() > HandBack::kMaxFds || back.text.size() > HandBack::kMaxText)
    fail(Status(E2BIG, "too much handed back from the guest's namespace"));
  std::vector<int> fds{userns, netns};
  fds.insert(fds.end(), back.fds.begin(), back.fds.end());
  _exit(send_with_fds(sock, "O" + back.text, fds) ? 0 : 1);
}

}  // namespace

Result<GuestNamespaces> make_guest_namespaces(const std::function<Status(HandBack*)>& setup) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return Status::from_errno("socketpair for the namespace helper");
  const pid_t pid = ::fork();
  if (pid < 0) {
    const Status st = Status::from_errno("fork the namespace helper");
    ::close(sv[0]);
    ::close(sv[1]);
    return st;
  }
  if (pid == 0) {
    ::close(sv[0]);
    helper(sv[1], setup);
  }
  ::close(sv[1]);
  char buf[kMaxMessage + 1];
  std::vector<int> fds;
  bool truncated = false;
  const ssize_t n = recv_with_fds(sv[0], buf, kMaxMessage, &fds, &truncated);
  const int recv_err = errno;
  ::close(sv[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto close_all = [&fds] {
    for (int fd : fds) ::close(fd);
  };
  if (n <= 0) {
    close_all();
    return Status(n < 0 ? recv_err : EPIPE, "the namespace helper ended without an answer");
  }
  if (buf[0] == 'E') {
    close_all();
    buf[n] = '\0';
    char* rest = nullptr;
    const long err = std::strtol(buf + 1, &rest, 10);
    return Status(err > 0 ? static_cast<int>(err) : EIO, (rest && *rest == ' ') ? rest + 1 : rest ? rest : "");
  }
  if (buf[0] != 'O' || fds.size() < 2 || truncated) {
    close_all();
    return Status(EPROTO, "bad answer from the namespace helper");
  }
  GuestNamespaces out;
  out.userns.reset(fds[0]);
  out.netns.reset(fds[1]);
  out.fds.assign(fds.begin() + 2, fds.end());
  out.text.assign(buf + 1, static_cast<size_t>(n - 1));
  return out;
}

Status enter_guest_namespaces(int userns_fd, int netns_fd) {
  if (::setns(userns_fd, CLONE_NEWUSER) != 0) return Status::from_errno("enter the guest's user namespace");
  if (::setns(netns_fd, CLONE_NEWNET) != 0) return Status::from_errno("enter the guest's network namespace");
  return Status();
}

}  // namespace ferry
