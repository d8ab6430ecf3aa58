// FramePort: where the guest's Ethernet frames come from and go to.
//
// A tap fd (`ferry run`), or later an AF_XDP socket on a veth (`ferry attach`).
// The translator only sees this interface. Receiving hands each frame to a
// callback as a span into the port's own buffer (valid during the call only);
// sending takes one frame, possibly in pieces, and never blocks: a frame the
// device cannot take now is dropped and counted (TCP retransmits).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace ferry {

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void on_guest_frame(std::span<const uint8_t> frame) = 0;
};

struct PortCounters {
  uint64_t rx_frames = 0, rx_bytes = 0;
  uint64_t tx_frames = 0, tx_bytes = 0;
  uint64_t tx_dropped = 0;  // device queue full or error
};

class FramePort {
 public:
  virtual ~FramePort() = default;
  virtual int fd() const = 0;
  // Reads up to max_frames frames that are ready, without blocking.
  // Returns how many were delivered; stops early when none is left.
  virtual size_t receive(FrameSink& sink, size_t max_frames) = 0;
  // Sends one frame made of iovcnt pieces. False when it was dropped.
  virtual bool send(const iovec* iov, int iovcnt) = 0;
  bool send(std::span<const uint8_t> frame) {
    iovec v{const_cast<uint8_t*>(frame.data()), frame.size()};
    return send(&v, 1);
  }
  virtual const PortCounters& counters() const = 0;
};

}  // namespace ferry
