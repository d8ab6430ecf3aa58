// ICMP errors toward the guest ("administratively prohibited", protocol
// unreachable): see refusal.h.
#include "policy/refusal.h"

#include <algorithm>
#include <cstring>

namespace ferry {

size_t build_admin_prohibited(std::span<uint8_t> out, const ParsedFrame& f, std::span<const uint8_t> frame,
                              const MacAddr& our_mac, const InetAddr& from) {
  const bool v6 = f.l3 == L3Kind::ipv6;
  return build_icmp_error(out, f, frame, our_mac, from, v6 ? 1 : 3, v6 ? 1 : 13);
}

size_t build_protocol_unreachable(std::span<uint8_t> out, const ParsedFrame& f, std::span<const uint8_t> frame,
                                  const MacAddr& our_mac) {
  if (f.l3 != L3Kind::ipv6) return build_icmp_error(out, f, frame, our_mac, f.dst, 3, 2);
  // The Next Header field naming the protocol: the base header's, or the
  // last extension header's first byte (parse_frame checked the chain).
  size_t at = f.l3_offset + 6;
  for (size_t off = f.l3_offset + kIpv6HeaderLen; off < f.l4_offset && off + 1 < frame.size();
       off += (size_t{frame[off + 1]} + 1) * 8)
    at = off;
  return build_icmp_error(out, f, frame, our_mac, f.dst, 4, 1, static_cast<uint32_t>(at - f.l3_offset));
}

size_t build_icmp_error(std::span<uint8_t> out, const ParsedFrame& f, std::span<const uint8_t> frame,
                        const MacAddr& our_mac, const InetAddr& from, uint8_t type, uint8_t code,
                        uint32_t word) {
  if (!f.ok() || (f.l3 != L3Kind::ipv4 && f.l3 != L3Kind::ipv6) || f.l3_offset >= frame.size()) return 0;
  const bool v6 = f.l3 == L3Kind::ipv6;
  if (from.is_v4() == v6) return 0;
  // An error to these would go nowhere or to many (RFC 1812 4.3.2.7).
  if (f.src.is_unspecified() || f.src.is_multicast()) return 0;
  // As much of the packet as the minimum datagram allows (576 / 1280
  // bytes): the IP header and at least the 8 bytes naming the ports.
  const size_t quote_max = v6 ? 1280 - 40 - 8 : 576 - 20 - 8;
  const size_t packet = std::min(frame.size() - f.l3_offset, f.l4_offset - f.l3_offset + f.l4_len);
  const size_t quote = std::min(packet, quote_max);
  uint8_t body[4 + 1280];
  body[0] = static_cast<uint8_t>(word >> 24);  // unused, or a pointer
  body[1] = static_cast<uint8_t>(word >> 16);
  body[2] = static_cast<uint8_t>(word >> 8);
  body[3] = static_cast<uint8_t>(word);
  std::memcpy(body + 4, frame.data() + f.l3_offset, quote);
  L2L3 ip;
  ip.eth_src = our_mac;
  ip.eth_dst = f.eth_src;
  ip.src = from;
  ip.dst = f.src;
  ip.ttl = 64;
  return build_icmp_frame(out, ip, type, code, std::span<const uint8_t>(body, 4 + quote));
}

}  // namespace ferry
