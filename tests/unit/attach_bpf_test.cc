// The attach programs (bpf/ferry_attach.bpf.c) through BPF_PROG_TEST_RUN
// (root): every guest frame, well-formed or not, is counted by class and
// redirected (never passed up DEV's stack); frames from ferry are redirected
// toward DEV and counted; the XDP variant redirects through the devmap and
// drops when the devmap has no tap.
// test-libs: ferry_attach ferry_codec ferry_common
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "attach/inspect.h"
#include "codec/frame.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#include "ferry_attach.skel.h"
#pragma GCC diagnostic pop

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr int kTcActRedirect = 7;
constexpr int kXdpDrop = 1, kXdpRedirect = 4;
const MacAddr kGuest{{0x52, 0x54, 0, 1, 2, 3}};
const MacAddr kFerry{{0x02, 0x66, 0x65, 0x72, 0x72, 0x79}};

L2L3 Ip(const char* src, const char* dst) {
  L2L3 ip;
  ip.eth_src = kGuest;
  ip.eth_dst = kFerry;
  ip.src = *InetAddr::parse(src);
  ip.dst = *InetAddr::parse(dst);
  return ip;
}

Bytes PureAck4() {
  TcpSegment s;
  s.ip = Ip("198.18.0.2", "198.18.0.1");
  s.sport = 40000;
  s.dport = 80;
  s.seq = 1;
  s.ack = 2;
  s.flags = tcpflag::kAck;
  s.window = 100;
  Bytes b(256);
  b.resize(build_tcp_frame(b, s));
  return b;
}

Bytes Udp6() {
  UdpDatagram d;
  d.ip = Ip("fd00:f::2", "fd00:f::1");
  d.sport = 5000;
  d.dport = 53;
  const uint8_t payload[4] = {1, 2, 3, 4};
  d.payload = payload;
  Bytes b(256);
  b.resize(build_udp_frame(b, d));
  return b;
}

Bytes Arp() {
  Bytes b(64);
  b.resize(build_arp_reply(b, kGuest, *InetAddr::parse("198.18.0.2"), kFerry, *InetAddr::parse("198.18.0.1")));
  return b;
}

class AttachBpf : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
    skel = ferry_attach__open();
    ASSERT_NE(skel, nullptr);
    skel->rodata->tap_ifindex = 1;  // lo: exists in every namespace
    skel->rodata->dev_ifindex = 1;
    bpf_map__set_max_entries(skel->maps.conns, 16);
    ASSERT_EQ(ferry_attach__load(skel), 0);
  }
  void TearDown() override {
    if (skel) ferry_attach__destroy(skel);
  }
  int Run(bpf_program* p, const Bytes& frame) {
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(), .data_size_in = static_cast<uint32_t>(frame.size()));
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(p), &o), 0);
    return static_cast<int>(o.retval);
  }
  ferry_stats Stats() {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<ferry_stats> v(static_cast<size_t>(ncpu));
    const uint32_t key = 0;
    EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &key, v.data()), 0);
    ferry_stats sum{};
#define SUM(f) for (const auto& x : v) sum.f += x.f;
    FERRY_STATS_FIELDS(SUM)
#undef SUM
    return sum;
  }
  std::vector<uint64_t> AttachStats() {
    const int ncpu = libbpf_num_possible_cpus();
    std::vector<uint64_t> v(static_cast<size_t>(ncpu) * 4);
    const uint32_t key = 0;
    EXPECT_EQ(bpf_map_lookup_elem(bpf_map__fd(skel->maps.attach_stats), &key, v.data()), 0);
    std::vector<uint64_t> sum(4, 0);
    for (int c = 0; c < ncpu; c++)
      for (size_t i = 0; i < 4; i++) sum[i] += v[static_cast<size_t>(c) * 4 + i];
    return sum;
  }
  ::ferry_attach* skel = nullptr;
};

TEST_F(AttachBpf, DevIngressCountsAndRedirectsEverything) {
  const Bytes ack = PureAck4(), udp = Udp6(), arp = Arp();
  Bytes bad = PureAck4();
  bad[16] = 0xff;  // IPv4 total length beyond the frame: malformed
  bad[17] = 0xff;
  for (const Bytes* f : std::initializer_list<const Bytes*>{&ack, &udp, &arp, &bad}) EXPECT_EQ(Run(skel->progs.ferry_attach_dev_tc, *f), kTcActRedirect);
  const ferry_stats s = Stats();
  EXPECT_EQ(s.guest_frames, 4u);
  EXPECT_EQ(s.ipv4_tcp, 1u);
  EXPECT_EQ(s.ipv6_udp, 1u);
  EXPECT_EQ(s.arp, 1u);
  EXPECT_EQ(s.malformed, 1u);
  EXPECT_EQ(s.guest_pure_acks, 1u);
  EXPECT_EQ(s.passed_to_userspace, 4u);
  EXPECT_EQ(s.acks_absorbed, 0u);
  const std::vector<uint64_t> a = AttachStats();
  EXPECT_EQ(a[0], ack.size() + udp.size() + arp.size() + bad.size());  // from_guest_bytes
  EXPECT_EQ(a[3], 0u);                                                 // redirect_failed
}

TEST_F(AttachBpf, TapIngressGoesToDev) {
  const Bytes ack = PureAck4();
  EXPECT_EQ(Run(skel->progs.ferry_attach_tap_tc, ack), kTcActRedirect);
  EXPECT_EQ(Run(skel->progs.ferry_attach_tap_tc, ack), kTcActRedirect);
  const std::vector<uint64_t> a = AttachStats();
  EXPECT_EQ(a[1], 2u);  // to_guest_frames
  EXPECT_EQ(a[2], 2 * ack.size());
  EXPECT_EQ(Stats().guest_frames, 0u);  // frames from ferry are not guest frames
}

TEST_F(AttachBpf, XdpUsesTheDevmap) {
  const Bytes ack = PureAck4();
  // No tap in the devmap (service not ready or gone): dropped, counted.
  EXPECT_EQ(Run(skel->progs.ferry_attach_dev_xdp, ack), kXdpDrop);
  EXPECT_EQ(AttachStats()[3], 1u);
  const uint32_t key = 0, lo = 1;
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel->maps.tx_port), &key, &lo, BPF_ANY), 0);
  EXPECT_EQ(Run(skel->progs.ferry_attach_dev_xdp, ack), kXdpRedirect);
  EXPECT_EQ(Stats().guest_frames, 2u);
  EXPECT_EQ(Stats().guest_pure_acks, 2u);
}

// BPF_PROG_TEST_RUN hands an XDP program a frame longer than 3520 bytes in
// fragments (the kernel's TC test run has no non-linear skb: it refuses a
// __sk_buff context with data_end set). The wire length is the whole
// buffer's, so the frame is TCP, not "malformed" (its IP total length is
// past the linear part).
TEST_F(AttachBpf, XdpCountsAFragmentedFrameWhole) {
  TcpSegment s;
  s.ip = Ip("198.18.0.2", "198.18.0.1");
  s.sport = 40000;
  s.dport = 80;
  s.flags = tcpflag::kAck;
  const std::vector<uint8_t> payload(4500, 0x61);
  s.payload = payload;
  Bytes big(kMaxFrameLen);
  big.resize(build_tcp_frame(big, s));
  ASSERT_GT(big.size(), 4096u);
  const uint32_t key = 0, lo = 1;
  ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel->maps.tx_port), &key, &lo, BPF_ANY), 0);
  EXPECT_EQ(Run(skel->progs.ferry_attach_dev_xdp, big), kXdpRedirect);
  const ferry_stats st = Stats();
  EXPECT_EQ(st.ipv4_tcp, 1u);
  EXPECT_EQ(st.malformed, 0u);
  EXPECT_EQ(AttachStats()[0], big.size());  // from_guest_bytes: the whole frame
}

}  // namespace
}  // namespace ferry
