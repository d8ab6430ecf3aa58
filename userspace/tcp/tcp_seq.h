// TCP sequence-number arithmetic (RFC 9293 §3.4): 32-bit numbers compared
// modulo 2^32. a "before" b when the signed 32-bit difference a - b is
// negative; this is correct as long as the two are less than 2^31 apart, which
// every window we handle guarantees (windows are at most 2^30).
#pragma once

#include <cstdint>

namespace ferry::tcpseq {

// a < b in sequence space.
constexpr bool lt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
// a <= b in sequence space.
constexpr bool le(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) <= 0; }
// a > b in sequence space.
constexpr bool gt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }
// a >= b in sequence space.
constexpr bool ge(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) >= 0; }
// lo <= x < hi in sequence space (empty when lo == hi).
constexpr bool in_range(uint32_t x, uint32_t lo, uint32_t hi) { return ge(x, lo) && lt(x, hi); }
// The later of two sequence numbers.
constexpr uint32_t max(uint32_t a, uint32_t b) { return gt(a, b) ? a : b; }
// The earlier of two sequence numbers.
constexpr uint32_t min(uint32_t a, uint32_t b) { return lt(a, b) ? a : b; }

}  // namespace ferry::tcpseq
