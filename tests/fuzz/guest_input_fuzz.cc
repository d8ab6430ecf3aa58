// libFuzzer harness: the whole guest-input path. A Translator (with its
// gateway, TCP and UDP translators) is driven frame by frame, as a tap
// would, against real loopback sockets: a TCP echo server on 127.0.0.1 and
// ::1 port 8080 and a UDP echo server on port 5353, which the guest reaches
// through the gateway address (198.18.0.1 / fd00:f::1 map to loopback).
// Frames ferry sends back go to a port that keeps only the last one.
//
// Input: one configuration byte (bit 0: the port has offloads, as a tap
// with a vnet header), then records (fuzz_records.h) whose flags byte says:
//   bit 0  the frame's L4 checksum is trusted (a vnet header's partial sum)
//   bit 1  "follow ferry": before the frame is fed, its TCP seq and ack are
//          set from the last TCP segment ferry sent (its ack; its seq plus
//          length), so inputs get past the handshake's random ISN
//   bit 2  the frame is a TSO super-segment (gso_size 1448)
//   bits 4-7  event-loop rounds after the frame (host sockets answer)
// Each input gets a fresh Translator and event loop; host connections are
// closed after each input.
//
// Traffic stays on this machine: before the first input the process moves
// into a network namespace of its own with only `lo` up (unshare as root,
// or in a user namespace), so an address a guest frame picks cannot leave.
// Without that namespace the harness refuses to run.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "codec/bytes.h"
#include "codec/frame.h"
#include "common/config.h"
#include "fuzz_records.h"
#include "loop/event_loop.h"
#include "port/frame_port.h"
#include "translator/translator.h"

namespace {

using Bytes = std::vector<uint8_t>;

// The read end of a pipe nobody writes: the port's fd for the event loop
// (frames come from the input, not from the fd).
int g_idle_fd = -1;

// Keeps the last frame ferry sent to the guest, and the last TCP one.
class LastFramePort final : public ferry::FramePort {
 public:
  explicit LastFramePort(bool offloads) : offloads_(offloads) {}
  int fd() const override { return g_idle_fd; }
  size_t receive(ferry::FrameSink&, size_t) override { return 0; }
  bool send(const iovec* iov, int iovcnt) override {
    last_.clear();
    for (int i = 0; i < iovcnt; i++) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      last_.insert(last_.end(), p, p + iov[i].iov_len);
    }
    counters_.tx_frames++;
    const ferry::ParsedFrame f = ferry::parse_frame(last_, ferry::ChecksumPolicy::none);
    if (f.ok() && f.is_tcp()) {
      tcp_seq_next_ = f.tcp.seq + static_cast<uint32_t>(f.tcp.payload_len) +
                      ((f.tcp.flags & 0x03) ? 1u : 0u);  // SYN or FIN take one
      tcp_ack_ = f.tcp.ack;
      have_tcp_ = true;
    }
    return true;
  }
  bool send(const iovec* iov, int iovcnt, const ferry::TxOffload&) override { return send(iov, iovcnt); }
  bool offloads() const override { return offloads_; }
  const ferry::PortCounters& counters() const override { return counters_; }

  bool have_tcp_ = false;
  uint32_t tcp_seq_next_ = 0, tcp_ack_ = 0;

 private:
  bool offloads_;
  Bytes last_;
  ferry::PortCounters counters_;
};

// The loopback servers: TCP echo (accepting, echoing what arrives) and UDP echo.
struct HostServers {
  int tcp4 = -1, tcp6 = -1, udp4 = -1, udp6 = -1;
  std::vector<int> conns;

  void serve() {
    for (int l : {tcp4, tcp6}) {
      for (int c; (c = accept4(l, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) conns.push_back(c);
    }
    char buf[4096];
    for (int c : conns) {
      const ssize_t n = recv(c, buf, sizeof(buf), 0);
      if (n > 0) (void)!send(c, buf, static_cast<size_t>(n), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    for (int u : {udp4, udp6}) {
      sockaddr_storage from{};
      socklen_t fl = sizeof(from);
      const ssize_t n = recvfrom(u, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n >= 0) (void)sendto(u, buf, static_cast<size_t>(n), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), fl);
    }
  }
  void close_conns() {
    for (int c : conns) close(c);
    conns.clear();
  }
};

HostServers g_servers;

// A non-blocking socket bound to addr:port (listening for TCP).
int bound(int family, int type, const char* addr, uint16_t port) {
  const int s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  const int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, addr, &a->sin_addr);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, addr, &a->sin6_addr);
    len = sizeof(*a);
  }
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0 || (type == SOCK_STREAM && listen(s, 128) != 0)) {
    close(s);
    return -1;
  }
  return s;
}

// A network namespace with nothing but lo, up; exits when there is none.
void isolate_network() {
  if (unshare(CLONE_NEWNET) != 0) {
    const uid_t uid = getuid();
    const gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) {
      std::perror("guest_input_fuzz: no network namespace of our own (refusing to run)");
      std::exit(1);
    }
    auto write_file = [](const char* path, const std::string& text) {
      const int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd >= 0) {
        (void)!write(fd, text.data(), text.size());
        close(fd);
      }
    };
    write_file("/proc/self/setgroups", "deny");
    write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  }
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0 || (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr)) != 0) {
    std::perror("guest_input_fuzz: lo up");
    std::exit(1);
  }
  close(s);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  isolate_network();
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) std::exit(1);
  g_idle_fd = p[0];
  g_servers.tcp4 = bound(AF_INET, SOCK_STREAM, "127.0.0.1", 8080);
  g_servers.tcp6 = bound(AF_INET6, SOCK_STREAM, "::1", 8080);
  g_servers.udp4 = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", 5353);
  g_servers.udp6 = bound(AF_INET6, SOCK_DGRAM, "::1", 5353);
  if (g_servers.tcp4 < 0 || g_servers.udp4 < 0) {
    std::perror("guest_input_fuzz: loopback servers");
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  ferry::Config cfg = ferry::Config::defaults();
  cfg.max_conns = 64;
  cfg.max_udp_flows = 64;
  ferry::EventLoop loop;
  LastFramePort port((data[0] & 1) != 0);
  {
    ferry::Translator tr(loop, port, cfg);
    if (const ferry::Status st = tr.start(); !st.ok()) {
      std::fprintf(stderr, "guest_input_fuzz: translator start: %s\n", st.message().c_str());
      std::abort();
    }
    Bytes frame;
    ferry::fuzz::for_each_record(data + 1, size - 1, [&](const ferry::fuzz::Record& rec) {
      frame.assign(rec.frame.begin(), rec.frame.end());
      if ((rec.flags & 2) && port.have_tcp_) {
        const ferry::ParsedFrame f = ferry::parse_frame(frame, ferry::ChecksumPolicy::none);
        if (f.ok() && f.is_tcp() && f.l4_offset + 12 <= frame.size()) {
          ferry::put32(frame.data() + f.l4_offset + 4, port.tcp_ack_);
          ferry::put32(frame.data() + f.l4_offset + 8, port.tcp_seq_next_);
        }
      }
      ferry::RxMeta meta;
      meta.l4_checksum_trusted = (rec.flags & 1) != 0;
      meta.gso_size = (rec.flags & 4) ? 1448 : 0;
      tr.on_guest_frame(frame, meta);
      for (int i = 0; i <= (rec.flags >> 4); i++) {
        g_servers.serve();
        loop.run_once(0);
      }
    });
    for (int i = 0; i < 4; i++) {
      g_servers.serve();
      loop.run_once(0);
    }
  }
  g_servers.close_conns();
  return 0;
}
