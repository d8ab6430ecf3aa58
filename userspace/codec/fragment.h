// IP fragmentation of the frames we originate toward the guest: a host
// datagram larger than the guest's MTU goes as fragments (RFC 791 for IPv4,
// a Fragment header per RFC 8200 §4.5 for IPv6), which the guest's stack
// reassembles, instead of being dropped. We are the packets' source, so
// fragmenting IPv6 is ours to do, and DF on our own IPv4 is ours to clear.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

namespace ferry {

// Splits `frame` (Ethernet + one IPv4 or IPv6 packet without extension
// headers, as build_udp_frame() makes them) into fragments whose IP packets
// are at most `mtu` bytes, built one at a time in `scratch` (at least
// mtu + 14 bytes) and handed to `emit` (false stops). `id` is the
// fragments' identification. Returns how many were emitted; 0 when the frame
// fits the MTU, is not IP, or the MTU leaves no room for 8 bytes of data.
size_t fragment_frame(std::span<const uint8_t> frame, unsigned mtu, uint32_t id,
                      std::span<uint8_t> scratch,
                      const std::function<bool(std::span<const uint8_t>)>& emit);

}  // namespace ferry
