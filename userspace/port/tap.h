// TapPort: the guest's frames through a tap device whose fd ferry holds.
//
// Theory of operation (pasta-style): create() enters the guest's namespace,
// opens /dev/net/tun, makes a tap with TUNSETIFF (IFF_TAP | IFF_NO_PI, and
// IFF_VNET_HDR unless offloads are off), sets MTU and txqueuelen through
// netlink in that namespace, and goes back.
//
// Offloads (the default): every frame on the fd carries a 10-byte
// virtio_net_hdr in front, and TUNSETOFFLOAD(CSUM | TSO4 | TSO6) tells the
// guest's stack that its NIC checksums and segments. So the guest sends TCP
// super-segments of up to 64 KiB whatever its MTU, with the L4 checksum left
// partial (VIRTIO_NET_HDR_F_NEEDS_CSUM: ferry trusts it, the link is memory),
// and ferry may send the same way: a partial checksum the kernel completes
// (or, for local delivery, never needs: CHECKSUM_PARTIAL counts as
// verified) and super-segments with gso_size = the guest's MSS, which the
// guest's stack takes whole. Neither side sums a payload byte, and at a
// small MTU the per-frame costs are paid once per 64 KiB. The device
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
#include "common/status.h"
#include "port/frame_port.h"

namespace ferry {

struct TapOptions {
  std::string ifname = "eth0";  // name inside the guest namespace
  unsigned mtu = 65520;         // 68 .. 65521 (tap's limit); 0: kernel default (1500)
  unsigned txqueuelen = 5000;   // 0: kernel default (1000)
  bool offloads = true;         // vnet header, checksum and TSO offloads
};

class TapPort final : public FramePort {
 public:
  static constexpr size_t kHeadroom = 256;
  // A whole frame always fits: the largest IPv6 packet (65535 of payload
  // after its 40-byte header) + Ethernet + VLAN.
  static constexpr size_t kFrameMax = 65535 + 40 + 18;
  static constexpr size_t kVnetHdrLen = 10;  // struct virtio_net_hdr

  // Creates the tap inside the namespace `ns_fd` (a NetnsFd's get()).
  static Result<std::unique_ptr<TapPort>> create(int ns_fd, const TapOptions& opts);

  // Wraps an already open tap fd (takes ownership); for tests and for fds
  // handed over by another process. ifindex/ifname as seen in its namespace.
  // The vnet header is on when the tap was made with it (TUNGETIFF).
  static std::unique_ptr<TapPort> adopt(int fd, int ifindex, std::string ifname, MacAddr mac);

  ~TapPort() override;
  TapPort(const TapPort&) = delete;
  TapPort& operator=(const TapPort&) = delete;

  int fd() const override { return fd_; }
  size_t receive(FrameSink& sink, size_t max_frames) override;
  bool send(const iovec* iov, int iovcnt) override;
  bool send(const iovec* iov, int iovcnt, const TxOffload& offload) override;
  using FramePort::send;
  bool offloads() const override { return vnet_hdr_; }
  const PortCounters& counters() const override { return counters_; }

  // The tap's index and name inside the guest namespace, and its MAC (the
  // guest's MAC as the kernel sees it).
  int ifindex() const { return ifindex_; }
  const std::string& ifname() const { return ifname_; }
  const MacAddr& guest_mac() const { return mac_; }
  // Reads that failed with something other than EAGAIN (the fd is then
  // probably dead: the translator may want to stop).
  uint64_t rx_errors() const { return rx_errors_; }
  // The tap was deleted (by the guest, `ip link del`, or an operator): the
  // fd is detached and stays readable-with-error forever.
  bool gone() const override { return gone_; }

 private:
  TapPort(int fd, int ifindex, std::string ifname, MacAddr mac);

  // One frame out, behind the given vnet header when the fd carries them;
  // segments: what tx_segments counts for it (its gso segments).
  bool write_frame(const iovec* iov, int iovcnt, const void* vnet_hdr, uint32_t segments = 1);

  int fd_ = -1;
  bool vnet_hdr_ = false;
  int ifindex_ = 0;
  std::string ifname_;
  MacAddr mac_;
  PortCounters counters_;
  uint64_t rx_errors_ = 0;
  bool gone_ = false;
  std::unique_ptr<uint8_t[]> buf_;  // kHeadroom + kFrameMax, allocated once
};

}  // namespace ferry
