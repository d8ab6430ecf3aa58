// ICMP "administratively prohibited": see refusal.h.
#include "policy/refusal.h"

#include <algorithm>
#include <cstring>

namespace ferry {

size_t build_admin_prohibited(std::span<uint8_t> out, const ParsedFrame& f, std::span<const uint8_t> frame,
                              const MacAddr& our_mac, const InetAddr& from) {
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
  std::memset(body, 0, 4);  // unused (v4) / unused (v6)
  std::memcpy(body + 4, frame.data() + f.l3_offset, quote);
  L2L3 ip;
  ip.eth_src = our_mac;
  ip.eth_dst = f.eth_src;
  ip.src = from;
  ip.dst = f.src;
  ip.ttl = 64;
  return build_icmp_frame(out, ip, v6 ? 1 : 3, v6 ? 1 : 13, std::span<const uint8_t>(body, 4 + quote));
}

}  // namespace ferry
