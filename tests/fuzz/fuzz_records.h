// How the multi-frame fuzz harnesses cut an input into guest frames.
//
// An input is a sequence of records: a 2-byte big-endian length, one flags
// byte, then that many bytes of frame (fewer if the input ends first). The
// flags byte means what each harness says (clock steps, receive metadata).
// Seeds in tests/fuzz/corpus/ are written in this format
// (tests/fuzz/make_seeds.py).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ferry::fuzz {

struct Record {
  uint8_t flags = 0;
  std::span<const uint8_t> frame;
};

// Calls f(record) for each record of the input, in order.
template <class F>
void for_each_record(const uint8_t* data, size_t size, F&& f) {
  size_t off = 0;
  while (size - off >= 3) {
    const size_t len = (size_t{data[off]} << 8) | data[off + 1];
    Record r;
    r.flags = data[off + 2];
    off += 3;
    const size_t n = len < size - off ? len : size - off;
    r.frame = std::span<const uint8_t>(data + off, n);
    off += n;
    f(r);
  }
}

}  // namespace ferry::fuzz
