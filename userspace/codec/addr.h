// Addresses: Ethernet MACs and IP addresses of either family, and the
// socket API's form of an address and port (sockaddr), built and read in one
// place for every host socket.
//
// InetAddr keeps IPv4 addresses IPv4-mapped (::ffff:a.b.c.d), as passt's
// inany does and as include/ferry/contract.h's ferry_conn_key does, so one
// 16-byte type serves both families, hashes cheaply and compares with ==.
// Bytes are always in network order.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

struct MacAddr {
  std::array<uint8_t, 6> b{};

  bool operator==(const MacAddr&) const = default;
  bool is_broadcast() const;
  bool is_multicast() const { return (b[0] & 1) != 0; }
  std::string str() const;
  static std::optional<MacAddr> parse(std::string_view text);
};

struct InetAddr {
  std::array<uint8_t, 16> b{};

  bool operator==(const InetAddr&) const = default;

  static InetAddr from_v4(const in_addr& a);
  static InetAddr from_v4_bytes(const uint8_t* p);  // 4 bytes, network order
  static InetAddr from_v6(const in6_addr& a);
  static InetAddr from_v6_bytes(const uint8_t* p);  // 16 bytes
  // Parses dotted IPv4 or textual IPv6; nullopt on anything else.
  static std::optional<InetAddr> parse(std::string_view text);

  bool is_v4() const;  // IPv4-mapped
  bool is_unspecified() const;
  bool is_loopback() const;   // 127/8 or ::1
  bool is_multicast() const;  // 224/4 or ff00::/8
  bool is_link_local_v6() const;
  in_addr v4() const;
  in6_addr v6() const;
  const uint8_t* v4_bytes() const { return b.data() + 12; }
  int family() const { return is_v4() ? AF_INET : AF_INET6; }
  std::string str() const;
  // True when both are in the same prefix of `prefix_len` bits (IPv4: of the
  // 32-bit address).
  bool same_prefix(const InetAddr& other, unsigned prefix_len) const;
};

// Address with prefix length, as on the command line: "198.18.0.2/24".
struct InetPrefix {
  InetAddr addr;
  unsigned len = 0;
  static std::optional<InetPrefix> parse(std::string_view text);
  std::string str() const;
};

// The IPv6 link-local address fe80::/64 with the modified EUI-64 interface
// identifier of `mac` (RFC 4291 appendix A): the gateway's own on the link.
InetAddr link_local_from_mac(const MacAddr& mac);

// addr:port as a sockaddr of addr's family; with as_v6, always sockaddr_in6
// (an IPv4 address stays ::ffff:a.b.c.d), for a dual-stack socket. Returns
// the sockaddr's length.
socklen_t to_sockaddr(const InetAddr& addr, uint16_t port, sockaddr_storage* ss, bool as_v6 = false);

// The address (and port, when asked) of an AF_INET or AF_INET6 sockaddr, as
// recvfrom, getpeername or getifaddrs fill it; false for another family or
// none. A v4-mapped IPv6 peer reads as IPv4.
bool from_sockaddr(const sockaddr* sa, InetAddr* addr, uint16_t* port = nullptr);
inline bool from_sockaddr(const sockaddr_storage& ss, InetAddr* addr, uint16_t* port = nullptr) {
  return from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), addr, port);
}

struct InetAddrHash {
  size_t operator()(const InetAddr& a) const noexcept;
};

}  // namespace ferry
