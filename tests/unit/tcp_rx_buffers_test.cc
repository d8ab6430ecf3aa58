// Unit tests for GuestRxBuffers without sockets: staging (append behind a
// waiting tail, compaction, the tail of a partial write, pool exhaustion),
// the out-of-order ring (merging ranges, the contiguous run once the hole
// is filled, wrap-around, limits) and SACK blocks (most recent first,
// trimmed at rcv_nxt, at most four, only when negotiated).
// test-libs: ferry_tcp ferry_codec
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "tcp/guest_rx_buffers.h"

namespace ferry {
namespace {

// Bytes whose value is their sequence number's low byte.
std::vector<uint8_t> bytes_at(uint32_t seq, size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; i++) v[i] = static_cast<uint8_t>(seq + i);
  return v;
}

// The run ooo_ready() hands out, flattened.
std::vector<uint8_t> ready(GuestRxBuffers& rx, TcpConn& c) {
  iovec iv[2];
  int n = rx.ooo_ready(c, iv);
  std::vector<uint8_t> out;
  for (int i = 0; i < n; i++) {
    auto* p = static_cast<const uint8_t*>(iv[i].iov_base);
    out.insert(out.end(), p, p + iv[i].iov_len);
  }
  return out;
}

TEST(GuestRxBuffers, StageTailThenAppendAndDrain) {
  GuestRxBuffers rx;
  TcpConn c{};
  auto a = bytes_at(0, 1000);
  ASSERT_TRUE(rx.stage_tail(c, a));
  EXPECT_NE(c.stage, 0u);
  EXPECT_EQ(GuestRxBuffers::staged(c), 1000u);
  EXPECT_EQ(rx.stage_chunks_free(), GuestRxBuffers::kStageChunks - 1);
  auto b = bytes_at(1000, 500);
  EXPECT_EQ(rx.stage_append(c, b), 500u);
  auto p = rx.stage_pending(c);
  ASSERT_EQ(p.size(), 1500u);
  EXPECT_EQ(std::memcmp(p.data(), a.data(), 1000), 0);
  EXPECT_EQ(std::memcmp(p.data() + 1000, b.data(), 500), 0);
  GuestRxBuffers::stage_consumed(c, 600);
  EXPECT_EQ(rx.stage_pending(c).size(), 900u);
  EXPECT_EQ(rx.stage_pending(c)[0], static_cast<uint8_t>(600));
  rx.stage_release(c);
  EXPECT_EQ(c.stage, 0u);
  EXPECT_EQ(GuestRxBuffers::staged(c), 0u);
  EXPECT_EQ(rx.stage_chunks_free(), GuestRxBuffers::kStageChunks);
}

TEST(GuestRxBuffers, StageAppendCompactsThenTakesWhatFits) {
  GuestRxBuffers rx;
  TcpConn c{};
  const size_t chunk = GuestRxBuffers::kStageChunk;
  auto full = bytes_at(0, chunk);
  ASSERT_TRUE(rx.stage_tail(c, full));
  EXPECT_EQ(rx.stage_append(c, bytes_at(0, 10)), 0u);  // full, nothing written yet
  GuestRxBuffers::stage_consumed(c, 100);               // 100 bytes went out
  EXPECT_EQ(rx.stage_append(c, bytes_at(chunk, 300)), 100u);  // moved to the front, 100 fit
  EXPECT_EQ(c.stage_off, 0u);
  EXPECT_EQ(c.stage_len, chunk);
  auto p = rx.stage_pending(c);
  EXPECT_EQ(p[0], static_cast<uint8_t>(100));
  EXPECT_EQ(p[chunk - 1], static_cast<uint8_t>(chunk + 99));
}

TEST(GuestRxBuffers, StageTailTooLongOrPoolEmpty) {
  GuestRxBuffers rx;
  TcpConn big{};
  EXPECT_FALSE(rx.stage_tail(big, bytes_at(0, GuestRxBuffers::kStageChunk + 1)));
  rx.stage_release(big);
  std::vector<TcpConn> conns(GuestRxBuffers::kStageChunks);
  for (auto& c : conns) ASSERT_TRUE(rx.stage_tail(c, bytes_at(0, 10)));
  TcpConn one_more{};
  EXPECT_FALSE(rx.stage_tail(one_more, bytes_at(0, 10)));
  EXPECT_EQ(one_more.stage, 0u);
  rx.stage_release(conns[0]);
  EXPECT_TRUE(rx.stage_tail(one_more, bytes_at(0, 10)));
}

TEST(GuestRxBuffers, OutOfOrderHeldUntilTheHoleIsFilled) {
  GuestRxBuffers rx;
  TcpConn c{};
  c.rcv_nxt = 1000;
  EXPECT_EQ(rx.ooo_store(c, 1200, bytes_at(1200, 100)), 100u);
  EXPECT_EQ(rx.ooo_store(c, 1400, bytes_at(1400, 100)), 100u);
  EXPECT_EQ(ready(rx, c).size(), 0u);  // hole at 1000
  c.rcv_nxt = 1200;                     // the guest resent [1000, 1200): written
  auto run = ready(rx, c);
  EXPECT_EQ(run, bytes_at(1200, 100));
  c.rcv_nxt = 1300;
  EXPECT_EQ(ready(rx, c).size(), 0u);  // second hole
  EXPECT_EQ(rx.ooo_store(c, 1300, bytes_at(1300, 100)), 100u);  // fills it: one range
  run = ready(rx, c);
  EXPECT_EQ(run, bytes_at(1300, 200));
  c.rcv_nxt = 1500;
  EXPECT_EQ(ready(rx, c).size(), 0u);
  EXPECT_EQ(c.ooo, 0u);  // nothing left: the chunk went back
  EXPECT_EQ(rx.ooo_chunks_free(), GuestRxBuffers::kOooChunks);
}

TEST(GuestRxBuffers, OutOfOrderWrapsAroundTheRing) {
  GuestRxBuffers rx;
  TcpConn c{};
  const uint32_t ring = static_cast<uint32_t>(GuestRxBuffers::kOooChunk);
  c.rcv_nxt = 0xfffffff0u - 100;  // sequence numbers wrap too
  uint32_t sq = (c.rcv_nxt | (ring - 1)) - 29;  // 30 bytes before the ring's end
  EXPECT_EQ(rx.ooo_store(c, sq, bytes_at(sq, 60)), 60u);
  c.rcv_nxt = sq;
  iovec iv[2];
  ASSERT_EQ(rx.ooo_ready(c, iv), 2);
  EXPECT_EQ(iv[0].iov_len, 30u);
  EXPECT_EQ(iv[1].iov_len, 30u);
  EXPECT_EQ(ready(rx, c), bytes_at(sq, 60));
}

TEST(GuestRxBuffers, OutOfOrderLimits) {
  GuestRxBuffers rx;
  TcpConn c{};
  c.rcv_nxt = 0;
  const uint32_t ring = static_cast<uint32_t>(GuestRxBuffers::kOooChunk);
  EXPECT_EQ(rx.ooo_store(c, ring, bytes_at(0, 10)), 0u);           // beyond the ring
  EXPECT_EQ(rx.ooo_store(c, ring - 5, bytes_at(0, 10)), 5u);       // clipped at its end
  EXPECT_EQ(rx.ooo_store(c, 10, {}), 0u);                          // nothing to keep
  TcpConn frag{};
  frag.rcv_nxt = 0;
  for (unsigned i = 0; i < GuestRxBuffers::kOooIntervals; i++)
    ASSERT_EQ(rx.ooo_store(frag, 10 + 20 * i, bytes_at(0, 10)), 10u);
  EXPECT_EQ(rx.ooo_store(frag, 10 + 20 * GuestRxBuffers::kOooIntervals, bytes_at(0, 10)), 0u);
  EXPECT_EQ(rx.ooo_store(frag, 15, bytes_at(0, 10)), 10u);  // merges: no new range needed
  std::vector<TcpConn> more(GuestRxBuffers::kOooChunks);
  size_t held = 0;
  for (auto& m : more) held += rx.ooo_store(m, 100, bytes_at(0, 10)) ? 1 : 0;
  EXPECT_EQ(held, GuestRxBuffers::kOooChunks - 2u);  // c and frag hold two chunks
  rx.ooo_release(c);
  EXPECT_EQ(c.ooo, 0u);
}

TEST(GuestRxBuffers, SackBlocksMostRecentFirst) {
  GuestRxBuffers rx;
  TcpConn c{};
  c.rcv_nxt = 100;
  TcpOptions o;
  EXPECT_FALSE(rx.sack_blocks(c, &o));  // nothing held
  rx.ooo_store(c, 200, bytes_at(0, 10));
  rx.ooo_store(c, 300, bytes_at(0, 10));
  rx.ooo_store(c, 400, bytes_at(0, 10));
  EXPECT_FALSE(rx.sack_blocks(c, &o));  // SACK not negotiated
  c.flags |= tcpconn::kSack;
  rx.ooo_store(c, 500, bytes_at(0, 10));
  rx.ooo_store(c, 600, bytes_at(0, 10));
  rx.ooo_store(c, 305, bytes_at(0, 10));  // most recent, merged into [300, 315)
  ASSERT_TRUE(rx.sack_blocks(c, &o));
  ASSERT_EQ(o.sack_count, 4);
  EXPECT_EQ(o.sack[0][0], 300u);
  EXPECT_EQ(o.sack[0][1], 315u);
  EXPECT_EQ(o.sack[1][0], 200u);
  EXPECT_EQ(o.sack[2][0], 400u);
  EXPECT_EQ(o.sack[3][0], 500u);
  c.rcv_nxt = 205;  // a block that straddles rcv_nxt starts there
  TcpOptions o2;
  ASSERT_TRUE(rx.sack_blocks(c, &o2));
  EXPECT_EQ(o2.sack[1][0], 205u);
  EXPECT_EQ(o2.sack[1][1], 210u);
}

}  // namespace
}  // namespace ferry
