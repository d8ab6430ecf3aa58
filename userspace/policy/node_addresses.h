// NodeAddresses: the host's own addresses, as the destination policy needs
// them (the addresses of every interface in the namespace of ferry's host
// sockets, and their IPv4 broadcast addresses).
//
// Theory of operation: a snapshot from getifaddrs(), taken on first use and
// again when it is older than kMaxAgeNs and a new flow asks (addresses come
// and go: DHCP, a pod's IP on the node). Never more than one getifaddrs()
// per kMaxAgeNs, never per frame: only a new flow's policy check asks.
// A sandboxed translator may open no netlink socket (getifaddrs needs one):
// it freeze()s before entering the sandbox and is then fed snapshots by its
// privileged parent (snapshot_text() there, load_text() here, every 2 s over
// their channel: sandbox/process_split.h). Tests set() fixed lists.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codec/addr.h"

namespace ferry {

// Appends to *out the IPv4 broadcast addresses of the interface address
// addr/netmask: its subnet's directed broadcast (none for /31 and /32),
// and `configured` (getifaddrs' ifa_broadaddr) unless it is addr itself:
// glibc reports the address as its own broadcast when none is configured
// (`ip addr add 10.0.0.1/24` without `brd`), and a node address must not
// be taken for a broadcast. Nothing for IPv6 (it has none).
void ipv4_broadcasts(const InetAddr& addr, const InetAddr& netmask, const InetAddr* configured,
                     std::vector<InetAddr>* out);

class NodeAddresses {
 public:
  static constexpr uint64_t kMaxAgeNs = 2'000'000'000;

  // True when a is one of the node's interface addresses.
  bool is_node(const InetAddr& a, uint64_t now_ns);
  // True when a is the broadcast address of one of the node's IPv4 subnets.
  bool is_broadcast(const InetAddr& a, uint64_t now_ns);

  // Fixed lists (tests): no more snapshots.
  void set(std::vector<InetAddr> addrs, std::vector<InetAddr> broadcasts);
  // Takes a snapshot now and never again by itself: load_text() updates it.
  void freeze();
  // This namespace's addresses as text ("n ADDR" / "b ADDR" lines), for
  // load_text() in another process; "" when getifaddrs() fails.
  static std::string snapshot_text();
  // Replaces the lists with snapshot_text()'s; false (lists kept) on garbage.
  bool load_text(std::string_view text);

 private:
  void refresh(uint64_t now_ns);
  std::vector<InetAddr> addrs_, broadcasts_;
  uint64_t taken_ns_ = 0;
  bool valid_ = false, fixed_ = false;
};

}  // namespace ferry
