// Sockets made inside the guest's network namespace, for a process that
// stays outside it (`ferry run`'s -T/-U listeners on the guest's loopback).
//
// Theory of operation: a socket belongs to the namespace it was made in,
// for life, wherever its fd goes. open_sockets_in_namespace() forks a
// short-lived helper that enters the guest's namespaces (its user
// namespace first when ferry runs rootless: that is what lets an
// unprivileged ferry in; root enters the network namespace alone), runs
// `open` there, and sends every fd it made back over a socketpair
// (SCM_RIGHTS, kMaxFdsPerMessage a message), then a last message: "K", or
// "E" + errno + " " + what failed. The caller's thread never changes
// namespace, so nothing of ferry's host side can end up in the guest's.
// The fds come back O_CLOEXEC, in the order `open` made them; on failure
// none is left open. The helper is waited for before return.
#pragma once

#include <functional>
#include <vector>

#include "common/status.h"

namespace ferry {

// Runs open(&fds) in the namespaces (userns_fd < 0: the network namespace
// only) and returns the fds it appended.
Result<std::vector<int>> open_sockets_in_namespace(int userns_fd, int netns_fd,
                                                   const std::function<Status(std::vector<int>*)>& open);

}  // namespace ferry
