// DNS forwarder: relay the guest's UDP queries to the host's resolvers (see dns_forward.h).
#include "services/dns_forward.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "codec/bytes.h"
#include "policy/destination_policy.h"
#include "services/dns_name.h"

namespace ferry::services {

namespace {

constexpr uint16_t kDnsPort = 53;

}  // namespace

DnsForwarder::DnsForwarder(EventLoop& loop, GuestLink& link) : loop_(loop), link_(link) {
  tag_ = loop_.register_handler(this);
  loop_.add_timer_client(this);
}

DnsForwarder::~DnsForwarder() {
  for (int& fd : fd_) {
    if (fd < 0) continue;
    loop_.remove(fd);
    close(fd);
    fd = -1;
  }
}

Status DnsForwarder::start() {
  bool need[2] = {false, false};
  for (const InetAddr& a : link_.config().services.upstreams) need[a.is_v4() ? 0 : 1] = true;
  for (int i = 0; i < 2; i++) {
    if (!need[i]) continue;
    const int fd = socket(i ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;  // e.g. no IPv6 on the host: those upstreams are skipped
    if (!loop_.add(fd, EPOLLIN, tag_, static_cast<uint64_t>(i))) {
      close(fd);
      continue;
    }
    fd_[i] = fd;
  }
  if (fd_[0] < 0 && fd_[1] < 0 && (need[0] || need[1]))
    return Status::failure("DNS forwarder: no socket for the host's resolvers");
  return {};
}

size_t DnsForwarder::in_flight() const {
  size_t n = 0;
  for (const Query& q : q_) n += q.used ? 1 : 0;
  return n;
}

// Sends msg (the guest's query, ID already replaced) to the slot's upstream.
bool DnsForwarder::send_upstream(size_t slot, std::span<uint8_t> msg) {
  const auto& ups = link_.config().services.upstreams;
  Query& q = q_[slot];
  for (size_t tries = 0; tries < ups.size(); tries++, q.upstream = static_cast<uint8_t>((q.upstream + 1) % ups.size())) {
    const InetAddr& up = ups[q.upstream];
    const int fd = fd_[up.is_v4() ? 0 : 1];
    if (fd < 0) continue;
    sockaddr_storage ss;
    const socklen_t sl = to_sockaddr(up, upstream_port_, &ss);
    if (sendto(fd, msg.data(), msg.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), sl) >= 0) return true;
  }
  return false;
}

void DnsForwarder::on_query(const ParsedFrame& f, std::span<const uint8_t> frame) {
  // Only the guest's own address is answered, as by every translator (the
  // policy counts the rest): an answer to a forged source would reflect.
  if (!link_.policy().source_is_guest(f.l3 == L3Kind::ipv6, f.src)) {
    link_.policy().count_spoofed();
    return;
  }
  if (!f.is_udp() || f.udp.payload_offset > frame.size() || f.udp.payload_len > frame.size() - f.udp.payload_offset) {
    counters_.malformed++;
    return;
  }
  const std::span<const uint8_t> query = frame.subspan(f.udp.payload_offset, f.udp.payload_len);
  if (check_dns_query(query) != DnsQueryCheck::ok || f.udp.sport == 0 || f.src.is_unspecified()) {
    counters_.malformed++;
    return;
  }
  const auto& ups = link_.config().services.upstreams;
  if (ups.empty()) {
    counters_.send_failed++;
    return;
  }
  const uint16_t guest_id = get16(query.data());
  const uint64_t now = now_ns();
  // A retransmission of a query in flight goes to the next upstream.
  size_t slot = kMaxInFlight, free_slot = kMaxInFlight;
  for (size_t i = 0; i < kMaxInFlight; i++) {
    const Query& q = q_[i];
    if (!q.used) {
      if (free_slot == kMaxInFlight) free_slot = i;
      continue;
    }
    if (q.guest_id == guest_id && q.guest_port == f.udp.sport && q.guest == f.src && q.server == f.dst) {
      slot = i;
      break;
    }
  }
  const bool retry = slot != kMaxInFlight;
  if (retry) {
    Query& q = q_[slot];
    q.upstream = static_cast<uint8_t>((q.upstream + 1) % ups.size());
  } else {
    if (free_slot == kMaxInFlight) {
      counters_.table_full++;
      return;
    }
    slot = free_slot;
    Query& q = q_[slot];
    const uint8_t gen = static_cast<uint8_t>(q.gen + 1);
    q = Query{};
    q.used = true;
    q.gen = gen;
    q.guest_id = guest_id;
    q.guest_port = f.udp.sport;
    q.guest = f.src;
    q.server = f.dst;
  }
  Query& q = q_[slot];
  q.deadline = now + kQueryTimeoutNs;
  earliest_ = std::min(earliest_, q.deadline);
  std::memcpy(msg_.data(), query.data(), query.size());
  put16(msg_.data(), static_cast<uint16_t>((q.gen << 8) | slot));
  if (!send_upstream(slot, std::span<uint8_t>(msg_.data(), query.size()))) {
    counters_.send_failed++;
    if (!retry) q.used = false;
    return;
  }
  (retry ? counters_.retries : counters_.queries)++;
}

void DnsForwarder::on_io(uint64_t id, uint32_t) { drain(static_cast<int>(id & 1)); }

// Reads a bounded batch of answers from one host socket.
void DnsForwarder::drain(int fi) {
  const int fd = fd_[fi];
  if (fd < 0) return;
  const auto& ups = link_.config().services.upstreams;
  for (size_t k = 0; k < kReadsPerWakeup; k++) {
    sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    const ssize_t n = recvfrom(fd, msg_.data(), msg_.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), &sl);
    if (n < 0) return;  // EAGAIN, or an ICMP error for an earlier send
    InetAddr from;
    uint16_t port = 0;
    from_sockaddr(ss, &from, &port);  // another family keeps port 0: stray
    if (n < static_cast<ssize_t>(kDnsHeaderLen) || (msg_[2] & 0x80) == 0 || port != upstream_port_) {
      counters_.stray++;
      continue;
    }
    const uint16_t id = get16(msg_.data());
    Query& q = q_[id & 0xff];
    if (!q.used || q.gen != (id >> 8) || q.upstream >= ups.size() || !(ups[q.upstream] == from)) {
      counters_.stray++;  // late, spoofed, or from an upstream we moved away from
      continue;
    }
    put16(msg_.data(), q.guest_id);
    UdpDatagram d;
    d.ip = toward_guest(link_, q.server, q.guest);
    d.sport = kDnsPort;
    d.dport = q.guest_port;
    d.payload = std::span<const uint8_t>(msg_.data(), static_cast<size_t>(n));
    q.used = false;
    const size_t len = build_udp_frame(out_, d);
    if (len == 0 || !link_.send_to_guest(std::span<const uint8_t>(out_.data(), len))) {
      counters_.send_failed++;
      continue;
    }
    counters_.answers++;
  }
}

void DnsForwarder::on_timer(uint64_t now) {
  uint64_t next = kNever;
  for (Query& q : q_) {
    if (!q.used) continue;
    if (q.deadline <= now) {
      q.used = false;
      counters_.timeouts++;
    } else {
      next = std::min(next, q.deadline);
    }
  }
  earliest_ = next;
}

}  // namespace ferry::services
