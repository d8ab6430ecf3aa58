// DNS names on the wire (RFC 1035 3.1, 4.1.4): what the guest services need.
//
// Encoding: dotted text to uncompressed wire labels, for the search lists
// ferry hands out (DHCP option 119, RFC 3397; RA DNSSL, RFC 8106; DHCPv6
// option 24, RFC 8415). Uncompressed is valid in all three and keeps each
// name self-contained.
// Decoding: only walking. A name in a message a guest sent may use
// compression pointers; walking follows them with a hop bound and a total
// length bound (255), so pointer loops and pointers outside the message end
// the walk as malformed instead of looping. Nothing here allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::services {

inline constexpr size_t kDnsHeaderLen = 12;
inline constexpr size_t kMaxDnsNameLen = 255;  // wire length, RFC 1035 2.3.4

// Writes `name` ("example.com", a trailing dot allowed) as wire labels
// ending in the root label. Returns the bytes written, 0 when the name is
// empty, has an empty or >63-byte label, is longer than 255 on the wire, or
// does not fit in out.
size_t encode_dns_name(std::string_view name, std::span<uint8_t> out);

// Names back to back; 0 when any fails or the total does not fit.
size_t encode_dns_names(const std::vector<std::string>& names, std::span<uint8_t> out);

// True when `name` encodes (what option parsers check before accepting it).
bool valid_dns_name(std::string_view name);

// Walks the (possibly compressed) name at msg[off]. Returns the offset just
// after it at its original place, or 0 when it is malformed: truncated, a
// label type other than 00/11, a pointer outside msg or a loop (more hops
// than a 255-byte name can need), or longer than 255 bytes decoded.
size_t skip_dns_name(std::span<const uint8_t> msg, size_t off);

// What a guest's DNS query may be before the forwarder relays it.
enum class DnsQueryCheck : uint8_t {
  ok,
  truncated,   // shorter than the header, or the question runs past the end
  not_query,   // QR set (a response), or an opcode other than QUERY/IQUERY/STATUS/NOTIFY/UPDATE
  bad_count,   // QDCOUNT != 1
  bad_name,    // the question's name is malformed or runs past the end
};
const char* to_string(DnsQueryCheck c);

// Checks the header and the one question of a DNS message from the guest.
DnsQueryCheck check_dns_query(std::span<const uint8_t> msg);

}  // namespace ferry::services
