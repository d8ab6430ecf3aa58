// NsSteering: `-T all` through one listener per family instead of one per
// port (bpf/ferry_ns_steer.bpf.c, include/ferry/ns_steer.h).
//
// Theory of operation. `all` is some 37000 ports; a listener per port and
// family is 74000 descriptors, past a usual hard limit (and ferry may raise
// it only with CAP_SYS_RESOURCE). A BPF sk_lookup program attached to the
// guest's network namespace hands every TCP SYN to 127.0.0.1/::1 on a port
// of the `all` rules to the family's one listener (bpf_sk_assign); the
// relay reads the port the guest asked for from the accepted socket
// (getsockname). Ports given explicitly keep their own listeners.
// Steps: load() (the program and its maps: needs CAP_BPF and
// CAP_NET_ADMIN, so root's ferry only; a rootless one, or a kernel without
// sk_lookup, fails here and ferry falls back to a listener per port), then
// the listeners are made in the guest's namespace, set_listeners() puts
// them in the sockmap and attach() attaches the program to the namespace. The link is
// this object's: the steering ends when it is destroyed (or the namespace
// goes). Nothing is pinned.
#pragma once

#include <memory>
#include <vector>

#include "common/config.h"
#include "common/status.h"

struct ferry_ns_steer;  // the generated skeleton

namespace ferry {

class NsSteering {
 public:
  // Loads the program with steer_ports marking the ports of the rules made
  // by `all` (from_all). Fails without the privileges to load BPF.
  static Result<std::unique_ptr<NsSteering>> load(const std::vector<NsForward>& rules);
  ~NsSteering();
  NsSteering(const NsSteering&) = delete;
  NsSteering& operator=(const NsSteering&) = delete;

  // Puts the listeners in the sockmap (-1: that family is not steered).
  Status set_listeners(int v4_listener, int v6_listener);
  // Attaches the program to the network namespace netns_fd.
  Status attach(int netns_fd);
  // The program's fd (tests run it through BPF_PROG_TEST_RUN).
  int program_fd() const;

 private:
  NsSteering() = default;
  ferry_ns_steer* skel_ = nullptr;
  int link_fd_ = -1;
};

// Whether the rules have ports made by `all` (what NsSteering steers).
bool has_all_ports(const std::vector<NsForward>& rules);
// The host's port for a guest loopback port of the rules (0: none).
uint16_t ns_target_port(const std::vector<NsForward>& rules, uint16_t listen_port);

}  // namespace ferry
