// TapQueueEstimate (userspace/tapq) fed counter values: the occupancy of a
// tap's queue toward its reader, read only when needed, the baseline that
// absorbs the host's own frames, the unit (frames or gso segments) told by
// the sizes the reader reads, the stuck
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
  TapQueueEstimate q{src, port, 1500};
  uint64_t now = 1000 * kMs;
  // n frames of `segs` gso segments (and `bytes`) each written by ferry.
  void write(uint64_t n, uint64_t segs = 1, uint64_t bytes = 1514) {
    port.tx_frames += n;
    port.tx_segments += n * segs;
    port.tx_bytes += n * bytes;
  }
  // The reader reads n entries of `bytes` each.
  void read(uint64_t n, uint64_t bytes = 1514) {
    src.c.tx_packets += n;
    src.c.tx_bytes += n * bytes;
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
  // From there on the count is exact again.
  f.write(60);
  f.later();
  f.src.c.tx_packets += 50;
  EXPECT_EQ(f.q.room(1, f.now), 46u);
}

// A tap without TSO cuts each super-segment into gso segments: the reader
// reads frames of a segment's size, and each is an entry.
TEST(TapQueue, ATapThatCutsSuperSegmentsIsCountedInSegments) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  EXPECT_TRUE(f.q.counts_segments()) << "undecided: the pessimistic unit";
  const TapQueueEstimate::Mark before = f.q.mark();
  f.write(3, 44, 44 * 1448 + 66);  // 132 entries in the ring, 3 frames by our count
  f.read(100);
  EXPECT_EQ(f.q.room(1, f.now), 24u);  // 32 of 132 entries still queued, capacity 64 - headroom 8
  EXPECT_EQ(f.q.upper(), 32u);
  EXPECT_TRUE(f.q.counts_segments());
  EXPECT_EQ(f.q.counters().segmenting, 1u);
  EXPECT_EQ(f.q.mark().epoch, before.epoch) << "the unit did not change";
  f.later();
  f.read(32);
  EXPECT_EQ(f.q.room(50, f.now), 56u);
}

// A tap with TSO takes them whole: the reader reads frames of our frames'
// size, one entry each; the estimate then counts frames.
TEST(TapQueue, ATapThatTakesSuperSegmentsWholeIsCountedInFrames) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  const TapQueueEstimate::Mark before = f.q.mark();
  f.write(20, 44, 64000);  // 880 segments, 20 frames
  f.read(1, 64000);         // one read of that size proves it
  EXPECT_EQ(f.q.room(1, f.now), 37u);  // 19 frames queued
  EXPECT_FALSE(f.q.counts_segments());
  EXPECT_EQ(f.q.counters().whole_frames, 1u);
  EXPECT_NE(f.q.mark().epoch, before.epoch);
  // 56 frames of 64 KiB fit now, not 56 segments.
  f.later();
  f.read(15, 64000);
  f.write(50, 44, 64000);
  EXPECT_EQ(f.q.room(1, f.now), 2u);
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
  f.later(900);
  EXPECT_EQ(f.q.room(1, f.now), 0u);  // nothing read for 900 ms: a (long) pause
  EXPECT_EQ(f.q.counters().releases, 0u);
  f.later(200);
  EXPECT_EQ(f.q.room(1, f.now), 56u);  // 1.1 s: released
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

// Reads of ACK-sized frames (an upload: the guest's ACKs are not what ferry
// wrote, ours are) say nothing about how the tap takes super-segments.
TEST(TapQueue, SmallReadsDecideNothing) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(20, 44, 64000);
  f.read(40, 66);
  f.q.room(100, f.now);
  EXPECT_EQ(f.q.counters().reads, 1u);
  EXPECT_TRUE(f.q.counts_segments());
  EXPECT_EQ(f.q.counters().segmenting, 0u);
  EXPECT_EQ(f.q.counters().whole_frames, 0u);
}

// A mark of another epoch (units changed) proves nothing.
TEST(TapQueue, AMarkOfAnEarlierEpochIsNotQueued) {
  Fixture f;
  ASSERT_TRUE(f.q.start(f.now));
  f.write(20, 44, 64000);
  const TapQueueEstimate::Mark m = f.q.mark();
  f.later();
  f.read(16, 64000);  // the tap takes them whole: frames from now on
  EXPECT_FALSE(f.q.still_queued(m, f.now));
  EXPECT_FALSE(f.q.counts_segments());
  // Marks in the new units are judged on their own.
  f.write(1, 44, 64000);
  f.later();
  EXPECT_TRUE(f.q.still_queued(f.q.mark(), f.now));
}

}  // namespace
}  // namespace ferry
