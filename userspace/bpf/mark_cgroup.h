// MarkCgroup: SO_MARK for the sockets of a sandboxed translator.
//
// The translator opens its host sockets after it gave up every capability
// (sandbox/sandbox.h), and setting SO_MARK needs CAP_NET_ADMIN (or
// CAP_NET_RAW). So the privileged parent makes a cgroup (v2) of the
// instance's own and attaches to it a
// four-instruction BPF_CGROUP_INET_SOCK_CREATE program that sets the mark
// of every AF_INET/AF_INET6 socket created inside it; the translator
// join()s it before entering the sandbox. Sockets created by the parent
// (listeners, raw ICMP) get the mark from setsockopt directly
// (common/host_socket.h, which accepts a socket already carrying the mark).
// Where that cgroup is (sandbox/service_cgroup.h, translator_cgroup_dir):
// inside the `ferry attach` service's own cgroup when it has one (a
// unified hierarchy: <service cgroup>/translator, so that the service's
// memory.max still applies to the translator), else
// <cgroup2 mount>/ferry/<instance>/translator.
// The parent removes the cgroup when the translator has exited (the
// program goes with it); a cgroup left by a killed instance of the same
// name is removed and made again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace ferry {

// Whether the cgroup at cgroup_dir carries ferry's socket-mark program (one
// or more programs at BPF_CGROUP_INET_SOCK_CREATE, every one of them named
// ferry_mark) and so is a --mark cgroup ferry made: what tells an old
// layout's <cgroup2>/ferry-NAME from anyone else's directory of that name
// (sandbox/service_cgroup.h, remove_dead_instance_cgroups). Root only.
bool carries_mark_program(const std::string& cgroup_dir);
// Loads the socket-mark program (tests make an old-layout cgroup with it).
int load_mark_program(uint32_t mark);

class MarkCgroup {
 public:
  // service_dir: the service's own cgroup ("" when it has none). ENOENT
  // when it has none and no cgroup2 hierarchy is mounted.
  static Result<std::unique_ptr<MarkCgroup>> create(const std::string& instance, uint32_t mark,
                                                    const std::string& service_dir = "");
  ~MarkCgroup();
  MarkCgroup(const MarkCgroup&) = delete;
  MarkCgroup& operator=(const MarkCgroup&) = delete;

  // Moves the calling process into the cgroup (needs the privileges the
  // sandbox drops: call before it).
  Status join() const;
  const std::string& path() const { return path_; }

 private:
  MarkCgroup() = default;
  std::string path_;
  std::string service_dir_;
  int cg_fd_ = -1, prog_fd_ = -1;
};

}  // namespace ferry
