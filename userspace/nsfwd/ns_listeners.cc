// -T/-U's guest-side sockets: see ns_listeners.h.
#include "nsfwd/ns_listeners.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "netns/sockets_in_namespace.h"

namespace ferry {

namespace {

// The (listen, target, family) of every socket, in the order they are made.
std::vector<NsListener> plan(const std::vector<NsForward>& rules, bool ipv4, bool ipv6, bool steer_all) {
  std::vector<NsListener> out;
  if (steer_all) {
    for (const NsForward& r : rules) {
      if (!r.from_all) continue;
      for (bool v6 : {false, true}) {
        if (v6 ? !ipv6 : !ipv4) continue;
        out.push_back({-1, v6, r.listen_first, r.target_first, true});
      }
      break;
    }
  }
  for (const NsForward& r : rules) {
    if (steer_all && r.from_all) continue;
    for (uint32_t p = r.listen_first; p <= r.listen_last; p++) {
      const auto target = static_cast<uint16_t>(r.target_first + (p - r.listen_first));
      for (bool v6 : {false, true}) {
        if (v6 ? !ipv6 : !ipv4) continue;
        out.push_back({-1, v6, static_cast<uint16_t>(p), target, false});
      }
    }
  }
  return out;
}

// One socket on the loopback of its family (in the helper, inside the guest).
// A TCP listener takes SO_REUSEADDR so that connections left in TIME_WAIT
// by a ferry that stopped do not keep the next one from binding (Linux
// still refuses two live listeners); a UDP socket does not: there
// SO_REUSEADDR would let a second binder share the port and its datagrams.
Status open_one(const NsListener& l, bool udp, int* fd_out) {
  const int fd = socket(l.v6 ? AF_INET6 : AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const std::string what = std::string(udp ? "UDP " : "TCP ") + (l.v6 ? "[::1]:" : "127.0.0.1:") +
                           std::to_string(l.listen_port) + " in the guest's namespace";
  if (fd < 0) return Status::from_errno("socket for " + what);
  const int one = 1;
  sockaddr_storage ss;
  const socklen_t len = loopback_sockaddr(l.v6, l.listen_port, &ss);
  if ((!udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) ||
      (l.v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
      bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0 || (!udp && listen(fd, SOMAXCONN) != 0)) {
    const Status st = Status::from_errno("bind " + what);
    close(fd);
    return st;
  }
  *fd_out = fd;
  return {};
}

}  // namespace

InetAddr loopback(bool v6) {
  return v6 ? InetAddr::from_v6(in6addr_loopback) : InetAddr::from_v4(in_addr{htonl(INADDR_LOOPBACK)});
}

socklen_t loopback_sockaddr(bool v6, uint16_t port, sockaddr_storage* ss) { return to_sockaddr(loopback(v6), port, ss); }

Result<std::vector<NsListener>> open_ns_listeners(int userns_fd, int netns_fd, const std::vector<NsForward>& rules,
                                                  bool udp, bool ipv4, bool ipv6, bool steer_all) {
  std::vector<NsListener> want = plan(rules, ipv4, ipv6, steer_all && !udp);
  if (want.empty()) return want;
  Result<std::vector<int>> fds = open_sockets_in_namespace(userns_fd, netns_fd, [&](std::vector<int>* out) {
    for (const NsListener& l : want) {
      int fd = -1;
      if (Status st = open_one(l, udp, &fd); !st) return st;
      out->push_back(fd);
    }
    return Status();
  });
  if (!fds) return fds.status();
  if (fds->size() != want.size()) {
    for (int fd : *fds) close(fd);
    return Status(EPROTO, "the guest's socket helper handed back " + std::to_string(fds->size()) + " of " +
                              std::to_string(want.size()) + " sockets");
  }
  for (size_t i = 0; i < want.size(); i++) want[i].fd = (*fds)[i];
  return want;
}

}  // namespace ferry
