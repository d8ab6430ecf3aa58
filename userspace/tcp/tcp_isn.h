// Initial sequence numbers per RFC 6528: ISN = M + F(local, lport, remote,
// rport, secretkey), with F = SipHash-2-4 keyed with 128 bits from getrandom()
// and M a clock ticking every 4.096 µs (2^12 ns, close to RFC 793's 4 µs).
// The same tuple thus gets ISNs that grow with time (no reuse of old sequence
// space by a new incarnation), while an off-path attacker cannot predict the
// ISN of any tuple.
#pragma once

#include <cstdint>

#include "codec/addr.h"
#include "tcp/siphash.h"

namespace ferry {

class IsnGenerator {
 public:
  IsnGenerator() : key_(random_sip_key()) {}
  explicit IsnGenerator(const SipKey& key) : key_(key) {}

  // ISN for the connection (our address/port, the guest's address/port) at
  // time now_ns (CLOCK_MONOTONIC).
  uint32_t isn(const InetAddr& local, uint16_t lport, const InetAddr& remote, uint16_t rport,
               uint64_t now_ns) const;

 private:
  SipKey key_;
};

}  // namespace ferry
