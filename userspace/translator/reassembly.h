// Reassembly of the guest's IP fragments: a datagram larger than the
// guest's MTU (UDP, a big ping) leaves its stack in fragments, and the host
// socket that carries it on needs it whole. A few datagrams at a time
// (kSlots, the oldest evicted), each done within kTimeoutNs or dropped;
// fragments that overlap drop their datagram (RFC 5722), as do a non-final
// fragment whose length is no multiple of 8 and a datagram above 65535
// bytes. IPv4, and IPv6 whose Fragment header follows the fixed header
// (how Linux sends them without extension headers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace ferry {

class Reassembler {
 public:
  static constexpr size_t kSlots = 8;
  static constexpr uint64_t kTimeoutNs = 5'000'000'000;

  struct Counters {
    uint64_t fragments = 0;   // taken in
    uint64_t datagrams = 0;   // put back together
    uint64_t dropped = 0;     // malformed, overlapping, too big, evicted, timed out
  };

  // One fragment (an Ethernet frame). When it completes its datagram,
  // returns the whole frame (Ethernet + IP header without fragmentation +
  // payload), valid until the next call.
  std::optional<std::span<const uint8_t>> add(std::span<const uint8_t> frame, uint64_t now_ns);

  const Counters& counters() const { return counters_; }

 private:
  // Room for the largest header before the payload: Ethernet + IPv4 with
  // options (60) or IPv6 (40).
  static constexpr size_t kHeadRoom = 14 + 60;
  static constexpr size_t kMaxPayload = 65535;
  static constexpr size_t kBlocks = (kMaxPayload + 7) / 8;

  struct Slot {
    bool used = false;
    bool v6 = false;
    uint8_t proto = 0;
    uint8_t src[16] = {}, dst[16] = {};
    uint32_t id = 0;
    uint64_t started = 0;
    size_t total = 0;          // payload length, once the last fragment came
    size_t blocks_have = 0;    // 8-byte blocks received
    size_t head_len = 0;       // Ethernet + IP header of the offset-0 fragment
    std::unique_ptr<uint8_t[]> buf;    // kHeadRoom + kMaxPayload
    std::unique_ptr<uint64_t[]> have;  // bitmap of received blocks
  };

  Slot* find_or_make(bool v6, uint8_t proto, const uint8_t* src, const uint8_t* dst, uint32_t id,
                     uint64_t now);
  void drop(Slot& s);

  Slot slots_[kSlots];
  Counters counters_;
};

}  // namespace ferry
