// RFC 6528 ISN generator: keyed hash of the 4-tuple plus a 4 µs clock.
#include "tcp/tcp_isn.h"

#include <cstring>

namespace ferry {

// Hash of the tuple, offset by the clock.
uint32_t IsnGenerator::isn(const InetAddr& local, uint16_t lport, const InetAddr& remote,
                           uint16_t rport, uint64_t now_ns) const {
  uint8_t buf[36];
  std::memcpy(buf, local.b.data(), 16);
  std::memcpy(buf + 16, remote.b.data(), 16);
  buf[32] = static_cast<uint8_t>(lport >> 8);
  buf[33] = static_cast<uint8_t>(lport);
  buf[34] = static_cast<uint8_t>(rport >> 8);
  buf[35] = static_cast<uint8_t>(rport);
  uint32_t f = static_cast<uint32_t>(siphash24(key_, buf, sizeof(buf)));
  return f + static_cast<uint32_t>(now_ns >> 12);
}

}  // namespace ferry
