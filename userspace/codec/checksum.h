// Internet checksums (RFC 1071) and incremental updates (RFC 1624).
//
// Byte order, once for all functions below:
//  * A partial sum (the uint32_t passed around) is the one's complement sum
//    of the data read as big-endian (network order) 16-bit words, kept
//    unfolded in 32 bits so that a frame's pieces (pseudo-header, header,
//    payload) can be summed separately and folded once. When pieces are
//    summed separately, every piece but the last must have an even length
//    (an odd piece would shift its successor by one byte).
//  * csum_fold() returns the 16-bit checksum with its bytes in network order
//    in memory: store it with memcpy, never with htons.
//  * csum_replace16() takes and returns raw 16-bit values exactly as they sit
//    in the frame (memcpy'd out, memcpy'd back); one's complement arithmetic
//    commutes with byte swapping, so no conversion is needed or allowed.
//
// csum_partial sums 64 bits per load (unaligned loads through memcpy) and
// handles any length and any start alignment.
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
// RFC 1624 for a 32-bit field (e.g. an IPv4 address), raw values as in frame.
uint16_t csum_replace32(uint16_t check, uint32_t old_val, uint32_t new_val);
// True when data (which embeds its own checksum field) sums to zero.
bool csum_valid(const void* data, size_t len, uint32_t sum);

}  // namespace ferry
