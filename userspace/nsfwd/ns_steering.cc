// NsSteering: see ns_steering.h.
#include "nsfwd/ns_steering.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "ferry/ns_steer.h"
#include "ferry_ns_steer.skel.h"  // generated (a SYSTEM include: cmake/BpfObject.cmake)

namespace ferry {

bool has_all_ports(const std::vector<NsForward>& rules) {
  for (const NsForward& r : rules)
    if (r.from_all) return true;
  return false;
}

uint16_t ns_target_port(const std::vector<NsForward>& rules, uint16_t listen_port) {
  for (const NsForward& r : rules)
    if (listen_port >= r.listen_first && listen_port <= r.listen_last)
      return static_cast<uint16_t>(r.target_first + (listen_port - r.listen_first));
  return 0;
}

Result<std::unique_ptr<NsSteering>> NsSteering::load(const std::vector<NsForward>& rules) {
  std::unique_ptr<NsSteering> s(new NsSteering());
  s->skel_ = ferry_ns_steer__open_and_load();
  if (s->skel_ == nullptr) return Status::from_errno("load the -T all steering program (sk_lookup)");
  const int ports = bpf_map__fd(s->skel_->maps.steer_ports);
  const uint8_t on = 1;
  for (const NsForward& r : rules) {
    if (!r.from_all) continue;
    for (uint32_t p = r.listen_first; p <= r.listen_last; p++) {
      if (bpf_map_update_elem(ports, &p, &on, BPF_ANY) != 0) return Status::from_errno("fill steer_ports");
    }
  }
  return s;
}

Status NsSteering::set_listeners(int v4_listener, int v6_listener) {
  const int listeners = bpf_map__fd(skel_->maps.steer_listeners);
  const uint32_t slots[2] = {FERRY_STEER_V4, FERRY_STEER_V6};
  const int fds[2] = {v4_listener, v6_listener};
  for (int i = 0; i < 2; i++) {
    if (fds[i] < 0) continue;
    const uint64_t fd = static_cast<uint64_t>(fds[i]);
    if (bpf_map_update_elem(listeners, &slots[i], &fd, BPF_ANY) != 0)
      return Status::from_errno("put the -T all listener in the steering sockmap");
  }
  return {};
}

Status NsSteering::attach(int netns_fd) {
  link_fd_ = bpf_link_create(bpf_program__fd(skel_->progs.ferry_ns_steer), netns_fd, BPF_SK_LOOKUP, nullptr);
  if (link_fd_ < 0) {
    const int err = -link_fd_;
    link_fd_ = -1;
    return Status(err, "attach the -T all steering program to the guest's namespace");
  }
  return {};
}

int NsSteering::program_fd() const { return bpf_program__fd(skel_->progs.ferry_ns_steer); }

NsSteering::~NsSteering() {
  if (link_fd_ >= 0) close(link_fd_);
  ferry_ns_steer__destroy(skel_);
}

}  // namespace ferry
