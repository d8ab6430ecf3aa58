// Translator: parse once, learn the guest's MAC, dispatch to one handler.
//
// What is "for us": untagged frames sent to our MAC, to broadcast (ARP) or
// to a multicast MAC (NDP's solicited-node groups), from the guest's
// configured address (IPv6 neighbour discovery and pings of the gateway
// may also use the link-local or unspecified source); other sources are
// counted as spoofed by the destination policy and dropped.
// Nothing here allocates per frame; the port's buffer is read in place.
#include "translator/translator.h"

#include <sys/epoll.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "codec/fragment.h"
#include "codec/frame.h"
#include "common/host_socket.h"
#include "gateway/gateway.h"
#include "services/guest_services.h"
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
  services_ = std::make_unique<services::GuestServices>(loop_, *this);
  tcp_ = std::make_unique<TcpTranslator>(loop_, *this);
  udp_ = std::make_unique<UdpTranslator>(loop_, *this, config_.max_udp_flows);
  tag_ = loop_.register_handler(this);
}

Translator::~Translator() {
  if (!port_gone_) loop_.remove(port_.fd());
}

// Opens the forwarded ports and starts reading guest frames.
Status Translator::start() {
  // A mark that cannot be set would fail every flow: say so once, now.
  if (int err = 0; config_.socket_mark != 0 && !can_set_socket_mark(config_.socket_mark, &err))
    return Status(err, "--mark " + std::to_string(config_.socket_mark) + ": cannot set SO_MARK");
  if (Status st = tcp_->start(); !st.ok()) return st;
  if (Status st = udp_->start(); !st.ok()) return st;
  if (Status st = services_->start(); !st.ok()) return st;
  if (!loop_.add(port_.fd(), EPOLLIN, tag_, 0)) return Status::failure("cannot watch the guest port");
  return {};
}

void Translator::follow_guest_listeners(ListenTables tables) {
  auto_forward_ = std::make_unique<AutoForward>(loop_, std::move(tables), config_, *this);
}

Status Translator::open_forward(bool udp, uint16_t port) {
  return udp ? udp_->open_forward(port) : tcp_->open_forward(port);
}

void Translator::close_forward(bool udp, uint16_t port) {
  if (udp) udp_->close_forward(port);
  else tcp_->close_forward(port);
}

// The port is readable: drain a bounded batch. EPOLLERR/EPOLLHUP on a tap
// means its device was deleted: level-triggered, they would wake the loop
// forever (100 % CPU), so the port leaves the loop.
void Translator::on_io(uint64_t, uint32_t events) {
  if (port_gone_) return;
  if (!(events & (EPOLLERR | EPOLLHUP))) port_.receive(*this, kFramesPerWakeup);
  if ((events & (EPOLLERR | EPOLLHUP)) || port_.gone()) handle_port_gone();
}

// Once: unregister the port, one line on stderr, the owner's callback.
void Translator::handle_port_gone() {
  if (port_gone_) return;
  port_gone_ = true;
  loop_.remove(port_.fd());
  std::fprintf(stderr, "ferry: the guest's device was deleted: translation stopped\n");
  if (on_port_gone_) on_port_gone_();
}

// One guest frame: validate, learn, dispatch.
void Translator::on_guest_frame(std::span<const uint8_t> frame, const RxMeta& meta) {
  counters_.frames++;
  // A checksum the guest offloaded to the port was never computed: only the
  // IPv4 header's can be checked then. A port that lost the offload's flag
  // (native XDP) leaves the partial form to recognise.
  const ChecksumPolicy policy = meta.l4_checksum_trusted ? ChecksumPolicy::l3_only
                                : partial_checksums_ok_    ? ChecksumPolicy::all_or_partial
                                                           : ChecksumPolicy::all;
  const ParsedFrame f = parse_frame(frame, policy);
  if (f.l4_checksum_partial) counters_.partial_checksums++;
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
  if (!guest_mac_known_) {
    guest_mac_known_ = true;
    release_held();
  }
  // DHCP, router solicitations, DHCPv6, DNS to the forwarder: before the
  // source checks below (a DHCP client has no address yet).
  if (services_->take(f, frame)) return;

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
  // Only the guest's configured address may be a source (the policy
  // counts the rest): a neighbour on a shared link, or a guest forging
  // another address, is not served. IPv6 neighbour discovery and pings of
  // the gateway may come from the link-local or unspecified address.
  const bool v6 = f.l3 == L3Kind::ipv6;
  if ((v6 ? config_.ipv6 : config_.ipv4) && !policy_.source_is_guest(v6, f.src) &&
      !(v6 && f.protocol == IPPROTO_ICMPV6 && (f.src.is_link_local_v6() || f.src.is_unspecified()))) {
    policy_.count_spoofed();
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
      unknown_protocol(f, frame);
      return;
  }
}

// The gateway is a host to the guest: one that does not speak a protocol
// says so (RFC 1122 3.2.2.1: protocol unreachable; RFC 8200 4: parameter
// problem, code 1), paced (RFC 4443 2.4 f), so the guest's socket fails at
// once. IPv6's No Next Header (59) is no protocol to answer for. Packets of
// such protocols to any other address are counted and dropped: ferry cannot
// tell whether that host would speak it.
void Translator::unknown_protocol(const ParsedFrame& f, std::span<const uint8_t> frame) {
  counters_.unhandled++;
  constexpr uint8_t kNoNextHeader = 59;
  const bool v6 = f.l3 == L3Kind::ipv6;
  const bool to_gateway = v6 ? f.dst == config_.gateway6 || f.dst == link_local_from_mac(config_.our_mac)
                             : f.dst == config_.gateway4;
  if (!to_gateway || (v6 && f.protocol == kNoNextHeader) || !icmp_errors_.take(now_ns())) return;
  uint8_t out[kProhibitedFrameMax];
  const size_t n = build_protocol_unreachable(out, f, frame, config_.our_mac);
  if (n && send_to_guest(std::span<const uint8_t>(out, n))) counters_.protocol_unreachable++;
}

// The estimate on this port's writes, started now.
bool Translator::watch_tap_queue(std::unique_ptr<DevTxCounterSource> source) {
  auto q = std::make_unique<TapQueueEstimate>(*source, port_.counters(), config_.mtu);
  if (!q->start(now_ns())) return false;
  tap_queue_source_ = std::move(source);
  tap_queue_ = std::move(q);
  tcp_->set_tap_queue(tap_queue_.get());
  return true;
}

// A frame above the guest's MTU (a large UDP datagram or echo reply we
// originate) goes as IP fragments, which the guest's stack reassembles.
bool Translator::send_to_guest(std::span<const uint8_t> frame) {
  if (!guest_mac_known_ && !soliciting_) {
    iovec v{const_cast<uint8_t*>(frame.data()), frame.size()};
    return hold_for_mac(&v, 1, nullptr);
  }
  if (frame.size() <= kEthHeaderLen + config_.mtu) return port_.send(frame);
  if (!frag_buf_) frag_buf_ = std::make_unique<uint8_t[]>(kMaxFrameLen);
  bool ok = true;
  size_t k = fragment_frame(frame, config_.mtu, ++frag_id_, std::span<uint8_t>(frag_buf_.get(), kMaxFrameLen),
                            [&](std::span<const uint8_t> piece) { return ok = port_.send(piece); });
  if (k == 0) return port_.send(frame);  // not IP: as it is
  counters_.fragmented++;
  return ok;
}

bool Translator::send_to_guest(const iovec* iov, int iovcnt) {
  if (!guest_mac_known_) return hold_for_mac(iov, iovcnt, nullptr);
  return port_.send(iov, iovcnt);
}

bool Translator::send_to_guest_offloaded(const iovec* iov, int iovcnt, const TxOffload& offload) {
  if (!guest_mac_known_) return hold_for_mac(iov, iovcnt, &offload);
  return port_.send(iov, iovcnt, offload);
}

// Copies the frame into the oldest slot and asks for the MAC of its IP
// destination (ARP for IPv4, NS for IPv6), at most once a second per family.
bool Translator::hold_for_mac(const iovec* iov, int iovcnt, const TxOffload* offload) {
  if (!held_buf_) held_buf_ = std::make_unique<uint8_t[]>(kHeldFrames * kHeldFrameMax);
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  if (total < kEthHeaderLen || total > kHeldFrameMax) {
    counters_.held_dropped++;
    return false;
  }
  HeldFrame& h = held_[held_next_];
  if (h.len != 0) counters_.held_dropped++;  // the oldest makes room
  uint8_t* p = held_buf_.get() + held_next_ * kHeldFrameMax;
  size_t off = 0;
  for (int i = 0; i < iovcnt; i++) {
    std::memcpy(p + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  const uint64_t now = now_ns();
  h.len = static_cast<uint16_t>(total);
  h.offloaded = offload != nullptr;
  h.offload = offload ? *offload : TxOffload{};
  h.at = now;
  held_next_ = (held_next_ + 1) % kHeldFrames;
  counters_.held_for_mac++;

  // Whom to ask for: the frame's IP destination, else the configured guest.
  const uint16_t type = static_cast<uint16_t>(p[12] << 8 | p[13]);
  std::optional<InetAddr> target;
  if (type == 0x0800 && total >= kEthHeaderLen + 20) target = InetAddr::from_v4_bytes(p + kEthHeaderLen + 16);
  else if (type == 0x86dd && total >= kEthHeaderLen + 40) target = InetAddr::from_v6_bytes(p + kEthHeaderLen + 24);
  else if (config_.ipv4) target = config_.guest4.addr;
  else target = config_.guest6.addr;
  const bool v6 = !target->is_v4();
  if (last_solicit_ns_[v6] == 0 || now - last_solicit_ns_[v6] >= kSolicitIntervalNs) {
    last_solicit_ns_[v6] = now;
    soliciting_ = true;
    gateway_->solicit(*target);
    soliciting_ = false;
  }
  return true;
}

// Oldest first: every held frame young enough goes to the MAC just learned.
void Translator::release_held() {
  if (!held_buf_) return;
  const uint64_t now = now_ns();
  for (size_t k = 0; k < kHeldFrames; k++) {
    const size_t i = (held_next_ + k) % kHeldFrames;
    HeldFrame& h = held_[i];
    if (h.len == 0) continue;
    uint8_t* p = held_buf_.get() + i * kHeldFrameMax;
    const size_t len = h.len;
    h.len = 0;
    if (now - h.at > kHeldMaxAgeNs) {
      counters_.held_dropped++;
      continue;
    }
    std::memcpy(p, guest_mac_.b.data(), guest_mac_.b.size());
    if (h.offloaded) {
      iovec v{p, len};
      port_.send(&v, 1, h.offload);
    } else {
      send_to_guest(std::span<const uint8_t>(p, len));
    }
  }
}

}  // namespace ferry
