// Passing open fds between processes over a unix socket (SCM_RIGHTS), one
// message at a time: the namespace helpers (unprivileged_guest_ns.h,
// sockets_in_namespace.h) hand what they made inside a namespace back to
// the process that stays outside.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

namespace ferry {

// The most fds one message carries (the kernel's SCM_MAX_FD is 253).
inline constexpr size_t kMaxFdsPerMessage = 250;

// Sends msg (not empty) with fds attached (at most kMaxFdsPerMessage). True
// when all of msg went.
bool send_with_fds(int sock, std::string_view msg, std::span<const int> fds);

// Receives one message into buf (at most len bytes) and appends the fds it
// carried (O_CLOEXEC) to *fds. Returns recvmsg's result (retried on EINTR);
// *truncated says the message or its fds did not fit (the fds that came
// are appended all the same, for the caller to close).
ssize_t recv_with_fds(int sock, char* buf, size_t len, std::vector<int>* fds, bool* truncated);

}  // namespace ferry
