// Config::defaults(): the built-in addresses of a guest (198.18.0.0/15 is the
// benchmarking block, fd00:f::/64 a ULA): nothing a real network uses.
#include "common/config.h"

namespace ferry {

const InetAddr& ServicesConfig::forward_addr(bool v6, const InetAddr& gateway) const {
  const InetAddr& a = v6 ? dns_forward6 : dns_forward4;
  return a.is_unspecified() ? gateway : a;
}

size_t ServicesConfig::handed_out(bool v6, const InetAddr& gateway, DnsList& out) const {
  size_t n = 0;
  for (const InetAddr& a : dns)
    if (a.is_v4() != v6 && n < out.size()) out[n++] = a;
  if (n == 0 && dns_forward) out[n++] = forward_addr(v6, gateway);
  return n;
}

std::optional<InetAddr> Config::dns_tcp_target(const InetAddr& dst, uint16_t dport) const {
  const bool v6 = !dst.is_v4();
  if (!services.dns_forward || dport != 53 || dst != services.forward_addr(v6, v6 ? gateway6 : gateway4)) {
    return std::nullopt;
  }
  for (const InetAddr& up : services.upstreams)
    if (up.is_v4() != v6) return up;
  return std::nullopt;
}

Config Config::defaults() {
  Config c;
  c.guest4 = *InetPrefix::parse("198.18.0.2/24");
  c.gateway4 = *InetAddr::parse("198.18.0.1");
  c.guest6 = *InetPrefix::parse("fd00:f::2/64");
  c.gateway6 = *InetAddr::parse("fd00:f::1");
  return c;
}

}  // namespace ferry
