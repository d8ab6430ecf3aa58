// The attach programs (bpf/ferry_attach.bpf.c) through BPF_PROG_TEST_RUN
// (root), beyond what the frame table (frame_table_test.cc) checks for every
// guest frame: frames from ferry are redirected toward DEV and counted; the
// XDP variant redirects through the devmap, drops when the devmap has no
// tap, and counts a frame in fragments whole.
// test-libs: ferry_attach ferry_codec ferry_common
#include <cstdint>
#include <vector>

#include "bpf/attach_object.h"
#include "codec/frame.h"
#include "support/guest_frames.h"

namespace ferry {
namespace {

using bpftest::Frame;
constexpr int kTcActRedirect = 7;
constexpr int kXdpDrop = 1, kXdpRedirect = 4;
const MacAddr kGuest{{0x52, 0x54, 0, 1, 2, 3}};

// A guest -> ferry IPv4 TCP ACK with `payload` bytes of data.
Frame Ack4(size_t payload = 0) {
  return testing::tcp_frame(
      {.ip = testing::guest_to_gateway(false, kGuest), .seq = 1, .ack = 2, .window = 100, .payload = payload});
}

using AttachBpf = bpftest::AttachObjectTest;

TEST_F(AttachBpf, TapIngressGoesToDev) {
  const Frame ack = Ack4();
  EXPECT_EQ(run(skel_->progs.ferry_attach_tap_tc, ack), kTcActRedirect);
  EXPECT_EQ(run(skel_->progs.ferry_attach_tap_tc, ack), kTcActRedirect);
  const ferry_attach_stats a = attach_counts();
  EXPECT_EQ(a.to_guest_frames, 2u);
  EXPECT_EQ(a.to_guest_bytes, 2 * ack.size());
  EXPECT_EQ(stats().guest_frames, 0u);  // frames from ferry are not guest frames
}

TEST_F(AttachBpf, XdpUsesTheDevmap) {
  const Frame ack = Ack4();
  // No tap in the devmap (service not ready or gone): dropped, counted.
  EXPECT_EQ(run(skel_->progs.ferry_attach_dev_xdp, ack), kXdpDrop);
  EXPECT_EQ(attach_counts().redirect_failed, 1u);
  fill_devmap();
  EXPECT_EQ(run(skel_->progs.ferry_attach_dev_xdp, ack), kXdpRedirect);
  EXPECT_EQ(stats().guest_frames, 2u);
  EXPECT_EQ(stats().guest_pure_acks, 2u);
}

// BPF_PROG_TEST_RUN hands an XDP program a frame longer than 3520 bytes in
// fragments (the kernel's TC test run has no non-linear skb: it refuses a
// __sk_buff context with data_end set). The wire length is the whole
// buffer's, so the frame is TCP, not "malformed" (its IP total length is
// past the linear part).
TEST_F(AttachBpf, XdpCountsAFragmentedFrameWhole) {
  const Frame big = Ack4(4500);
  ASSERT_GT(big.size(), 4096u);
  fill_devmap();
  EXPECT_EQ(run(skel_->progs.ferry_attach_dev_xdp, big), kXdpRedirect);
  const ferry_stats st = stats();
  EXPECT_EQ(st.ipv4_tcp, 1u);
  EXPECT_EQ(st.malformed, 0u);
  EXPECT_EQ(attach_counts().from_guest_bytes, big.size());  // the whole frame
}

}  // namespace
}  // namespace ferry
