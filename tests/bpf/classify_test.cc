// BPF classifier tests: the TC program run through BPF_PROG_TEST_RUN on
// hand-built frames, one per class and per malformation, checking the
// verdict and the exact change of every counter; then the pin/read/unpin
// cycle, stale-instance cleanup, and a live attach on a tap inside a
// private network namespace.
//
// Frames start from the codec's builders (valid frames with checksums) and
// are then cut or patched by hand for the malformed cases. Needs root and
// BPF; skips otherwise.
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

#include "bpf/classifier.h"
#include "bpf/bpf_test_util.h"
#include "codec/frame.h"
#include "support/guest_frames.h"

namespace ferry {
namespace {

constexpr int kTcActOk = 0;

using bpftest::Frame;
using bpftest::make_tap_ns;
using bpftest::send_from_guest;
using bpftest::TapNs;

// Sums the per-CPU stats map behind `fd`.
ferry_stats read_map(int fd) {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<ferry_stats> v(static_cast<size_t>(ncpu));
  uint32_t key = 0;
  ferry_stats sum{};
  if (bpf_map_lookup_elem(fd, &key, v.data()) != 0) return sum;
  for (const auto& c : v) {
#define ADD(n) sum.n += c.n;
    FERRY_STATS_FIELDS(ADD)
#undef ADD
  }
  return sum;
}

// The expected delta: every frame is seen and passed on.
ferry_stats expect(void (*set)(ferry_stats&)) {
  ferry_stats e{};
  e.guest_frames = 1;
  e.passed_to_userspace = 1;
  set(e);
  return e;
}

const MacAddr kTestGuestMac{{0x02, 0, 0, 0, 0, 2}};
L2L3 v4() { return testing::guest_to_gateway(false, kTestGuestMac); }
L2L3 v6() { return testing::guest_to_gateway(true, kTestGuestMac); }

Frame tcp(const L2L3& ip, uint8_t flags, size_t payload = 0, bool ts = false) {
  std::vector<uint8_t> data(payload, 0x61);
  TcpSegment s;
  s.ip = ip;
  s.sport = 40000;
  s.dport = 80;
  s.seq = 1000;
  s.ack = 2000;
  s.flags = flags;
  s.window = 512;
  if (ts) {
    s.opts.has_timestamps = true;
    s.opts.ts_val = 7;
    s.opts.ts_ecr = 9;
  }
  s.payload = data;
  Frame f(kMaxFrameLen);
  f.resize(build_tcp_frame(f, s));
  return f;
}

Frame udp(const L2L3& ip, size_t payload = 4) {
  std::vector<uint8_t> data(payload, 0x62);
  UdpDatagram d;
  d.ip = ip;
  d.sport = 5353;
  d.dport = 53;
  d.payload = data;
  Frame f(kMaxFrameLen);
  f.resize(build_udp_frame(f, d));
  return f;
}

Frame icmp(const L2L3& ip) {
  const bool is6 = !ip.src.is_v4();
  uint8_t body[8] = {0, 1, 0, 1, 'p', 'i', 'n', 'g'};
  Frame f(kMaxFrameLen);
  f.resize(build_icmp_frame(f, ip, is6 ? 128 : 8, 0, body));
  return f;
}

// Inserts `bytes` into the frame at offset `at`.
void insert(Frame& f, size_t at, const std::vector<uint8_t>& bytes) {
  f.insert(f.begin() + static_cast<long>(at), bytes.begin(), bytes.end());
}

void put16(Frame& f, size_t at, uint16_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}
uint16_t get16(const Frame& f, size_t at) { return static_cast<uint16_t>(f[at] << 8 | f[at + 1]); }

constexpr size_t kL3 = 14;          // IP header offset without VLAN
constexpr size_t kTcp4 = 14 + 20;   // TCP header offset, IPv4 without options
constexpr size_t kTcp6 = 14 + 40;

class ClassifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    bpf_ = std::make_unique<BpfAttachment>();
    load_error_ = bpf_->load(1024);
    if (!load_error_.empty()) bpf_.reset();
  }
  static void TearDownTestSuite() { bpf_.reset(); }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!bpf_) GTEST_SKIP() << "BPF unavailable: " << load_error_;
  }

  // Runs the program once on `f`; returns the counter delta.
  ferry_stats run(const Frame& f, int* retval) {
    int fd = bpf_->map_fd("stats");
    ferry_stats before = read_map(fd);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(),
                .data_size_in = static_cast<uint32_t>(f.size()), .repeat = 1);
    int err = bpf_prog_test_run_opts(bpf_->prog_fd(), &opts);
    EXPECT_EQ(err, 0) << std::strerror(-err);
    *retval = static_cast<int>(opts.retval);
    ferry_stats after = read_map(fd);
    ferry_stats d{};
#define SUB(n) d.n = after.n - before.n;
    FERRY_STATS_FIELDS(SUB)
#undef SUB
    return d;
  }

  // Runs `f` and checks verdict OK and exactly the expected deltas.
  void check(const Frame& f, const ferry_stats& want) {
    int rv = -1;
    ferry_stats got = run(f, &rv);
    EXPECT_EQ(rv, kTcActOk);
    auto g = stats_fields(got), w = stats_fields(want);
    for (size_t i = 0; i < g.size(); i++)
      EXPECT_EQ(g[i].value, w[i].value) << "counter " << g[i].name;
  }

  static std::unique_ptr<BpfAttachment> bpf_;
  static std::string load_error_;
};

std::unique_ptr<BpfAttachment> ClassifyTest::bpf_;
std::string ClassifyTest::load_error_;

TEST_F(ClassifyTest, Arp) {
  Frame f(64);
  f.resize(build_arp_reply(f, MacAddr{{2, 0, 0, 0, 0, 1}}, *InetAddr::parse("198.18.0.2"),
                           MacAddr{{2, 0, 0, 0, 0, 2}}, *InetAddr::parse("198.18.0.1")));
  ASSERT_GE(f.size(), 42u);
  check(f, expect([](ferry_stats& e) { e.arp = 1; }));
  f.resize(14 + 20);  // ARP body cut short
  check(f, expect([](ferry_stats& e) { e.malformed = 1; }));
}

TEST_F(ClassifyTest, OtherEtherType) {
  Frame f = udp(v4());
  put16(f, 12, 0x88cc);  // LLDP
  check(f, expect([](ferry_stats& e) { e.other = 1; }));
}

TEST_F(ClassifyTest, ShortEthernetWithVlanTag) {
  Frame f = udp(v4());
  put16(f, 12, 0x8100);
  f.resize(16);  // tag cut in half
  check(f, expect([](ferry_stats& e) { e.malformed = 1; }));
}

TEST_F(ClassifyTest, Ipv4Classes) {
  check(tcp(v4(), tcpflag::kSyn), expect([](ferry_stats& e) { e.ipv4_tcp = 1; }));
  check(udp(v4()), expect([](ferry_stats& e) { e.ipv4_udp = 1; }));
  check(icmp(v4()), expect([](ferry_stats& e) { e.ipv4_icmp = 1; }));
  Frame gre = udp(v4());
  gre[kL3 + 9] = 47;
  check(gre, expect([](ferry_stats& e) { e.ipv4_other = 1; }));
}

TEST_F(ClassifyTest, PureAckVsDataVsSynFinRst) {
  auto pure = [](ferry_stats& e) {
    e.ipv4_tcp = 1;
    e.guest_pure_acks = 1;
  };
  auto tcp_only = [](ferry_stats& e) { e.ipv4_tcp = 1; };
  check(tcp(v4(), tcpflag::kAck), expect(pure));
  check(tcp(v4(), tcpflag::kAck, 0, true), expect(pure));
  check(tcp(v4(), tcpflag::kAck | tcpflag::kPsh), expect(pure));
  check(tcp(v4(), tcpflag::kAck | tcpflag::kEce | tcpflag::kCwr), expect(pure));
  check(tcp(v4(), tcpflag::kAck, 1), expect(tcp_only));
  check(tcp(v4(), tcpflag::kAck, 1000, true), expect(tcp_only));
  check(tcp(v4(), tcpflag::kAck | tcpflag::kSyn), expect(tcp_only));
  check(tcp(v4(), tcpflag::kAck | tcpflag::kFin), expect(tcp_only));
  check(tcp(v4(), tcpflag::kAck | tcpflag::kRst), expect(tcp_only));
  check(tcp(v4(), tcpflag::kAck | tcpflag::kUrg), expect(tcp_only));
  check(tcp(v4(), 0), expect(tcp_only));  // no ACK flag
}

TEST_F(ClassifyTest, EthernetPaddingIsNotPayload) {
  Frame f = tcp(v4(), tcpflag::kAck);
  f.resize(64, 0);  // padded to the Ethernet minimum
  check(f, expect([](ferry_stats& e) {
    e.ipv4_tcp = 1;
    e.guest_pure_acks = 1;
  }));
}

TEST_F(ClassifyTest, Ipv4Options) {
  Frame f = tcp(v4(), tcpflag::kAck);
  insert(f, kL3 + 20, {1, 1, 1, 0});  // NOP NOP NOP EOL
  f[kL3] = 0x46;
  put16(f, kL3 + 2, static_cast<uint16_t>(get16(f, kL3 + 2) + 4));
  check(f, expect([](ferry_stats& e) {
    e.ipv4_tcp = 1;
    e.guest_pure_acks = 1;
  }));
}

TEST_F(ClassifyTest, Ipv4Fragments) {
  Frame f = udp(v4());
  put16(f, kL3 + 6, 0x2000);  // MF
  check(f, expect([](ferry_stats& e) { e.ipv4_other = 1; }));
  put16(f, kL3 + 6, 0x0010);  // offset 128
  check(f, expect([](ferry_stats& e) { e.ipv4_other = 1; }));
}

TEST_F(ClassifyTest, Ipv4Malformed) {
  auto bad = expect([](ferry_stats& e) { e.malformed = 1; });
  Frame f = tcp(v4(), tcpflag::kAck);
  // an IPv4 header cut short: the kernel's test-run refuses such frames,
  // so LiveAttachOnTapEgress sends it through a real tap instead
  Frame ihl = f;
  ihl[kL3] = 0x44;  // IHL 4
  check(ihl, bad);
  Frame ver = f;
  ver[kL3] = 0x65;  // version 6 under EtherType IPv4
  check(ver, bad);
  Frame tot = f;
  put16(tot, kL3 + 2, static_cast<uint16_t>(f.size() - kL3 + 1));  // past the frame
  check(tot, bad);
  Frame small = f;
  put16(small, kL3 + 2, 19);  // shorter than the header
  check(small, bad);
}

TEST_F(ClassifyTest, TcpMalformed) {
  auto bad = expect([](ferry_stats& e) { e.malformed = 1; });
  Frame f = tcp(v4(), tcpflag::kAck, 0, true);  // 32-byte TCP header
  Frame cut = f;
  put16(cut, kL3 + 2, 20 + 10);  // IP says only 10 bytes of TCP
  check(cut, bad);
  Frame doff4 = f;
  doff4[kTcp4 + 12] = 0x40;
  check(doff4, bad);
  Frame doff15 = f;
  doff15[kTcp4 + 12] = 0xf0;  // 60 bytes, segment has 32
  check(doff15, bad);
  Frame optlen0 = f;  // options: NOP NOP 8 10 ... -> make the TS length 0
  optlen0[kTcp4 + 20 + 3] = 0;
  check(optlen0, bad);
  Frame optpast = f;
  optpast[kTcp4 + 20 + 3] = 11;  // one past the header
  check(optpast, bad);
  Frame mss3 = f;  // kind 2 (MSS) with length 3
  mss3[kTcp4 + 20 + 0] = 2;
  mss3[kTcp4 + 20 + 1] = 3;
  check(mss3, bad);
}

TEST_F(ClassifyTest, TcpOptionsThatAreFine) {
  Frame f = tcp(v4(), tcpflag::kAck, 0, true);
  Frame unknown = f;  // NOP NOP -> kind 30 len 2 (unknown, well-formed)
  unknown[kTcp4 + 20] = 30;
  unknown[kTcp4 + 21] = 2;
  check(unknown, expect([](ferry_stats& e) {
    e.ipv4_tcp = 1;
    e.guest_pure_acks = 1;
  }));
  Frame eol = f;  // EOL first: the rest is ignored
  eol[kTcp4 + 20] = 0;
  eol[kTcp4 + 23] = 0;
  check(eol, expect([](ferry_stats& e) {
    e.ipv4_tcp = 1;
    e.guest_pure_acks = 1;
  }));
}

TEST_F(ClassifyTest, Ipv6Classes) {
  check(tcp(v6(), tcpflag::kAck), expect([](ferry_stats& e) {
          e.ipv6_tcp = 1;
          e.guest_pure_acks = 1;
        }));
  check(tcp(v6(), tcpflag::kAck, 100), expect([](ferry_stats& e) { e.ipv6_tcp = 1; }));
  check(udp(v6()), expect([](ferry_stats& e) { e.ipv6_udp = 1; }));
  check(icmp(v6()), expect([](ferry_stats& e) { e.ipv6_icmp = 1; }));
  Frame other = udp(v6());
  other[kL3 + 6] = 59;  // no next header
  check(other, expect([](ferry_stats& e) { e.ipv6_other = 1; }));
}

// Puts an extension header of `len8` 8-byte units with next header `nh`
// right after the IPv6 header; the old next header moves into it.
void add_ext(Frame& f, uint8_t type, uint8_t len8 = 0) {
  std::vector<uint8_t> eh(8u * (len8 + 1u), 0);
  eh[0] = f[kL3 + 6];
  eh[1] = len8;
  if (type == 44) eh[1] = 0;  // fragment header is always 8 bytes
  insert(f, kL3 + 40, eh);
  f[kL3 + 6] = type;
  put16(f, kL3 + 4, static_cast<uint16_t>(get16(f, kL3 + 4) + eh.size()));
}

TEST_F(ClassifyTest, Ipv6ExtensionHeaders) {
  Frame f = tcp(v6(), tcpflag::kAck, 0, true);
  add_ext(f, 60, 1);  // destination options, 16 bytes
  add_ext(f, 43, 0);  // routing
  add_ext(f, 0, 2);   // hop-by-hop first, 24 bytes
  check(f, expect([](ferry_stats& e) {
    e.ipv6_tcp = 1;
    e.guest_pure_acks = 1;
  }));

  Frame frag = udp(v6());
  add_ext(frag, 44);
  check(frag, expect([](ferry_stats& e) { e.ipv6_other = 1; }));

  Frame past = tcp(v6(), tcpflag::kAck);
  add_ext(past, 60, 0);
  past[kL3 + 40 + 1] = 20;  // claims 168 bytes
  check(past, expect([](ferry_stats& e) { e.malformed = 1; }));
}

TEST_F(ClassifyTest, Ipv6Malformed) {
  auto bad = expect([](ferry_stats& e) { e.malformed = 1; });
  Frame f = udp(v6());
  Frame plen = f;
  put16(plen, kL3 + 4, static_cast<uint16_t>(get16(f, kL3 + 4) + 1));
  check(plen, bad);
  Frame ver = f;
  ver[kL3] = 0x45;
  check(ver, bad);
  Frame ulen = f;
  put16(ulen, kTcp6 + 4, 7);  // UDP length below its header
  check(ulen, bad);
  Frame tcpcut = tcp(v6(), tcpflag::kAck);
  put16(tcpcut, kL3 + 4, 12);
  check(tcpcut, bad);
}

TEST_F(ClassifyTest, VlanTagged) {
  Frame f = udp(v4());
  insert(f, 12, {0x81, 0x00, 0x00, 0x05});  // VLAN 5, then the old EtherType
  check(f, expect([](ferry_stats& e) { e.ipv4_udp = 1; }));
  Frame a = tcp(v6(), tcpflag::kAck);
  insert(a, 12, {0x88, 0xa8, 0x00, 0x07});
  check(a, expect([](ferry_stats& e) {
    e.ipv6_tcp = 1;
    e.guest_pure_acks = 1;
  }));
}

// ---- pins ---------------------------------------------------------------------

std::string unique_suffix() {
  std::random_device rd;
  return std::to_string(getpid()) + "-" + std::to_string(rd() % 100000);
}

TEST_F(ClassifyTest, PinReadStatsUnpin) {
  BpfAttachment a;
  ASSERT_EQ(a.load(64), "");
  std::string name = "test-" + unique_suffix();
  ASSERT_EQ(a.pin(name), "");
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
  ASSERT_EQ(read_stats(name, &s), "");
  EXPECT_EQ(s.guest_frames, 3u);
  EXPECT_EQ(s.guest_pure_acks, 3u);
  EXPECT_EQ(s.ipv4_tcp, 3u);

  EXPECT_NE(read_stats("no-such-" + name, &s), "");
  EXPECT_NE(read_stats("../etc", &s), "");
  BpfAttachment b;
  ASSERT_EQ(b.load(64), "");
  EXPECT_NE(b.pin(name), "") << "a live instance name must not be taken over";

  a.unpin();
  EXPECT_NE(stat(dir.c_str(), &st), 0);
  EXPECT_NE(read_stats(name, &s), "");
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
  ASSERT_EQ(a.load(64), "");
  EXPECT_EQ(a.pin(name), "");
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
  ASSERT_EQ(a.load(64), "");
  ASSERT_EQ(a.attach_tc_egress(t.ns, "ftest0"), "");
  EXPECT_TRUE(a.attached());

  ferry_stats before = read_map(a.map_fd("stats"));
  Frame f = tcp(v4(), tcpflag::kAck);
  ASSERT_TRUE(send_from_guest(t.ns, t.ifindex, f));
  ferry_stats after = read_map(a.map_fd("stats"));
  EXPECT_GE(after.guest_frames - before.guest_frames, 1u);
  EXPECT_GE(after.guest_pure_acks - before.guest_pure_acks, 1u);

  // frames the kernel's test-run refuses: IPv4 and IPv6 headers cut short
  const Frame f6 = tcp(v6(), tcpflag::kAck);
  for (const Frame& g : {Frame(f.begin(), f.begin() + kL3 + 10),
                         Frame(f6.begin(), f6.begin() + kL3 + 30)}) {
    ferry_stats b = read_map(a.map_fd("stats"));
    ASSERT_TRUE(send_from_guest(t.ns, t.ifindex, g));
    ferry_stats c = read_map(a.map_fd("stats"));
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
  ASSERT_EQ(other.load(64), "");
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
  ASSERT_EQ(a.load(64), "");
  ASSERT_EQ(a.attach_tc_egress(t.ns, t.ifindex), "");
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
  EXPECT_NE(a.attach_tc_egress(-1, 1), "");  // not loaded
  ASSERT_EQ(a.load(64), "");
  EXPECT_NE(a.attach_tc_egress(-1, "ferry-no-such-dev"), "");
  EXPECT_NE(a.attach_tc_egress(-1, 0), "");
  EXPECT_NE(a.pin("bad/name"), "");
  EXPECT_NE(BpfAttachment().load(0), "");
}

}  // namespace
}  // namespace ferry
