// SipHash-2-4, written from the paper's description: four 64-bit state words
// initialised from the key and the "somepseudorandomlygeneratedbytes"
// constants, two compression rounds per 8-byte little-endian message word,
// the length in the top byte of the last word, four finalisation rounds.
#include "tcp/siphash.h"

#include <sys/random.h>

#include <cstring>
#include <ctime>

namespace ferry {

namespace {

// One SipRound over the state.
inline void sipround(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  auto rotl = [](uint64_t x, int b) { return (x << b) | (x >> (64 - b)); };
  v0 += v1;
  v1 = rotl(v1, 13);
  v1 ^= v0;
  v0 = rotl(v0, 32);
  v2 += v3;
  v3 = rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = rotl(v1, 17);
  v1 ^= v2;
  v2 = rotl(v2, 32);
}

// Little-endian 64-bit load of 8 bytes.
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

}  // namespace

// SipHash-2-4 over the message.
uint64_t siphash24(const SipKey& key, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t v0 = 0x736f6d6570736575ULL ^ key.k0;
  uint64_t v1 = 0x646f72616e646f6dULL ^ key.k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ key.k0;
  uint64_t v3 = 0x7465646279746573ULL ^ key.k1;
  size_t full = len & ~size_t{7};
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m = load_le64(p + i);
    v3 ^= m;
    sipround(v0, v1, v2, v3);
    sipround(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t b = static_cast<uint64_t>(len) << 56;
  for (size_t i = 0; i < (len & 7); i++) b |= static_cast<uint64_t>(p[full + i]) << (8 * i);
  v3 ^= b;
  sipround(v0, v1, v2, v3);
  sipround(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; i++) sipround(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

// Key from the kernel's CSPRNG.
SipKey random_sip_key() {
  SipKey k;
  uint8_t buf[16];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t r = getrandom(buf + got, sizeof(buf) - got, 0);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  if (got < sizeof(buf)) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = static_cast<uint64_t>(ts.tv_nsec) ^ (static_cast<uint64_t>(ts.tv_sec) << 30) ^
                 reinterpret_cast<uintptr_t>(&k);
    std::memcpy(buf, &x, 8);
  }
  std::memcpy(&k.k0, buf, 8);
  std::memcpy(&k.k1, buf + 8, 8);
  return k;
}

}  // namespace ferry
