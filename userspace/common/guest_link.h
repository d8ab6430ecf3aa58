// GuestLink: what every protocol translator needs to talk to the guest.
//
// Our MAC (the gateway's), the guest's MAC as learned from its frames, the
// configuration, the destination policy, and a way to send a finished frame. Implemented by the
// Translator (userspace/translator), which owns the FramePort.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>

#include "codec/addr.h"
#include "codec/frame.h"
#include "common/config.h"
#include "port/frame_port.h"

namespace ferry {

class DestinationPolicy;

class GuestLink {
 public:
  virtual ~GuestLink() = default;
  virtual const Config& config() const = 0;
  // Where the guest's new flows may go (policy/destination_policy.h).
  virtual DestinationPolicy& policy() = 0;
  virtual const MacAddr& our_mac() const = 0;
  // The guest's MAC; broadcast until the first guest frame was seen.
  virtual const MacAddr& guest_mac() const = 0;
  // Sends one complete Ethernet frame to the guest; false when dropped.
  virtual bool send_to_guest(std::span<const uint8_t> frame) = 0;
  virtual bool send_to_guest(const iovec* iov, int iovcnt) = 0;
  // True when frames may leave their L4 checksum partial (and be TCP
  // super-segments) and go through send_to_guest_offloaded().
  virtual bool offloads() const { return false; }
  virtual bool send_to_guest_offloaded(const iovec* iov, int iovcnt, const TxOffload& offload) {
    (void)iov;
    (void)iovcnt;
    (void)offload;
    return false;
  }
};

// The headers of a frame from `from` to the guest at `to`: from our MAC to
// the guest's, TTL 64 (what the translators and the DNS forwarder send).
inline L2L3 toward_guest(const GuestLink& link, const InetAddr& from, const InetAddr& to) {
  L2L3 ip;
  ip.eth_src = link.our_mac();
  ip.eth_dst = link.guest_mac();
  ip.src = from;
  ip.dst = to;
  ip.ttl = 64;
  return ip;
}

}  // namespace ferry
