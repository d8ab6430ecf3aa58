// FakeLink: a GuestLink for unit tests. It records every frame the code
// under test sends to the guest (and, with `offload` on, the offloads each
// frame asked of the port) instead of writing to a device.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/config.h"
#include "common/guest_link.h"
#include "policy/destination_policy.h"

namespace ferry::testing {

using Bytes = std::vector<uint8_t>;

inline const MacAddr kGuestMac{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};

class FakeLink : public GuestLink {
 public:
  FakeLink() : cfg_(Config::defaults()) {}
  const Config& config() const override { return cfg_; }
  DestinationPolicy& policy() override { return policy_; }
  const MacAddr& our_mac() const override { return cfg_.our_mac; }
  const MacAddr& guest_mac() const override { return guest_mac_; }
  bool send_to_guest(std::span<const uint8_t> frame) override {
    sent.emplace_back(frame.begin(), frame.end());
    offloads_sent.push_back(TxOffload{});
    if (on_send) on_send(sent.back());
    return true;
  }
  bool send_to_guest(const iovec* iov, int iovcnt) override { return send_to_guest_offloaded(iov, iovcnt, {}); }
  bool offloads() const override { return offload; }
  bool send_to_guest_offloaded(const iovec* iov, int iovcnt, const TxOffload& off) override {
    Bytes b;
    for (int i = 0; i < iovcnt; i++) {
      const uint8_t* p = static_cast<const uint8_t*>(iov[i].iov_base);
      b.insert(b.end(), p, p + iov[i].iov_len);
    }
    sent.push_back(b);
    offloads_sent.push_back(off);
    if (on_send) on_send(sent.back());
    return true;
  }

  Config cfg_;
  DestinationPolicy policy_{cfg_};  // reads cfg_ live: tests may change it
  MacAddr guest_mac_ = kGuestMac;
  bool offload = false;              // pretend the port completes checksums / takes GSO
  std::vector<Bytes> sent;           // every frame, in order
  std::vector<TxOffload> offloads_sent;  // what each frame asked of the port
  std::function<void(const Bytes&)> on_send;  // told of each frame as it is sent (a simulated device)
};

}  // namespace ferry::testing
