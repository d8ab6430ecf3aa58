// TapQueueEstimate (userspace/tapq) fed counter values: the occupancy of a
// tap's queue toward its reader, read only when needed, the baseline that
// absorbs the host's own frames, the switch to gso segments, the stuck
// estimate dropped, and which frames are provably still queued.
// Unprivileged.
// test-libs: ferry_tapq
#include <gtest/gtest.h>

#include "tapq/tap_queue_estimate.h"

namespace ferry {
namespace {

// Counters as the test sets them; counts the readings.
class FakeSource final : public DevTxCounterSource {
 public:
  bool read(DevTxCounters* out) override {
    reads++;
    if (fail) return false;
    *out = c;
    return true;
  }
  uint32_t txqueuelen() override { return qlen; }
  DevTxCounters c;
  uint32_t qlen = 64;
  bool fail = false;
  int reads = 0;
};

constexpr uint64_t kMs = 1'000'000;

struct Fixture {
  FakeSource src;
  PortCounters port;
  TapQueueEstimate q{src, port};
  uint64_t now = 1000 * kMs;
  // n frames of `segs` gso segments each written by ferry.
  void write(uint64_t n, uint64_t segs = 1) {
    port.tx_frames += n;
    port.tx_segments += n * segs;
  }
  void later(uint64_t ms = 1) { now += ms * kMs; }
};

TEST(TapQueue, StartNeedsCountersAndARing) {
  Fixture f;
  f.src.qlen = 2;
  EXPECT_FALSE(f.q.start(f.now));
  f.src.qlen = 64;
  f.src.fail = true;
  EXPECT_FALSE(f.q.start(f.now));
  f.src.fail = false;
  EXPECT_TRUE(f.q.start(f.now));
  EXPECT_EQ(f.q.capacity(), 64u);
  EXPECT_EQ(f.q.headroom(), 8u);
}

// Below the limit the answer comes from memory: no reading per frame.
TEST(TapQueue, RoomFromMemoryUntilTheUpperBoundIsReached) {
  Fixture f;
  f.src.c = {500, 7};  // the device's history before ferry: not ours
  ASSERT_TRUE(f.q.start(f.now));
  const int reads = f.src.reads;
  for (int i = 0; i < 50; i++) {
    f.write(1);
    f.later();
    EXPECT_EQ(f.q.room(1, f.now), 56u - (i + 1));
  }
  EXPECT_EQ(f.src.reads, reads);
  EXPECT_EQ(f.q.counters().reads, 0u);
  // 56 written: the bound says full, a reading says 30 were read.
  f.write(6);
  f.src.c.tx_packets += 30;
  EXPECT_EQ(f.q.room(1, f.now), 30u);
  EXPECT_EQ(f.q.counters().reads, 1u);
  EXPECT_EQ(f.q.upper(), 26u);
}

TEST(TapQueue, ReadingsAreRateLimited) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(56);
  EXPECT_EQ(f.q.room(1, f.now), 0u);
  EXPECT_EQ(f.q.room(1, f.now), 0u);
  EXPECT_EQ(f.q.counters().reads, 1u);
  f.now += TapQueueEstimate::kMinReadIntervalNs;
  f.src.c.tx_packets = 56;
  EXPECT_EQ(f.q.room(1, f.now), 56u);
  EXPECT_EQ(f.q.counters().reads, 2u);
}

// Drops count as consumed: they never occupied the ring.
TEST(TapQueue, DropsLeaveTheRing) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(100);
  f.src.c = {40, 44};
  EXPECT_EQ(f.q.room(1, f.now), 56u - 16u);
}

// The host's own frames on the tap: more read than written, absorbed.
TEST(TapQueue, NegativeOccupancyIsAbsorbed) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(56);
  f.src.c.tx_packets = 56 + 5;  // 5 neighbour solicitations of the host's
  EXPECT_EQ(f.q.room(1, f.now), 56u);
  EXPECT_EQ(f.q.counters().rebaselines, 1u);
  EXPECT_FALSE(f.q.counts_segments());
  // From there on the count is exact again.
  f.write(60);
  f.later();
  f.src.c.tx_packets += 50;
  EXPECT_EQ(f.q.room(1, f.now), 46u);
}

// A tap without TSO cuts each super-segment into its gso segments.
TEST(TapQueue, SwitchesToSegmentsWhenTheTapCutsSuperSegments) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  const TapQueueEstimate::Mark before = f.q.mark();
  f.write(3, 44);   // 132 entries in the ring, 3 frames by our count
  f.write(53);      // and 53 plain ones: 56 frames, 185 segments
  f.src.c.tx_packets = 100;
  EXPECT_EQ(f.q.room(1, f.now), 0u);  // 85 still queued, capacity 64
  EXPECT_TRUE(f.q.counts_segments());
  EXPECT_EQ(f.q.counters().segmenting, 1u);
  EXPECT_EQ(f.q.upper(), 85u);
  EXPECT_NE(f.q.mark().epoch, before.epoch);
  f.later();
  f.src.c.tx_packets = 185;
  EXPECT_EQ(f.q.room(1, f.now), 56u);
}

// Claimed occupancy with nothing read or dropped for kStuckNs is dropped:
// a sender never waits on a wrong estimate for longer.
TEST(TapQueue, StuckEstimateIsReleased) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(56);
  f.src.c.tx_packets = 10;
  EXPECT_EQ(f.q.room(1, f.now), 10u);
  f.write(10);
  f.later(100);
  EXPECT_EQ(f.q.room(1, f.now), 0u);  // nothing read for 100 ms: a pause
  EXPECT_EQ(f.q.counters().releases, 0u);
  f.later(200);
  EXPECT_EQ(f.q.room(1, f.now), 56u);  // 300 ms: released
  EXPECT_EQ(f.q.counters().releases, 1u);
}

// An empty ring at the last reading: the stuck clock starts now, not then.
TEST(TapQueue, AnEmptyRingIsNotStuck) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(56);
  f.src.c.tx_packets = 56;
  EXPECT_EQ(f.q.room(1, f.now), 56u);
  f.later(1000);
  f.write(56);  // a burst after a second of quiet, nothing read yet
  EXPECT_EQ(f.q.room(1, f.now), 0u);
  EXPECT_EQ(f.q.counters().releases, 0u);
}

TEST(TapQueue, AFailedReadingStartsOverEmpty) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(56);
  f.src.fail = true;
  EXPECT_EQ(f.q.room(1, f.now), 56u);
  EXPECT_EQ(f.q.counters().read_errors, 1u);
}

// FIFO: a frame not dropped is unread while read + dropped < its mark.
TEST(TapQueue, StillQueuedUntilTheReaderPassesIt) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(10);
  const TapQueueEstimate::Mark m = f.q.mark();
  f.later();
  f.src.c.tx_packets = 3;
  EXPECT_TRUE(f.q.still_queued(m, f.now));
  f.write(5);
  f.later();
  f.src.c.tx_packets = 9;
  EXPECT_TRUE(f.q.still_queued(m, f.now));
  f.later();
  f.src.c.tx_packets = 10;
  EXPECT_FALSE(f.q.still_queued(m, f.now));
}

// Drops around its write: it may be one of them, so it is not "queued".
TEST(TapQueue, NotProvablyQueuedWhenDropsHappenedAroundIt) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(70);
  const TapQueueEstimate::Mark m = f.q.mark();
  f.later();
  f.src.c = {0, 6};  // the ring was full: 6 of them dropped
  EXPECT_FALSE(f.q.still_queued(m, f.now));
  // Frames written after a drop-free interval are provable again.
  f.src.c.tx_packets = 20;
  f.later();
  EXPECT_EQ(f.q.room(1, f.now), 56u - 44u);  // a reading: no new drops
  f.write(2);
  const TapQueueEstimate::Mark m2 = f.q.mark();
  f.later();
  EXPECT_TRUE(f.q.still_queued(m2, f.now));
  EXPECT_FALSE(f.q.still_queued(m, f.now));
}

// A mark of another epoch (units changed) proves nothing.
TEST(TapQueue, AMarkOfAnEarlierEpochIsNotQueued) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(1, 44);
  const TapQueueEstimate::Mark m = f.q.mark();
  f.later();
  f.src.c.tx_packets = 20;  // 20 of its segments read: the tap cuts them
  EXPECT_FALSE(f.q.still_queued(m, f.now));
  EXPECT_TRUE(f.q.counts_segments());
  // Marks in the new units are judged on their own.
  f.write(1, 44);
  f.later();
  EXPECT_TRUE(f.q.still_queued(f.q.mark(), f.now));
}

}  // namespace
}  // namespace ferry
