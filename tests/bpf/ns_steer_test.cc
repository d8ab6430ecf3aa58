// -T all's sk_lookup program (bpf/ferry_ns_steer.bpf.c, loaded by
// userspace/nsfwd/ns_steering.h): which lookups it hands to the one
// listener, through BPF_PROG_TEST_RUN (the selected socket's cookie comes
// back in the context), and the whole path in a private namespace: a
// connect to any steered port of 127.0.0.1 or ::1 is accepted by the
// family's one listener, which reads the port from the accepted socket.
// test-libs: ferry_nsfwd ferry_bpf ferry_loop ferry_netns ferry_common
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <fcntl.h>
#include <linux/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "bpf/bpf_load.h"
#include "bpf/bpf_test_util.h"
#include "ferry_ns_steer.skel.h"  // generated (a SYSTEM include: cmake/BpfObject.cmake)
#include "nsfwd/ns_listeners.h"
#include "nsfwd/ns_steering.h"

namespace ferry {
namespace {

constexpr uint32_t kSkPass = 1;

// A listening TCP socket on the loopback of a family, any port (-1: failed).
int loopback_listener(bool v6, uint16_t port = 0) {
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  sockaddr_storage ss{};
  const socklen_t len = loopback_sockaddr(v6, port, &ss);
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

uint64_t cookie_of(int fd) {
  uint64_t c = 0;
  socklen_t len = sizeof(c);
  getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len);
  return c;
}

// Rules as `-T 40000,all` would give them (after ~ and the ephemeral range):
// 1-1000 and 2000-2099 by `all` (2000 forwarded to 3000), 40000 explicit.
std::vector<NsForward> rules() {
  return {{1, 1000, 1, true}, {2000, 2099, 3000, true}, {40000, 40000, 40000, false}};
}

class NsSteerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    FERRY_BPF_LOADED_OR_SKIP(bpftest::load_bpf(
        [&] {
          Result<std::unique_ptr<NsSteering>> s = NsSteering::load(rules());
          if (!s) return s.status();
          steer_ = std::move(*s);
          return Status{};
        },
        ferry_ns_steer__elf_bytes));
  }

  // Runs the program on a lookup; the selected socket's cookie (0: none).
  uint64_t run(uint32_t family, uint32_t protocol, uint32_t port, bool loopback = true) {
    bpf_sk_lookup ctx{};
    ctx.family = family;
    ctx.protocol = protocol;
    ctx.local_port = port;
    ctx.remote_port = htons(40001);
    if (family == AF_INET) {
      ctx.local_ip4 = htonl(loopback ? INADDR_LOOPBACK : 0xc6120002 /* 198.18.0.2 */);
      ctx.remote_ip4 = htonl(INADDR_LOOPBACK);
    } else {
      ctx.local_ip6[3] = htonl(loopback ? 1 : 2);
      ctx.remote_ip6[3] = htonl(1);
    }
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &ctx, .ctx_out = &ctx, .ctx_size_in = sizeof(ctx),
                .ctx_size_out = sizeof(ctx));
    EXPECT_EQ(bpf_prog_test_run_opts(steer_->program_fd(), &opts), 0);
    EXPECT_EQ(opts.retval, kSkPass);
    return ctx.cookie;
  }

  std::unique_ptr<NsSteering> steer_;
};

TEST_F(NsSteerTest, SteeredPortsOfLoopbackGoToTheFamilysListenerAndNothingElse) {
  // Listeners of the test's own namespace, put in the sockmap only: the
  // program is run by BPF_PROG_TEST_RUN, never attached here.
  const int l4 = loopback_listener(false), l6 = loopback_listener(true);
  ASSERT_GE(l4, 0);
  ASSERT_GE(l6, 0);
  ASSERT_TRUE(steer_->set_listeners(l4, l6).ok());
  const uint64_t c4 = cookie_of(l4), c6 = cookie_of(l6);
  ASSERT_NE(c4, 0u);
  for (uint32_t port : {1u, 22u, 1000u, 2000u, 2099u}) {
    EXPECT_EQ(run(AF_INET, IPPROTO_TCP, port), c4) << port;
    EXPECT_EQ(run(AF_INET6, IPPROTO_TCP, port), c6) << port;
  }
  // Not steered: outside the `all` rules (an explicit port has its own
  // listener), UDP, another address than the loopback's own.
  for (uint32_t port : {0u, 1001u, 1999u, 2100u, 40000u, 65535u}) {
    EXPECT_EQ(run(AF_INET, IPPROTO_TCP, port), 0u) << port;
    EXPECT_EQ(run(AF_INET6, IPPROTO_TCP, port), 0u) << port;
  }
  EXPECT_EQ(run(AF_INET, IPPROTO_UDP, 22), 0u);
  EXPECT_EQ(run(AF_INET6, IPPROTO_UDP, 22), 0u);
  EXPECT_EQ(run(AF_INET, IPPROTO_TCP, 22, false), 0u);
  EXPECT_EQ(run(AF_INET6, IPPROTO_TCP, 22, false), 0u);
  close(l4);
  close(l6);
}

TEST_F(NsSteerTest, AnEmptySlotLeavesItsFamilyToTheKernel) {
  const int l4 = loopback_listener(false);
  ASSERT_GE(l4, 0);
  ASSERT_TRUE(steer_->set_listeners(l4, -1).ok());  // -4
  EXPECT_EQ(run(AF_INET, IPPROTO_TCP, 22), cookie_of(l4));
  EXPECT_EQ(run(AF_INET6, IPPROTO_TCP, 22), 0u);
  close(l4);
}

// Connects to the loopback of a family on port inside the current namespace;
// the connected fd (-1: refused or failed).
int connect_loopback(bool v6, uint16_t port) {
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  const socklen_t len = loopback_sockaddr(v6, port, &ss);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// The local port of an accepted socket (0: failed).
uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

TEST_F(NsSteerTest, AttachedToANamespaceOneListenerAcceptsEverySteeredPort) {
  // A private namespace (held by fd) with its loopback up; the listeners
  // are made in it, as ferry's helper makes them in the guest's.
  int ns = -1;
  std::thread th([&] {
    if (unshare(CLONE_NEWNET) != 0) return;
    const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq up{};
    std::strcpy(up.ifr_name, "lo");
    ioctl(s, SIOCGIFFLAGS, &up);
    up.ifr_flags = static_cast<short>(up.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &up) == 0) ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    close(s);
  });
  th.join();
  ASSERT_GE(ns, 0);
  int l[2] = {-1, -1};
  ASSERT_TRUE(bpftest::in_netns(ns, [&] {
    l[0] = loopback_listener(false, 1);  // bound to the first `all` port, as ferry's
    l[1] = loopback_listener(true, 1);
  }));
  ASSERT_GE(l[0], 0);
  ASSERT_GE(l[1], 0);
  ASSERT_TRUE(steer_->set_listeners(l[0], l[1]).ok());
  ASSERT_TRUE(steer_->attach(ns).ok());
  ASSERT_TRUE(bpftest::in_netns(ns, [&] {
    for (bool v6 : {false, true}) {
      for (uint16_t port : {uint16_t{1}, uint16_t{80}, uint16_t{1000}, uint16_t{2050}}) {
        const int c = connect_loopback(v6, port);
        EXPECT_GE(c, 0) << port << (v6 ? " v6" : " v4");
        const int a = accept4(l[v6 ? 1 : 0], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        EXPECT_GE(a, 0) << port << (v6 ? " v6" : " v4");
        EXPECT_EQ(local_port(a), port);
        if (a >= 0) close(a);
        if (c >= 0) close(c);
      }
      // Outside the rules nothing listens: refused as without the program.
      EXPECT_EQ(connect_loopback(v6, 1001), -1);
      EXPECT_EQ(errno, ECONNREFUSED);
    }
  }));
  close(l[0]);
  close(l[1]);
  close(ns);
}

}  // namespace
}  // namespace ferry
