// Unit tests for the TCP translator's building blocks: sequence arithmetic
// across the 2^32 wrap, SipHash-2-4 against the paper's test vector, the
// RFC 6528 ISN generator, the flow table (insert, lookup, remove with
// backward shift, full table, slot stability, free-list reuse), window-scale
// choice, the RFC 6298 RTO estimator and the timer heap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "tcp/flow_table.h"
#include "tcp/rto.h"
#include "tcp/siphash.h"
#include "tcp/tcp_isn.h"
#include "tcp/tcp_seq.h"
#include "tcp/tcp_translator.h"
#include "tcp/timer_heap.h"

namespace ferry {
namespace {

InetAddr A(const char* s) { return *InetAddr::parse(s); }

TEST(TcpSeq, CompareAcrossWrap) {
  using namespace tcpseq;
  EXPECT_TRUE(lt(0xfffffff0u, 0x10u));
  EXPECT_TRUE(gt(0x10u, 0xfffffff0u));
  EXPECT_TRUE(le(5u, 5u));
  EXPECT_TRUE(ge(5u, 5u));
  EXPECT_FALSE(lt(5u, 5u));
  EXPECT_TRUE(lt(0x7ffffffeu, 0x7fffffffu));
  EXPECT_TRUE(lt(0xffffffffu, 0u));
  EXPECT_TRUE(in_range(0u, 0xfffffff0u, 0x10u));
  EXPECT_FALSE(in_range(0x10u, 0xfffffff0u, 0x10u));
  EXPECT_FALSE(in_range(7u, 7u, 7u));
  EXPECT_EQ(max(0xfffffff0u, 0x10u), 0x10u);
  EXPECT_EQ(min(0xfffffff0u, 0x10u), 0xfffffff0u);
  uint32_t una = 0xffffff00u, nxt = una + 0x200;  // wraps
  EXPECT_EQ(nxt - una, 0x200u);
  EXPECT_TRUE(gt(nxt, una));
}

TEST(SipHash, PaperTestVector) {
  // Appendix A of the SipHash paper: key 00..0f, message 00..0e (15 bytes).
  SipKey k;
  uint8_t key[16];
  for (int i = 0; i < 16; i++) key[i] = static_cast<uint8_t>(i);
  std::memcpy(&k.k0, key, 8);
  std::memcpy(&k.k1, key + 8, 8);
  uint8_t msg[15];
  for (int i = 0; i < 15; i++) msg[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(siphash24(k, msg, 15), 0xa129ca6149be45e5ULL);
  // The reference's vector for the empty message.
  EXPECT_EQ(siphash24(k, msg, 0), 0x726fdb47dd0e0e31ULL);
}

TEST(TcpIsn, DiffersPerTupleMonotonicPerTuple) {
  IsnGenerator g;
  InetAddr a = A("198.18.0.1"), b = A("198.18.0.2");
  uint64_t t = 1'000'000'000;
  uint32_t i1 = g.isn(a, 80, b, 40000, t);
  uint32_t i2 = g.isn(a, 80, b, 40001, t);
  uint32_t i3 = g.isn(b, 80, a, 40000, t);
  EXPECT_NE(i1, i2);
  EXPECT_NE(i1, i3);
  // Same tuple later: larger by the clock (4.096 us ticks).
  uint32_t later = g.isn(a, 80, b, 40000, t + 4096 * 1000);
  EXPECT_EQ(later - i1, 1000u);
  EXPECT_TRUE(tcpseq::gt(later, i1));
  // Two generators (two keys) disagree: not predictable across instances.
  IsnGenerator g2;
  EXPECT_NE(g2.isn(a, 80, b, 40000, t), i1);
}

ferry_conn_key Key(int i) {
  return TcpTranslator::make_key(A("198.18.0.2"), static_cast<uint16_t>(1000 + i), A("198.18.0.1"),
                                 80);
}

TEST(FlowTable, InsertLookupRemoveFull) {
  FlowTable t(64);
  std::map<int, uint32_t> slots;
  for (int i = 0; i < 64; i++) {
    uint32_t s = t.insert(Key(i));
    ASSERT_NE(s, kNoSlot);
    slots[i] = s;
  }
  EXPECT_EQ(t.size(), 64u);
  EXPECT_EQ(t.insert(Key(1000)), kNoSlot);  // full
  for (int i = 0; i < 64; i++) EXPECT_EQ(t.lookup(Key(i)), slots[i]);
  EXPECT_EQ(t.lookup(Key(999)), kNoSlot);
  // Remove every other one; the rest keep their slots and stay findable.
  for (int i = 0; i < 64; i += 2) t.remove(slots[i]);
  for (int i = 0; i < 64; i++) {
    if (i % 2)
      EXPECT_EQ(t.lookup(Key(i)), slots[i]) << i;
    else
      EXPECT_EQ(t.lookup(Key(i)), kNoSlot) << i;
  }
  EXPECT_EQ(t.size(), 32u);
  // Freed slots are reused, LIFO.
  uint32_t s = t.insert(Key(500));
  EXPECT_EQ(s, slots[62]);
  EXPECT_TRUE(FlowTable::same(t.key(s), Key(500)));
}

TEST(FlowTable, RandomChurnAgainstModel) {
  // Small key space against a std::map model, with many removals, so
  // backward-shift deletion is exercised across probe runs and wrap-around.
  FlowTable t(200, SipKey{1, 2});
  std::map<int, uint32_t> model;
  std::mt19937 rng(42);
  for (int step = 0; step < 20000; step++) {
    int k = static_cast<int>(rng() % 400);
    auto it = model.find(k);
    if (it != model.end() && (rng() & 1)) {
      t.remove(it->second);
      model.erase(it);
    } else if (it == model.end()) {
      uint32_t s = t.insert(Key(k));
      if (model.size() < 200) {
        ASSERT_NE(s, kNoSlot);
        model[k] = s;
      } else {
        ASSERT_EQ(s, kNoSlot);
      }
    }
    if (step % 997 == 0) {
      for (int q = 0; q < 400; q++) {
        auto m = model.find(q);
        ASSERT_EQ(t.lookup(Key(q)), m == model.end() ? kNoSlot : m->second) << "step " << step;
      }
    }
  }
  EXPECT_EQ(t.size(), model.size());
}

TEST(TcpWindowScale, Choice) {
  EXPECT_EQ(TcpTranslator::choose_wscale(65535), 0);
  EXPECT_EQ(TcpTranslator::choose_wscale(65536), 1);
  EXPECT_EQ(TcpTranslator::choose_wscale(4u << 20), 7);  // 65535 << 6 is 64 bytes short
  EXPECT_EQ(TcpTranslator::choose_wscale(32u << 20), 10);
  EXPECT_EQ(TcpTranslator::choose_wscale(uint64_t{1} << 40), 14);  // clamped (RFC 7323)
}

TEST(Rto, Rfc6298) {
  RtoEstimator r;
  EXPECT_EQ(r.rto(), RtoEstimator::kInitialNs);
  r.back_off();
  EXPECT_EQ(r.rto(), 2 * RtoEstimator::kInitialNs);
  r.sample(100'000'000);  // 100 ms: SRTT 100, RTTVAR 50, RTO 300 ms
  EXPECT_EQ(r.srtt(), 100'000'000u);
  EXPECT_EQ(r.rttvar(), 50'000'000u);
  EXPECT_EQ(r.rto(), 300'000'000u);
  EXPECT_EQ(r.backoff(), 0u);  // a sample clears back-off
  r.sample(100'000'000);       // RTTVAR 3/4 * 50 = 37.5, SRTT 100: 250 ms
  EXPECT_EQ(r.rto(), 250'000'000u);
  // Tiny RTTs (loopback) clamp to the 200 ms minimum.
  RtoEstimator s;
  s.sample(20'000);
  EXPECT_EQ(s.rto(), RtoEstimator::kMinNs);
  for (int i = 0; i < 20; i++) s.back_off();
  EXPECT_EQ(s.rto(), RtoEstimator::kMaxNs);
  // The tests' knob: a raised minimum holds for samples and the initial RTO,
  // and never exceeds the maximum.
  RtoEstimator t;
  t.set_min(30'000'000'000);
  EXPECT_EQ(t.rto(), 30'000'000'000u);
  t.sample(20'000);
  EXPECT_EQ(t.rto(), 30'000'000'000u);
  t.set_min(100'000'000'000);
  EXPECT_EQ(t.rto(), RtoEstimator::kMaxNs);
}

TEST(TimerHeap, OrderMoveCancel) {
  TimerHeap h(100);
  std::mt19937 rng(7);
  std::vector<uint64_t> want(100, TimerHeap::kNone);
  for (int i = 0; i < 5000; i++) {
    uint32_t s = static_cast<uint32_t>(rng() % 100);
    uint64_t d = (rng() % 4) == 0 ? TimerHeap::kNone : rng() % 100000;
    h.set(s, d);
    want[s] = d;
    uint64_t m = *std::min_element(want.begin(), want.end());
    ASSERT_EQ(h.top_deadline(), m);
    if (m != TimerHeap::kNone) {
      ASSERT_EQ(want[h.top_slot()], m);
    }
  }
  for (uint32_t s = 0; s < 100; s++) EXPECT_EQ(h.deadline(s), want[s]);
}

}  // namespace
}  // namespace ferry
