// PcapWriter: frames into a capture file in the libpcap format (tcpdump -r,
// Wireshark), written off the data path's hot loop.
//
// Theory of operation. The file is opened (and its 24-byte global header
// written) by whoever still may open files: the privileged parent, before
// the translator enters its sandbox (no filesystem, seccomp). The records
// are libpcap's own: pcap_dump() writes each one into a stdio stream made
// with fopencookie() whose write function appends to a fixed-size buffer in
// memory, so capturing a frame is two memcpy()s and no system call. flush()
// (the event loop's batch-end hook, once per iteration) moves the buffer
// into the file with write(), one call per batch.
//
// Bounds:
//   * the buffer (kBufferBytes): a frame that does not fit until the next
//     flush is not written and counted (`dropped_buffer_full`);
//   * the file (--pcap-size): the capture STOPS at the limit: the file keeps
//     the first frames, each whole, and holds at most max_bytes bytes; every
//     later frame is counted (`over_limit`) and one line on stderr says the
//     capture stopped. It never wraps (a wrapped file would lose its start,
//     the handshakes that make the rest readable);
//   * a failed write() (disk full) stops the capture the same way, with one
//     line saying why.
// Frames longer than kSnapLen are cut to it (the record keeps the real
// length, as tcpdump -s does). Timestamps are CLOCK_REALTIME (vDSO: no
// system call).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>

struct pcap;
struct pcap_dumper;

namespace ferry {

class PcapWriter {
 public:
  // The largest frame recorded whole: tcpdump's default snapshot length,
  // above any frame ferry moves (a 64 KiB TCP super-segment and headers).
  static constexpr uint32_t kSnapLen = 262144;
  // What one flush moves at most; a batch of 64 super-segments fits.
  static constexpr size_t kBufferBytes = 8u << 20;

  struct Counters {
    uint64_t frames = 0;               // records written into the file
    uint64_t bytes = 0;                // the file's size
    uint64_t dropped_buffer_full = 0;  // frames the buffer had no room for
    uint64_t over_limit = 0;           // frames after the capture stopped
    uint64_t write_errors = 0;         // failed write()s (the capture stops)
  };

  // Creates (truncates) `path` as a capture of Ethernet frames and writes
  // its header. nullptr with *error set on failure.
  static std::unique_ptr<PcapWriter> open(const std::string& path, uint64_t max_bytes, std::string* error);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Records one frame made of iovcnt pieces (copied; no system call).
  void capture(const iovec* iov, int iovcnt);
  void capture(std::span<const uint8_t> frame) {
    iovec v{const_cast<uint8_t*>(frame.data()), frame.size()};
    capture(&v, 1);
  }
  // Writes what the buffer holds to the file: one write() when there is
  // anything, none otherwise.
  void flush();

  bool stopped() const { return stopped_; }
  const Counters& counters() const { return counters_; }
  const std::string& path() const { return path_; }

 private:
  PcapWriter() = default;
  // fopencookie's write function: appends to the buffer.
  static ssize_t cookie_write(void* cookie, const char* data, size_t size);
  // Ends the capture once: `why` on stderr.
  void stop(const std::string& why);

  std::string path_;
  int fd_ = -1;
  uint64_t max_bytes_ = 0;
  pcap* pcap_ = nullptr;
  pcap_dumper* dumper_ = nullptr;
  std::unique_ptr<uint8_t[]> buf_;  // kBufferBytes
  size_t used_ = 0;                 // bytes in buf_ not yet in the file
  std::unique_ptr<uint8_t[]> scratch_;  // kSnapLen: a frame in pieces made whole
  uint64_t committed_ = 0;              // bytes in the file and the buffer
  bool stopped_ = false;
  Counters counters_;
};

}  // namespace ferry
