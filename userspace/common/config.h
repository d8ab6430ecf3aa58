// Translator configuration: the guest's addresses, the gateway, the link and
// the forwarded ports. Filled by the CLI (tools/ferry) or the CNI plugin;
// read-only once the translator starts.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <optional>
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
  bool from_all = false;     // made by `all`: may be trimmed to the descriptor limit
};

// -t auto / -u auto (ferry run only): forward, host port to the same guest
// port on all host addresses, every port the guest listens on, following
// changes (autofwd/auto_forward.h), but the excluded ones (`~PORT`).
struct AutoForwardSpec {
  bool enabled = false;
  std::bitset<65536> excluded;
};

// One -T/-U rule (`ferry run` only): a port range of the guest's own
// loopback (127.0.0.1 and ::1, where ferry listens inside the guest's
// namespace) -> the host's loopback ports from target_first on, 1:1
// (userspace/nsfwd/).
struct NsForward {
  uint16_t listen_first = 0, listen_last = 0;  // on the guest's loopback
  uint16_t target_first = 0;                   // on the host's loopback, for listen_first
  bool from_all = false;                       // made by `all` (or exclusions only)
};

// An IPv4 route handed to a DHCP client (option 121, RFC 3442).
struct Route4 {
  InetPrefix dst;   // e.g. 10.0.0.0/8
  InetAddr via;     // a gateway on the guest's subnet
};

// What the guest services (userspace/services/) hand out and whether they
// run. Every address follows the guest's own (-a/-g/-m) unless set here.
struct ServicesConfig {
  bool dhcp4 = true;     // DHCPv4 server (--no-dhcp)
  bool ra = true;        // router advertisements (--no-ra)
  bool dhcp6 = true;     // DHCPv6 server (--no-dhcpv6)
  bool dns_forward = true;  // DNS forwarder on dns_forward4/6 (--no-dns)
  // Where the forwarder listens (--dns-forward); unspecified: the gateway.
  InetAddr dns_forward4, dns_forward6;
  // --dns: servers handed out instead of the forwarder's address (per family).
  std::vector<InetAddr> dns;
  std::vector<std::string> search;  // search list (--search; default: the host's)
  bool search_given = false;        // --search was given (even an empty host list stays out)
  std::string domain;               // option 15 (--domain; default: first of search)
  std::string hostname;             // option 12 (--hostname)
  std::vector<Route4> routes;       // option 121 (--route)
  uint32_t lease_s = 3600;          // DHCP lease and DHCPv6/RA lifetimes
  // The host's resolvers the forwarder relays to (from /etc/resolv.conf).
  std::vector<InetAddr> upstreams;

  // The forwarder's address for a family (the gateway unless --dns-forward).
  const InetAddr& forward_addr(bool v6, const InetAddr& gateway) const;
  // The DNS servers handed out for a family: --dns of that family (the first
  // kMaxDnsHandedOut), else the forwarder's address when it runs, else none.
  // Fills `out` (no allocation: it is called per DHCP message); returns how many.
  static constexpr size_t kMaxDnsHandedOut = 8;
  using DnsList = std::array<InetAddr, kMaxDnsHandedOut>;
  size_t handed_out(bool v6, const InetAddr& gateway, DnsList& out) const;
};

// One --allow / --deny rule: a destination prefix and, optionally, a port
// range. Matching and precedence live in policy/rules.h.
struct DestinationRule {
  InetPrefix net;
  uint16_t port_first = 0, port_last = 0;  // 0-0: every port, and ICMP echo
  bool allow = false;
  bool has_ports() const { return port_first != 0; }
};

// An inclusive port range (mapGateway's list of ports).
struct PortRange {
  uint16_t first = 0, last = 0;
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
  // (127.0.0.1 / ::1) and back, as passt's --map-gw does. Without it the
  // gateway address is refused (it is ferry's, nothing listens there).
  bool map_gateway = true;
  // The ports the mapping opens; empty: every port.
  std::vector<PortRange> map_gateway_ports;
  // The host's own addresses (those of its interfaces) are reachable.
  bool allow_node = true;
  // --allow / --deny, in the order given; the most specific one wins
  // (policy/destination_policy.h).
  std::vector<DestinationRule> destination_rules;
  // SO_MARK of every host socket (0: none), so that the node's firewall can
  // tell this instance's traffic apart.
  uint32_t socket_mark = 0;
  // -o ADDR (per family) and --outbound-if4/6 IF: the source address and
  // interface of outbound host sockets (common/host_socket.h); unspecified
  // and empty: the host's routes choose.
  InetAddr outbound4, outbound6;
  std::string outbound_if4, outbound_if6;

  std::vector<PortForward> tcp_forwards;
  std::vector<PortForward> udp_forwards;
  AutoForwardSpec tcp_auto, udp_auto;
  // -t/-u all: ports left out because the host already uses them (-v says so).
  size_t tcp_ports_skipped = 0, udp_ports_skipped = 0;
  // -T/-U: the guest's loopback to the host's (pasta's); `ferry run` only.
  std::vector<NsForward> tcp_ns_forwards;
  std::vector<NsForward> udp_ns_forwards;

  ServicesConfig services;

  // --pcap FILE: every frame the guest's port moves, into FILE (libpcap's
  // format; userspace/pcap/), at most pcap_max_bytes bytes (--pcap-size),
  // after which the capture stops. Empty: no capture.
  std::string pcap_path;
  uint64_t pcap_max_bytes = 128ull << 20;

  uint32_t max_conns = 131072;     // TCP flows: every per-flow table and BPF map is sized from it
  uint32_t max_udp_flows = 8192;   // UDP flows, each one host socket (and port)
  bool fastpath = true;
  bool verbose = false;

  // DNS over TCP: where a guest connection to dst:dport goes instead of
  // dst when it is the DNS forwarder's (forward address, port 53): the first
  // host resolver of the guest's family (a socket of that family must reach
  // it). nullopt when the forwarder is off, for any other destination, or
  // when no resolver of that family is known.
  std::optional<InetAddr> dns_tcp_target(const InetAddr& dst, uint16_t dport) const;

  // The defaults above, with the addresses filled in.
  static Config defaults();
};

}  // namespace ferry
