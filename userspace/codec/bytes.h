// Big-endian loads and stores of 16- and 32-bit header fields. Callers have
// already checked that the bytes lie inside their buffer: these do no
// bounds checking of their own. BoundedWriter is the checked form, for
// messages built field by field (DHCPv4 and DHCPv6 options).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace ferry {

inline uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

inline uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

inline void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Appends to a fixed buffer, never past its end: a write that does not fit
// writes nothing and turns ok() false for good, so a builder checks once, at
// the end, and sends nothing when it is false.
class BoundedWriter {
 public:
  explicit BoundedWriter(std::span<uint8_t> out, size_t start = 0) : out_(out), n_(start) {}

  // True when k more bytes fit (and nothing failed before); else ok() is false.
  bool room(size_t k) {
    if (n_ + k > out_.size()) ok_ = false;
    return ok_;
  }
  void bytes(std::span<const uint8_t> b) {
    if (!room(b.size())) return;
    if (!b.empty()) std::memcpy(out_.data() + n_, b.data(), b.size());
    n_ += b.size();
  }
  void u8(uint8_t v) { bytes(std::span<const uint8_t>(&v, 1)); }
  void u16(uint16_t v) {
    uint8_t b[2];
    put16(b, v);
    bytes(b);
  }
  void u32(uint32_t v) {
    uint8_t b[4];
    put32(b, v);
    bytes(b);
  }
  bool ok() const { return ok_; }
  size_t size() const { return n_; }

 protected:
  std::span<uint8_t> out_;
  size_t n_;
  bool ok_ = true;
};

}  // namespace ferry
