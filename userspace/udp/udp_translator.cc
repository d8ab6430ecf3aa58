// UdpTranslator: see udp_translator.h for the model.
//
// Theory of operation. A flow slot is one of:
//
//   free --guest datagram, no flow--> outbound (own socket, connected)
//   free --host datagram on a forward socket, no flow--> inbound (shares
//         the forward socket, sends with sendto to the recorded client)
//   outbound/inbound --traffic either way--> same, moved to the LRU tail
//   outbound/inbound --idle for idle_timeout_ns, or LRU when full--> free
//
// Index: a hash of the guest-visible 4-tuple (keyed with a random seed, so a
// guest cannot aim collisions) into buckets_, chained through Flow::hnext.
// Timers: the LRU list is also the expiry order (activity moves a flow to the
// tail), so the earliest deadline is always the head's: O(1) per datagram and
// per expiry, no scan.
//
// Host -> guest: recvmmsg reads up to kBatch datagrams per call straight into
// frame buffers at the payload offset of a UDP frame, so build_udp_frame adds
// headers in place and nothing is copied. Guest -> host: one send per guest
// datagram (guest frames arrive one at a time from the port).
//
// Errors: a connected UDP socket reports ICMP errors for its peer as
// ECONNREFUSED / EHOSTUNREACH / ENETUNREACH on the next send or receive (and
// EPOLLERR); each becomes an ICMP/ICMPv6 destination unreachable to the guest
// quoting a reconstruction of the guest's last datagram header (the guest's
// stack matches the error to its socket by addresses and ports).
//
// Invariants: nflows_ == number of used slots == length of the LRU list;
// every used slot is in exactly one hash chain; an outbound flow's fd is
// registered with the loop under its slot id; forward sockets under
// kForwardIdBase + index. A forward socket closed by close_forward() (-u
// auto: the guest stopped listening) takes its inbound flows with it and
// leaves its slot (fd -1) to the next open_forward().
#include "udp/udp_translator.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "codec/checksum.h"
#include "codec/fragment.h"
#include "common/host_socket.h"
#include "policy/destination_policy.h"
#include "policy/refusal.h"

namespace ferry {

namespace {

constexpr uint64_t kForwardIdBase = uint64_t{1} << 40;
constexpr int kMaxRecvRounds = 4;  // recvmmsg calls per readiness event

// Largest IP packet: what a datagram may fill before fragmentation.
constexpr unsigned kMaxIpPacket = 65535;

// Largest UDP payload that fits a guest frame of this family.
size_t max_payload(bool v6, unsigned mtu) {
  const size_t ip = v6 ? kIpv6HeaderLen : kIpv4HeaderLen;
  size_t by_mtu = mtu > ip + kUdpHeaderLen ? mtu - ip - kUdpHeaderLen : 0;
  size_t by_frame = kMaxFrameLen - udp_frame_header_len(v6);
  size_t by_field = v6 ? 65535 - kUdpHeaderLen : 65535 - kIpv4HeaderLen - kUdpHeaderLen;
  return std::min({by_mtu, by_frame, by_field});
}

// Points the batch's messages at the frame buffers (`stride` apart), each
// receiving up to maxpl bytes at offset hdr, and at names[i] when given.
void prepare_batch(mmsghdr* msgs, iovec* iov, sockaddr_storage* names, size_t count, uint8_t* bufs,
                   size_t stride, size_t hdr, size_t maxpl) {
  std::memset(msgs, 0, sizeof(mmsghdr) * count);
  for (size_t i = 0; i < count; i++) {
    iov[i].iov_base = bufs + i * stride + hdr;
    iov[i].iov_len = maxpl;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    if (names != nullptr) {
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(names[i]);
    }
  }
}

// 64-bit mixer (splitmix64 finaliser).
inline uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

// Allocates the flow table, hash buckets and receive buffers once.
UdpTranslator::UdpTranslator(EventLoop& loop, GuestLink& link, size_t max_flows)
    : loop_(loop), link_(link) {
  if (max_flows == 0) max_flows = 1;
  if (max_flows > (size_t{1} << 24)) max_flows = size_t{1} << 24;
  flows_.resize(max_flows);
  free_list_.reserve(max_flows);
  for (size_t i = max_flows; i-- > 0;) free_list_.push_back(static_cast<uint32_t>(i));
  size_t nb = 1;
  while (nb < max_flows) nb <<= 1;
  buckets_.assign(nb, kNone);
  bucket_mask_ = static_cast<uint32_t>(nb - 1);
  if (getrandom(hash_seed_, sizeof(hash_seed_), 0) != static_cast<ssize_t>(sizeof(hash_seed_))) {
    hash_seed_[0] = now_ns();
    hash_seed_[1] = mix(hash_seed_[0] ^ reinterpret_cast<uintptr_t>(this));
  }
  bufs_ = std::make_unique<uint8_t[]>(kBatch * kMaxFrameLen);
  frag_buf_ = std::make_unique<uint8_t[]>(kMaxFrameLen);
  tag_ = loop_.register_handler(this);
  loop_.add_timer_client(this);
}

// Closes every flow socket and forward socket.
UdpTranslator::~UdpTranslator() {
  close_flows("exit");
  for (Forward& fw : forwards_) {
    if (fw.fd < 0) continue;  // closed by close_forward()
    loop_.remove(fw.fd);
    close(fw.fd);
  }
}

// Opens one bound socket per forwarded host port.
Status UdpTranslator::start() {
  const Config& c = link_.config();
  for (const PortForward& r : c.udp_forwards) {
    if (r.host_last < r.host_first) {
      return Status::failure("udp forward: inverted port range");
    }
    for (uint32_t p = r.host_first; p <= r.host_last; p++) {
      const uint32_t gp = r.guest_first + (p - r.host_first);
      if (gp == 0 || gp > 65535) {
        return Status::failure("udp forward: guest port out of range for host port " + std::to_string(p));
      }
      if (Status st = open_forward_socket(r, static_cast<uint16_t>(p), static_cast<uint16_t>(gp)); !st)
        return Status(st.err(), "udp forward: " + st.what());
    }
  }
  return {};
}

// One forward socket: r's address, or all addresses (one dual-stack socket
// when both families are on).
Status UdpTranslator::open_forward_socket(const PortForward& r, uint16_t p, uint16_t gp) {
  const Config& c = link_.config();
  if (forward_count_ >= kMaxForwardSockets)
    return Status(EMFILE, "more than " + std::to_string(kMaxForwardSockets) + " ports");
  bool v6 = r.bind_any ? c.ipv6 : !r.bind_addr.is_v4();
  int fd = open_host_socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c.socket_mark);
  if (fd < 0) return Status::from_errno("socket");
  if (v6) {
    int only = (r.bind_any && c.ipv4) ? 0 : 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only));
  }
  sockaddr_storage ss;
  InetAddr any = v6 ? InetAddr{} : *InetAddr::parse("0.0.0.0");
  socklen_t sl = to_sockaddr(r.bind_any ? any : r.bind_addr, p, &ss);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) < 0) {
    Status st = Status::from_errno("bind port " + std::to_string(p));
    close(fd);
    if (st.err() == EADDRINUSE && holds_source_port(p))
      return Status(EEXIST, "port " + std::to_string(p) + " is held by one of ferry's own flows");
    return st;
  }
  // A slot a closed forward left (-u auto), else a new one: the index is
  // the socket's epoll id, so a slot keeps its place in the vector.
  size_t index = forwards_.size();
  if (!free_forwards_.empty()) index = free_forwards_.back();
  if (!loop_.add(fd, EPOLLIN, tag_, kForwardIdBase + index)) {
    Status st = Status::from_errno("epoll");
    close(fd);
    return st;
  }
  if (index == forwards_.size()) forwards_.push_back({});
  else free_forwards_.pop_back();
  forwards_[index] = Forward{fd, p, gp, v6};
  forward_count_++;
  return {};
}

// An outbound flow kept the guest's source port `port` on the host.
bool UdpTranslator::holds_source_port(uint16_t port) const {
  for (uint32_t s = lru_head_; s != kNone; s = flows_[s].lru_next)
    if (!flows_[s].inbound && flows_[s].source_port_kept && flows_[s].guest_port == port) return true;
  return false;
}

Status UdpTranslator::open_forward(uint16_t port) {
  PortForward r;
  r.host_first = r.host_last = r.guest_first = port;
  return open_forward_socket(r, port, port);
}

// The flows the socket carried go first: their replies had no other way
// back to the host client.
void UdpTranslator::close_forward(uint16_t port) {
  for (size_t i = 0; i < forwards_.size(); i++) {
    Forward& fw = forwards_[i];
    if (fw.fd < 0 || fw.host_port != port) continue;
    for (uint32_t s = lru_head_; s != kNone;) {
      const uint32_t next = flows_[s].lru_next;
      if (flows_[s].inbound && flows_[s].fd == fw.fd) free_flow(s, "closed");
      s = next;
    }
    loop_.remove(fw.fd);
    close(fw.fd);
    fw = Forward{};
    free_forwards_.push_back(i);
    forward_count_--;
  }
}

// Keyed hash of the guest-visible 4-tuple.
uint32_t UdpTranslator::hash(const Key& k) const {
  uint64_t w[4];
  std::memcpy(&w[0], k.guest.b.data(), 8);
  std::memcpy(&w[1], k.guest.b.data() + 8, 8);
  std::memcpy(&w[2], k.peer.b.data(), 8);
  std::memcpy(&w[3], k.peer.b.data() + 8, 8);
  uint64_t h = hash_seed_[0];
  for (uint64_t x : w) h = mix(h ^ x);
  h = mix(h ^ ((uint64_t{k.guest_port} << 16) | k.peer_port) ^ hash_seed_[1]);
  return static_cast<uint32_t>(h);
}

// Slot of the flow with this key, or kNone.
uint32_t UdpTranslator::lookup(const Key& k) const {
  for (uint32_t s = buckets_[hash(k) & bucket_mask_]; s != kNone; s = flows_[s].hnext) {
    const Flow& f = flows_[s];
    if (f.guest_port == k.guest_port && f.peer_port == k.peer_port && f.peer == k.peer &&
        f.guest == k.guest)
      return s;
  }
  return kNone;
}

// Every flow, oldest first.
void UdpTranslator::close_flows(const char* why) {
  while (lru_head_ != kNone) free_flow(lru_head_, why);
}

// Takes a free slot and indexes it; kNone when the table is full (the
// flows there are kept: a guest at its limit is refused new ones).
uint32_t UdpTranslator::alloc_flow(const Key& k, uint64_t now) {
  if (free_list_.empty()) return kNone;
  uint32_t s = free_list_.back();
  free_list_.pop_back();
  Flow& f = flows_[s];
  f = Flow{};
  f.used = true;
  f.guest = k.guest;
  f.peer = k.peer;
  f.guest_port = k.guest_port;
  f.peer_port = k.peer_port;
  f.last_used = now;
  uint32_t b = hash(k) & bucket_mask_;
  f.hnext = buckets_[b];
  buckets_[b] = s;
  lru_push_back(s);
  nflows_++;
  return s;
}

// Unindexes a flow, closes its own socket, returns the slot to the free list.
void UdpTranslator::free_flow(uint32_t slot, const char* why) {
  Flow& f = flows_[slot];
  if (!f.used) return;
  if (verbose()) log_flow_close(ends_of(f), f.to_host, f.to_guest, why);
  uint32_t b = hash(Key{f.guest, f.peer, f.guest_port, f.peer_port}) & bucket_mask_;
  for (uint32_t* p = &buckets_[b]; *p != kNone; p = &flows_[*p].hnext) {
    if (*p == slot) {
      *p = f.hnext;
      break;
    }
  }
  lru_unlink(slot);
  if (!f.inbound && f.fd >= 0) {
    loop_.remove(f.fd);
    close(f.fd);
  }
  f = Flow{};
  free_list_.push_back(slot);
  nflows_--;
}

// Activity: refresh the deadline, move to the LRU tail.
void UdpTranslator::touch(uint32_t slot, uint64_t now) {
  flows_[slot].last_used = now;
  if (lru_tail_ == slot) return;
  lru_unlink(slot);
  lru_push_back(slot);
}

// Removes a slot from the LRU list.
void UdpTranslator::lru_unlink(uint32_t slot) {
  Flow& f = flows_[slot];
  if (f.lru_prev != kNone)
    flows_[f.lru_prev].lru_next = f.lru_next;
  else
    lru_head_ = f.lru_next;
  if (f.lru_next != kNone)
    flows_[f.lru_next].lru_prev = f.lru_prev;
  else
    lru_tail_ = f.lru_prev;
  f.lru_prev = f.lru_next = kNone;
}

// Appends a slot at the LRU tail (most recently used).
void UdpTranslator::lru_push_back(uint32_t slot) {
  Flow& f = flows_[slot];
  f.lru_prev = lru_tail_;
  f.lru_next = kNone;
  if (lru_tail_ != kNone)
    flows_[lru_tail_].lru_next = slot;
  else
    lru_head_ = slot;
  lru_tail_ = slot;
}

// A new flow refused (by the policy, or at the flow limit): ICMP
// "administratively prohibited" when `answer` (Verdict::answered).
void UdpTranslator::refuse(const ParsedFrame& f, std::span<const uint8_t> frame, bool answer) {
  counters_.dropped++;
  if (!answer) return;
  const Config& c = link_.config();
  uint8_t out[kProhibitedFrameMax];
  size_t n = build_admin_prohibited(out, f, frame, link_.our_mac(), f.l3 == L3Kind::ipv6 ? c.gateway6 : c.gateway4);
  if (n && link_.send_to_guest(std::span<const uint8_t>(out, n))) counters_.unreachable_sent++;
}

// Binds an outbound socket to the guest's source port on all addresses, as
// pasta does, so the peer sees the port the guest chose. SO_REUSEADDR lets
// flows from one guest port to several destinations share the port (each
// socket is connected, so the kernel delivers replies by the full 4-tuple);
// a port a host process holds without SO_REUSEADDR, or one the caller may
// not bind, fails and the socket stays unbound: connect() then picks an
// ephemeral port. IPv6 sockets are v6-only so they do not claim the IPv4 port.
// With -o (toward a host that is not loopback) the address bound is -o's,
// and a port that cannot be kept still gets it: -o's address, an ephemeral
// port. Returns whether the port was kept; *ok false when not even -o's
// address could be bound.
bool UdpTranslator::bind_source_port(const Config& c, int fd, bool v6, const InetAddr& host, uint16_t port,
                                     bool* ok) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (v6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  sockaddr_storage ss;
  socklen_t sl = outbound_bind_address(c, v6, host, port, &ss);
  *ok = true;
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) == 0) return true;
  if (has_outbound_address(c, v6, host)) {
    sl = outbound_bind_address(c, v6, host, 0, &ss);
    *ok = bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) == 0;
  }
  return false;
}

// New outbound flow: its own socket, connected to the (mapped) destination.
// Its source port is the guest's when the host can bind it (bind_source_port).
// Out of descriptors (*exhausted) is a limit like the table's: the caller
// refuses the flow and the flows there are kept.
uint32_t UdpTranslator::open_outbound(const Key& k, const InetAddr& host, uint64_t now, bool* exhausted) {
  const Config& c = link_.config();
  const bool v6 = !host.is_v4();
  int fd = open_outbound_socket(c, v6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, host);
  if (fd < 0) {
    *exhausted = errno == EMFILE || errno == ENFILE;
    return kNone;
  }
  bool bound = true;
  const bool kept = bind_source_port(c, fd, v6, host, k.guest_port, &bound);
  if (!bound) {
    close(fd);
    return kNone;
  }
  sockaddr_storage ss;
  socklen_t sl = to_sockaddr(host, k.peer_port, &ss);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), sl) < 0) {
    close(fd);
    return kNone;
  }
  uint32_t s = alloc_flow(k, now);  // a slot is free: the caller checked
  if (s == kNone || !loop_.add(fd, EPOLLIN, tag_, s)) {
    close(fd);
    free_flow(s, "error");
    return kNone;
  }
  Flow& f = flows_[s];
  f.fd = fd;
  f.host_peer = host;
  f.host_port = k.peer_port;
  f.source_port_kept = kept;
  counters_.flows_opened++;
  if (kept)
    counters_.source_port_kept++;
  else
    counters_.source_port_ephemeral++;
  if (verbose()) log_flow_open(ends_of(f));
  return s;
}

// One guest datagram: find or open its flow, send the payload.
void UdpTranslator::on_guest_datagram(const ParsedFrame& f, std::span<const uint8_t> frame) {
  counters_.guest_datagrams++;
  if (!f.ok() || !f.is_udp() || f.udp.payload_offset > frame.size() ||
      f.udp.payload_len > frame.size() - f.udp.payload_offset || f.udp.sport == 0) {
    counters_.dropped++;
    return;
  }
  const uint64_t now = now_ns();
  const Key k{f.src, f.dst, f.udp.sport, f.udp.dport};
  uint32_t s = lookup(k);
  if (s == kNone) {
    // A new flow: the destination policy decides where it may go.
    const Verdict v =
        link_.policy().decide(FlowProto::udp, f.l3 == L3Kind::ipv6, f.src, f.dst, f.udp.dport, now);
    if (!v.allowed()) return refuse(f, frame, v.answered());
    // At its limit (--max-udp-flows, or out of descriptors) the guest is
    // refused the new flow as a filtering router refuses (RFC 1812
    // 5.2.7.1, RFC 4443 3.1: administratively prohibited, so its socket
    // fails at once); its flows there are kept and no host port is taken.
    const bool full = free_list_.empty();
    bool exhausted = false;
    if (!full) s = open_outbound(k, v.host, now, &exhausted);
    if (full || exhausted) {
      counters_.flows_refused++;
      return refuse(f, frame, true);
    }
  }
  if (s == kNone) {
    counters_.dropped++;
    return;
  }
  touch(s, now);
  Flow& fl = flows_[s];
  fl.last_len = static_cast<uint32_t>(f.udp.payload_len);
  const uint8_t* pl = frame.data() + f.udp.payload_offset;
  ssize_t n;
  if (fl.inbound) {
    sockaddr_storage ss;
    socklen_t sl = to_sockaddr(fl.host_peer, fl.host_port, &ss, fl.fd_v6);
    n = sendto(fl.fd, pl, f.udp.payload_len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl);
  } else {
    n = send(fl.fd, pl, f.udp.payload_len, MSG_DONTWAIT);
  }
  if (n >= 0) {
    counters_.host_sent++;
    fl.to_host += static_cast<uint64_t>(n);
    return;
  }
  if (!fl.inbound && (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)) {
    send_unreachable(fl, errno);
    return;
  }
  counters_.send_errors++;
  log_error_once(fl, "send", errno);
}

// Readable (or failed) socket: a flow's own or a forward socket.
void UdpTranslator::on_io(uint64_t id, uint32_t) {
  if (id >= kForwardIdBase) {
    size_t i = static_cast<size_t>(id - kForwardIdBase);
    if (i < forwards_.size() && forwards_[i].fd >= 0) drain_forward(i);
    return;
  }
  if (id < flows_.size() && flows_[id].used && !flows_[id].inbound)
    drain_flow(static_cast<uint32_t>(id));
}

// Reads an outbound flow's socket in batches, straight into frame buffers.
void UdpTranslator::drain_flow(uint32_t slot) {
  const bool v6 = !flows_[slot].guest.is_v4();
  const size_t hdr = udp_frame_header_len(v6);
  const size_t maxpl = max_payload(v6, kMaxIpPacket);  // above the MTU: fragments
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  for (int round = 0; round < kMaxRecvRounds; round++) {
    prepare_batch(msgs, iov, nullptr, kBatch, bufs_.get(), kMaxFrameLen, hdr, maxpl);
    int n = recvmmsg(flows_[slot].fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
        send_unreachable(flows_[slot], errno);
      return;
    }
    touch(slot, now_ns());
    for (int i = 0; i < n; i++) {
      counters_.host_received++;
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        counters_.too_big++;
        continue;
      }
      deliver(flows_[slot], bufs_.get() + static_cast<size_t>(i) * kMaxFrameLen, msgs[i].msg_len,
              false);
    }
    if (static_cast<size_t>(n) < kBatch) return;
  }
}

// Reads a forward socket: each datagram goes to the guest's forwarded port.
void UdpTranslator::drain_forward(size_t index) {
  const Forward fw = forwards_[index];
  const Config& c = link_.config();
  // Receive at the IPv6 payload offset; IPv4 frames move their payload down.
  const size_t hdr = udp_frame_header_len(true);
  const size_t maxpl = std::min(max_payload(true, kMaxIpPacket), max_payload(false, kMaxIpPacket));
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  sockaddr_storage names[kBatch];
  for (int round = 0; round < kMaxRecvRounds; round++) {
    prepare_batch(msgs, iov, names, kBatch, bufs_.get(), kMaxFrameLen, hdr, maxpl);
    int n = recvmmsg(fw.fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    const uint64_t now = now_ns();
    for (int i = 0; i < n; i++) {
      counters_.host_received++;
      InetAddr client;
      uint16_t cport = 0;
      if (!from_sockaddr(names[i], &client, &cport) || cport == 0) {
        counters_.dropped++;
        continue;
      }
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
        counters_.too_big++;
        continue;
      }
      const bool v4 = client.is_v4();
      if (v4 ? !c.ipv4 : !c.ipv6) {
        counters_.dropped++;
        continue;
      }
      const InetAddr seen = link_.policy().guest_view(client);
      const Key k{v4 ? c.guest4.addr : c.guest6.addr, seen, fw.guest_port, cport};
      uint32_t s = lookup(k);
      if (s == kNone) {
        s = alloc_flow(k, now);
        if (s == kNone) {  // the guest is at its limit: the host client's datagram is dropped
          counters_.flows_refused++;
          counters_.dropped++;
          continue;
        }
        Flow& nf = flows_[s];
        nf.inbound = true;
        nf.fd = fw.fd;
        counters_.flows_opened++;
        if (verbose()) log_flow_open(ends_of(nf));
      }
      Flow& fl = flows_[s];
      if (fl.inbound) {
        // The newest client behind this guest-visible address wins (several
        // loopback addresses all look like the gateway).
        fl.host_peer = client;
        fl.host_port = cport;
        fl.fd = fw.fd;
        fl.fd_v6 = fw.v6;
      }
      touch(s, now);
      deliver(fl, bufs_.get() + static_cast<size_t>(i) * kMaxFrameLen, msgs[i].msg_len, true);
    }
    if (static_cast<size_t>(n) < kBatch) return;
  }
}

// Adds headers around a payload already in buf and sends the frame.
bool UdpTranslator::deliver(Flow& fl, uint8_t* buf, size_t payload_len,
                            bool payload_at_v6_offset) {
  const bool v6 = !fl.guest.is_v4();
  const size_t off = udp_frame_header_len(payload_at_v6_offset || v6);
  UdpDatagram d;
  d.ip = toward_guest(link_, fl.peer, fl.guest);
  d.sport = fl.peer_port;
  d.dport = fl.guest_port;
  d.payload = std::span<const uint8_t>(buf + off, payload_len);
  size_t n = build_udp_frame(std::span<uint8_t>(buf, kMaxFrameLen), d);
  if (n == 0) {
    counters_.too_big++;
    return false;
  }
  const unsigned mtu = link_.config().mtu;
  if (n - kEthHeaderLen > mtu) {  // the guest's stack reassembles it
    bool ok = true;
    size_t k = fragment_frame(std::span<const uint8_t>(buf, n), mtu, ++frag_id_,
                              std::span<uint8_t>(frag_buf_.get(), kMaxFrameLen),
                              [&](std::span<const uint8_t> f) { return ok = link_.send_to_guest(f); });
    if (k == 0 || !ok) {
      counters_.send_errors++;
      return false;
    }
    counters_.fragmented++;
    counters_.guest_sent++;
    fl.to_guest += payload_len;
    return true;
  }
  if (!link_.send_to_guest(std::span<const uint8_t>(buf, n))) {
    counters_.send_errors++;
    return false;
  }
  counters_.guest_sent++;
  fl.to_guest += payload_len;
  return true;
}

// First error of a flow only.
void UdpTranslator::log_error_once(Flow& fl, const char* what, int err) {
  if (!verbose() || fl.error_logged) return;
  fl.error_logged = true;
  log_flow_error(ends_of(fl), what, err);
}

// The flow's ends for the -v log.
FlowEnds UdpTranslator::ends_of(const Flow& f) {
  return FlowEnds{"udp", f.guest, f.guest_port, f.peer, f.peer_port, f.inbound};
}

// ICMP(v6) destination unreachable to the guest for an outbound flow.
void UdpTranslator::send_unreachable(Flow& fl, int err) {
  const bool v6 = !fl.guest.is_v4();
  log_error_once(fl, "host", err);
  uint8_t code;
  switch (err) {
    case ECONNREFUSED: code = v6 ? 4 : 3; break;  // port unreachable
    case EHOSTUNREACH: code = v6 ? 3 : 1; break;  // address / host unreachable
    case ENETUNREACH: code = 0; break;            // no route / net unreachable
    default: return;
  }
  // Reconstruct the quoted header of the guest's datagram: build it, then
  // fix the lengths to what the guest sent.
  uint8_t q[kEthHeaderLen + kIpv6HeaderLen + kUdpHeaderLen];
  UdpDatagram d;
  d.ip.src = fl.guest;
  d.ip.dst = fl.peer;
  d.ip.ttl = 64;
  d.sport = fl.guest_port;
  d.dport = fl.peer_port;
  size_t qn = build_udp_frame(q, d);
  if (qn == 0) return;
  uint8_t* ip = q + kEthHeaderLen;
  const uint32_t ulen = kUdpHeaderLen + fl.last_len;
  uint8_t* udp = ip + (v6 ? kIpv6HeaderLen : kIpv4HeaderLen);
  udp[4] = static_cast<uint8_t>(ulen >> 8);
  udp[5] = static_cast<uint8_t>(ulen);
  udp[6] = udp[7] = 0;
  if (v6) {
    ip[4] = static_cast<uint8_t>(ulen >> 8);
    ip[5] = static_cast<uint8_t>(ulen);
  } else {
    const uint32_t total = kIpv4HeaderLen + ulen;
    ip[2] = static_cast<uint8_t>(total >> 8);
    ip[3] = static_cast<uint8_t>(total);
    ip[10] = ip[11] = 0;
    uint16_t c = csum_fold(csum_partial(ip, kIpv4HeaderLen, 0));
    std::memcpy(ip + 10, &c, 2);
  }
  uint8_t body[4 + kIpv6HeaderLen + kUdpHeaderLen] = {};
  const size_t qlen = qn - kEthHeaderLen;
  std::memcpy(body + 4, ip, qlen);
  const L2L3 l = toward_guest(link_, fl.peer, fl.guest);
  uint8_t out[kEthHeaderLen + kIpv6HeaderLen + 4 + sizeof(body)];  // 4: type, code, checksum
  size_t n = build_icmp_frame(out, l, v6 ? 1 : 3, code, std::span<const uint8_t>(body, 4 + qlen));
  if (n == 0) return;
  if (link_.send_to_guest(std::span<const uint8_t>(out, n)))
    counters_.unreachable_sent++;
  else
    counters_.send_errors++;
}

// Earliest idle deadline: the LRU head's.
uint64_t UdpTranslator::next_deadline_ns() const {
  if (lru_head_ == kNone) return kNever;
  return flows_[lru_head_].last_used + idle_timeout_ns_;
}

// Closes flows idle for idle_timeout_ns, oldest first.
void UdpTranslator::on_timer(uint64_t now) {
  while (lru_head_ != kNone && flows_[lru_head_].last_used + idle_timeout_ns_ <= now) {
    free_flow(lru_head_, "idle");
    counters_.flows_expired++;
  }
}

}  // namespace ferry
