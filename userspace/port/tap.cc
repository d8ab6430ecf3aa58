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

// struct virtio_net_hdr (linux/virtio_net.h, which C++ cannot include: it
// has a field named `class`), in the host's byte order as tun uses it.
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(virtio_net_hdr) == TapPort::kVnetHdrLen);
constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
constexpr uint8_t VIRTIO_NET_HDR_F_DATA_VALID = 2;
constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;
constexpr uint8_t VIRTIO_NET_HDR_GSO_ECN = 0x80;

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
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (opts.offloads ? IFF_VNET_HDR : 0);
  std::memcpy(ifr.ifr_name, opts.ifname.data(), opts.ifname.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    Status st = Status::from_errno("TUNSETIFF tap " + opts.ifname);
    ::close(fd);
    return st;
  }
  // From here the fd owns the device: every early return closes it and the
  // kernel removes the tap.
  std::unique_ptr<TapPort> port(new TapPort(fd, 0, std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)), {}));
  if (opts.offloads) {
    int hdr_len = static_cast<int>(kVnetHdrLen);
    if (::ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) != 0) return Status::from_errno("TUNSETVNETHDRSZ");
    // The guest's stack may then hand us partial checksums and TCP
    // super-segments; it never sends UDP GSO (no TUN_F_USO*).
    const unsigned long features = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
    if (::ioctl(fd, TUNSETOFFLOAD, features) != 0) return Status::from_errno("TUNSETOFFLOAD");
    port->vnet_hdr_ = true;
  }

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
  std::unique_ptr<TapPort> port(new TapPort(fd, ifindex, std::move(ifname), mac));
  // A tap made with IFF_VNET_HDR keeps it: frames on this fd carry the header.
  ifreq ifr{};
  if (::ioctl(fd, TUNGETIFF, &ifr) == 0 && (ifr.ifr_flags & IFF_VNET_HDR) != 0) port->vnet_hdr_ = true;
  return port;
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
  // The vnet header (when present) lands just in front of the frame.
  const size_t hdr = vnet_hdr_ ? kVnetHdrLen : 0;
  uint8_t* start = buf_.get() + kHeadroom - hdr;
  size_t delivered = 0;
  while (delivered < max_frames) {
    ssize_t n = ::read(fd_, start, hdr + kFrameMax);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) rx_errors_++;
      if (errno == EBADFD) gone_ = true;  // tun: the device went away under the fd
      break;
    }
    if (static_cast<size_t>(n) <= hdr) break;
    RxMeta meta;
    if (vnet_hdr_) {
      virtio_net_hdr vh;
      std::memcpy(&vh, start, sizeof(vh));
      meta.l4_checksum_trusted = (vh.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) != 0;
      if ((vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_NONE) meta.gso_size = vh.gso_size;
    }
    const size_t len = static_cast<size_t>(n) - hdr;
    counters_.rx_frames++;
    counters_.rx_bytes += len;
    delivered++;
    sink.on_guest_frame(std::span<const uint8_t>(start + hdr, len), meta);
  }
  return delivered;
}

// A frame with complete checksums: behind an all-zero vnet header if any.
bool TapPort::send(const iovec* iov, int iovcnt) {
  static const virtio_net_hdr kPlain{};
  return write_frame(iov, iovcnt, &kPlain);
}

// A frame whose checksum (and segmentation) the kernel completes.
bool TapPort::send(const iovec* iov, int iovcnt, const TxOffload& off) {
  if (!vnet_hdr_) {
    counters_.tx_dropped++;
    return false;
  }
  virtio_net_hdr vh{};
  vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  vh.csum_start = off.csum_start;
  vh.csum_offset = off.csum_offset;
  if (off.gso_size != 0) {
    vh.gso_type = off.gso_type;
    vh.gso_size = off.gso_size;
    vh.hdr_len = off.hdr_len;
  }
  // The gso segments the guest's side gets (a device without TSO cuts it into them).
  uint32_t segs = 1;
  if (off.gso_size != 0) {
    size_t total = 0;
    for (int i = 0; iov != nullptr && i < iovcnt; i++) total += iov[i].iov_len;
    if (total > off.hdr_len) segs = static_cast<uint32_t>((total - off.hdr_len + off.gso_size - 1) / off.gso_size);
  }
  return write_frame(iov, iovcnt, &vh, segs);
}

// One writev() per frame; never waits, counts what the kernel refuses.
bool TapPort::write_frame(const iovec* iov, int iovcnt, const void* vnet_hdr, uint32_t segments) {
  constexpr int kMaxPieces = 16;
  if (iov == nullptr || iovcnt <= 0 || iovcnt >= kMaxPieces) {
    counters_.tx_dropped++;
    return false;
  }
  iovec pieces[kMaxPieces];
  int n_pieces = 0;
  if (vnet_hdr_) pieces[n_pieces++] = iovec{const_cast<void*>(vnet_hdr), kVnetHdrLen};
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) {
    total += iov[i].iov_len;
    pieces[n_pieces++] = iov[i];
  }
  if (total > kFrameMax) {
    counters_.tx_dropped++;
    return false;
  }
  const size_t expect = total + (vnet_hdr_ ? kVnetHdrLen : 0);
  ssize_t n;
  do {
    n = ::writev(fd_, pieces, n_pieces);
  } while (n < 0 && errno == EINTR);
  if (n < 0 || static_cast<size_t>(n) != expect) {
    counters_.tx_dropped++;
    return false;
  }
  counters_.tx_frames++;
  counters_.tx_segments += segments;
  counters_.tx_bytes += total;
  return true;
}

}  // namespace ferry
