// The pure-ACK fast path in `ferry attach`'s DEV program
// (ferry_attach_dev_tc, bpf/ferry_attach.bpf.c with the shared core of
// bpf/fastpath.h), through BPF_PROG_TEST_RUN on codec-built frames. The
// flow is published through ConnMap opened on the attach skeleton's maps by
// fd, the way the attach service does it; events are read through
// FastPathEvents on the same skeleton's ring. Checks: an eligible pure ACK
// is absorbed (TC_ACT_SHOT, slot updated, counted as
// guest_pure_acks and acks_absorbed, not as passed); ineligible ones (unknown
// flow, ACK with data, beyond snd_nxt, retired flow) are redirected to the
// tap as before; a FIN_ACKED wake-up reaches the ring; XDP absorbs only
// ACKs whose checksum it verified (not a guest's partial one).
// Needs root; skips without it or without kernel BPF support (bpf_load.h).
// test-libs: ferry_attach ferry_bpf ferry_loop ferry_codec ferry_common
#include <string>
#include <vector>

#include "bpf/attach_object.h"
#include "bpf/fastpath_maps.h"
#include "codec/frame.h"
#include "support/guest_frames.h"

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr int kTcActShot = 2, kTcActRedirect = 7;
constexpr int kXdpDrop = 1, kXdpRedirect = 4;
constexpr uint32_t kSlot = 3;
constexpr uint16_t kGuestPort = 40000, kPeerPort = 80;
constexpr uint32_t kRcvNxt = 777;

L2L3 Ip4() { return testing::guest_to_gateway(false, MacAddr{{0x52, 0x54, 0, 1, 2, 3}}); }

// A guest segment of the test flow with a valid checksum.
Bytes Segment(uint32_t ack, size_t payload = 0, uint8_t flags = tcpflag::kAck) {
  return testing::tcp_frame({.ip = Ip4(), .sport = kGuestPort, .dport = kPeerPort, .seq = kRcvNxt, .ack = ack,
                             .flags = flags, .window = 100, .payload = payload});
}

class AttachFastPath : public bpftest::AttachObjectTest {
 protected:
  void SetUp() override {
    bpftest::AttachObjectTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    FastPathMapFds fds;
    fds.conn_hash = bpf_map__fd(skel_->maps.conn_hash);
    fds.conn_state = bpf_map__fd(skel_->maps.conn_state);
    fds.events = bpf_map__fd(skel_->maps.events);
    ASSERT_TRUE(conns_.open(fds).ok());
    EXPECT_EQ(conns_.capacity(), 64u);
    ASSERT_TRUE(events_.open(fds, [this](const ferry_event& e) { seen_.push_back(e); }).ok());
    key_ = make_conn_key(Ip4().src, kGuestPort, Ip4().dst, kPeerPort);
  }
  // Publishes the flow: acked up to una, sent up to nxt.
  void Publish(uint32_t una, uint32_t nxt) {
    ConnSlotInit init;
    init.snd_una = una;
    init.snd_nxt = nxt;
    init.rcv_nxt = kRcvNxt;
    init.guest_wscale = 2;
    init.guest_window = 400;
    ASSERT_TRUE(conns_.publish(kSlot, key_, init, &gen_).ok());
  }
  // Runs p on frame and drains the events it posted.
  int Run(bpf_program* p, const Bytes& frame) {
    const int verdict = run(p, frame);
    events_.consume();
    return verdict;
  }
  int RunTc(const Bytes& frame) { return Run(skel_->progs.ferry_attach_dev_tc, frame); }
  ferry_stats Stats() const { return stats(); }

  ConnMap conns_;
  FastPathEvents events_;
  std::vector<ferry_event> seen_;
  ferry_conn_key key_{};
  uint32_t gen_ = 0;
};

TEST_F(AttachFastPath, EligiblePureAckIsAbsorbed) {
  Publish(1000, 5000);
  EXPECT_EQ(RunTc(Segment(2000)), kTcActShot);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2000u);
  EXPECT_EQ(conns_.guest_window(kSlot), 400u);  // 100 << 2
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 1u);
  const ferry_stats s = Stats();
  EXPECT_EQ(s.guest_frames, 1u);
  EXPECT_EQ(s.ipv4_tcp, 1u);
  EXPECT_EQ(s.guest_pure_acks, 1u);
  EXPECT_EQ(s.acks_absorbed, 1u);
  EXPECT_EQ(s.passed_to_userspace, 0u);
  EXPECT_TRUE(seen_.empty());
}

TEST_F(AttachFastPath, IneligibleFramesAreRedirected) {
  EXPECT_EQ(RunTc(Segment(2000)), kTcActRedirect);  // no such flow
  Publish(1000, 5000);
  EXPECT_EQ(RunTc(Segment(2000, 10)), kTcActRedirect);                            // data
  EXPECT_EQ(RunTc(Segment(2000, 0, tcpflag::kAck | tcpflag::kFin)), kTcActRedirect);  // FIN
  EXPECT_EQ(RunTc(Segment(5001)), kTcActRedirect);                                // beyond snd_nxt
  Bytes bad = Segment(2000);
  bad[14 + 20 + 16] ^= 0x55;  // TCP checksum (not CHECKSUM_PARTIAL in a test run)
  EXPECT_EQ(RunTc(bad), kTcActRedirect);
  EXPECT_EQ(RunTc(Segment(2000)), kTcActShot);
  conns_.retire(kSlot, key_);
  EXPECT_EQ(RunTc(Segment(3000)), kTcActRedirect);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2000u);
  const ferry_stats s = Stats();
  EXPECT_EQ(s.guest_frames, 7u);
  EXPECT_EQ(s.guest_pure_acks, 5u);  // all but the data and FIN segments
  EXPECT_EQ(s.acks_absorbed, 1u);
  EXPECT_EQ(s.passed_to_userspace, 6u);
  EXPECT_EQ(s.guest_frames, s.passed_to_userspace + s.acks_absorbed);
}

TEST_F(AttachFastPath, FinAckedWakesUserspace) {
  Publish(1000, 5000);
  conns_.set_fin_pending(kSlot, true);
  EXPECT_EQ(RunTc(Segment(5000)), kTcActShot);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_[0].kind, static_cast<uint32_t>(FERRY_EV_FIN_ACKED));
  EXPECT_EQ(seen_[0].slot, kSlot);
  EXPECT_EQ(seen_[0].gen, gen_);
  EXPECT_EQ(Stats().events_posted, 1u);
}

// XDP has no CHECKSUM_PARTIAL to trust: it verifies every checksum. A full,
// valid one is absorbed (XDP_DROP); a wrong one, and the partial one a guest
// with TX checksum offload sends (the pseudo-header sum only), are
// redirected to the tap for userspace.
TEST_F(AttachFastPath, XdpAbsorbsVerifiedChecksumsOnly) {
  Publish(1000, 5000);
  fill_devmap();
  bpf_program* xdp = skel_->progs.ferry_attach_dev_xdp;
  EXPECT_EQ(Run(xdp, Segment(2000)), kXdpDrop);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2000u);
  EXPECT_EQ(conns_.acks_absorbed(kSlot), 1u);

  Bytes wrong = Segment(2100);
  wrong[14 + 20 + 16] ^= 0x55;
  EXPECT_EQ(Run(xdp, wrong), kXdpRedirect);
  // Partial: the checksum field holds the folded pseudo-header sum, not
  // its complement over the segment (what the guest's stack leaves for
  // the device to finish).
  Bytes partial = Segment(2100);
  uint32_t ph = 0;
  for (size_t i = 14 + 12; i < 14 + 20; i += 2) ph += static_cast<uint32_t>(partial[i] << 8 | partial[i + 1]);
  ph += 6 + 20;  // protocol, TCP length
  while (ph >> 16) ph = (ph & 0xffff) + (ph >> 16);
  partial[14 + 20 + 16] = static_cast<uint8_t>(ph >> 8);
  partial[14 + 20 + 17] = static_cast<uint8_t>(ph & 0xff);
  EXPECT_EQ(Run(xdp, partial), kXdpRedirect);
  EXPECT_EQ(conns_.ack_from_guest(kSlot), 2000u);

  const ferry_stats s = Stats();
  EXPECT_EQ(s.guest_pure_acks, 3u);
  EXPECT_EQ(s.acks_absorbed, 1u);
  EXPECT_EQ(s.passed_to_userspace, 2u);
  EXPECT_EQ(s.guest_frames, s.passed_to_userspace + s.acks_absorbed);
}

}  // namespace
}  // namespace ferry
