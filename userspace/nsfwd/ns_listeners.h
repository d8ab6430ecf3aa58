// The guest-side sockets of -T/-U: one per forwarded port and family, on
// the guest's own loopback (127.0.0.1, ::1), made inside the guest's
// network namespace (netns/sockets_in_namespace.h) by a helper while ferry
// is still set up, so that the sandboxed translator only accepts and reads
// them: it never enters a namespace.
//
// TCP sockets listen (backlog SOMAXCONN), UDP sockets are bound; all are
// non-blocking, O_CLOEXEC, SO_REUSEADDR, IPv6 ones IPV6_V6ONLY. Order: rule
// by rule, port by port, IPv4 before IPv6; the helper returns the fds in
// the order it made them, which is how each fd gets its ports back.
// Steered (TCP `all` with ns_steering.h): the rules made by `all` get no
// listener per port but one per family, first, bound to the first such
// port; the sk_lookup program hands it the SYNs of every other.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <vector>

#include "codec/addr.h"
#include "common/config.h"
#include "common/status.h"

namespace ferry {

struct NsListener {
  int fd = -1;
  bool v6 = false;
  uint16_t listen_port = 0;  // on the guest's loopback
  uint16_t target_port = 0;  // on the host's loopback
  // Takes every port of the `all` rules (ns_steering.h): the port asked
  // for is the accepted socket's own (getsockname), not listen_port.
  bool steered = false;
};

// Opens the sockets for `rules` inside the guest's namespaces (userns_fd <
// 0: root's ferry, the network namespace alone). A port the guest's
// loopback cannot bind fails the whole call (none left open). steer_all:
// one steered listener per family for the rules made by `all` (TCP only).
Result<std::vector<NsListener>> open_ns_listeners(int userns_fd, int netns_fd, const std::vector<NsForward>& rules,
                                                  bool udp, bool ipv4, bool ipv6, bool steer_all = false);

// The loopback address of a family (127.0.0.1, ::1).
InetAddr loopback(bool v6);
// The same with a port, as a sockaddr.
socklen_t loopback_sockaddr(bool v6, uint16_t port, sockaddr_storage* ss);

}  // namespace ferry
