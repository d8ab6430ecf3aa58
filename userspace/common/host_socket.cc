// open_host_socket and the outbound choice: see host_socket.h.
#include "common/host_socket.h"

#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/config.h"

namespace ferry {

namespace {

// --outbound-if4/6 of the family ("" when not given).
const std::string& outbound_if(const Config& c, bool v6) { return v6 ? c.outbound_if6 : c.outbound_if4; }
// -o of the family (unspecified when not given).
const InetAddr& outbound_addr(const Config& c, bool v6) { return v6 ? c.outbound6 : c.outbound4; }

}  // namespace

int open_host_socket(int family, int type, int protocol, uint32_t mark) {
  int fd = socket(family, type, protocol);
  if (fd < 0 || mark == 0) return fd;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0) return fd;
  // Without the privilege: fine if the socket was born marked (a sandboxed
  // translator in its MarkCgroup, bpf/mark_cgroup.h).
  int e = errno;
  uint32_t have = 0;
  socklen_t len = sizeof(have);
  if (e == EPERM && getsockopt(fd, SOL_SOCKET, SO_MARK, &have, &len) == 0 && have == mark) return fd;
  close(fd);
  errno = e;
  return -1;
}

bool can_set_socket_mark(uint32_t mark, int* err) {
  int fd = open_host_socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0, mark);
  if (fd < 0) {
    *err = errno;
    return false;
  }
  close(fd);
  return true;
}

// SO_BINDTODEVICE needs no privilege on a socket not yet tied to a device
// (Linux 5.7 and later): the sandboxed translator may set it.
int open_outbound_socket(const Config& c, bool v6, int type, int protocol, const InetAddr& dest) {
  int fd = open_host_socket(v6 ? AF_INET6 : AF_INET, type, protocol, c.socket_mark);
  if (fd < 0 || dest.is_loopback()) return fd;
  const std::string& ifname = outbound_if(c, v6);
  if (!ifname.empty() &&
      setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), static_cast<socklen_t>(ifname.size())) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

bool has_outbound_address(const Config& c, bool v6, const InetAddr& dest) {
  return !dest.is_loopback() && !outbound_addr(c, v6).is_unspecified();
}

socklen_t outbound_bind_address(const Config& c, bool v6, const InetAddr& dest, uint16_t port,
                                sockaddr_storage* ss) {
  if (has_outbound_address(c, v6, dest)) return to_sockaddr(outbound_addr(c, v6), port, ss);
  return to_sockaddr(v6 ? InetAddr{} : *InetAddr::parse("0.0.0.0"), port, ss);
}

Status check_outbound(const Config& c) {
  for (const bool v6 : {false, true}) {
    const std::string& ifname = outbound_if(c, v6);
    if (!ifname.empty() && if_nametoindex(ifname.c_str()) == 0)
      return Status::failure(std::string("--outbound-if") + (v6 ? "6 " : "4 ") + ifname + ": no such interface", ENODEV);
    const InetAddr& a = outbound_addr(c, v6);
    if (a.is_unspecified()) continue;
    const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss;
    const socklen_t sl = to_sockaddr(a, 0, &ss);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) {
      const int err = errno;
      if (fd >= 0) close(fd);
      return Status::failure("-o " + a.str() + ": not an address of this host (" + std::strerror(err) + ")", err);
    }
    close(fd);
  }
  return {};
}

}  // namespace ferry
