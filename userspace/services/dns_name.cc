// DNS name encoding and bounded walking (see dns_name.h).
#include "services/dns_name.h"

#include "codec/bytes.h"

namespace ferry::services {

namespace {
// A 255-byte name has at most 127 labels; more pointer hops than that
// cannot belong to a valid name, so they mean a loop.
constexpr int kMaxPointerHops = 127;
}  // namespace

size_t encode_dns_name(std::string_view name, std::span<uint8_t> out) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return 0;
  size_t n = 0;
  while (true) {
    const size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) return 0;
    if (n + 1 + label.size() + 1 > kMaxDnsNameLen || n + 1 + label.size() + 1 > out.size()) return 0;
    out[n++] = static_cast<uint8_t>(label.size());
    for (char ch : label) out[n++] = static_cast<uint8_t>(ch);
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  out[n++] = 0;  // root
  return n;
}

size_t encode_dns_names(const std::vector<std::string>& names, std::span<uint8_t> out) {
  size_t n = 0;
  for (const std::string& name : names) {
    const size_t k = encode_dns_name(name, out.subspan(n));
    if (k == 0) return 0;
    n += k;
  }
  return n;
}

bool valid_dns_name(std::string_view name) {
  uint8_t scratch[kMaxDnsNameLen];
  return encode_dns_name(name, scratch) != 0;
}

size_t skip_dns_name(std::span<const uint8_t> msg, size_t off) {
  size_t end = 0;      // where the name ends at its original place
  size_t decoded = 0;  // wire length of the name as decoded
  int hops = 0;
  while (true) {
    if (off >= msg.size()) return 0;
    const uint8_t len = msg[off];
    if ((len & 0xc0) == 0xc0) {
      if (off + 1 >= msg.size()) return 0;
      if (end == 0) end = off + 2;
      if (++hops > kMaxPointerHops) return 0;
      off = static_cast<size_t>(((len & 0x3f) << 8) | msg[off + 1]);
      continue;
    }
    if ((len & 0xc0) != 0) return 0;  // 01/10: extended and reserved label types
    decoded += size_t{len} + 1;
    if (decoded > kMaxDnsNameLen) return 0;
    if (len == 0) return end != 0 ? end : off + 1;
    off += size_t{len} + 1;
  }
}

const char* to_string(DnsQueryCheck c) {
  switch (c) {
    case DnsQueryCheck::ok: return "ok";
    case DnsQueryCheck::truncated: return "truncated";
    case DnsQueryCheck::not_query: return "not_query";
    case DnsQueryCheck::bad_count: return "bad_count";
    case DnsQueryCheck::bad_name: return "bad_name";
  }
  return "?";
}

DnsQueryCheck check_dns_query(std::span<const uint8_t> msg) {
  if (msg.size() < kDnsHeaderLen) return DnsQueryCheck::truncated;
  const uint8_t flags = msg[2];
  const unsigned opcode = (flags >> 3) & 0x0f;
  if ((flags & 0x80) != 0 || opcode == 3 || opcode > 5) return DnsQueryCheck::not_query;
  if (get16(msg.data() + 4) != 1) return DnsQueryCheck::bad_count;
  const size_t after = skip_dns_name(msg, kDnsHeaderLen);
  if (after == 0) return DnsQueryCheck::bad_name;
  if (after + 4 > msg.size()) return DnsQueryCheck::truncated;  // QTYPE, QCLASS
  return DnsQueryCheck::ok;
}

}  // namespace ferry::services
