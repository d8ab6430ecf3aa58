// -T's relay: see tcp_relay.h for the theory of operation.
#include "nsfwd/tcp_relay.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/flow_log.h"
#include "common/host_socket.h"
#include "nsfwd/ns_steering.h"

namespace ferry {

namespace {

// Listener ids carry kListenerBit; a connection's are its generation (bits
// 33-53: an event of a slot's previous socket, late in the same batch, is
// not taken for its new one's), its slot (bits 1-32) and the side (bit 0).
constexpr uint64_t kListenerBit = uint64_t{1} << 54;
constexpr uint32_t kGenMask = (1u << 21) - 1;
uint64_t conn_id(uint32_t gen, uint32_t slot, int side) {
  return (uint64_t{gen & kGenMask} << 33) | (uint64_t{slot} << 1) | static_cast<uint64_t>(side);
}
constexpr uint32_t kConnEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

// Closes fd, with a RST instead of a FIN when rst.
void close_socket(int fd, bool rst) {
  if (fd < 0) return;
  if (rst) {
    const linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  close(fd);
}

}  // namespace

NsTcpRelay::NsTcpRelay(EventLoop& loop, uint32_t mark, bool verbose, size_t max_conns)
    : loop_(loop), mark_(mark), verbose_(verbose), conns_(max_conns) {
  tag_ = loop_.register_handler(this);
  loop_.add_timer_client(this);
  free_.reserve(max_conns);
  again_.reserve(2 * max_conns);
  turn_.reserve(2 * max_conns);
  for (size_t i = max_conns; i-- > 0;) free_.push_back(static_cast<uint32_t>(i));
}

// Sockets are closed, never removed from the epoll set: in the parent the
// set is the translator's too (a closed fd leaves it by itself once the
// last copy goes).
NsTcpRelay::~NsTcpRelay() {
  drop_listeners_here();
  for (Conn& c : conns_) {
    if (!c.used) continue;
    close_socket(c.fd[0], false);
    close_socket(c.fd[1], false);
  }
}

Status NsTcpRelay::start(std::vector<NsListener> listeners, std::vector<NsForward> rules) {
  listeners_ = std::move(listeners);
  rules_ = std::move(rules);
  for (size_t i = 0; i < listeners_.size(); i++) {
    if (!loop_.add(listeners_[i].fd, EPOLLIN, tag_, kListenerBit | i))
      return Status::from_errno("epoll_ctl for a -T listener");
  }
  return {};
}

void NsTcpRelay::drop_listeners_here() {
  for (NsListener& l : listeners_) {
    if (l.fd >= 0) close(l.fd);
    l.fd = -1;
  }
}

FlowEnds NsTcpRelay::ends(const Conn& c) {
  const InetAddr lo = loopback(c.v6);
  return {"tcp", lo, c.guest_port, lo, c.listen_port, false};
}

void NsTcpRelay::on_io(uint64_t id, uint32_t events) {
  if (id & kListenerBit) {
    const size_t i = static_cast<size_t>(id & ~kListenerBit);
    if (i < listeners_.size()) accept_on(i);
    return;
  }
  const auto slot = static_cast<uint32_t>((id >> 1) & 0xffffffffu);
  if (slot >= conns_.size() || !conns_[slot].used) return;
  Conn& c = conns_[slot];
  if (conn_id(c.gen, slot, static_cast<int>(id & 1)) != id) return;  // a closed socket's last event
  if (c.connecting) {
    if ((id & 1) == 0 || (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;  // the guest's side waits
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c.fd[1], SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0 && (events & (EPOLLERR | EPOLLHUP))) err = ECONNREFUSED;
    if (err != 0) {
      counters_.connect_failed++;
      finish(slot, true, "connect-failed", err);
      return;
    }
    c.connecting = false;
  } else if (events & EPOLLERR) {  // a reset on a side whose reads are over would go unseen by pump()
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c.fd[id & 1], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
      finish(slot, true, (id & 1) ? "host-error" : "guest-reset", err);
      return;
    }
  }
  pump(slot);
}

void NsTcpRelay::accept_on(size_t li) {
  const NsListener& l = listeners_[li];
  for (size_t n = 0; n < kAcceptsPerEvent; n++) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof(peer);
    const int gfd = accept4(l.fd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (gfd < 0) return;  // EAGAIN: all taken; anything else: the next event retries
    if (free_.empty()) {
      counters_.refused_full++;
      close_socket(gfd, true);
      continue;
    }
    InetAddr guest_addr;
    uint16_t guest_port = 0;
    from_sockaddr(peer, &guest_addr, &guest_port);
    // A steered listener's connection: the port the guest asked for is the
    // accepted socket's own (the SYN's destination).
    uint16_t listen_port = l.listen_port, target_port = l.target_port;
    if (l.steered) {
      sockaddr_storage self{};
      socklen_t slen = sizeof(self);
      InetAddr self_addr;
      if (getsockname(gfd, reinterpret_cast<sockaddr*>(&self), &slen) != 0 ||
          !from_sockaddr(self, &self_addr, &listen_port) ||
          (target_port = ns_target_port(rules_, listen_port)) == 0) {
        counters_.connect_failed++;
        close_socket(gfd, true);
        continue;
      }
    }
    const int hfd = open_host_socket(l.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, mark_);
    if (hfd < 0) {  // out of descriptors: as if the host refused
      counters_.connect_failed++;
      close_socket(gfd, true);
      continue;
    }
    const uint32_t slot = free_.back();
    free_.pop_back();
    used_++;
    counters_.accepted++;
    Conn& c = conns_[slot];
    const uint32_t gen = c.gen + 1;
    c = Conn();
    c.gen = gen;
    c.used = true;
    c.fd[0] = gfd;
    c.fd[1] = hfd;
    c.v6 = l.v6;
    c.guest_port = guest_port;
    c.listen_port = listen_port;
    c.buf.reset(new uint8_t[2 * kBufferBytes]);
    if (verbose_) log_flow_open(ends(c));
    const int one = 1;  // we pass on whatever a read returned: no Nagle delay on top
    setsockopt(gfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(hfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_storage to;
    const socklen_t tlen = loopback_sockaddr(l.v6, target_port, &to);
    const int rc = connect(hfd, reinterpret_cast<const sockaddr*>(&to), tlen);
    if (rc != 0 && errno != EINPROGRESS) {
      counters_.connect_failed++;
      finish(slot, true, "connect-failed", errno);
      continue;
    }
    c.connecting = rc != 0;
    if (!loop_.add(gfd, kConnEvents, tag_, conn_id(gen, slot, 0)) ||
        !loop_.add(hfd, kConnEvents, tag_, conn_id(gen, slot, 1))) {
      finish(slot, true, "error", errno);
      continue;
    }
    if (!c.connecting) pump(slot);
  }
}

void NsTcpRelay::pump(uint32_t slot) {
  Conn& c = conns_[slot];
  bool more = false;
  for (int s = 0; s < 2; s++) {
    Direction& d = c.dir[s];
    const int from = c.fd[s], to = c.fd[1 - s];
    uint8_t* const buf = c.buf.get() + static_cast<size_t>(s) * kBufferBytes;
    size_t chunks = 0;
    while (true) {
      if (d.len > 0) {
        const ssize_t n = send(to, buf + d.off, d.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          d.off += static_cast<uint32_t>(n);
          d.len -= static_cast<uint32_t>(n);
          d.bytes += static_cast<uint64_t>(n);
          (s == 0 ? counters_.bytes_to_host : counters_.bytes_to_guest) += static_cast<uint64_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // its EPOLLOUT resumes us
        finish(slot, true, s == 0 ? "host-error" : "guest-reset", n < 0 ? errno : EIO);
        return;
      }
      if (d.eof) {
        if (!d.shut) {
          shutdown(to, SHUT_WR);
          d.shut = true;
        }
        break;
      }
      if (chunks++ == kChunksPerTurn) {  // fair share used: the next turn goes on
        more = true;
        break;
      }
      const ssize_t n = recv(from, buf, kBufferBytes, MSG_DONTWAIT);
      if (n > 0) {
        d.off = 0;
        d.len = static_cast<uint32_t>(n);
      } else if (n == 0) {
        d.eof = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;  // its EPOLLIN resumes us
      } else {
        finish(slot, true, s == 0 ? "guest-reset" : "host-error", errno);
        return;
      }
    }
  }
  if (c.dir[0].shut && c.dir[1].shut) {
    finish(slot, false, "closed", 0);
    return;
  }
  if (more && !c.queued) {
    c.queued = true;
    again_.push_back(slot);
  }
}

void NsTcpRelay::finish(uint32_t slot, bool rst, const char* reason, int err) {
  Conn& c = conns_[slot];
  if (rst && std::strcmp(reason, "connect-failed") != 0) counters_.reset++;
  if (!rst) counters_.closed++;
  if (verbose_) {
    const FlowEnds e = ends(c);
    if (err != 0) log_flow_error(e, reason, err);
    log_flow_close(e, c.dir[0].bytes, c.dir[1].bytes, reason);
  }
  close_socket(c.fd[0], rst);
  close_socket(c.fd[1], rst);
  c.fd[0] = c.fd[1] = -1;
  c.used = false;
  c.buf.reset();
  free_.push_back(slot);
  used_--;
}

uint64_t NsTcpRelay::next_deadline_ns() const { return again_.empty() ? kNever : 0; }

void NsTcpRelay::on_timer(uint64_t) {
  turn_.swap(again_);  // pump() may queue a slot again, for the turn after this one
  for (uint32_t slot : turn_) {
    Conn& c = conns_[slot];
    if (!c.used || !c.queued) continue;
    c.queued = false;
    pump(slot);
  }
  turn_.clear();
}

}  // namespace ferry
