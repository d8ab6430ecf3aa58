// Addresses of frames the default guest (Config::defaults()) sends to its
// gateway: what the translator and the BPF programs see on the wire.
#pragma once

#include "codec/frame.h"
#include "common/config.h"

namespace ferry::testing {

// Ethernet and IP of a guest -> gateway frame, IPv4 or IPv6, from guest_mac
// to ferry's MAC.
inline L2L3 guest_to_gateway(bool v6, const MacAddr& guest_mac) {
  const Config c = Config::defaults();
  L2L3 l;
  l.eth_src = guest_mac;
  l.eth_dst = c.our_mac;
  l.src = v6 ? c.guest6.addr : c.guest4.addr;
  l.dst = v6 ? c.gateway6 : c.gateway4;
  return l;
}

}  // namespace ferry::testing
