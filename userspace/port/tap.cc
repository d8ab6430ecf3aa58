// TapPort: see tap.h for the theory of operation.
//
// Counters: rx_* count frames handed to the sink; tx_* frames the kernel
// took whole; tx_dropped frames refused (EAGAIN, EINVAL for a runt, EIO...)
// or taken short, which a tap never does but which would corrupt the guest's
// view if it did, so it is counted as a drop rather than as sent.
#include "port/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "netns/netlink.h"
#include "netns/netns.h"

namespace ferry {

namespace {

constexpr unsigned kTapMaxMtu = 65535 - 14;  // tun's max_mtu for a tap
constexpr unsigned kMinMtu = 68;

}  // namespace

// Enters the namespace, makes the tap, sizes it, reads its index and MAC.
Result<std::unique_ptr<TapPort>> TapPort::create(int ns_fd, const TapOptions& opts) {
  if (opts.ifname.empty() || opts.ifname.size() >= IFNAMSIZ || opts.ifname.find('/') != std::string::npos) {
    return Status(EINVAL, "bad tap interface name '" + opts.ifname + "'");
  }
  if (opts.mtu != 0 && (opts.mtu < kMinMtu || opts.mtu > kTapMaxMtu)) {
    return Status(EINVAL, "tap MTU " + std::to_string(opts.mtu) + " outside " + std::to_string(kMinMtu) +
                              ".." + std::to_string(kTapMaxMtu));
  }
  NetnsGuard guard;
  if (Status st = guard.enter(ns_fd); !st) return st;

  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open /dev/net/tun");
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, opts.ifname.data(), opts.ifname.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    Status st = Status::from_errno("TUNSETIFF tap " + opts.ifname);
    ::close(fd);
    return st;
  }
  // From here the fd owns the device: every early return closes it and the
  // kernel removes the tap.
  std::unique_ptr<TapPort> port(new TapPort(fd, 0, std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)), {}));

  Result<Netlink> nl = Netlink::open();
  if (!nl) return nl.status();
  Result<LinkInfo> link = nl->get_link(std::string_view(port->ifname_));
  if (!link) return link.status();
  port->ifindex_ = link->index;
  port->mac_ = link->mac;
  if (opts.mtu != 0) {
    if (Status st = nl->set_mtu(port->ifindex_, opts.mtu); !st) return st;
  }
  if (opts.txqueuelen != 0) {
    if (Status st = nl->set_txqueuelen(port->ifindex_, opts.txqueuelen); !st) return st;
  }
  return port;
}

// Takes ownership of an open tap fd.
std::unique_ptr<TapPort> TapPort::adopt(int fd, int ifindex, std::string ifname, MacAddr mac) {
  return std::unique_ptr<TapPort>(new TapPort(fd, ifindex, std::move(ifname), mac));
}

// Allocates the one receive buffer.
TapPort::TapPort(int fd, int ifindex, std::string ifname, MacAddr mac)
    : fd_(fd), ifindex_(ifindex), ifname_(std::move(ifname)), mac_(mac),
      buf_(new uint8_t[kHeadroom + kFrameMax]) {}

// Closing the fd removes the tap.
TapPort::~TapPort() {
  if (fd_ >= 0) ::close(fd_);
}

// One read() per frame until max_frames, EAGAIN or an error.
size_t TapPort::receive(FrameSink& sink, size_t max_frames) {
  uint8_t* frame = buf_.get() + kHeadroom;
  size_t delivered = 0;
  while (delivered < max_frames) {
    ssize_t n = ::read(fd_, frame, kFrameMax);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) rx_errors_++;
      break;
    }
    if (n == 0) break;
    counters_.rx_frames++;
    counters_.rx_bytes += static_cast<uint64_t>(n);
    delivered++;
    sink.on_guest_frame(std::span<const uint8_t>(frame, static_cast<size_t>(n)));
  }
  return delivered;
}

// One writev() per frame; never waits, counts what the kernel refuses.
bool TapPort::send(const iovec* iov, int iovcnt) {
  if (iov == nullptr || iovcnt <= 0 || iovcnt > IOV_MAX) {
    counters_.tx_dropped++;
    return false;
  }
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  if (total > kFrameMax) {
    counters_.tx_dropped++;
    return false;
  }
  ssize_t n;
  do {
    n = ::writev(fd_, iov, iovcnt);
  } while (n < 0 && errno == EINTR);
  if (n < 0 || static_cast<size_t>(n) != total) {
    counters_.tx_dropped++;
    return false;
  }
  counters_.tx_frames++;
  counters_.tx_bytes += total;
  return true;
}

}  // namespace ferry
