// The guest's namespaces when ferry runs without privileges: a user and a
// network namespace made by a short-lived helper process.
//
// Theory of operation: the process that calls make_guest_namespaces() stays
// where it is (its user namespace, its network namespace, no capabilities):
// its host sockets are the caller's. It forks a helper, which
//   1. enters a new user namespace with the caller's uid and gid mapped to 0
//      (user_namespace.h), so it holds every capability there;
//   2. unshares a new network namespace, owned by that user namespace;
//   3. runs `setup` there (make the tap, configure the link: whatever needs
//      those capabilities), which may hand back open fds and a short text;
//   4. sends the user and network namespace fds, the handed-back fds and the
//      text (or the error) over a socketpair (SCM_RIGHTS), and exits.
// The namespaces outlive the helper through those fds. Entering them later
// (to start CMD) needs no privilege in the caller's namespace: the caller
// owns the user namespace, and once inside it the network namespace's owner.
// Every fd received is O_CLOEXEC. The helper is waited for before return.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "netns/netns.h"

namespace ferry {

// What setup hands back from inside the namespaces.
struct HandBack {
  std::vector<int> fds;  // the helper closes its copies after sending
  std::string text;      // at most kMaxText bytes
  static constexpr size_t kMaxFds = 8;
  static constexpr size_t kMaxText = 1024;
};

struct GuestNamespaces {
  NetnsFd userns;  // an fd of the user namespace (NetnsFd: any namespace fd)
  NetnsFd netns;
  std::vector<int> fds;  // HandBack::fds, now ours (caller closes them)
  std::string text;
};

// Runs `setup` in a fresh user + network namespace (see above). A failure of
// any step, setup's included, is returned with what failed.
Result<GuestNamespaces> make_guest_namespaces(const std::function<Status(HandBack*)>& setup);

// Enters both (user first, then network): for the forked CMD, before exec.
Status enter_guest_namespaces(int userns_fd, int netns_fd);

}  // namespace ferry
