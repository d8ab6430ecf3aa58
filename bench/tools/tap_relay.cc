// tap_relay: a cheap stand-in for a VM on a tap, for the bench's
// `ferry attach` scenario.
//
// Theory of operation
// -------------------
// QEMU's tap backend holds a tap's fd on the host and moves frames between
// it and the guest's virtio-net device, virtio_net_hdr included: the guest's
// checksum offload arrives on the tap as CHECKSUM_PARTIAL, its TSO as GSO
// frames. This tool does the same with a second tap as the "guest": it
// creates tap A in namespace --ns-a (the device `ferry attach` serves) and
// tap B in namespace --ns-b (the guest's eth0, with a real kernel TCP stack
// behind it), both with IFF_VNET_HDR, and copies every frame read from one
// fd, header and all, into the other. With --offloads on (the default) both
// taps advertise checksum and TSO offloads (TUNSETOFFLOAD), as virtio-net
// with its default features does; with off, neither does, so the guest
// sends full checksums and MTU-sized segments.
//
// One thread, poll() on both fds, up to 64 frames per wake-up each way; a
// frame the other tap refuses (its queue is full) is dropped and counted,
// as QEMU drops on an overflowing ring. It prints "ready" on stdout once
// both taps exist, runs at most --seconds (alarm), and exits on SIGTERM;
// the taps disappear with it.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile sig_atomic_t g_stop = 0;

// Marks the loop for exit (SIGTERM, SIGINT, SIGALRM).
void on_signal(int) { g_stop = 1; }

// Prints a message with errno's text and exits 1.
[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "tap_relay: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// Joins the network namespace at path (must succeed).
void enter_netns(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(("open " + path).c_str());
  if (setns(fd, CLONE_NEWNET) != 0) die(("setns " + path).c_str());
  close(fd);
}

// Creates tap `name` with a virtio_net_hdr in the current namespace; returns its fd.
int open_tap(const std::string& name, bool offloads) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name.c_str());
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die(("TUNSETIFF " + name).c_str());
  unsigned long feats = offloads ? (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) : 0;
  if (ioctl(fd, TUNSETOFFLOAD, feats) != 0) die("TUNSETOFFLOAD");
  return fd;
}

// Moves up to 64 frames from fd `from` to fd `to`; counts refused writes.
void pump(int from, int to, unsigned char* buf, size_t cap, unsigned long& dropped) {
  for (int i = 0; i < 64; ++i) {
    ssize_t n = read(from, buf, cap);
    if (n <= 0) return;
    if (write(to, buf, static_cast<size_t>(n)) != n) ++dropped;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string ns_a, tap_a, ns_b, tap_b;
  bool offloads = true;
  unsigned seconds = 600;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--ns-a") ns_a = v;
    else if (k == "--tap-a") tap_a = v;
    else if (k == "--ns-b") ns_b = v;
    else if (k == "--tap-b") tap_b = v;
    else if (k == "--offloads") offloads = v == "on";
    else if (k == "--seconds") seconds = static_cast<unsigned>(std::strtoul(v.c_str(), nullptr, 10));
    else {
      std::fprintf(stderr, "tap_relay: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (ns_a.empty() || tap_a.empty() || ns_b.empty() || tap_b.empty() || seconds == 0) {
    std::fprintf(stderr,
                 "usage: tap_relay --ns-a PATH --tap-a NAME --ns-b PATH --tap-b NAME [--offloads on|off] "
                 "[--seconds N]\n");
    return 2;
  }
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (home < 0) die("open /proc/self/ns/net");
  enter_netns(ns_a);
  int fa = open_tap(tap_a, offloads);
  enter_netns(ns_b);
  int fb = open_tap(tap_b, offloads);
  if (setns(home, CLONE_NEWNET) != 0) die("setns back");
  close(home);

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGALRM, &sa, nullptr);
  alarm(seconds);
  std::printf("ready\n");
  std::fflush(stdout);

  static unsigned char buf[65536 + 256];
  unsigned long dropped_ab = 0, dropped_ba = 0;
  pollfd pfd[2] = {{fa, POLLIN, 0}, {fb, POLLIN, 0}};
  while (!g_stop) {
    int r = poll(pfd, 2, 1000);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (pfd[0].revents & POLLIN) pump(fa, fb, buf, sizeof buf, dropped_ab);
    if (pfd[1].revents & POLLIN) pump(fb, fa, buf, sizeof buf, dropped_ba);
  }
  std::fprintf(stderr, "tap_relay: dropped %lu host->guest, %lu guest->host\n", dropped_ab, dropped_ba);
  return 0;
}
