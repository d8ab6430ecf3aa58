// How a refused flow is answered, for the protocols without a reset: an
// ICMP "administratively prohibited" (type 3 code 13; ICMPv6 type 1 code 1)
// quoting the guest's packet, as a filtering router answers (RFC 1812
// 5.2.7.1, RFC 4443 3.1). The guest's stack matches it to the socket by
// the quoted addresses and ports and fails the send or ping at once
// (EHOSTUNREACH / EACCES) instead of waiting for a timeout. TCP refusals
// are a RST, sent by the TCP translator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/frame.h"

namespace ferry {

// Room for the largest answer (an IPv6 one quoting up to the minimum MTU).
inline constexpr size_t kProhibitedFrameMax = 1280 + kEthHeaderLen;

// Builds, into out, the ICMP answer to the guest's frame f (IPv4 or IPv6),
// sent from `from` (the gateway, as a router answers) to the guest's MAC.
// Returns its length, 0 when f is not an IP packet, its source is
// unspecified or multicast, or out is too small. The one builder of this
// answer: UDP (policy, flow limit) and ICMP echo (policy) use it.
size_t build_admin_prohibited(std::span<uint8_t> out, const ParsedFrame& f, std::span<const uint8_t> frame,
                              const MacAddr& our_mac, const InetAddr& from);

}  // namespace ferry
