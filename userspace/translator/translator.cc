// Translator: parse once, learn the guest's MAC, dispatch to one handler.
//
// What is "for us": untagged frames sent to our MAC, to broadcast (ARP) or
// to a multicast MAC (NDP's solicited-node groups). A guest source address that is
// multicast, broadcast or unspecified is refused, except the unspecified
// source that IPv6 duplicate address detection uses (the gateway ignores it).
// Nothing here allocates per frame; the port's buffer is read in place.
#include "translator/translator.h"

#include <sys/epoll.h>

#include "codec/fragment.h"
#include "codec/frame.h"
#include "gateway/gateway.h"
#include "tcp/tcp_translator.h"
#include "udp/udp_translator.h"

namespace ferry {

namespace {
// Frames read per wake-up before returning to the loop, so that host sockets
// get their turn even while the guest is sending flat out.
constexpr size_t kFramesPerWakeup = 64;
}  // namespace

Translator::Translator(EventLoop& loop, FramePort& port, Config config)
    : loop_(loop), port_(port), config_(std::move(config)) {
  gateway_ = std::make_unique<Gateway>(loop_, *this);
  tcp_ = std::make_unique<TcpTranslator>(loop_, *this);
  udp_ = std::make_unique<UdpTranslator>(loop_, *this);
  tag_ = loop_.register_handler(this);
}

Translator::~Translator() { loop_.remove(port_.fd()); }

// Opens the forwarded ports and starts reading guest frames.
bool Translator::start(std::string* error) {
  if (!tcp_->start(error)) return false;
  if (!udp_->start(error)) return false;
  if (!loop_.add(port_.fd(), EPOLLIN, tag_, 0)) {
    *error = "cannot watch the guest port";
    return false;
  }
  return true;
}

// The port is readable: drain a bounded batch.
void Translator::on_io(uint64_t, uint32_t) { port_.receive(*this, kFramesPerWakeup); }

// One guest frame: validate, learn, dispatch.
void Translator::on_guest_frame(std::span<const uint8_t> frame, const RxMeta& meta) {
  counters_.frames++;
  // A checksum the guest offloaded to the port was never computed: only the
  // IPv4 header's can be checked then.
  const ParsedFrame f =
      parse_frame(frame, meta.l4_checksum_trusted ? ChecksumPolicy::l3_only : ChecksumPolicy::all);
  if (!f.ok()) {
    if (f.status == ParseStatus::fragment) {
      // Whole again, the datagram goes through here like any other frame
      // (its L4 checksum verified: a stack sums what it fragments).
      if (auto whole = reasm_.add(frame, now_ns())) on_guest_frame(*whole, RxMeta{});
      return;
    }
    counters_.malformed++;
    return;
  }
  if (f.eth_dst != config_.our_mac && !f.eth_dst.is_multicast()) {
    counters_.not_for_us++;
    return;
  }
  if (f.eth_src.is_multicast()) {
    counters_.not_for_us++;
    return;
  }
  // The guest's link is untagged: a tagged frame is from a VLAN we are not
  // on, and an untagged answer would reach the wrong interface.
  if (f.vlan) {
    counters_.not_for_us++;
    return;
  }
  guest_mac_ = f.eth_src;

  switch (f.l3) {
    case L3Kind::arp:
      gateway_->on_guest_frame(f, frame);
      return;
    case L3Kind::ipv4:
    case L3Kind::ipv6:
      break;
    case L3Kind::none:
      counters_.unhandled++;
      return;
  }
  if (f.src.is_multicast() || (f.src.is_unspecified() && f.l3 == L3Kind::ipv4)) {
    counters_.not_for_us++;
    return;
  }
  switch (f.protocol) {
    case IPPROTO_TCP:
      if (!f.dst.is_multicast()) tcp_->on_guest_segment(f, frame);
      return;
    case IPPROTO_UDP:
      udp_->on_guest_datagram(f, frame);
      return;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      gateway_->on_guest_frame(f, frame);
      return;
    default:
      counters_.unhandled++;
      return;
  }
}

// A frame above the guest's MTU (a large UDP datagram or echo reply we
// originate) goes as IP fragments, which the guest's stack reassembles.
bool Translator::send_to_guest(std::span<const uint8_t> frame) {
  if (frame.size() <= kEthHeaderLen + config_.mtu) return port_.send(frame);
  if (!frag_buf_) frag_buf_ = std::make_unique<uint8_t[]>(kMaxFrameLen);
  bool ok = true;
  size_t k = fragment_frame(frame, config_.mtu, ++frag_id_, std::span<uint8_t>(frag_buf_.get(), kMaxFrameLen),
                            [&](std::span<const uint8_t> piece) { return ok = port_.send(piece); });
  if (k == 0) return port_.send(frame);  // not IP: as it is
  counters_.fragmented++;
  return ok;
}

bool Translator::send_to_guest(const iovec* iov, int iovcnt) { return port_.send(iov, iovcnt); }

}  // namespace ferry
