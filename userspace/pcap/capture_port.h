// CapturePort: a FramePort that records every frame it moves into a
// PcapWriter (--pcap), then passes it on to the port it wraps.
//
// Both directions: a frame read from the guest is recorded before the
// translator sees it, a frame sent to the guest once the port has taken it
// (a frame the port dropped never crossed the link). Frames are recorded as
// they cross the port: with offloads on (a tap with a vnet header), the
// guest's and ferry's TCP frames may be super-segments up to 64 KiB with a
// partial checksum, as tcpdump on the tap shows them. Frames the BPF
// classifier absorbs (the guest's pure ACKs of fast-path flows) never reach
// the port, so they are not in the file.
// The writer's buffer is flushed by the owner through flush() (the event
// loop's batch-end hook): nothing else here makes a system call.
#pragma once

#include <memory>
#include <string>

#include "pcap/pcap_writer.h"
#include "port/frame_port.h"

namespace ferry {

class CapturePort;
class EventLoop;

// --pcap for a command: `port` wrapped in a capture into `path` (at most
// max_bytes), flushed at the end of each of loop's batches. nullptr when
// path is empty, and on failure, with *error set.
std::unique_ptr<CapturePort> open_capture(const std::string& path, uint64_t max_bytes, FramePort& port,
                                          EventLoop& loop, std::string* error);

class CapturePort final : public FramePort, private FrameSink {
 public:
  CapturePort(FramePort& inner, std::unique_ptr<PcapWriter> writer)
      : inner_(inner), writer_owned_(std::move(writer)), writer_(*writer_owned_) {}

  // The writer's buffer into the file (one write()).
  void flush() { writer_.flush(); }
  const PcapWriter& writer() const { return writer_; }
  // "--pcap FILE: N frames, B bytes[, D dropped (buffer full)][, L after
  // the size limit]".
  std::string summary() const;
  // At the end: the last frames into the file, and the summary on stderr
  // after `who` when asked (verbose) or when frames were dropped.
  void finish(const char* who, bool verbose);

  int fd() const override { return inner_.fd(); }
  // Reads from the wrapped port; each frame is recorded, then given to sink.
  size_t receive(FrameSink& sink, size_t max_frames) override;
  bool send(const iovec* iov, int iovcnt) override;
  bool send(const iovec* iov, int iovcnt, const TxOffload& offload) override;
  using FramePort::send;
  bool offloads() const override { return inner_.offloads(); }
  const PortCounters& counters() const override { return inner_.counters(); }
  bool gone() const override { return inner_.gone(); }

 private:
  void on_guest_frame(std::span<const uint8_t> frame, const RxMeta& meta) override;

  FramePort& inner_;
  std::unique_ptr<PcapWriter> writer_owned_;
  PcapWriter& writer_;
  FrameSink* sink_ = nullptr;  // during receive()
};

}  // namespace ferry
