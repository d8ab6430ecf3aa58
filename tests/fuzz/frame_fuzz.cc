// libFuzzer harness: the frame codec. Every input is one frame from the
// guest; parse_frame() must never read outside it, crash or hit undefined
// behaviour, whatever the checksum policy. A frame it accepts is parsed
// again from a copy of exactly its own length (no reliance on bytes after it).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> frame(data, size);
  const ferry::ParsedFrame a = ferry::parse_frame(frame, true);
  (void)ferry::parse_frame(frame, ferry::ChecksumPolicy::l3_only);
  (void)ferry::parse_frame(frame, ferry::ChecksumPolicy::none);
  if (a.status == ferry::ParseStatus::ok) {
    const std::vector<uint8_t> copy(data, data + size);
    (void)ferry::parse_frame(std::span<const uint8_t>(copy), true);
  }
  return 0;
}
