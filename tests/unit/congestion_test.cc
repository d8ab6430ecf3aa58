// CongestionWindow and SackScoreboard (userspace/tcp/congestion.h): the
// sender's rules toward the guest without sockets: the initial window,
// slow start and congestion avoidance by bytes acknowledged (a fold of many
// ACKs grows it as much as the ACKs one by one), halving on loss, the loss
// window after an RTO; SACK ranges merged, pruned, bounded, and the holes
// between them.
#include "tcp/congestion.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

TEST(CongestionWindow, InitialWindowPerRfc6928) {
  CongestionWindow w;
  w.init(1460);
  EXPECT_EQ(w.cwnd(), 14600u);
  w.init(536);
  EXPECT_EQ(w.cwnd(), 5360u);
  w.init(65480);  // MTU 65520: two segments
  EXPECT_EQ(w.cwnd(), 2u * 65480u);
  EXPECT_TRUE(w.slow_start());
}

TEST(CongestionWindow, SlowStartGrowsByBytesAckedAsOneFoldOrMany) {
  CongestionWindow one, fold;
  one.init(1000);
  fold.init(1000);
  for (int i = 0; i < 10; i++) one.on_ack(1000, one.cwnd());  // the sender refills cwnd
  fold.on_ack(10000, 10000);  // the fast path's fold of the same ten ACKs
  EXPECT_EQ(one.cwnd(), 20000u);
  EXPECT_EQ(fold.cwnd(), 20000u);
}

TEST(CongestionWindow, NoGrowthWhileNotCwndLimited) {
  CongestionWindow w;
  w.init(1000);
  w.on_ack(1000, 2000);  // 2000 in flight of a 10000 cwnd: the window limits
  EXPECT_EQ(w.cwnd(), 10000u);
}

TEST(CongestionWindow, LossHalvesThenAvoidanceAddsOneMssPerWindow) {
  CongestionWindow w;
  w.init(1000);
  w.on_ack(30000, 40000);
  EXPECT_EQ(w.cwnd(), 40000u);
  w.enter_recovery(40000);
  EXPECT_EQ(w.cwnd(), 20000u);
  EXPECT_EQ(w.ssthresh(), 20000u);
  w.exit_recovery(30000);
  EXPECT_EQ(w.cwnd(), 20000u);  // min(ssthresh, flight + MSS)
  EXPECT_FALSE(w.slow_start());
  w.on_ack(19999, 20000);
  EXPECT_EQ(w.cwnd(), 20000u);
  w.on_ack(1, 20000);
  EXPECT_EQ(w.cwnd(), 21000u);  // one MSS per cwnd acknowledged
  w.on_ack(21000 * 3, 21000);  // a fold of three windows' worth
  EXPECT_EQ(w.cwnd(), 23000u);
}

TEST(CongestionWindow, ExitRecoveryDeflatesToFlight) {
  CongestionWindow w;
  w.init(1000);
  w.on_ack(90000, 100000);
  w.enter_recovery(100000);
  w.exit_recovery(0);
  EXPECT_EQ(w.cwnd(), 2000u);  // no burst after recovery
}

TEST(CongestionWindow, RtoLossWindowThenSlowStartToHalf) {
  CongestionWindow w;
  w.init(1000);
  w.on_ack(30000, 40000);
  w.on_rto(40000, true);
  EXPECT_EQ(w.cwnd(), 1000u);
  EXPECT_EQ(w.ssthresh(), 20000u);
  w.on_rto(1000, false);  // a second timeout of the chain keeps ssthresh
  EXPECT_EQ(w.ssthresh(), 20000u);
  w.on_ack(1000, 1000);
  EXPECT_EQ(w.cwnd(), 2000u);
  w.on_ack(30000, 30000);  // slow start up to ssthresh, then avoidance
  EXPECT_EQ(w.cwnd(), 20000u);
  EXPECT_FALSE(w.slow_start());
}

TEST(CongestionWindow, MinimumAfterLossIsTwoMss) {
  CongestionWindow w;
  w.init(1000);
  w.enter_recovery(1500);
  EXPECT_EQ(w.cwnd(), 2000u);
}

TEST(SackScoreboard, MergesPrunesAndFindsHoles) {
  SackScoreboard s;
  const uint32_t una = 0xfffff000u;  // wraps
  s.add(una + 2000, una + 3000, una, una + 10000);
  s.add(una + 5000, una + 6000, una, una + 10000);
  s.add(una + 3000, una + 4000, una, una + 10000);  // touches the first
  ASSERT_EQ(s.size(), 2);
  EXPECT_EQ(s.sacked_bytes(), 3000u);
  EXPECT_EQ(s.high(una), una + 6000);
  uint32_t start = 0;
  EXPECT_EQ(s.next_hole(una, s.high(una), &start), 2000u);
  EXPECT_EQ(start, una);
  EXPECT_EQ(s.next_hole(una + 2500, s.high(una), &start), 1000u);
  EXPECT_EQ(start, una + 4000);
  EXPECT_EQ(s.next_hole(una + 5000, s.high(una), &start), 0u);
  EXPECT_EQ(s.unsacked_in(una, una + 6000), 3000u);
  uint32_t end = 0;
  EXPECT_TRUE(s.covers(una + 2500, &end));
  EXPECT_EQ(end, una + 4000);
  s.prune(una + 3500);
  EXPECT_EQ(s.sacked_bytes(), 1500u);
  s.prune(una + 7000);
  EXPECT_TRUE(s.empty());
}

TEST(SackScoreboard, IgnoresStaleAndFutureBlocks) {
  SackScoreboard s;
  s.add(100, 200, 500, 1000);   // below snd_una (a D-SACK)
  s.add(900, 1100, 500, 1000);  // beyond what was sent
  s.add(300, 600, 500, 1000);   // straddles snd_una: clipped
  ASSERT_EQ(s.size(), 1);
  EXPECT_EQ(s.range(0).start, 500u);
  EXPECT_EQ(s.range(0).end, 600u);
}

// Bounded: on overflow the smallest range between the lowest and the
// highest goes. The lowest (a retransmission pass's bytes, right above
// snd_una) and the highest stay: the old rule forgot the lowest, so a pass
// the guest had SACKed counted in flight again and nothing was sent until
// the RTO (issue 19, TcpLossTest ManyHolesAboveARetransmissionPassKeepItInView).
TEST(SackScoreboard, BoundedKeepingTheLowestAndTheHighest) {
  SackScoreboard s;
  const uint32_t n = SackScoreboard::kMaxRanges + 4;
  s.add(1000, 1000 + 90 * 50, 0, 1000000);  // the lowest: large
  for (uint32_t i = 1; i < n; i++) {
    // 50 bytes, but range 5 only 10: it goes first.
    const uint32_t start = 1000 + 100 * 50 * i;
    s.add(start, start + (i == 5 ? 10 : 50), 0, 1000000);
  }
  ASSERT_EQ(s.size(), SackScoreboard::kMaxRanges);
  EXPECT_EQ(s.range(0).start, 1000u);
  EXPECT_EQ(s.range(0).end, 1000u + 90 * 50);
  EXPECT_EQ(s.high(0), 1000u + 100 * 50 * (n - 1) + 50);
  uint32_t end = 0;
  EXPECT_FALSE(s.covers(1000 + 100 * 50 * 5, &end)) << "the smallest middle range is forgotten first";
  EXPECT_TRUE(s.covers(1000 + 100 * 50 * 6, &end));
  EXPECT_TRUE(s.covers(1000 + 90 * 50 - 1, &end));
}

}  // namespace
}  // namespace ferry
