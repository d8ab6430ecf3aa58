// Internet checksums (RFC 1071) and incremental updates (RFC 1624).
//
// Sums are carried unfolded in 32 (or 64) bits so that a frame's pieces
// (pseudo-header, header, payload) can be summed separately and folded once.
// All byte data is summed in network order; the folded result is returned in
// network order, ready to be stored with memcpy.
#pragma once

#include <cstddef>
#include <cstdint>

#include "codec/addr.h"

namespace ferry {

// Adds `len` bytes at `data` to `sum` (one's complement, 32-bit carry-safe).
uint32_t csum_partial(const void* data, size_t len, uint32_t sum);
// Folds a partial sum to 16 bits and complements it: the value to store.
uint16_t csum_fold(uint32_t sum);
// Pseudo-header sum for TCP/UDP/ICMPv6 over IPv4 or IPv6 (family from addrs).
uint32_t csum_pseudo(const InetAddr& src, const InetAddr& dst, uint8_t protocol, uint32_t l4_len);
// RFC 1624 eqn. 3: new checksum after a 16-bit field changed from old to new.
uint16_t csum_replace16(uint16_t check, uint16_t old_val, uint16_t new_val);
// True when data (which embeds its own checksum field) sums to zero.
bool csum_valid(const void* data, size_t len, uint32_t sum);

}  // namespace ferry
