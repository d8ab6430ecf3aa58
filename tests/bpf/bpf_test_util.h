// Helpers shared by the BPF tests: the per-CPU `stats` map summed and
// compared; a private network namespace holding a
// tap (both held by fd, so nothing is left behind when the test ends, even
// on failure), and sending raw frames out of it as the guest would.
// Namespace changes happen in short-lived helper threads only: the test's
// own thread never leaves its namespace.
#pragma once

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "ferry/contract.h"

namespace ferry::bpftest {

using Frame = std::vector<uint8_t>;

// Sums the per-CPU `stats` map behind fd (all zero if it cannot be read).
inline ferry_stats sum_stats(int fd) {
  std::vector<ferry_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
  const uint32_t key = 0;
  ferry_stats sum{};
  if (bpf_map_lookup_elem(fd, &key, per_cpu.data()) != 0) return sum;
  for (const ferry_stats& c : per_cpu) {
#define FERRY_TEST_SUM(n) sum.n += c.n;
    FERRY_STATS_FIELDS(FERRY_TEST_SUM)
#undef FERRY_TEST_SUM
  }
  return sum;
}

// The attach object's attach_stats map (fd), summed over CPUs.
inline ferry_attach_stats sum_attach_stats(int fd) {
  std::vector<ferry_attach_stats> per_cpu(static_cast<size_t>(libbpf_num_possible_cpus()));
  const uint32_t key = 0;
  ferry_attach_stats sum{};
  EXPECT_EQ(bpf_map_lookup_elem(fd, &key, per_cpu.data()), 0);
  for (const ferry_attach_stats& c : per_cpu) {
#define FERRY_TEST_SUM(n) sum.n += c.n;
    FERRY_ATTACH_STATS_FIELDS(FERRY_TEST_SUM)
#undef FERRY_TEST_SUM
  }
  return sum;
}

// after - before, counter by counter.
inline ferry_stats stats_delta(const ferry_stats& after, const ferry_stats& before) {
  ferry_stats d{};
#define FERRY_TEST_SUB(n) d.n = after.n - before.n;
  FERRY_STATS_FIELDS(FERRY_TEST_SUB)
#undef FERRY_TEST_SUB
  return d;
}

// The names of the counters where got and want differ, with both values
// ("" when equal), for one EXPECT_EQ(..., "") per frame.
inline std::string stats_mismatch(const ferry_stats& got, const ferry_stats& want) {
  std::string out;
#define FERRY_TEST_CMP(n)                                                                          \
  if (got.n != want.n) out += std::string(out.empty() ? "" : ", ") + #n " " + std::to_string(got.n) + \
                              " (want " + std::to_string(want.n) + ")";
  FERRY_STATS_FIELDS(FERRY_TEST_CMP)
#undef FERRY_TEST_CMP
  return out;
}

// A namespace held by fd, with a tap (fd held) that is up.
struct TapNs {
  int ns = -1, tap = -1, ifindex = 0;
  std::string error;
  ~TapNs() {
    if (tap >= 0) close(tap);
    if (ns >= 0) close(ns);
  }
};

// Builds TapNs in a helper thread, so this thread never changes namespace.
inline void make_tap_ns(TapNs* t) {
  std::thread th([t] {
    if (unshare(CLONE_NEWNET) != 0) {
      t->error = "unshare";
      return;
    }
    // no IPv6 on the tap: the kernel's own RS/MLD frames would disturb the counts
    int sc = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY | O_CLOEXEC);
    if (sc >= 0) {
      if (write(sc, "1", 1) != 1) t->error = "disable_ipv6";
      close(sc);
    }
    t->ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    t->tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (t->ns < 0 || t->tap < 0) {
      t->error = "open ns/tun";
      return;
    }
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "ftest0");
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (ioctl(t->tap, TUNSETIFF, &ifr) != 0) {
      t->error = "TUNSETIFF";
      return;
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq up{};
    std::strcpy(up.ifr_name, "ftest0");
    ioctl(s, SIOCGIFFLAGS, &up);
    up.ifr_flags = static_cast<short>(up.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &up) != 0) t->error = "ifup";
    ioctl(s, SIOCGIFINDEX, &up);
    t->ifindex = up.ifr_ifindex;
    close(s);
  });
  th.join();
}

// Sends one raw frame out of ifindex from inside namespace ns (helper thread).
inline bool send_from_guest(int ns, int ifindex, const Frame& f) {
  bool ok = false;
  std::thread th([&] {
    if (setns(ns, CLONE_NEWNET) != 0) return;
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (s < 0) return;
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = ifindex;
    sll.sll_halen = 6;
    ok = sendto(s, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) ==
         static_cast<ssize_t>(f.size());
    close(s);
  });
  th.join();
  return ok;
}

// Runs fn inside namespace ns, in a helper thread; false if setns failed.
inline bool in_netns(int ns, const std::function<void()>& fn) {
  bool ok = false;
  std::thread th([&] {
    if (setns(ns, CLONE_NEWNET) != 0) return;
    ok = true;
    fn();
  });
  th.join();
  return ok;
}

}  // namespace ferry::bpftest
