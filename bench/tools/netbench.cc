// netbench: the TCP load generator of bench/run (request/response, connect
// rate, many-connection scale), small enough that its own cost does not hide
// the translator's.
//
// Theory of operation
// -------------------
// One binary, one mode per invocation; every mode is bounded in time by its
// own --seconds (plus SIGALRM as a backstop) and prints one result line of
// `key=value` pairs on stdout for bench/run to parse:
//
//   server  epoll echo server: accepts every connection on ADDR:PORT and
//           writes back every byte it reads; after echoing a kCloseByte it
//           closes the connection. Serves RR (one connection), CRR (one
//           connection after another) and the scale modes (10,000 open at
//           once) alike. Single-threaded, so pinning it to a CPU pins all
//           of it.
//   rr      one connection, TCP_NODELAY; write 1 byte, read 1 byte, repeated
//           for --seconds. Blocking calls: two syscalls per transaction and
//           nothing else, which matters when client, server and translator
//           share one CPU. Prints the mean and the 99th percentile of the
//           per-transaction latencies (the first kRrWarmup are dropped).
//   crr     connect, write 1 byte (kCloseByte), read it back, read the
//           server's FIN, close; repeated. Prints connections per second.
//           The server closes first, as an HTTP/1.0 server does: TIME_WAIT
//           stays with the server's port, and neither the guest nor a
//           translator's host sockets pile up TIME_WAITs that would slow
//           down every later connect() on the machine.
//   scale   opens --conns connections with at most --window connects in
//           flight (the setup rate; at most --setup-seconds, and no longer
//           than --stall-seconds without one connect completing: then it
//           goes on with what opened), then either holds them idle or, with
//           --active N, keeps the first N doing 1-byte ping-pong, for
//           --seconds. With --watch-pid it samples that process's CPU time
//           (/proc/PID/stat utime+stime) and resident memory (VmRSS) at the
//           start and end of the hold: the translator's cost under that load.
//
// Scale runs end the same way: each open connection sends kCloseByte and
// waits (at most --setup-seconds, and no longer than 1 s without a FIN) for
// the server's FIN before the client closes. The stall bounds are waiting,
// not measuring: a connect still pending seconds after the last one
// completed (pasta drops a few SYNs for good) or a FIN that does not come
// would otherwise hold the run for the whole bound (22 s of pasta's 25-s
// scale run in a full bench run).
//
// States of a scale connection: CONNECTING -> OPEN (idle) or
// OPEN -> WAITING (1 byte sent, echo pending) -> OPEN ... A connection that
// fails is counted and closed; the mode still reports what it reached.
//
// Invariants: no allocation in a measured loop (latency samples are
// reserved up front and dropped past the reservation), every socket call
// checked, every blocking read bounded by SO_RCVTIMEO.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::bench {

namespace {

constexpr size_t kRrWarmup = 100;
constexpr char kCloseByte = 'c';  // "echo this, then close"
constexpr size_t kRrMaxSamples = 20'000'000;

struct Options {
  std::string mode;
  std::string addr = "127.0.0.1";
  int port = 0;
  double seconds = 2.0;
  int conns = 10000;
  int window = 128;
  int active = 0;
  int watch_pid = 0;
  double setup_seconds = 20.0;
  double stall_seconds = 4.0;
};

// Teardown gives up on the FINs still missing after this long without one.
constexpr uint64_t kCloseStallNs = 1'000'000'000ull;

// Monotonic clock in nanoseconds.
uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Prints a one-line error and exits non-zero.
[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "netbench: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// Raises the open-file limit to its hard maximum (the scale modes need it).
void raise_nofile() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Fills a sockaddr for ADDR:PORT (IPv4 or IPv6 literal); false if neither.
bool make_addr(const Options& o, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, o.addr.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(o.port));
    *len = sizeof(*v4);
    return true;
  }
  if (inet_pton(AF_INET6, o.addr.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(o.port));
    *len = sizeof(*v6);
    return true;
  }
  return false;
}

// Sets TCP_NODELAY: 1-byte messages must leave at once.
void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Bounds every blocking read and write of fd to 2 s.
void set_timeouts(int fd) {
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Connects to the target within 3 s and returns a blocking socket; -1 on
// failure (errno kept). The bound matters when a translator swallows SYNs:
// the kernel would otherwise retry for two minutes.
int connect_blocking(const sockaddr_storage& ss, socklen_t len) {
  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  set_nodelay(fd);
  set_timeouts(fd);
  int err = 0;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      err = poll(&p, 1, 3000) == 1 ? 0 : ETIMEDOUT;
      socklen_t el = sizeof(int);
      if (err == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
    }
  }
  if (err != 0) {
    close(fd);
    errno = err;
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

// One request/response: 1 byte out, 1 byte back. False on any failure.
bool ping(int fd) {
  char c = 'x';
  if (write(fd, &c, 1) != 1) return false;
  return read(fd, &c, 1) == 1;
}

// The echo server: epoll, non-blocking, until --seconds pass.
int run_server(const Options& o) {
  raise_nofile();
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!make_addr(o, &ss, &len)) {
    std::fprintf(stderr, "netbench: bad address %s\n", o.addr.c_str());
    return 2;
  }
  const int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(lfd, reinterpret_cast<sockaddr*>(&ss), len) != 0) die("bind");
  if (listen(lfd, 4096) != 0) die("listen");
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::printf("listening addr=%s port=%d\n", o.addr.c_str(), o.port);
  std::fflush(stdout);

  const uint64_t deadline = now_ns() + static_cast<uint64_t>(o.seconds * 1e9);
  uint64_t accepted = 0, echoed = 0;
  std::vector<epoll_event> events(1024);
  char buf[65536];
  while (now_ns() < deadline) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    for (int i = 0; i < n; i++) {
      const int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          set_nodelay(c);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) {
            close(c);
            continue;
          }
          accepted++;
        }
        continue;
      }
      const ssize_t r = read(fd, buf, sizeof(buf));
      if (r > 0) {
        // Echo what was read; a short write on a 1-byte protocol means the
        // peer stopped reading, which only a broken client does: drop it.
        if (write(fd, buf, static_cast<size_t>(r)) != r || std::memchr(buf, kCloseByte, static_cast<size_t>(r)) != nullptr)
          close(fd);
        echoed += static_cast<uint64_t>(r);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close(fd);  // also removes it from the epoll set
      }
    }
  }
  std::printf("server accepted=%llu echoed_bytes=%llu\n", static_cast<unsigned long long>(accepted),
              static_cast<unsigned long long>(echoed));
  return 0;
}

// RR: one connection, ping-pong for --seconds; prints mean and p99 in us.
int run_rr(const Options& o) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!make_addr(o, &ss, &len)) return 2;
  const int fd = connect_blocking(ss, len);
  if (fd < 0) die("connect");
  std::vector<uint32_t> samples;
  samples.reserve(std::min<size_t>(kRrMaxSamples, static_cast<size_t>(o.seconds * 400'000) + kRrWarmup));
  const uint64_t start = now_ns();
  const uint64_t deadline = start + static_cast<uint64_t>(o.seconds * 1e9);
  uint64_t count = 0;
  for (uint64_t t = start; t < deadline;) {
    if (!ping(fd)) die("rr transaction");
    const uint64_t t2 = now_ns();
    if (count >= kRrWarmup && samples.size() < samples.capacity())
      samples.push_back(static_cast<uint32_t>(std::min<uint64_t>(t2 - t, UINT32_MAX)));
    count++;
    t = t2;
  }
  close(fd);
  if (samples.empty()) {
    std::fprintf(stderr, "netbench: rr: too few transactions (%llu)\n", static_cast<unsigned long long>(count));
    return 1;
  }
  double sum = 0;
  for (uint32_t s : samples) sum += s;
  const size_t k = std::min(samples.size() - 1, samples.size() * 99 / 100);
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k), samples.end());
  std::printf("rr n=%zu mean_us=%.3f p99_us=%.3f\n", samples.size(), sum / static_cast<double>(samples.size()) / 1e3,
              samples[k] / 1e3);
  return 0;
}

// CRR: connect, 1 byte each way, close; prints connections per second.
int run_crr(const Options& o) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!make_addr(o, &ss, &len)) return 2;
  const uint64_t start = now_ns();
  const uint64_t deadline = start + static_cast<uint64_t>(o.seconds * 1e9);
  uint64_t done = 0, failed = 0;
  uint64_t t = start;
  while (t < deadline) {
    const int fd = connect_blocking(ss, len);
    char c = kCloseByte;
    if (fd < 0 || write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1 || read(fd, &c, 1) != 0) {
      if (fd >= 0) close(fd);
      if (++failed > 100) break;  // e.g. EADDRNOTAVAIL: stop, report what we have
    } else {
      close(fd);
      done++;
    }
    t = now_ns();
  }
  const double secs = static_cast<double>(t - start) / 1e9;
  std::printf("crr n=%llu failed=%llu per_s=%.1f\n", static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(failed), static_cast<double>(done) / secs);
  return done > 0 ? 0 : 1;
}

// CPU seconds (utime+stime) and resident KiB of pid; false if unreadable.
bool sample_proc(int pid, double* cpu_s, long* rss_kib) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return false;
  char buf[2048];
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // comm may hold spaces
  if (p == nullptr) return false;
  unsigned long long utime = 0, stime = 0;
  // Fields after comm: state(3) ... utime(14) stime(15).
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return false;
  *cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::snprintf(path, sizeof(path), "/proc/%d/status", pid);
  f = std::fopen(path, "r");
  if (f == nullptr) return false;
  *rss_kib = -1;
  char line[256];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) *rss_kib = std::strtol(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return true;
}

enum class ConnState : uint8_t { kConnecting, kOpen, kWaiting, kDead };

// SCALE: open --conns (window --window), hold idle or drive --active for --seconds.
int run_scale(const Options& o) {
  raise_nofile();
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!make_addr(o, &ss, &len)) return 2;
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  std::vector<int> fds;
  std::vector<ConnState> state;  // indexed by position in fds
  fds.reserve(static_cast<size_t>(o.conns));
  state.reserve(static_cast<size_t>(o.conns));
  std::vector<epoll_event> events(4096);
  int in_flight = 0, open = 0, failed = 0;
  const uint64_t t0 = now_ns();
  uint64_t t_last_open = t0;
  uint64_t t_progress = t0;  // the last connect that completed, either way
  // Setup is bounded too: at most --setup-seconds, at most --stall-seconds
  // without progress (SYN retransmissions at 1 s and 3 s still count); what
  // opened by then is kept.
  const uint64_t setup_deadline = t0 + static_cast<uint64_t>(o.setup_seconds * 1e9);
  const uint64_t stall_ns = static_cast<uint64_t>(o.stall_seconds * 1e9);
  for (uint64_t t = t0; open + failed < o.conns && t < setup_deadline && t - t_progress < stall_ns; t = now_ns()) {
    while (in_flight < o.window && static_cast<int>(fds.size()) < o.conns) {
      const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        failed = o.conns - open;  // out of fds: stop opening
        break;
      }
      set_nodelay(fd);
      const size_t idx = fds.size();
      fds.push_back(fd);
      state.push_back(ConnState::kConnecting);
      const int r = connect(fd, reinterpret_cast<const sockaddr*>(&ss), len);
      if (r != 0 && errno != EINPROGRESS) {
        close(fd);
        state[idx] = ConnState::kDead;
        failed++;
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u64 = idx;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      in_flight++;
    }
    if (in_flight == 0) break;
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    for (int i = 0; i < n; i++) {
      const size_t idx = events[static_cast<size_t>(i)].data.u64;
      const int fd = fds[idx];
      int err = 0;
      socklen_t el = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
      in_flight--;
      t_progress = now_ns();
      if (err != 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        state[idx] = ConnState::kDead;
        failed++;
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;  // from now on only echoes matter
      ev.data.u64 = idx;
      epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
      state[idx] = ConnState::kOpen;
      open++;
      t_last_open = now_ns();
    }
  }
  // The rate is over the time the opened connections took, not the bound.
  const double setup_s = static_cast<double>(std::max(t_last_open, t0 + 1) - t0) / 1e9;
  // Connects still pending at the bound are given up: closed, not held.
  int abandoned = 0;
  for (size_t idx = 0; idx < fds.size(); idx++) {
    if (state[idx] != ConnState::kConnecting) continue;
    epoll_ctl(ep, EPOLL_CTL_DEL, fds[idx], nullptr);
    close(fds[idx]);
    state[idx] = ConnState::kDead;
    abandoned++;
  }

  double cpu0 = 0, cpu1 = 0;
  long rss0 = -1, rss1 = -1;
  const bool watch = o.watch_pid > 0 && sample_proc(o.watch_pid, &cpu0, &rss0);

  // Start the active ones: each sends its first byte.
  int active = 0;
  for (size_t idx = 0; idx < fds.size() && active < o.active; idx++) {
    if (state[idx] != ConnState::kOpen) continue;
    char c = 'x';
    if (write(fds[idx], &c, 1) == 1) {
      state[idx] = ConnState::kWaiting;
      active++;
    }
  }
  const uint64_t h0 = now_ns();
  const uint64_t hold_end = h0 + static_cast<uint64_t>(o.seconds * 1e9);
  uint64_t transactions = 0;
  char buf[256];
  for (uint64_t t = h0; t < hold_end; t = now_ns()) {
    const int timeout_ms = static_cast<int>(std::min<uint64_t>((hold_end - t) / 1'000'000 + 1, 200));
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout_ms);
    for (int i = 0; i < n; i++) {
      const size_t idx = events[static_cast<size_t>(i)].data.u64;
      const int fd = fds[idx];
      const ssize_t r = read(fd, buf, sizeof(buf));
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        close(fd);
        state[idx] = ConnState::kDead;
        continue;
      }
      if (state[idx] == ConnState::kWaiting) {
        transactions++;
        char c = 'x';
        if (write(fd, &c, 1) != 1) state[idx] = ConnState::kOpen;
      }
    }
  }
  const double hold_s = static_cast<double>(now_ns() - h0) / 1e9;
  const bool watched = watch && sample_proc(o.watch_pid, &cpu1, &rss1);
  int alive = 0;
  for (ConnState s : state) alive += (s == ConnState::kOpen || s == ConnState::kWaiting) ? 1 : 0;
  std::printf("scale conns=%d open=%d failed=%d abandoned=%d alive=%d setup_s=%.3f setup_per_s=%.1f active=%d hold_s=%.3f "
              "transactions=%llu tps=%.1f",
              o.conns, open, failed, abandoned, alive, setup_s, open / setup_s, active, hold_s,
              static_cast<unsigned long long>(transactions), static_cast<double>(transactions) / hold_s);
  if (watched)
    std::printf(" cpu_pct=%.2f rss_kib_start=%ld rss_kib_end=%ld", 100.0 * (cpu1 - cpu0) / hold_s, rss0, rss1);
  std::printf("\n");
  std::fflush(stdout);
  // Teardown, outside the measured hold: ask the server to close each
  // connection, wait (at most --setup-seconds) for its FIN, then close ours.
  int closing = 0;
  for (size_t idx = 0; idx < fds.size(); idx++) {
    if (state[idx] == ConnState::kDead) continue;
    char c = kCloseByte;
    if (write(fds[idx], &c, 1) == 1) closing++;
  }
  const uint64_t c0 = now_ns();
  const uint64_t close_end = c0 + static_cast<uint64_t>(o.setup_seconds * 1e9);
  const int to_close = closing;
  uint64_t t_fin = c0;
  for (uint64_t t = c0; closing > 0 && t < close_end && t - t_fin < kCloseStallNs; t = now_ns()) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < n; i++) {
      const size_t idx = events[static_cast<size_t>(i)].data.u64;
      const ssize_t r = read(fds[idx], buf, sizeof(buf));
      if (r > 0 || (r < 0 && (errno == EAGAIN || errno == EINTR))) continue;
      epoll_ctl(ep, EPOLL_CTL_DEL, fds[idx], nullptr);
      close(fds[idx]);
      state[idx] = ConnState::kDead;
      closing--;
      t_fin = now_ns();
    }
  }
  // On stderr (bench/run's client log): where a slow scale run's time went.
  std::fprintf(stderr, "netbench scale: setup %.2f s (%d abandoned), teardown %.2f s, %d of %d FINs missing\n",
               static_cast<double>(h0 - t0) / 1e9, abandoned, static_cast<double>(now_ns() - c0) / 1e9, closing,
               to_close);
  for (size_t idx = 0; idx < fds.size(); idx++) {
    if (state[idx] != ConnState::kDead) close(fds[idx]);
  }
  return open > 0 ? 0 : 1;
}

// Prints usage and returns 2.
int usage() {
  std::fputs(
      "usage: netbench MODE [--addr A] [--port P] [--seconds S] [--conns N] [--window W]\n"
      "                     [--active N] [--watch-pid PID] [--setup-seconds S] [--stall-seconds S]\n"
      "modes: server | rr | crr | scale\n",
      stderr);
  return 2;
}

// SIGALRM backstop: the process never outlives its bound by more than 30 s.
void on_alarm(int) { _exit(3); }

}  // namespace

}  // namespace ferry::bench

int main(int argc, char** argv) {
  using ferry::bench::Options;
  if (argc < 2) return ferry::bench::usage();
  Options o;
  o.mode = argv[1];
  for (int i = 2; i < argc; i++) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return ferry::bench::usage();
    const char* v = argv[++i];
    if (a == "--addr") o.addr = v;
    else if (a == "--port") o.port = std::atoi(v);
    else if (a == "--seconds") o.seconds = std::atof(v);
    else if (a == "--conns") o.conns = std::atoi(v);
    else if (a == "--window") o.window = std::max(1, std::atoi(v));
    else if (a == "--active") o.active = std::atoi(v);
    else if (a == "--watch-pid") o.watch_pid = std::atoi(v);
    else if (a == "--setup-seconds") o.setup_seconds = std::atof(v);
    else if (a == "--stall-seconds") o.stall_seconds = std::atof(v);
    else return ferry::bench::usage();
  }
  if (o.port <= 0 || o.port > 65535 || o.seconds <= 0) return ferry::bench::usage();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, ferry::bench::on_alarm);
  alarm(static_cast<unsigned>(o.seconds + (o.mode == "scale" ? 2 * o.setup_seconds : 0)) + 30);
  if (o.mode == "server") return ferry::bench::run_server(o);
  if (o.mode == "rr") return ferry::bench::run_rr(o);
  if (o.mode == "crr") return ferry::bench::run_crr(o);
  if (o.mode == "scale") return ferry::bench::run_scale(o);
  return ferry::bench::usage();
}
