// NodeAddresses: see node_addresses.h.
#include "policy/node_addresses.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <optional>

namespace ferry {

namespace {

bool contains(const std::vector<InetAddr>& v, const InetAddr& a) {
  return std::find(v.begin(), v.end(), a) != v.end();
}

}  // namespace

void ipv4_broadcasts(const InetAddr& addr, const InetAddr& netmask, const InetAddr* configured,
                     std::vector<InetAddr>* out) {
  if (!addr.is_v4()) return;
  const uint8_t* a = addr.v4_bytes();
  const uint8_t* m = netmask.is_v4() ? netmask.v4_bytes() : nullptr;
  unsigned len = 0;
  for (int i = 0; m != nullptr && i < 4; i++) len += static_cast<unsigned>(__builtin_popcount(m[i]));
  if (m != nullptr && len < 31) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = static_cast<uint8_t>(a[i] | ~m[i]);
    const InetAddr directed = InetAddr::from_v4_bytes(b);
    if (!contains(*out, directed)) out->push_back(directed);
  }
  if (configured != nullptr && configured->is_v4() && *configured != addr && !contains(*out, *configured))
    out->push_back(*configured);
}

// This namespace's interface addresses and IPv4 broadcast addresses.
static bool read_node(std::vector<InetAddr>* addrs, std::vector<InetAddr>* broadcasts) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  addrs->clear();
  broadcasts->clear();
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    InetAddr a, mask, brd;
    if (!from_sockaddr(i->ifa_addr, &a)) continue;
    addrs->push_back(a);
    if (!a.is_v4() || !(i->ifa_flags & IFF_BROADCAST)) continue;
    const bool has_mask = from_sockaddr(i->ifa_netmask, &mask);
    const bool has_brd = from_sockaddr(i->ifa_broadaddr, &brd);
    ipv4_broadcasts(a, has_mask ? mask : InetAddr{}, has_brd ? &brd : nullptr, broadcasts);
  }
  freeifaddrs(list);
  return true;
}

// A new snapshot; on failure the old one stays (and is retried next time).
void NodeAddresses::refresh(uint64_t now_ns) {
  if (fixed_ || (valid_ && now_ns - taken_ns_ < kMaxAgeNs)) return;
  if (!read_node(&addrs_, &broadcasts_)) return;
  taken_ns_ = now_ns;
  valid_ = true;
}

void NodeAddresses::freeze() {
  (void)read_node(&addrs_, &broadcasts_);
  fixed_ = valid_ = true;
}

std::string NodeAddresses::snapshot_text() {
  std::vector<InetAddr> addrs, broadcasts;
  if (!read_node(&addrs, &broadcasts)) return "";
  std::string s;
  for (const InetAddr& a : addrs) s += "n " + a.str() + "\n";
  for (const InetAddr& a : broadcasts) s += "b " + a.str() + "\n";
  return s;
}

bool NodeAddresses::load_text(std::string_view text) {
  std::vector<InetAddr> addrs, broadcasts;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.size() < 3 || (line[0] != 'n' && line[0] != 'b') || line[1] != ' ') return false;
    std::optional<InetAddr> a = InetAddr::parse(line.substr(2));
    if (!a) return false;
    (line[0] == 'n' ? addrs : broadcasts).push_back(*a);
  }
  addrs_ = std::move(addrs);
  broadcasts_ = std::move(broadcasts);
  fixed_ = valid_ = true;
  return true;
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
