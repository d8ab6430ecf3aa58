// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit PRF, used for
// the secure initial sequence numbers of RFC 6528 and for the flow-table
// index (a keyed hash, so a guest cannot choose tuples that collide).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferry {

struct SipKey {
  uint64_t k0 = 0, k1 = 0;
};

// SipHash-2-4 of len bytes at data under key.
uint64_t siphash24(const SipKey& key, const void* data, size_t len);

// 128 key bits from getrandom(); falls back to clock and address bits only
// when getrandom() fails (it does not on any kernel ferry supports).
SipKey random_sip_key();

}  // namespace ferry
