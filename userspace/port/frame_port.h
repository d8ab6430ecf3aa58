// FramePort: where the guest's Ethernet frames come from and go to.
//
// Two kinds: a tap fd (TapPort: `ferry run`'s own tap, `ferry vm --tap`'s,
// or the private tap that `ferry attach` joins to an existing device through
// BPF redirects) and QEMU's stream socket (StreamPort, `ferry vm`). The
// translator only sees this interface. Receiving hands each frame to a
// callback as a span into the port's own buffer (valid during the call only);
// sending takes one frame, possibly in pieces, and never blocks: a frame the
// device cannot take now is dropped and counted (TCP retransmits).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "ferry/counters.h"

namespace ferry {

// What a port knows about a received frame beyond its bytes.
struct RxMeta {
  // The L4 checksum was never computed (the guest's kernel offloaded it to
  // the port) or was verified already: do not verify it again.
  bool l4_checksum_trusted = false;
  // Nonzero for a TCP super-segment the guest left unsegmented (TSO): the
  // MSS it would have cut it into.
  uint16_t gso_size = 0;
};

// Offloads asked of the port for one frame sent to the guest (only when the
// port's offloads() is true). A partial checksum is completed from
// csum_start (the L4 header) into csum_start + csum_offset; with gso_size,
// the frame is a TCP super-segment the guest's stack takes whole.
struct TxOffload {
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  uint16_t gso_size = 0;
  uint8_t gso_type = 0;  // 0 none, 1 TCPv4, 4 TCPv6 (virtio_net_hdr values)
  uint16_t hdr_len = 0;  // Ethernet + IP + TCP header bytes, with gso_size

  // A TCP frame whose TCP header starts at l4_offset and whose headers end
  // at hdr_len: the port completes the checksum, and a payload above mss is
  // a super-segment the guest's stack cuts into mss-sized segments.
  static TxOffload tcp(size_t l4_offset, size_t hdr_len, bool v6, size_t payload, uint16_t mss) {
    TxOffload o;
    o.csum_start = static_cast<uint16_t>(l4_offset);
    o.csum_offset = 16;  // the TCP checksum field
    if (payload > mss) {
      o.gso_size = mss;
      o.gso_type = v6 ? kGsoTcpV6 : kGsoTcpV4;
      o.hdr_len = static_cast<uint16_t>(hdr_len);
    }
    return o;
  }
  static constexpr uint8_t kGsoTcpV4 = 1;  // VIRTIO_NET_HDR_GSO_TCPV4
  static constexpr uint8_t kGsoTcpV6 = 4;  // VIRTIO_NET_HDR_GSO_TCPV6
};

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void on_guest_frame(std::span<const uint8_t> frame, const RxMeta& meta) = 0;
};

struct PortCounters {
  FERRY_PORT_COUNTERS(FERRY_COUNTER_DECLARE)  // include/ferry/counters.h
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
  // Same, with offloads (checksum completion, segmentation); only valid when
  // offloads() is true.
  virtual bool send(const iovec* iov, int iovcnt, const TxOffload& offload) {
    (void)offload;
    (void)iov;
    (void)iovcnt;
    return false;
  }
  // True when the port completes partial checksums and takes TCP
  // super-segments (a tap with a vnet header).
  virtual bool offloads() const { return false; }
  bool send(std::span<const uint8_t> frame) {
    iovec v{const_cast<uint8_t*>(frame.data()), frame.size()};
    return send(&v, 1);
  }
  virtual const PortCounters& counters() const = 0;
  // True once the device behind the port is gone for good (a tap deleted
  // under its fd: reads fail with EBADFD): nothing will ever arrive again.
  virtual bool gone() const { return false; }
};

}  // namespace ferry
