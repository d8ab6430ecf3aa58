// User namespaces: see user_namespace.h.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netns/user_namespace.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace ferry {

namespace {

// Writes `text` to a /proc file in one write() (id maps take one write only).
Status write_proc(const char* path, const std::string& text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(std::string("open ") + path);
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) return Status(n < 0 ? err : EIO, std::string("write ") + path);
  return Status();
}

}  // namespace

std::string single_id_map(uint32_t inside, uint32_t outside) {
  return std::to_string(inside) + " " + std::to_string(outside) + " 1\n";
}

bool is_initial_id_map(std::string_view uid_map) {
  std::istringstream in{std::string(uid_map)};
  unsigned long long inside = 1, outside = 1, count = 0;
  if (!(in >> inside >> outside >> count)) return false;
  std::string more;
  if (in >> more) return false;  // a second line: not the initial map
  return inside == 0 && outside == 0 && count == 4294967295ULL;
}

bool in_initial_user_namespace() {
  std::ifstream f("/proc/self/uid_map");
  if (!f) return false;
  std::stringstream text;
  text << f.rdbuf();
  return is_initial_id_map(text.str());
}

bool privileged_for_network_setup() {
  if (!in_initial_user_namespace()) return false;
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  auto effective = [&](unsigned cap) { return (data[cap / 32].effective & (1u << (cap % 32))) != 0; };
  return effective(CAP_SYS_ADMIN) && effective(CAP_NET_ADMIN);
}

Status map_own_ids(uid_t inside_uid, gid_t inside_gid, uid_t outer_uid, gid_t outer_gid) {
  if (Status st = write_proc("/proc/self/uid_map", single_id_map(inside_uid, outer_uid)); !st) return st;
  // Before an unprivileged gid_map the kernel wants setgroups denied.
  if (Status st = write_proc("/proc/self/setgroups", "deny"); !st && st.err() != ENOENT) return st;
  return write_proc("/proc/self/gid_map", single_id_map(inside_gid, outer_gid));
}

Status enter_new_user_namespace(uid_t inside_uid, gid_t inside_gid) {
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  if (::unshare(CLONE_NEWUSER) != 0) return Status::from_errno("unshare(CLONE_NEWUSER)");
  return map_own_ids(inside_uid, inside_gid, uid, gid);
}

}  // namespace ferry
