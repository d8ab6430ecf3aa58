// StreamPort: see stream.h for the theory of operation.
//
// Counters: rx_* count frames handed to the sink; tx_* frames written (a
// frame the socket took in part counts as sent: its rest follows before any
// other frame); tx_dropped frames refused (no guest, socket full, a frame
// still being flushed, a frame outside the length limits, an error).
#include "port/stream.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "codec/bytes.h"

namespace ferry {

namespace {

constexpr uint32_t kListenerId = 1;
constexpr uint32_t kConnId = 2;
// The most the socket may hold toward the guest: a TCG guest drains its
// receive ring slowly, and a frame that does not fit is dropped (TCP then
// retransmits), so give the kernel room for a window's worth.
constexpr int kSendBuffer = 4 << 20;

bool set_nonblocking(int fd) {
  const int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

}  // namespace

// Builds the port around the given sockets.
Result<std::unique_ptr<StreamPort>> StreamPort::create(int listen_fd, int conn_fd, size_t max_frame) {
  auto close_given = [&] {
    if (listen_fd >= 0) ::close(listen_fd);
    if (conn_fd >= 0) ::close(conn_fd);
  };
  if ((listen_fd < 0 && conn_fd < 0) || max_frame < kMinFrame || max_frame > 65535 + 18) {
    close_given();
    return Status(EINVAL, "stream port: no socket, or a bad frame limit");
  }
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    close_given();
    return Status::from_errno("epoll_create1");
  }
  std::unique_ptr<StreamPort> port(new StreamPort(epfd, listen_fd, max_frame));
  if (listen_fd >= 0) {
    if (!set_nonblocking(listen_fd)) {
      if (conn_fd >= 0) ::close(conn_fd);
      return Status::from_errno("listening socket: O_NONBLOCK");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = kListenerId;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
      if (conn_fd >= 0) ::close(conn_fd);
      return Status::from_errno("epoll_ctl (listening socket)");
    }
  }
  if (conn_fd >= 0 && !port->adopt_connection(conn_fd)) return Status::from_errno("stream socket");
  return port;
}

// A UNIX stream socket listening at path; a stale socket file is replaced.
Result<int> StreamPort::listen_unix(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
    return Status(ENAMETOOLONG, "socket path '" + path + "' is empty or longer than " +
                                    std::to_string(sizeof(sa.sun_path) - 1) + " bytes");
  }
  std::memcpy(sa.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::from_errno("socket(AF_UNIX)");
  auto try_bind = [&] { return ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0; };
  if (!try_bind()) {
    const int err = errno;
    struct stat st {};
    if (err != EADDRINUSE || ::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      ::close(fd);
      return Status(err, "bind " + path + (err == EADDRINUSE ? " (a file that is not a socket is in the way)" : ""));
    }
    // A socket file: live (someone accepts) or left by a dead process.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      ::close(fd);
      return Status(EADDRINUSE, path + " is in use by another process");
    }
    ::unlink(path.c_str());
    if (!try_bind()) {
      Status st2 = Status::from_errno("bind " + path);
      ::close(fd);
      return st2;
    }
  }
  if (::listen(fd, 4) != 0) {
    Status st = Status::from_errno("listen " + path);
    ::close(fd);
    ::unlink(path.c_str());
    return st;
  }
  return fd;
}

// Allocates both fixed buffers.
StreamPort::StreamPort(int epfd, int listen_fd, size_t max_frame)
    : epfd_(epfd), listen_(listen_fd), max_frame_(max_frame),
      rx_(new uint8_t[kRxBufSize]), tx_(new uint8_t[kLenPrefix + max_frame]) {}

StreamPort::~StreamPort() {
  if (conn_ >= 0) ::close(conn_);
  if (listen_ >= 0) ::close(listen_);
  if (epfd_ >= 0) ::close(epfd_);
}

// Serves fd from now on; the socket buffer toward the guest is made large.
bool StreamPort::adopt_connection(int fd) {
  if (!set_nonblocking(fd)) {
    ::close(fd);
    return false;
  }
  // SO_SNDBUFFORCE passes net.core.wmem_max (root); else the capped value.
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSendBuffer, sizeof(kSendBuffer)) != 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSendBuffer, sizeof(kSendBuffer));
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u32 = kConnId;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    ::close(fd);
    return false;
  }
  conn_ = fd;
  rx_len_ = 0;
  tx_off_ = tx_len_ = 0;
  watching_out_ = false;
  stream_.connections++;
  return true;
}

// Forgets the guest: its buffered bytes, in both directions, go with it.
void StreamPort::drop_connection() {
  if (conn_ < 0) return;
  epoll_ctl(epfd_, EPOLL_CTL_DEL, conn_, nullptr);
  ::close(conn_);
  conn_ = -1;
  rx_len_ = 0;
  tx_off_ = tx_len_ = 0;
  watching_out_ = false;
  stream_.disconnects++;
}

// Takes every pending connection: the first becomes the guest when none is
// served, the others are closed at once.
void StreamPort::accept_guests() {
  while (listen_ >= 0) {
    const int fd = accept4(listen_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN, or out of fds: the listener stays readable
    }
    if (conn_ >= 0) {
      stream_.refused++;
      ::close(fd);
      continue;
    }
    (void)adopt_connection(fd);
  }
}

// Asks the set for EPOLLOUT while a frame's rest waits.
void StreamPort::watch_output(bool on) {
  if (conn_ < 0 || on == watching_out_) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u);
  ev.data.u32 = kConnId;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, conn_, &ev) == 0) watching_out_ = on;
}

// What the listener and the connection have, then frames, at most about
// max_frames (complete frames already read are all delivered).
size_t StreamPort::receive(FrameSink& sink, size_t max_frames) {
  epoll_event ev[2];
  int n;
  do {
    n = epoll_wait(epfd_, ev, 2, 0);
  } while (n < 0 && errno == EINTR);
  bool readable = false;
  for (int i = 0; i < n; i++) {
    if (ev[i].data.u32 == kListenerId) {
      accept_guests();
    } else if (conn_ >= 0) {
      if (ev[i].events & EPOLLOUT) (void)flush_pending();
      if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable = true;
    }
  }
  size_t delivered = 0;
  while (readable && conn_ >= 0 && delivered < max_frames) {
    if (!read_and_deliver(sink, &delivered)) break;
  }
  return delivered;
}

// One read(), then every complete frame in the buffer to the sink.
bool StreamPort::read_and_deliver(FrameSink& sink, size_t* delivered) {
  ssize_t n;
  do {
    n = ::read(conn_, rx_.get() + rx_len_, kRxBufSize - rx_len_);
  } while (n < 0 && errno == EINTR);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
    drop_connection();  // the guest went away (or the socket broke)
    return false;
  }
  if (n < 0) return false;  // nothing more now
  stream_.rx_reads++;
  rx_len_ += static_cast<size_t>(n);
  size_t off = 0;
  while (rx_len_ - off >= kLenPrefix) {
    const uint32_t len = get32(rx_.get() + off);
    // Checked as soon as the length is in: a peer that speaks something
    // else is cut off before we wait for bytes that may never come.
    if (len < kMinFrame || len > max_frame_) {
      stream_.protocol_errors++;
      drop_connection();
      return false;
    }
    if (rx_len_ - off - kLenPrefix < len) break;  // the rest comes with a later read
    counters_.rx_frames++;
    counters_.rx_bytes += len;
    (*delivered)++;
    sink.on_guest_frame(std::span<const uint8_t>(rx_.get() + off + kLenPrefix, len), RxMeta{});
    off += kLenPrefix + len;
  }
  if (off != 0) {
    std::memmove(rx_.get(), rx_.get() + off, rx_len_ - off);  // at most one partial frame
    rx_len_ -= off;
  }
  return true;
}

// The rest of a partly written frame; true when it is all out.
bool StreamPort::flush_pending() {
  while (tx_off_ < tx_len_) {
    const ssize_t n = ::send(conn_, tx_.get() + tx_off_, tx_len_ - tx_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;  // EAGAIN: EPOLLOUT tells us; an error: the read side sees it
    }
    tx_off_ += static_cast<size_t>(n);
  }
  tx_off_ = tx_len_ = 0;
  watch_output(false);
  return true;
}

// Length and frame in one sendmsg(); a short write keeps the rest.
bool StreamPort::send(const iovec* iov, int iovcnt) {
  constexpr int kMaxPieces = 16;
  size_t total = 0;
  if (iov != nullptr && iovcnt > 0 && iovcnt < kMaxPieces) {
    for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  }
  if (conn_ < 0 || total < kMinFrame || total > max_frame_ || (tx_len_ != 0 && !flush_pending())) {
    counters_.tx_dropped++;
    return false;
  }
  uint8_t prefix[kLenPrefix];
  put32(prefix, static_cast<uint32_t>(total));
  iovec pieces[kMaxPieces];
  pieces[0] = iovec{prefix, kLenPrefix};
  for (int i = 0; i < iovcnt; i++) pieces[i + 1] = iov[i];
  msghdr mh{};
  mh.msg_iov = pieces;
  mh.msg_iovlen = static_cast<size_t>(iovcnt) + 1;
  ssize_t n;
  do {
    n = ::sendmsg(conn_, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) {
    counters_.tx_dropped++;  // socket full (TCP retransmits), or broken (the read side ends it)
    return false;
  }
  const size_t want = kLenPrefix + total;
  if (static_cast<size_t>(n) < want) {
    // Keep what the socket did not take, in order, and send it first.
    size_t skip = static_cast<size_t>(n), k = 0;
    for (int i = 0; i <= iovcnt; i++) {
      const auto* p = static_cast<const uint8_t*>(pieces[i].iov_base);
      size_t len = pieces[i].iov_len;
      if (skip >= len) {
        skip -= len;
        continue;
      }
      std::memcpy(tx_.get() + k, p + skip, len - skip);
      k += len - skip;
      skip = 0;
    }
    tx_off_ = 0;
    tx_len_ = k;
    stream_.tx_partial++;
    watch_output(true);
  }
  counters_.tx_frames++;
  counters_.tx_segments++;  // no offloads on a stream: one segment per frame
  counters_.tx_bytes += total;
  return true;
}

}  // namespace ferry
