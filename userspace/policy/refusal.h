// How a refused flow is answered, for the protocols without a reset: an
// ICMP "administratively prohibited" (type 3 code 13; ICMPv6 type 1 code 1)
// quoting the guest's packet, as a filtering router answers (RFC 1812
// 5.2.7.1, RFC 4443 3.1). The guest's stack matches it to the socket by
// the quoted addresses and ports and fails the send or ping at once
// (EHOSTUNREACH / EACCES) instead of waiting for a timeout. TCP refusals
// are a RST, sent by the TCP translator. The same quoting builds the
// gateway's answer to a protocol it does not speak (protocol unreachable,
// parameter problem), paced by IcmpErrorPace (RFC 4443 2.4 f).
#pragma once

#include <algorithm>
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

// The same for any ICMP error: type and code (ICMPv6's when f is IPv6),
// and the 32-bit word after the checksum (0: unused; a parameter problem's
// pointer).
size_t build_icmp_error(std::span<uint8_t> out, const ParsedFrame& f, std::span<const uint8_t> frame,
                        const MacAddr& our_mac, const InetAddr& from, uint8_t type, uint8_t code,
                        uint32_t word = 0);

// A host's answer to a packet of an upper-layer protocol it does not
// speak, from the address it was sent to: IPv4 protocol unreachable (type 3
// code 2, RFC 1122 3.2.2.1); IPv6 parameter problem, code 1, pointing at
// the Next Header field that names the protocol (RFC 8200 4, RFC 4443 3.4).
size_t build_protocol_unreachable(std::span<uint8_t> out, const ParsedFrame& f, std::span<const uint8_t> frame,
                                  const MacAddr& our_mac);

// A token bucket for the ICMP errors ferry originates (RFC 4443 2.4 f,
// RFC 1812 4.3.2.8): kBurst at once, then one per kNsPerToken (Linux's
// net.ipv4.icmp_msgs_per_sec and _burst: 1000 and 50).
class IcmpErrorPace {
 public:
  static constexpr uint32_t kBurst = 50;
  static constexpr uint64_t kNsPerToken = 1'000'000;  // 1000 per second
  // True (and one token spent) when an error may go now.
  bool take(uint64_t now_ns) {
    if (!started_) {
      started_ = true;
      tokens_ = kBurst;
      last_ns_ = now_ns;
    }
    const uint64_t earned = (now_ns - last_ns_) / kNsPerToken;
    if (earned > 0) {
      tokens_ = static_cast<uint32_t>(std::min<uint64_t>(kBurst, tokens_ + std::min<uint64_t>(earned, kBurst)));
      last_ns_ += earned * kNsPerToken;
    }
    if (tokens_ == 0) return false;
    tokens_--;
    return true;
  }

 private:
  bool started_ = false;
  uint32_t tokens_ = 0;
  uint64_t last_ns_ = 0;
};

}  // namespace ferry
