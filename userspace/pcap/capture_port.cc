// CapturePort: see capture_port.h.
#include "pcap/capture_port.h"

#include <cstdio>

#include "loop/event_loop.h"

namespace ferry {

std::unique_ptr<CapturePort> open_capture(const std::string& path, uint64_t max_bytes, FramePort& port,
                                          EventLoop& loop, std::string* error) {
  if (path.empty()) return nullptr;
  std::unique_ptr<PcapWriter> writer = PcapWriter::open(path, max_bytes, error);
  if (!writer) return nullptr;
  auto capture = std::make_unique<CapturePort>(port, std::move(writer));
  loop.add_batch_end_hook([c = capture.get()] { c->flush(); });
  return capture;
}

std::string CapturePort::summary() const {
  const PcapWriter::Counters& c = writer_.counters();
  std::string s = "--pcap " + writer_.path() + ": " + std::to_string(c.frames) + " frames, " +
                  std::to_string(c.bytes) + " bytes";
  if (c.dropped_buffer_full) s += ", " + std::to_string(c.dropped_buffer_full) + " dropped (buffer full)";
  if (c.over_limit) s += ", " + std::to_string(c.over_limit) + " after the size limit";
  if (c.write_errors) s += ", " + std::to_string(c.write_errors) + " write errors";
  return s;
}

void CapturePort::finish(const char* who, bool verbose) {
  writer_.flush();
  if (verbose || writer_.counters().dropped_buffer_full) std::fprintf(stderr, "%s: %s\n", who, summary().c_str());
}

size_t CapturePort::receive(FrameSink& sink, size_t max_frames) {
  sink_ = &sink;
  const size_t n = inner_.receive(*this, max_frames);
  sink_ = nullptr;
  return n;
}

// One frame from the guest: recorded, then on to the translator.
void CapturePort::on_guest_frame(std::span<const uint8_t> frame, const RxMeta& meta) {
  writer_.capture(frame);
  sink_->on_guest_frame(frame, meta);
}

bool CapturePort::send(const iovec* iov, int iovcnt) {
  if (!inner_.send(iov, iovcnt)) return false;
  writer_.capture(iov, iovcnt);
  return true;
}

bool CapturePort::send(const iovec* iov, int iovcnt, const TxOffload& offload) {
  if (!inner_.send(iov, iovcnt, offload)) return false;
  writer_.capture(iov, iovcnt);
  return true;
}

}  // namespace ferry
