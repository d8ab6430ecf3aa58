// GuestRxBuffers: where guest data waits when it cannot go straight into
// the host socket. No sockets here: the translator writes what these
// buffers hand it and reports back how much the socket took, so the buffers
// are unit-tested on their own (tests/unit/tcp_rx_buffers_test.cc).
//
// Theory of operation
// -------------------
//  * Staging: the window we advertise is an estimate of the host socket's
//    free send-buffer space, so a write may still be partial. The unwritten
//    tail of that one segment goes to a staging chunk (kStageChunk bytes,
//    from a fixed pool of kStageChunks) and the whole segment is ACKed, so
//    the guest never sits in an RTO. While a chunk holds bytes, further
//    in-order data is appended behind them while it fits. A connection
//    holds at most one chunk (TcpConn::stage = chunk index + 1, 0 = none;
//    [stage_off, stage_len) is what still waits).
//  * Out-of-order ring: a connection with holes borrows one chunk from a
//    pool of kOooChunks: a ring of kOooChunk bytes indexed by sequence
//    number (valid while everything held lies within [rcv_nxt, rcv_nxt +
//    kOooChunk), which the window guarantees) and a sorted table of up to
//    kOooIntervals disjoint, non-adjacent [start, end) ranges
//    (TcpConn::ooo = chunk index + 1, 0 = none). Once the hole at rcv_nxt
//    is filled, ooo_ready() hands out the contiguous run.
//  * SACK blocks (RFC 2018 §4) describe the ring's ranges: the one holding
//    the most recently received segment first, then the others in order.
// Pools are fixed at construction (mmap'd, pages touched only when used);
// running out only costs the guest a retransmission, never memory.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/frame.h"
#include "tcp/tcp_conn.h"

namespace ferry {

class GuestRxBuffers {
 public:
  static constexpr size_t kStageChunk = 65536;
  static constexpr uint32_t kStageChunks = 128;
  static constexpr unsigned kOooIntervals = 256;
  static constexpr size_t kOooChunk = size_t{1} << 22;  // 4 MiB ring, a power of two
  static constexpr uint32_t kOooChunks = 8;

  // Maps both pools; throws std::bad_alloc when the memory is not there.
  GuestRxBuffers();
  ~GuestRxBuffers();
  GuestRxBuffers(const GuestRxBuffers&) = delete;
  GuestRxBuffers& operator=(const GuestRxBuffers&) = delete;

  // ---- staging (TcpConn::stage, stage_off, stage_len)
  // Bytes staged and not yet written.
  static size_t staged(const TcpConn& c) { return c.stage ? c.stage_len - c.stage_off : 0; }
  // Appends what fits of payload behind bytes still waiting (moving them to
  // the chunk's front first when that makes room); returns the bytes taken.
  size_t stage_append(TcpConn& c, std::span<const uint8_t> payload);
  // Keeps the unwritten tail of a segment, borrowing a chunk when c has
  // none; false when no chunk is free or the tail does not fit one.
  bool stage_tail(TcpConn& c, std::span<const uint8_t> tail);
  // The staged bytes still to be written.
  std::span<const uint8_t> stage_pending(const TcpConn& c) const;
  // n of the pending bytes were written.
  static void stage_consumed(TcpConn& c, size_t n) { c.stage_off += static_cast<uint32_t>(n); }
  // Returns c's chunk (if any) to the pool.
  void stage_release(TcpConn& c);
  size_t stage_chunks_free() const { return stage_free_.size(); }

  // ---- out-of-order ring (TcpConn::ooo)
  // Keeps a segment that starts beyond c.rcv_nxt; returns the bytes kept,
  // 0 when dropped (no chunk free, beyond the ring, too many ranges).
  size_t ooo_store(TcpConn& c, uint32_t sq, std::span<const uint8_t> payload);
  // The data held contiguously from c.rcv_nxt as one or two pieces (the
  // ring wraps); returns how many, 0 when a hole remains. Forgets ranges
  // wholly below rcv_nxt and releases the chunk once none is left.
  int ooo_ready(TcpConn& c, iovec iv[2]);
  // Returns c's reassembly chunk to the pool and its pages to the kernel.
  void ooo_release(TcpConn& c);
  size_t ooo_chunks_free() const { return ooo_free_.size(); }

  // SACK blocks for what c's ring holds into o (sack_count); false when
  // there are none or SACK was not negotiated.
  bool sack_blocks(const TcpConn& c, TcpOptions* o) const;

 private:
  struct OooMeta {
    uint16_t n = 0;
    uint32_t last = 0;  // start of the most recent segment kept (SACK order)
    uint32_t iv[kOooIntervals][2];  // sorted, disjoint [start, end)
  };
  uint8_t* stage_chunk(const TcpConn& c) const { return stage_pool_ + (c.stage - 1) * kStageChunk; }
  uint8_t* ooo_ring(const TcpConn& c) const { return ooo_pool_ + (c.ooo - 1) * kOooChunk; }

  uint8_t* stage_pool_ = nullptr;
  std::vector<uint32_t> stage_free_;
  uint8_t* ooo_pool_ = nullptr;
  std::vector<uint32_t> ooo_free_;
  std::vector<OooMeta> ooo_meta_;
};

}  // namespace ferry
