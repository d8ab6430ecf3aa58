// StreamPort: the guest's frames over a stream socket, in the framing of
// QEMU's `-netdev stream` (and passt's --socket): each Ethernet frame is
// preceded by its length as a 32-bit big-endian integer. No vnet header, so
// no offloads: the guest sends frames with complete checksums, at most its
// MTU, and so must we (offloads() is false: the TCP translator then cuts
// MSS-sized segments with full checksums, and Translator::send_to_guest
// fragments anything else above the MTU).
//
// Theory of operation. The port serves one guest at a time. It owns:
//   * optionally a listening socket (UNIX or any SOCK_STREAM): a guest
//     connects, is served, may go away and come back (a VM that reboots, a
//     QEMU restarted); a second guest connecting while one is served is
//     accepted and closed at once (counted as refused), so it fails fast
//     instead of hanging;
//   * at most one connection;
//   * an epoll set of its own holding both; fd() is that epoll fd, which is
//     readable whenever the listener or the connection has something, so the
//     event loop watches one fd that never changes across reconnects.
// States: no connection (frames to the guest are dropped and counted) or
// connected. A connection ends on EOF, a read/write error, or a protocol
// error (a length below an Ethernet header or above max_frame: the peer
// speaks something else, or its MTU is larger than ours, and the stream
// cannot be resynchronised), after which the port accepts the next guest.
// A port made from a connected socket alone (no listener) serves it once;
// closed() then becomes true.
//
// Receive: one read() moves as many frames as fit into a fixed buffer
// (kRxBufSize); complete frames are handed to the sink in place, and the
// partial frame at the end (at most one) is moved to the front to be
// completed by the next read. Invariant after receive(): the buffer holds
// no complete frame, so nothing waits for a wake-up that will not come.
// Send: length and frame in one writev() on the non-blocking socket. A
// short write (the socket's buffer filled mid-frame) keeps the frame's rest
// in a fixed buffer and watches for EPOLLOUT; until it is flushed, further
// frames are dropped and counted, so frames are never interleaved. No
// allocation after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "port/frame_port.h"

namespace ferry {

class StreamPort final : public FramePort {
 public:
  static constexpr size_t kLenPrefix = 4;
  static constexpr size_t kMinFrame = 14;         // an Ethernet header
  static constexpr size_t kRxBufSize = 256 << 10;  // many frames per read()

  struct Counters {
    uint64_t connections = 0;      // guests accepted (or the one handed over)
    uint64_t disconnects = 0;      // connections that ended, for any reason
    uint64_t refused = 0;          // a second guest while one was served
    uint64_t protocol_errors = 0;  // a bad length: the connection was dropped
    uint64_t rx_reads = 0;         // read() calls that returned data
    uint64_t tx_partial = 0;       // frames the socket took only in part
  };

  // max_frame: the largest frame either way (Ethernet header + MTU, plus 4
  // for a VLAN tag), at most 65535 + 18.
  // listen_fd: a listening stream socket (takes ownership), or -1.
  // conn_fd: an already connected stream socket (takes ownership), or -1.
  // At least one must be given.
  static Result<std::unique_ptr<StreamPort>> create(int listen_fd, int conn_fd, size_t max_frame);

  // Makes a listening UNIX stream socket at path: an existing socket file
  // that nobody listens on (left by a killed process) is replaced; a live
  // one is an error (EADDRINUSE), as is any other kind of file.
  static Result<int> listen_unix(const std::string& path);

  ~StreamPort() override;
  StreamPort(const StreamPort&) = delete;
  StreamPort& operator=(const StreamPort&) = delete;

  int fd() const override { return epfd_; }
  size_t receive(FrameSink& sink, size_t max_frames) override;
  bool send(const iovec* iov, int iovcnt) override;
  using FramePort::send;
  const PortCounters& counters() const override { return counters_; }

  const Counters& stream_counters() const { return stream_; }
  bool connected() const { return conn_ >= 0; }
  // True once a port without a listener lost its only connection.
  bool closed() const { return conn_ < 0 && listen_ < 0; }
  size_t max_frame() const { return max_frame_; }

 private:
  StreamPort(int epfd, int listen_fd, size_t max_frame);

  void accept_guests();
  bool adopt_connection(int fd);
  void drop_connection();
  // Reads once and delivers every complete frame; false when the
  // connection ended (EOF, error, protocol error).
  bool read_and_deliver(FrameSink& sink, size_t* delivered);
  // Writes the rest of a partly sent frame; true when nothing is left.
  bool flush_pending();
  void watch_output(bool on);

  int epfd_ = -1;
  int listen_ = -1;
  int conn_ = -1;
  size_t max_frame_;
  PortCounters counters_;
  Counters stream_;
  std::unique_ptr<uint8_t[]> rx_;  // kRxBufSize
  size_t rx_len_ = 0;              // bytes in rx_ (the start of one frame at rx_[0])
  std::unique_ptr<uint8_t[]> tx_;  // kLenPrefix + max_frame: a frame's unsent rest
  size_t tx_off_ = 0, tx_len_ = 0;
  bool watching_out_ = false;
};

}  // namespace ferry
