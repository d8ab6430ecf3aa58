// Translator configuration: the guest's addresses, the gateway, the link and
// the forwarded ports. Filled by the CLI (tools/ferry) or the CNI plugin;
// read-only once the translator starts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codec/addr.h"

namespace ferry {

// One -t/-u rule: host [addr]:port range -> guest port range of equal size.
struct PortForward {
  InetAddr bind_addr;  // unspecified (::) means all addresses
  bool bind_any = true;
  uint16_t host_first = 0, host_last = 0;
  uint16_t guest_first = 0;  // guest port for host_first; the range maps 1:1
};

struct Config {
  std::string ifname = "eth0";  // the guest's interface name
  unsigned mtu = 65520;
  MacAddr our_mac{{0x02, 0x66, 0x65, 0x72, 0x72, 0x79}};  // 02:"ferry"

  InetPrefix guest4;  // 198.18.0.2/24
  InetAddr gateway4;  // 198.18.0.1
  InetPrefix guest6;  // fd00:f::2/64
  InetAddr gateway6;  // fd00:f::1
  bool ipv4 = true, ipv6 = true;

  // Map connections to the gateway address onto the host's loopback
  // (127.0.0.1 / ::1) and back, as passt's --map-gw does.
  bool map_gateway = true;

  std::vector<PortForward> tcp_forwards;
  std::vector<PortForward> udp_forwards;

  uint32_t max_conns = 131072;
  bool fastpath = true;
  bool verbose = false;

  // The defaults above, with the addresses filled in.
  static Config defaults();
};

}  // namespace ferry
