// Addresses: parsing, printing and classifying MACs and IP addresses.
//
// InetAddr stores IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so every
// predicate first asks which family it holds. Text conversion goes through
// inet_pton/inet_ntop, which accept exactly the usual notations and nothing
// else (no "0x" forms, no shortened IPv4).
#include "codec/addr.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace ferry {

namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// Hex digit value, or -1.
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

// ff:ff:ff:ff:ff:ff.
bool MacAddr::is_broadcast() const {
  for (uint8_t x : b)
    if (x != 0xff) return false;
  return true;
}

// Lower-case colon-separated hex.
std::string MacAddr::str() const {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
                b[5]);
  return buf;
}

// Accepts exactly six colon-separated groups of two hex digits.
std::optional<MacAddr> MacAddr::parse(std::string_view text) {
  if (text.size() != 17) return std::nullopt;
  MacAddr m;
  for (size_t i = 0; i < 6; i++) {
    int hi = hex_value(text[i * 3]);
    int lo = hex_value(text[i * 3 + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    if (i < 5 && text[i * 3 + 2] != ':') return std::nullopt;
    m.b[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return m;
}

// IPv4-mapped from a struct in_addr.
InetAddr InetAddr::from_v4(const in_addr& a) {
  return from_v4_bytes(reinterpret_cast<const uint8_t*>(&a.s_addr));
}

// IPv4-mapped from 4 network-order bytes.
InetAddr InetAddr::from_v4_bytes(const uint8_t* p) {
  InetAddr r;
  std::memcpy(r.b.data(), kV4MappedPrefix, 12);
  std::memcpy(r.b.data() + 12, p, 4);
  return r;
}

// From a struct in6_addr (an IPv4-mapped one then reads as IPv4).
InetAddr InetAddr::from_v6(const in6_addr& a) { return from_v6_bytes(a.s6_addr); }

// From 16 network-order bytes.
InetAddr InetAddr::from_v6_bytes(const uint8_t* p) {
  InetAddr r;
  std::memcpy(r.b.data(), p, 16);
  return r;
}

// Dotted quad or IPv6 text; anything else (including trailing junk) fails.
std::optional<InetAddr> InetAddr::parse(std::string_view text) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  in_addr a4;
  if (inet_pton(AF_INET, buf, &a4) == 1) return from_v4(a4);
  in6_addr a6;
  if (inet_pton(AF_INET6, buf, &a6) == 1) return from_v6(a6);
  return std::nullopt;
}

// True for ::ffff:0:0/96.
bool InetAddr::is_v4() const { return std::memcmp(b.data(), kV4MappedPrefix, 12) == 0; }

// 0.0.0.0 or ::.
bool InetAddr::is_unspecified() const {
  if (is_v4()) return b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] == 0;
  for (uint8_t x : b)
    if (x != 0) return false;
  return true;
}

// 127/8 or ::1.
bool InetAddr::is_loopback() const {
  if (is_v4()) return b[12] == 127;
  for (size_t i = 0; i < 15; i++)
    if (b[i] != 0) return false;
  return b[15] == 1;
}

// 224/4 or ff00::/8.
bool InetAddr::is_multicast() const {
  if (is_v4()) return (b[12] & 0xf0) == 0xe0;
  return b[0] == 0xff;
}

// fe80::/10.
bool InetAddr::is_link_local_v6() const { return !is_v4() && b[0] == 0xfe && (b[1] & 0xc0) == 0x80; }

InetAddr link_local_from_mac(const MacAddr& mac) {
  InetAddr a;
  a.b[0] = 0xfe;
  a.b[1] = 0x80;
  a.b[8] = mac.b[0] ^ 0x02;  // universal/local bit inverted
  a.b[9] = mac.b[1];
  a.b[10] = mac.b[2];
  a.b[11] = 0xff;
  a.b[12] = 0xfe;
  a.b[13] = mac.b[3];
  a.b[14] = mac.b[4];
  a.b[15] = mac.b[5];
  return a;
}

// The IPv4 address (meaningful only when is_v4()).
in_addr InetAddr::v4() const {
  in_addr a;
  std::memcpy(&a.s_addr, b.data() + 12, 4);
  return a;
}

// The 16 bytes as an in6_addr (IPv4 stays mapped).
in6_addr InetAddr::v6() const {
  in6_addr a;
  std::memcpy(a.s6_addr, b.data(), 16);
  return a;
}

// Dotted quad for IPv4, RFC 5952 text for IPv6.
std::string InetAddr::str() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_v4()) {
    in_addr a = v4();
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
  } else {
    in6_addr a = v6();
    inet_ntop(AF_INET6, &a, buf, sizeof(buf));
  }
  return buf;
}

// Compares the first prefix_len bits of the family's own address bytes;
// different families never share a prefix.
bool InetAddr::same_prefix(const InetAddr& other, unsigned prefix_len) const {
  if (is_v4() != other.is_v4()) return false;
  const uint8_t* x = b.data();
  const uint8_t* y = other.b.data();
  unsigned bits = 128;
  if (is_v4()) {
    x += 12;
    y += 12;
    bits = 32;
  }
  if (prefix_len > bits) prefix_len = bits;
  unsigned full = prefix_len / 8;
  if (std::memcmp(x, y, full) != 0) return false;
  unsigned rest = prefix_len % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (x[full] & mask) == (y[full] & mask);
}

// "addr/len", or a bare address meaning a host prefix (/32 or /128).
std::optional<InetPrefix> InetPrefix::parse(std::string_view text) {
  size_t slash = text.find('/');
  auto addr = InetAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  unsigned max = addr->is_v4() ? 32 : 128;
  InetPrefix p{*addr, max};
  if (slash == std::string_view::npos) return p;
  std::string_view num = text.substr(slash + 1);
  if (num.empty() || num.size() > 3) return std::nullopt;
  unsigned v = 0;
  for (char c : num) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > max) return std::nullopt;
  p.len = v;
  return p;
}

// "addr/len".
std::string InetPrefix::str() const { return addr.str() + "/" + std::to_string(len); }

// FNV-1a over the 16 bytes: cheap, and good enough for control-plane maps.
socklen_t to_sockaddr(const InetAddr& addr, uint16_t port, sockaddr_storage* ss, bool as_v6) {
  std::memset(ss, 0, sizeof(*ss));
  if (addr.is_v4() && !as_v6) {
    auto* s = reinterpret_cast<sockaddr_in*>(ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    s->sin_addr = addr.v4();
    return sizeof(*s);
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  s->sin6_addr = addr.v6();
  return sizeof(*s);
}

bool from_sockaddr(const sockaddr* sa, InetAddr* addr, uint16_t* port) {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(sa);
    *addr = InetAddr::from_v4(s->sin_addr);
    if (port != nullptr) *port = ntohs(s->sin_port);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(sa);
    *addr = InetAddr::from_v6(s->sin6_addr);
    if (port != nullptr) *port = ntohs(s->sin6_port);
    return true;
  }
  return false;
}

size_t InetAddrHash::operator()(const InetAddr& a) const noexcept {
  uint64_t h = 14695981039346656037ull;
  for (uint8_t x : a.b) {
    h ^= x;
    h *= 1099511628211ull;
  }
  return static_cast<size_t>(h);
}

}  // namespace ferry
