// open_host_socket: see host_socket.h.
#include "common/host_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace ferry {

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

}  // namespace ferry
