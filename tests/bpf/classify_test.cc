// BPF classifier tests: the pin/read/unpin cycle, stale-instance cleanup,
// and a live attach on a tap inside a private network namespace (frames the
// kernel's test run refuses go through it). What the program decides for
// each kind of frame is the frame table's (frame_table_test.cc), run on
// every hook. Needs root; skips without it or without kernel BPF support (bpf_load.h).
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "bpf/classify.h"
#include "bpf/counters_map.h"
#include "bpf/bpf_load.h"
#include "bpf/bpf_test_util.h"
#include "codec/frame.h"
#include "support/guest_frames.h"

namespace ferry {
namespace {

using bpftest::Frame;
using bpftest::make_tap_ns;
using bpftest::send_from_guest;
using bpftest::TapNs;

const MacAddr kTestGuestMac{{0x02, 0, 0, 0, 0, 2}};
L2L3 v4() { return testing::guest_to_gateway(false, kTestGuestMac); }
L2L3 v6() { return testing::guest_to_gateway(true, kTestGuestMac); }

// 40000 -> 80, seq 1000, ack 2000, window 512 (TcpSpec's defaults).
Frame tcp(const L2L3& ip, uint8_t flags, size_t payload = 0, bool ts = false) {
  return testing::tcp_frame(
      {.ip = ip, .flags = flags, .payload = payload, .opts = ts ? testing::timestamps(7, 9) : TcpOptions{}});
}

class ClassifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    bpf_ = std::make_unique<BpfAttachment>();
    load_ = bpftest::load_classifier(bpf_.get(), 1024);
  }
  static void TearDownTestSuite() { bpf_.reset(); }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    FERRY_BPF_LOADED_OR_SKIP(load_);
  }

  static std::unique_ptr<BpfAttachment> bpf_;
  static bpftest::BpfLoad load_;
};

std::unique_ptr<BpfAttachment> ClassifyTest::bpf_;
bpftest::BpfLoad ClassifyTest::load_;

// ---- pins ---------------------------------------------------------------------

std::string unique_suffix() {
  std::random_device rd;
  return std::to_string(getpid()) + "-" + std::to_string(rd() % 100000);
}

TEST_F(ClassifyTest, PinReadStatsUnpin) {
  BpfAttachment a;
  ASSERT_TRUE(a.load(64).ok());
  std::string name = "test-" + unique_suffix();
  ASSERT_TRUE(a.pin(name).ok());
  std::string dir = std::string(FERRY_PIN_ROOT) + "/" + name;
  struct stat st{};
  EXPECT_EQ(stat((dir + "/stats").c_str(), &st), 0);

  std::vector<std::string> names = list_instances();
  EXPECT_NE(std::find(names.begin(), names.end(), name), names.end());

  Frame f = tcp(v4(), tcpflag::kAck);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(),
              .data_size_in = static_cast<uint32_t>(f.size()), .repeat = 3);
  ASSERT_EQ(bpf_prog_test_run_opts(a.prog_fd(), &opts), 0);
  ferry_stats s{};
  ASSERT_TRUE(read_stats(name, &s).ok());
  EXPECT_EQ(s.guest_frames, 3u);
  EXPECT_EQ(s.guest_pure_acks, 3u);
  EXPECT_EQ(s.ipv4_tcp, 3u);
  // The one reader checks the pin against the struct it is asked for.
  Result<ferry_stats> direct = read_counters_map<ferry_stats>(dir + "/stats");
  ASSERT_TRUE(direct);
  EXPECT_EQ(direct->guest_frames, 3u);
  static_assert(sizeof(ferry_attach_stats) != sizeof(ferry_stats));
  EXPECT_FALSE(read_counters_map<ferry_attach_stats>(dir + "/stats")) << "a value size that does not match";

  EXPECT_FALSE(read_stats("no-such-" + name, &s).ok());
  EXPECT_FALSE(read_stats("../etc", &s).ok());
  BpfAttachment b;
  ASSERT_TRUE(b.load(64).ok());
  EXPECT_FALSE(b.pin(name).ok()) << "a live instance name must not be taken over";

  a.unpin();
  EXPECT_NE(stat(dir.c_str(), &st), 0);
  EXPECT_FALSE(read_stats(name, &s).ok());
}

TEST_F(ClassifyTest, SharedInstanceDirectory) {
  // another component of the same instance pinned first: we join, and on
  // unpin we leave its pin (and so the directory) alone
  std::string name = "test-shared-" + unique_suffix();
  std::string dir = std::string(FERRY_PIN_ROOT) + "/" + name;
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  std::string theirs = dir + "/conns";
  ASSERT_EQ(bpf_obj_pin(bpf_->map_fd("stats"), theirs.c_str()), 0);
  BpfAttachment a;
  ASSERT_TRUE(a.load(64).ok());
  EXPECT_TRUE(a.pin(name).ok());
  a.unpin();
  struct stat st{};
  EXPECT_EQ(stat(theirs.c_str(), &st), 0);
  EXPECT_NE(stat((dir + "/stats").c_str(), &st), 0);
  unlink(theirs.c_str());
  EXPECT_EQ(rmdir(dir.c_str()), 0);
}

TEST_F(ClassifyTest, CleanupStaleInstances) {
  // a private root, so other people's pins are never touched
  std::string root = "/sys/fs/bpf/ferry-test-" + unique_suffix();
  ASSERT_EQ(mkdir(root.c_str(), 0700), 0) << std::strerror(errno);
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);  // now a dead pid
  std::string dead = root + "/run-" + std::to_string(child);
  std::string live = root + "/run-" + std::to_string(getpid());
  std::string other = root + "/eth-test";
  for (const std::string& d : {dead, live, other}) {
    ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
    ASSERT_EQ(bpf_obj_pin(bpf_->map_fd("stats"), (d + "/stats").c_str()), 0);
  }
  EXPECT_TRUE(instance_is_stale("run-" + std::to_string(child)));
  EXPECT_FALSE(instance_is_stale("run-" + std::to_string(getpid())));
  EXPECT_FALSE(instance_is_stale("eth-test"));
  std::string err;
  EXPECT_EQ(cleanup_stale_instances_in(root, &err), 1) << err;
  struct stat st{};
  EXPECT_NE(stat(dead.c_str(), &st), 0);
  EXPECT_EQ(stat(live.c_str(), &st), 0);
  EXPECT_EQ(stat(other.c_str(), &st), 0);
  for (const std::string& d : {live, other}) {
    unlink((d + "/stats").c_str());
    rmdir(d.c_str());
  }
  EXPECT_EQ(rmdir(root.c_str()), 0);
}

// ---- live attach on a tap in a private namespace --------------------------------

TEST_F(ClassifyTest, LiveAttachOnTapEgress) {
  TapNs t;
  make_tap_ns(&t);
  ASSERT_EQ(t.error, "");
  BpfAttachment a;
  ASSERT_TRUE(a.load(64).ok());
  ASSERT_TRUE(a.attach_tc_egress(t.ns, "ftest0").ok());
  EXPECT_TRUE(a.attached());

  ferry_stats before = bpftest::sum_stats(a.map_fd("stats"));
  Frame f = tcp(v4(), tcpflag::kAck);
  ASSERT_TRUE(send_from_guest(t.ns, t.ifindex, f));
  ferry_stats after = bpftest::sum_stats(a.map_fd("stats"));
  EXPECT_GE(after.guest_frames - before.guest_frames, 1u);
  EXPECT_GE(after.guest_pure_acks - before.guest_pure_acks, 1u);

  // frames the kernel's test-run refuses: IPv4 and IPv6 headers cut short
  const Frame f6 = tcp(v6(), tcpflag::kAck);
  for (const Frame& g : {Frame(f.begin(), f.begin() + 14 + 10),
                         Frame(f6.begin(), f6.begin() + 14 + 30)}) {
    ferry_stats b = bpftest::sum_stats(a.map_fd("stats"));
    ASSERT_TRUE(send_from_guest(t.ns, t.ifindex, g));
    ferry_stats c = bpftest::sum_stats(a.map_fd("stats"));
    EXPECT_EQ(c.guest_frames - b.guest_frames, 1u);
    EXPECT_EQ(c.malformed - b.malformed, 1u);
    EXPECT_EQ(c.passed_to_userspace - b.passed_to_userspace, 1u);
  }

  // the frame went on to the tap fd (TC_ACT_OK)
  uint8_t buf[2048];
  bool seen = false;
  for (int i = 0; i < 50 && !seen; i++) {
    ssize_t n;
    while ((n = read(t.tap, buf, sizeof(buf))) > 0)
      if (static_cast<size_t>(n) == f.size() && std::memcmp(buf, f.data(), f.size()) == 0)
        seen = true;
    if (!seen) usleep(2000);
  }
  EXPECT_TRUE(seen);

  a.detach();
  EXPECT_FALSE(a.attached());
  // we created the clsact qdisc and nothing else used it: it is gone, so
  // creating it again succeeds (instead of EEXIST)
  std::thread th([&] {
    ASSERT_EQ(setns(t.ns, CLONE_NEWNET), 0);
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = t.ifindex, .attach_point = BPF_TC_EGRESS);
    EXPECT_EQ(bpf_tc_hook_create(&hook), 0);
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    bpf_tc_hook_destroy(&hook);
  });
  th.join();
}

TEST_F(ClassifyTest, DetachKeepsSomeoneElsesQdisc) {
  TapNs t;
  make_tap_ns(&t);
  ASSERT_EQ(t.error, "");
  // "someone else" made the qdisc and put a filter at ingress
  BpfAttachment other;
  ASSERT_TRUE(other.load(64).ok());
  uint32_t handle = 0, prio = 0;
  std::thread th([&] {
    ASSERT_EQ(setns(t.ns, CLONE_NEWNET), 0);
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = t.ifindex, .attach_point = BPF_TC_INGRESS);
    ASSERT_EQ(bpf_tc_hook_create(&hook), 0);
    LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = other.prog_fd());
    ASSERT_EQ(bpf_tc_attach(&hook, &o), 0);
    handle = o.handle;
    prio = o.priority;
  });
  th.join();

  BpfAttachment a;
  ASSERT_TRUE(a.load(64).ok());
  ASSERT_TRUE(a.attach_tc_egress(t.ns, t.ifindex).ok());
  a.detach();

  std::thread check([&] {
    ASSERT_EQ(setns(t.ns, CLONE_NEWNET), 0);
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = t.ifindex, .attach_point = BPF_TC_INGRESS);
    EXPECT_EQ(bpf_tc_hook_create(&hook), -EEXIST) << "clsact must survive";
    LIBBPF_OPTS(bpf_tc_opts, q, .handle = handle, .priority = prio);
    EXPECT_EQ(bpf_tc_query(&hook, &q), 0) << "the other filter must survive";
  });
  check.join();
}

TEST_F(ClassifyTest, AttachErrorsAreStrings) {
  BpfAttachment a;
  EXPECT_FALSE(a.attach_tc_egress(-1, 1).ok());  // not loaded
  ASSERT_TRUE(a.load(64).ok());
  EXPECT_FALSE(a.attach_tc_egress(-1, "ferry-no-such-dev").ok());
  EXPECT_FALSE(a.attach_tc_egress(-1, 0).ok());
  EXPECT_FALSE(a.pin("bad/name").ok());
  EXPECT_FALSE(BpfAttachment().load(0).ok());
}

}  // namespace
}  // namespace ferry
