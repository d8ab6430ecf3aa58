// TapPort: the guest's frames through a tap device whose fd ferry holds.
//
// Theory of operation (pasta-style): create() enters the guest's namespace,
// opens /dev/net/tun, makes a tap with TUNSETIFF (IFF_TAP | IFF_NO_PI: the fd
// carries bare Ethernet frames, no packet-info prefix and no virtio-net
// header, so no offloads: every frame is at most MTU + 14 bytes), sets MTU
// and txqueuelen through netlink in that namespace, and goes back. The device
// lives in the guest namespace and exists exactly as long as the fd: closing
// the port removes it. Its MAC is left as the kernel chose it (random,
// locally administered); it is the guest's MAC. The link is left down and
// without addresses: configure_guest_link() (netns/guest_setup.h) does that.
//
// Data path: receive() reads one frame per read() into one preallocated
// buffer (64 KiB plus headroom) and hands it to the sink as a span valid for
// the call only; it stops at max_frames or EAGAIN. send() is one writev()
// per frame on the non-blocking fd and never waits: EAGAIN or any error
// drops the frame and counts it. No allocation after create().
//
// A generous txqueuelen (default 5000) matters: it is the depth of the
// kernel's queue between the guest's stack and this fd, so bursts from the
// guest wait there instead of being dropped while ferry is busy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "codec/addr.h"
#include "netns/status.h"
#include "port/frame_port.h"

namespace ferry {

struct TapOptions {
  std::string ifname = "eth0";  // name inside the guest namespace
  unsigned mtu = 65520;         // 68 .. 65521 (tap's limit); 0: kernel default (1500)
  unsigned txqueuelen = 5000;   // 0: kernel default (1000)
};

class TapPort final : public FramePort {
 public:
  static constexpr size_t kHeadroom = 256;
  static constexpr size_t kFrameMax = 65536;  // > 65521 + 14: a whole frame always fits

  // Creates the tap inside the namespace `ns_fd` (a NetnsFd's get()).
  static Result<std::unique_ptr<TapPort>> create(int ns_fd, const TapOptions& opts);

  // Wraps an already open tap fd (takes ownership); for tests and for fds
  // handed over by another process. ifindex/ifname as seen in its namespace.
  static std::unique_ptr<TapPort> adopt(int fd, int ifindex, std::string ifname, MacAddr mac);

  ~TapPort() override;
  TapPort(const TapPort&) = delete;
  TapPort& operator=(const TapPort&) = delete;

  int fd() const override { return fd_; }
  size_t receive(FrameSink& sink, size_t max_frames) override;
  bool send(const iovec* iov, int iovcnt) override;
  using FramePort::send;
  const PortCounters& counters() const override { return counters_; }

  // The tap's index and name inside the guest namespace, and its MAC (the
  // guest's MAC as the kernel sees it).
  int ifindex() const { return ifindex_; }
  const std::string& ifname() const { return ifname_; }
  const MacAddr& guest_mac() const { return mac_; }
  // Reads that failed with something other than EAGAIN (the fd is then
  // probably dead: the translator may want to stop).
  uint64_t rx_errors() const { return rx_errors_; }

 private:
  TapPort(int fd, int ifindex, std::string ifname, MacAddr mac);

  int fd_ = -1;
  int ifindex_ = 0;
  std::string ifname_;
  MacAddr mac_;
  PortCounters counters_;
  uint64_t rx_errors_ = 0;
  std::unique_ptr<uint8_t[]> buf_;  // kHeadroom + kFrameMax, allocated once
};

}  // namespace ferry
