// NodeAddresses: see node_addresses.h.
#include "policy/node_addresses.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>

namespace ferry {

namespace {

// The address in a sockaddr of either family, if it is one.
bool to_inet(const sockaddr* sa, InetAddr* out) {
  if (sa == nullptr) return false;
  if (sa->sa_family == AF_INET) {
    *out = InetAddr::from_v4(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    *out = InetAddr::from_v6(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
    return true;
  }
  return false;
}

bool contains(const std::vector<InetAddr>& v, const InetAddr& a) {
  return std::find(v.begin(), v.end(), a) != v.end();
}

}  // namespace

// A new snapshot; on failure the old one stays (and is retried next time).
void NodeAddresses::refresh(uint64_t now_ns) {
  if (fixed_ || (valid_ && now_ns - taken_ns_ < kMaxAgeNs)) return;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  addrs_.clear();
  broadcasts_.clear();
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    InetAddr a;
    if (to_inet(i->ifa_addr, &a)) addrs_.push_back(a);
    if ((i->ifa_flags & IFF_BROADCAST) && to_inet(i->ifa_broadaddr, &a) && a.is_v4()) broadcasts_.push_back(a);
  }
  freeifaddrs(list);
  taken_ns_ = now_ns;
  valid_ = true;
}

bool NodeAddresses::is_node(const InetAddr& a, uint64_t now_ns) {
  refresh(now_ns);
  return contains(addrs_, a);
}

bool NodeAddresses::is_broadcast(const InetAddr& a, uint64_t now_ns) {
  refresh(now_ns);
  return contains(broadcasts_, a);
}

void NodeAddresses::set(std::vector<InetAddr> addrs, std::vector<InetAddr> broadcasts) {
  addrs_ = std::move(addrs);
  broadcasts_ = std::move(broadcasts);
  fixed_ = valid_ = true;
}

}  // namespace ferry
