// -U's relay: see udp_relay.h for the theory of operation.
#include "nsfwd/udp_relay.h"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/host_socket.h"

namespace ferry {

namespace {

// Guest-side socket ids carry this bit; a flow's id is its slot.
constexpr uint64_t kSocketBit = uint64_t{1} << 54;
constexpr size_t kDatagramBytes = 65536;

}  // namespace

NsUdpRelay::NsUdpRelay(EventLoop& loop, uint32_t mark, bool verbose, size_t max_flows)
    : loop_(loop), mark_(mark), verbose_(verbose), flows_(max_flows), buf_(new uint8_t[kDatagramBytes]) {
  size_t nb = 16;
  while (nb < 2 * max_flows) nb <<= 1;
  buckets_.assign(nb, kNone);
  free_.reserve(max_flows);
  for (size_t i = max_flows; i-- > 0;) free_.push_back(static_cast<uint32_t>(i));
  tag_ = loop_.register_handler(this);
  loop_.add_timer_client(this);
}

// Closed, never removed from the epoll set (see NsTcpRelay's destructor).
NsUdpRelay::~NsUdpRelay() {
  drop_sockets_here();
  for (Flow& f : flows_)
    if (f.used) close(f.fd);
}

Status NsUdpRelay::start(std::vector<NsListener> sockets) {
  sockets_ = std::move(sockets);
  for (size_t i = 0; i < sockets_.size(); i++) {
    if (!loop_.add(sockets_[i].fd, EPOLLIN, tag_, kSocketBit | i)) return Status::from_errno("epoll_ctl for a -U socket");
  }
  return {};
}

void NsUdpRelay::drop_sockets_here() {
  for (NsListener& s : sockets_) {
    if (s.fd >= 0) close(s.fd);
    s.fd = -1;
  }
}

FlowEnds NsUdpRelay::ends(const Flow& f) const {
  InetAddr guest;
  uint16_t port = 0;
  from_sockaddr(f.guest, &guest, &port);
  return {"udp", guest, port, loopback(sockets_[f.socket].v6), sockets_[f.socket].listen_port, false};
}

uint32_t NsUdpRelay::hash(uint32_t socket, const sockaddr_storage& a, socklen_t len) const {
  uint64_t h = 1469598103934665603ull ^ socket;  // FNV-1a over the socket index and the address
  const auto* p = reinterpret_cast<const uint8_t*>(&a);
  for (socklen_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
  return static_cast<uint32_t>(h ^ (h >> 32)) & static_cast<uint32_t>(buckets_.size() - 1);
}

uint32_t NsUdpRelay::lookup(uint32_t socket, const sockaddr_storage& a, socklen_t len) const {
  for (uint32_t i = buckets_[hash(socket, a, len)]; i != kNone; i = flows_[i].hnext) {
    const Flow& f = flows_[i];
    if (f.socket == socket && f.guest_len == len && std::memcmp(&f.guest, &a, len) == 0) return i;
  }
  return kNone;
}

uint32_t NsUdpRelay::open_flow(uint32_t socket, const sockaddr_storage& a, socklen_t len, uint64_t now) {
  if (free_.empty()) return kNone;
  const NsListener& s = sockets_[socket];
  const int fd = open_host_socket(s.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, mark_);
  if (fd < 0) return kNone;
  sockaddr_storage to;
  const socklen_t tlen = loopback_sockaddr(s.v6, s.target_port, &to);
  const uint32_t slot = free_.back();
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), tlen) != 0 || !loop_.add(fd, EPOLLIN, tag_, slot)) {
    close(fd);
    return kNone;
  }
  free_.pop_back();
  Flow& f = flows_[slot];
  f = Flow();
  f.used = true;
  f.socket = socket;
  std::memcpy(&f.guest, &a, len);
  f.guest_len = len;
  f.fd = fd;
  f.last_used = now;
  const uint32_t b = hash(socket, a, len);
  f.hnext = buckets_[b];
  buckets_[b] = slot;
  used_++;
  counters_.flows_opened++;
  if (next_scan_ == kNever) next_scan_ = now + kScanNs;
  if (verbose_) log_flow_open(ends(f));
  return slot;
}

void NsUdpRelay::close_flow(uint32_t slot, const char* why) {
  Flow& f = flows_[slot];
  if (verbose_) log_flow_close(ends(f), f.to_host, f.to_guest, why);
  for (uint32_t* link = &buckets_[hash(f.socket, f.guest, f.guest_len)]; *link != kNone; link = &flows_[*link].hnext) {
    if (*link == slot) {
      *link = f.hnext;
      break;
    }
  }
  close(f.fd);  // the last copy: it leaves the epoll set
  f = Flow();
  free_.push_back(slot);
  used_--;
  counters_.flows_closed++;
}

void NsUdpRelay::close_flows(const char* why) {
  for (uint32_t i = 0; i < flows_.size(); i++)
    if (flows_[i].used) close_flow(i, why);
}

void NsUdpRelay::on_io(uint64_t id, uint32_t) {
  if (id & kSocketBit) {
    const auto i = static_cast<uint32_t>(id & ~kSocketBit);
    if (i < sockets_.size()) from_guest(i);
    return;
  }
  if (id < flows_.size() && flows_[id].used) from_host(static_cast<uint32_t>(id));
}

void NsUdpRelay::from_guest(uint32_t socket) {
  const int sfd = sockets_[socket].fd;
  const uint64_t now = now_ns();
  for (size_t n = 0; n < kBatch; n++) {
    sockaddr_storage src{};
    socklen_t slen = sizeof(src);
    const ssize_t len = recvfrom(sfd, buf_.get(), kDatagramBytes, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&src), &slen);
    if (len < 0) return;  // EAGAIN: all read (an error of the guest's side: nothing to do)
    uint32_t slot = lookup(socket, src, slen);
    if (slot == kNone) slot = open_flow(socket, src, slen, now);
    if (slot == kNone) {
      counters_.dropped_full++;
      continue;
    }
    Flow& f = flows_[slot];
    f.last_used = now;
    if (send(f.fd, buf_.get(), static_cast<size_t>(len), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
      counters_.send_errors++;
      if (verbose_) log_flow_error(ends(f), "send to host", errno);
      continue;
    }
    f.to_host += static_cast<uint64_t>(len);
    counters_.datagrams_to_host++;
    counters_.bytes_to_host += static_cast<uint64_t>(len);
  }
}

void NsUdpRelay::from_host(uint32_t slot) {
  Flow& f = flows_[slot];
  const int gfd = sockets_[f.socket].fd;
  for (size_t n = 0; n < kBatch; n++) {
    const ssize_t len = recv(f.fd, buf_.get(), kDatagramBytes, MSG_DONTWAIT);
    if (len < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      counters_.host_errors++;  // ICMP reported on the connected socket: nobody on the host's port
      if (verbose_) log_flow_error(ends(f), "recv from host", errno);
      continue;
    }
    f.last_used = now_ns();
    if (sendto(gfd, buf_.get(), static_cast<size_t>(len), MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&f.guest), f.guest_len) < 0) {
      counters_.send_errors++;
      continue;
    }
    f.to_guest += static_cast<uint64_t>(len);
    counters_.datagrams_to_guest++;
    counters_.bytes_to_guest += static_cast<uint64_t>(len);
  }
}

uint64_t NsUdpRelay::next_deadline_ns() const { return used_ ? next_scan_ : kNever; }

void NsUdpRelay::on_timer(uint64_t now) {
  if (used_ == 0 || now < next_scan_) return;
  for (uint32_t i = 0; i < flows_.size(); i++)
    if (flows_[i].used && now - flows_[i].last_used >= idle_timeout_ns_) close_flow(i, "idle");
  next_scan_ = used_ ? now + kScanNs : kNever;
}

}  // namespace ferry
