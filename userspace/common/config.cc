// Config::defaults(): the built-in addresses of a guest (198.18.0.0/15 is the
// benchmarking block, fd00:f::/64 a ULA): nothing a real network uses.
#include "common/config.h"

namespace ferry {

Config Config::defaults() {
  Config c;
  c.guest4 = *InetPrefix::parse("198.18.0.2/24");
  c.gateway4 = *InetAddr::parse("198.18.0.1");
  c.guest6 = *InetPrefix::parse("fd00:f::2/64");
  c.gateway6 = *InetAddr::parse("fd00:f::1");
  return c;
}

}  // namespace ferry
