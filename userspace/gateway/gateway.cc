// Gateway services: see gateway.h for what is answered and why.
//
// Theory of operation, echo forwarding. States of an echo flow slot:
//
//   free --(guest echo to a new (guest, dest, id))--> used
//   used --(guest echo / host reply)--> used, last_used = now
//   used --(idle for echo_timeout_ns, or evicted as LRU when full)--> free
//
// A flow is keyed by (guest source, destination, guest echo id). Socket mode
// is chosen per family on first use and then kept:
//   dgram  a ping socket per flow; the kernel rewrites the id to the socket's
//          own and delivers only that socket's replies, so the epoll id (the
//          slot) identifies the flow. The kernel fills in the checksum.
//   raw    one raw socket per family, filtered to echo replies; the flow's
//          host id is kRawIdBase + slot, so a reply's id gives the slot, and
//          the reply's source must equal the flow's destination (other
//          processes' pings may share the id space; those are not ours).
// Relayed replies carry the guest's id and the destination the guest pinged
// as source. Sequence numbers and data pass through untouched.
//
// Invariants: flows_[i].fd >= 0 only in dgram mode and only while used; every
// fd registered with the loop is removed before it is closed; frame bytes are
// read only at offsets parse_frame validated, plus lengths checked here.
#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec/bytes.h"
#include "codec/checksum.h"
#include "common/host_socket.h"
#include "policy/destination_policy.h"
#include "policy/refusal.h"

namespace ferry {

namespace {

constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmp6EchoRequest = 128;
constexpr uint8_t kIcmp6EchoReply = 129;
constexpr uint8_t kNdpRouterSolicit = 133;
constexpr uint8_t kNdpNeighbourSolicit = 135;

constexpr uint64_t kRawId4 = 1000;  // epoll ids of the raw sockets, above any slot
constexpr uint64_t kRawId6 = 1001;
constexpr int kRecvBatch = 32;      // datagrams read per readiness event
constexpr int kSolIcmpFilter = 1;   // ICMP_FILTER from <linux/icmp.h>, level SOL_RAW
// ff02::1:ff00:0/104, the solicited-node multicast groups (RFC 4291 2.7.1).
constexpr uint8_t kSolicitedNodePrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
const InetAddr kAllNodes = *InetAddr::parse("ff02::1");

}  // namespace

// Registers with the loop; sockets are opened lazily.
Gateway::Gateway(EventLoop& loop, GuestLink& link) : loop_(loop), link_(link) {
  tag_ = loop_.register_handler(this);
  loop_.add_timer_client(this);
}

// Closes every socket this Gateway opened.
Gateway::~Gateway() {
  for (size_t i = 0; i < flows_.size(); i++)
    if (flows_[i].used) close_flow(i);
  for (int& fd : raw_fd_) {
    if (fd >= 0) {
      loop_.remove(fd);
      close(fd);
      fd = -1;
    }
  }
}

// Dispatch by L3 / ICMP type; everything not ok is dropped.
void Gateway::on_guest_frame(const ParsedFrame& f, std::span<const uint8_t> frame) {
  if (!f.ok()) {
    counters_.dropped++;
    return;
  }
  if (f.l3 == L3Kind::arp) {
    handle_arp(f);
    return;
  }
  const bool icmp4 = f.l3 == L3Kind::ipv4 && f.protocol == IPPROTO_ICMP;
  const bool icmp6 = f.l3 == L3Kind::ipv6 && f.protocol == IPPROTO_ICMPV6;
  if (!icmp4 && !icmp6) {
    counters_.dropped++;
    return;
  }
  // The parser guarantees this, but the offsets are about to be used.
  if (f.icmp.body_offset < 4 || f.icmp.body_offset + f.icmp.body_len > frame.size()) {
    counters_.dropped++;
    return;
  }
  handle_icmp(f, frame);
}

// ARP proxy: answer requests for everyone but the guest itself. A probe
// (sender 0.0.0.0, RFC 5227 2.1.1) is answered only for the gateway's own
// address, as Linux answers one for its local addresses: a guest
// configured with it learns of the conflict, and one probing any other
// address (its own, or one it may take) hears nothing.
void Gateway::handle_arp(const ParsedFrame& f) {
  const Config& c = link_.config();
  const auto& a = f.arp;
  const bool probe = a.spa.is_unspecified();
  if (!c.ipv4 || a.op != 1 || a.spa == a.tpa || a.tpa == c.guest4.addr ||
      (probe && (a.tpa != c.gateway4 || a.sha.is_multicast()))) {
    counters_.arp_ignored++;
    return;
  }
  if (probe) {  // to the prober's hardware address, target address 0.0.0.0 (as Linux)
    size_t n = build_arp_reply(out_, link_.our_mac(), a.tpa, a.sha, a.spa);
    if (n && send(n)) counters_.arp_replies++;
    return;
  }
  if (!link_.policy().source_is_guest(false, a.spa)) {
    link_.policy().count_spoofed();  // a neighbour with another address is not served
    return;
  }
  if (a.tpa.is_unspecified() || a.tpa.is_multicast() || is_v4_broadcast(a.tpa, c.guest4) ||
      a.sha.is_multicast()) {
    counters_.dropped++;
    return;
  }
  size_t n = build_arp_reply(out_, link_.our_mac(), a.tpa, a.sha, a.spa);
  if (n && send(n)) counters_.arp_replies++;
}

// ICMP and ICMPv6: echo requests and neighbour solicitations.
void Gateway::handle_icmp(const ParsedFrame& f, std::span<const uint8_t> frame) {
  const Config& c = link_.config();
  const bool v6 = f.l3 == L3Kind::ipv6;
  if (v6) {
    if (f.icmp.type == kNdpNeighbourSolicit) {
      handle_ns(f, frame);
      return;
    }
    if (f.icmp.type >= kNdpRouterSolicit && f.icmp.type <= 137) {
      counters_.ndp_ignored++;
      return;
    }
  }
  if (f.icmp.type != (v6 ? kIcmp6EchoRequest : kIcmpEchoRequest)) {
    counters_.icmp_ignored++;  // MLD reports, errors, echo replies: nothing to answer
    return;
  }
  if (f.icmp.body_len < 4 ||
      f.src.is_unspecified() || (v6 ? !c.ipv6 : !c.ipv4)) {
    counters_.dropped++;
    return;
  }
  // The gateway's link-local address is ferry's own on the link (its
  // router advertisements come from it: the guest's IPv6 default route),
  // so it answers pings as any router's does, mapping or not.
  if (v6 && f.dst == link_local_from_mac(link_.our_mac())) {
    answer_echo(f, frame);
    return;
  }
  // The gateway answers its own pings while it stands for the host (the
  // mapping); without the mapping it is no destination, and the policy
  // refuses it (Refusal::gateway) like any other.
  const bool to_gateway = f.dst == (v6 ? c.gateway6 : c.gateway4);
  if (to_gateway && c.map_gateway) {
    answer_echo(f, frame);
    return;
  }
  if (!to_gateway && !forward_echo_) {
    counters_.dropped++;
    return;
  }
  const Verdict v = link_.policy().decide(FlowProto::echo, v6, f.src, f.dst, 0, now_ns());
  if (!v.allowed()) {
    counters_.dropped++;
    if (!v.answered()) return;
    size_t n = build_admin_prohibited(out_, f, frame, link_.our_mac(), v6 ? c.gateway6 : c.gateway4);
    if (n && send(n)) counters_.echo_refused++;
    return;
  }
  forward_echo(f, frame);
}

// RFC 4861 7.1.1 checks, then a solicited NA with our MAC.
void Gateway::handle_ns(const ParsedFrame& f, std::span<const uint8_t> frame) {
  const Config& c = link_.config();
  const uint8_t* body = frame.data() + f.icmp.body_offset;  // reserved(4) target(16) options
  const size_t len = f.icmp.body_len;
  if (f.ttl != 255 || f.icmp.code != 0 || len < 20) {
    counters_.dropped++;
    return;
  }
  const InetAddr target = InetAddr::from_v6_bytes(body + 4);
  if (target.is_multicast() || target.is_v4()) {
    counters_.dropped++;
    return;
  }
  bool source_lla = false;
  for (size_t off = 20; off < len;) {  // every option: length > 0 and inside
    if (len - off < 2 || body[off + 1] == 0 || size_t{body[off + 1]} * 8 > len - off) {
      counters_.dropped++;
      return;
    }
    source_lla = source_lla || body[off] == 1;
    off += size_t{body[off + 1]} * 8;
  }
  // The router flag for both of the gateway's addresses: router advertisements
  // come from the link-local one, and an NA without it makes the guest drop
  // its default route (RFC 4861 7.2.5).
  const bool ours = target == c.gateway6 || target == link_local_from_mac(link_.our_mac());
  if (!c.ipv6 || target == c.guest6.addr) {
    counters_.ndp_ignored++;  // the guest's own address
    return;
  }
  L2L3 ip;
  ip.eth_src = link_.our_mac();
  ip.src = target;
  if (f.src.is_unspecified()) {
    // Duplicate address detection (RFC 4862 5.4). Valid only to the
    // target's solicited-node group and without a source link-layer
    // option (RFC 4861 7.1.1). Defended (RFC 4861 7.2.4: to all nodes,
    // not solicited) only for the gateway's own addresses: any other the
    // guest may take, whatever ferry would answer for it later.
    const bool to_group = f.dst.is_multicast() && std::memcmp(f.dst.b.data(), kSolicitedNodePrefix, 13) == 0 &&
                          std::memcmp(f.dst.b.data() + 13, target.b.data() + 13, 3) == 0;
    if (!to_group || source_lla) {
      counters_.dropped++;
      return;
    }
    if (!ours) {
      counters_.ndp_ignored++;
      return;
    }
    ip.eth_dst = MacAddr{{0x33, 0x33, 0, 0, 0, 1}};
    ip.dst = kAllNodes;
    size_t n = build_ndp_na(out_, ip, target, link_.our_mac(), true, false);
    if (n && send(n)) counters_.ndp_adverts++;
    return;
  }
  ip.eth_dst = f.eth_src;
  ip.dst = f.src;
  size_t n = build_ndp_na(out_, ip, target, link_.our_mac(), ours);
  if (n && send(n)) counters_.ndp_adverts++;
}

// Headers of an answer to f, from the address it was sent to.
L2L3 Gateway::answer_to(const ParsedFrame& f) const {
  L2L3 ip;
  ip.eth_src = link_.our_mac();
  ip.eth_dst = f.eth_src;
  ip.src = f.dst;
  ip.dst = f.src;
  ip.ttl = 64;
  return ip;
}

// Echo to the gateway: reply with the same id, sequence and data.
void Gateway::answer_echo(const ParsedFrame& f, std::span<const uint8_t> frame) {
  const bool v6 = f.l3 == L3Kind::ipv6;
  size_t n = build_icmp_frame(out_, answer_to(f), v6 ? kIcmp6EchoReply : kIcmpEchoReply, 0,
                              frame.subspan(f.icmp.body_offset, f.icmp.body_len));
  if (n && send(n)) counters_.echo_replies++;
}

// Echo elsewhere: send it from a host socket of the flow.
void Gateway::forward_echo(const ParsedFrame& f, std::span<const uint8_t> frame) {
  const bool v6 = f.l3 == L3Kind::ipv6;
  const uint64_t now = now_ns();
  int slot = find_or_open_flow(f, now);
  if (slot < 0) {
    counters_.dropped++;
    return;
  }
  EchoFlow& fl = flows_[static_cast<size_t>(slot)];
  const size_t len = 4 + f.icmp.body_len;  // type, code, checksum + body
  if (len > io_.size()) {
    counters_.dropped++;
    return;
  }
  uint8_t* m = io_.data();
  m[0] = v6 ? kIcmp6EchoRequest : kIcmpEchoRequest;
  m[1] = 0;
  put16(m + 2, 0);
  std::memcpy(m + 4, frame.data() + f.icmp.body_offset, f.icmp.body_len);
  int fd = fl.fd;
  if (mode_[v6] == SockMode::raw) {
    fd = raw_fd_[v6];
    put16(m + 4, fl.host_id);
    if (!v6) {  // the kernel sums ICMPv6 on raw sockets, not ICMP
      uint16_t c = csum_fold(csum_partial(m, len, 0));
      std::memcpy(m + 2, &c, 2);
    }
  }
  sockaddr_storage ss;
  socklen_t sl = to_sockaddr(fl.dest, 0, &ss);  // ICMP has no port
  if (sendto(fd, m, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl) < 0) {
    counters_.send_failed++;
    return;
  }
  fl.last_used = now;
  counters_.echo_forwarded++;
}

// The slot of the flow for this echo, opening one (and its socket) if new.
int Gateway::find_or_open_flow(const ParsedFrame& f, uint64_t now) {
  const bool v6 = f.l3 == L3Kind::ipv6;
  int free_slot = -1;
  size_t lru = 0;
  for (size_t i = 0; i < flows_.size(); i++) {
    const EchoFlow& fl = flows_[i];
    if (!fl.used) {
      if (free_slot < 0) free_slot = static_cast<int>(i);
      continue;
    }
    if (fl.v6 == v6 && fl.guest_id == f.icmp.id && fl.dest == f.dst && fl.guest == f.src)
      return static_cast<int>(i);
    if (fl.last_used < flows_[lru].last_used || !flows_[lru].used) lru = i;
  }
  if (free_slot < 0) {
    close_flow(lru);
    counters_.echo_expired++;
    free_slot = static_cast<int>(lru);
  }
  const size_t slot = static_cast<size_t>(free_slot);
  int fd = -1;
  if (mode_[v6] != SockMode::raw) {
    fd = open_dgram(v6, f.dst);
    if (fd >= 0) {
      mode_[v6] = SockMode::dgram;
      if (!loop_.add(fd, EPOLLIN, tag_, slot)) {
        close(fd);
        return -1;
      }
    } else if (mode_[v6] == SockMode::unknown && (errno == EACCES || errno == EPERM ||
                                                  errno == EPROTONOSUPPORT)) {
      if (!ensure_raw(v6)) return -1;
    } else {
      return -1;
    }
  }
  if (mode_[v6] == SockMode::raw && !ensure_raw(v6)) return -1;
  EchoFlow& fl = flows_[slot];
  fl = EchoFlow{};
  fl.used = true;
  fl.v6 = v6;
  fl.guest = f.src;
  fl.dest = f.dst;
  fl.guest_id = f.icmp.id;
  fl.host_id = static_cast<uint16_t>(kRawIdBase + slot);
  fl.fd = fd;
  fl.last_used = now;
  return free_slot;
}

// A non-blocking ping socket toward dest (with -o and --outbound-if4/6:
// from that address, on that interface), or -1 with errno set.
int Gateway::open_dgram(bool v6, const InetAddr& dest) {
  return open_echo_socket(v6, SOCK_DGRAM, dest);
}

// An ICMP socket of the family and type, tied and bound as -o and
// --outbound-if4/6 say; -1 with errno set.
int Gateway::open_echo_socket(bool v6, int type, const InetAddr& dest) {
  const Config& c = link_.config();
  const int fd = open_outbound_socket(c, v6, type | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                      v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}, dest);
  if (fd < 0 || !has_outbound_address(c, v6, dest)) return fd;
  sockaddr_storage ss;
  const socklen_t sl = outbound_bind_address(c, v6, dest, 0, &ss);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) {
    const int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// Opens (once) the family's raw socket, filtered to echo replies.
bool Gateway::ensure_raw(bool v6) {
  if (raw_fd_[v6] >= 0) return true;
  // One raw socket serves every destination; none is loopback (echo to the
  // gateway is answered here), so -o and --outbound-if4/6 always apply.
  int fd = open_echo_socket(v6, SOCK_RAW, InetAddr{});
  if (fd < 0) return false;
  if (v6) {
    icmp6_filter flt;
    ICMP6_FILTER_SETBLOCKALL(&flt);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &flt);
    setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &flt, sizeof(flt));
  } else {
    uint32_t blocked = ~(uint32_t{1} << kIcmpEchoReply);  // a set bit blocks that type
    setsockopt(fd, SOL_RAW, kSolIcmpFilter, &blocked, sizeof(blocked));
  }
  if (!loop_.add(fd, EPOLLIN, tag_, v6 ? kRawId6 : kRawId4)) {
    close(fd);
    return false;
  }
  raw_fd_[v6] = fd;
  mode_[v6] = SockMode::raw;
  return true;
}

// Frees a slot and its socket.
void Gateway::close_flow(size_t slot) {
  EchoFlow& fl = flows_[slot];
  if (fl.fd >= 0) {
    loop_.remove(fl.fd);
    close(fl.fd);
  }
  fl = EchoFlow{};
}

// Readable host socket: a flow's ping socket or a raw socket.
void Gateway::on_io(uint64_t id, uint32_t) {
  if (id == kRawId4 || id == kRawId6) {
    drain_raw(id == kRawId6);
    return;
  }
  if (id < flows_.size() && flows_[id].used && flows_[id].fd >= 0) drain_dgram(id);
}

// Reads a ping socket dry (bounded), relaying echo replies from the destination.
void Gateway::drain_dgram(size_t slot) {
  for (int i = 0; i < kRecvBatch && flows_[slot].used; i++) {
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    ssize_t n = recvfrom(flows_[slot].fd, io_.data(), io_.size(), MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;  // a queued ICMP error: nothing to relay
    }
    const EchoFlow& fl = flows_[slot];
    const uint8_t want = fl.v6 ? kIcmp6EchoReply : kIcmpEchoReply;
    InetAddr from;
    if (n < 8 || io_[0] != want || !from_sockaddr(ss, &from) || from != fl.dest) continue;
    relay_reply(slot, io_.data(), static_cast<size_t>(n));
  }
}

// Reads a raw socket dry (bounded); the reply's id names the slot.
void Gateway::drain_raw(bool v6) {
  for (int i = 0; i < kRecvBatch; i++) {
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    ssize_t n = recvfrom(raw_fd_[v6], io_.data(), io_.size(), MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      continue;
    }
    size_t len = static_cast<size_t>(n);
    uint8_t* m = io_.data();
    if (!v6) {  // raw IPv4 sockets deliver the IP header too
      if (len < 20) continue;
      size_t ihl = size_t{4} * (m[0] & 0x0f);
      if (ihl < 20 || ihl > len) continue;
      m += ihl;
      len -= ihl;
    }
    if (len < 8 || m[0] != (v6 ? kIcmp6EchoReply : kIcmpEchoReply)) continue;
    uint16_t id = get16(m + 4);
    if (id < kRawIdBase || id >= kRawIdBase + kMaxEchoFlows) continue;
    size_t slot = id - kRawIdBase;
    const EchoFlow& fl = flows_[slot];
    InetAddr from;
    if (!fl.used || fl.v6 != v6 || !from_sockaddr(ss, &from) || from != fl.dest) continue;
    relay_reply(slot, m, len);
  }
}

// Hands one host echo reply (ICMP header onwards) to the guest.
void Gateway::relay_reply(size_t slot, uint8_t* icmp, size_t len) {
  EchoFlow& fl = flows_[slot];
  put16(icmp + 4, fl.guest_id);
  size_t n = build_icmp_frame(out_, toward_guest(link_, fl.dest, fl.guest), fl.v6 ? kIcmp6EchoReply : kIcmpEchoReply, 0,
                              std::span<const uint8_t>(icmp + 4, len - 4));
  fl.last_used = now_ns();
  if (n && send(n)) counters_.echo_relayed++;
}

// Earliest flow expiry.
uint64_t Gateway::next_deadline_ns() const {
  uint64_t d = kNever;
  for (const EchoFlow& fl : flows_)
    if (fl.used && fl.last_used + echo_timeout_ns_ < d) d = fl.last_used + echo_timeout_ns_;
  return d;
}

// Closes the flows idle for echo_timeout_ns.
void Gateway::on_timer(uint64_t now) {
  for (size_t i = 0; i < flows_.size(); i++) {
    if (flows_[i].used && flows_[i].last_used + echo_timeout_ns_ <= now) {
      close_flow(i);
      counters_.echo_expired++;
    }
  }
}

// Flows in use.
size_t Gateway::echo_flows() const {
  size_t n = 0;
  for (const EchoFlow& fl : flows_) n += fl.used ? 1 : 0;
  return n;
}

// ARP request or neighbour solicitation for target, from the gateway.
bool Gateway::solicit(const InetAddr& target) {
  const Config& c = link_.config();
  size_t n = 0;
  if (target.is_v4()) {
    if (!c.ipv4) return false;
    n = build_arp_request(out_, link_.our_mac(), c.gateway4, target);
  } else {
    if (!c.ipv6) return false;
    n = build_ndp_ns(out_, link_.our_mac(), c.gateway6, target);
  }
  if (n == 0 || !send(n)) return false;
  counters_.solicits++;
  return true;
}

// Sends out_[0, len) to the guest.
bool Gateway::send(size_t len) {
  if (link_.send_to_guest(std::span<const uint8_t>(out_.data(), len))) return true;
  counters_.send_failed++;
  return false;
}

}  // namespace ferry
