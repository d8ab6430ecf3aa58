// Internet checksum arithmetic.
//
// Theory of operation: the one's complement sum of 16-bit words equals, after
// folding, the one's complement sum of 64-bit words (2^16 = 1 mod 2^16 - 1),
// so the bulk loop adds 64-bit loads with end-around carry, four per
// iteration. Loads are in host order (little-endian on every target we build
// for); the folded 16-bit result is byte-swapped once into the big-endian
// domain the partial sums live in (swapping commutes with one's complement
// addition). The tail (< 8 bytes) is copied into a zeroed word, which keeps
// each byte at its position, so odd lengths pad with a zero byte as RFC 1071
// demands. Start alignment does not matter: loads go through memcpy.
#include "codec/checksum.h"

#include <cstring>

namespace ferry {

namespace {

// 64-bit one's complement addition.
inline uint64_t add64(uint64_t a, uint64_t b) {
  uint64_t s = a + b;
  return s + (s < b ? 1 : 0);
}

// 32-bit one's complement addition.
inline uint32_t add32(uint32_t a, uint32_t b) {
  uint32_t s = a + b;
  return s + (s < b ? 1u : 0u);
}

// Unaligned 64-bit load.
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Folds a 64-bit sum to 16 bits (not complemented).
inline uint16_t fold64(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  return static_cast<uint16_t>(s);
}

// Host-order 16-bit value of the big-endian domain.
inline uint16_t host_to_be_domain(uint16_t v) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return static_cast<uint16_t>((v >> 8) | (v << 8));
#else
  return v;
#endif
}

}  // namespace

// Bulk sum: 32 bytes per iteration, then 8, then the tail.
uint32_t csum_partial(const void* data, size_t len, uint32_t sum) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t a = 0, b = 0;
  while (len >= 32) {
    a = add64(a, load64(p));
    b = add64(b, load64(p + 8));
    a = add64(a, load64(p + 16));
    b = add64(b, load64(p + 24));
    p += 32;
    len -= 32;
  }
  a = add64(a, b);
  while (len >= 8) {
    a = add64(a, load64(p));
    p += 8;
    len -= 8;
  }
  if (len) {
    uint64_t t = 0;
    std::memcpy(&t, p, len);
    a = add64(a, t);
  }
  return add32(sum, host_to_be_domain(fold64(a)));
}

// Fold, complement, return in network byte order.
uint16_t csum_fold(uint32_t sum) {
  uint16_t v = static_cast<uint16_t>(~fold64(sum));
  return host_to_be_domain(v);
}

// Sum of the RFC 793 / RFC 8200 pseudo-header.
uint32_t csum_pseudo(const InetAddr& src, const InetAddr& dst, uint8_t protocol, uint32_t l4_len) {
  uint32_t s = protocol;
  s += l4_len >> 16;
  s += l4_len & 0xffffu;
  size_t off = src.is_v4() ? 12 : 0;
  s = csum_partial(src.b.data() + off, 16 - off, s);
  s = csum_partial(dst.b.data() + off, 16 - off, s);
  return s;
}

// HC' = ~(~HC + ~m + m'), RFC 1624 eqn. 3.
uint16_t csum_replace16(uint16_t check, uint16_t old_val, uint16_t new_val) {
  uint32_t s = static_cast<uint16_t>(~check);
  s += static_cast<uint16_t>(~old_val);
  s += new_val;
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// Two 16-bit replacements; the halves keep their in-frame order.
uint16_t csum_replace32(uint16_t check, uint32_t old_val, uint32_t new_val) {
  check = csum_replace16(check, static_cast<uint16_t>(old_val >> 16),
                         static_cast<uint16_t>(new_val >> 16));
  return csum_replace16(check, static_cast<uint16_t>(old_val & 0xffffu),
                        static_cast<uint16_t>(new_val & 0xffffu));
}

// A correct checksum makes the whole sum 0xffff, whose fold is 0.
bool csum_valid(const void* data, size_t len, uint32_t sum) {
  return csum_fold(csum_partial(data, len, sum)) == 0;
}

}  // namespace ferry
