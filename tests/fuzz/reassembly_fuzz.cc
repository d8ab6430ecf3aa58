// libFuzzer harness: IPv4/IPv6 reassembly. The input is a run of guest
// frames (fuzz_records.h); each goes to one Reassembler, with the clock
// stepping as a byte of the record says (so timeouts and eviction are
// reached). A datagram it puts back together is parsed as the translator
// would, and must be a well-formed, unfragmented frame of at most 64 KiB
// payload.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "codec/frame.h"
#include "fuzz_records.h"
#include "translator/reassembly.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::Reassembler r;
  uint64_t now = 1'000'000'000;
  ferry::fuzz::for_each_record(data, size, [&](const ferry::fuzz::Record& rec) {
    now += uint64_t{rec.flags} * 100'000'000;  // up to 25.5 s between fragments
    auto whole = r.add(rec.frame, now);
    if (!whole) return;
    if (whole->size() < 14 || whole->size() > 14 + 60 + 65535) std::abort();
    (void)ferry::parse_frame(*whole, false);
  });
  return 0;
}
