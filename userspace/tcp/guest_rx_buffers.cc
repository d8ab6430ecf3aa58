// GuestRxBuffers: staging chunks, the out-of-order ring and its SACK
// blocks. See guest_rx_buffers.h for the theory of operation.
#include "tcp/guest_rx_buffers.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "tcp/tcp_conn.h"
#include "tcp/tcp_seq.h"

namespace ferry {

namespace seq = tcpseq;

namespace {

// Anonymous private memory, zero pages until touched.
uint8_t* map_pool(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
}

}  // namespace

// Both pools, every chunk free (the highest index handed out last).
GuestRxBuffers::GuestRxBuffers() {
  stage_pool_ = map_pool(kStageChunk * kStageChunks);
  try {
    ooo_pool_ = map_pool(kOooChunk * kOooChunks);
  } catch (...) {
    munmap(stage_pool_, kStageChunk * kStageChunks);
    throw;
  }
  stage_free_.reserve(kStageChunks);
  for (uint32_t i = kStageChunks; i > 0; i--) stage_free_.push_back(i);
  ooo_free_.reserve(kOooChunks);
  ooo_meta_.resize(kOooChunks);
  for (uint32_t i = kOooChunks; i > 0; i--) ooo_free_.push_back(i);
}

GuestRxBuffers::~GuestRxBuffers() {
  munmap(stage_pool_, kStageChunk * kStageChunks);
  munmap(ooo_pool_, kOooChunk * kOooChunks);
}

// ---- staging -------------------------------------------------------------------

// Behind an earlier tail that still waits: append what fits.
size_t GuestRxBuffers::stage_append(TcpConn& c, std::span<const uint8_t> payload) {
  if (!c.stage) return 0;
  uint8_t* chunk = stage_chunk(c);
  size_t room = kStageChunk - c.stage_len;
  if (room < payload.size() && c.stage_off > 0) {
    std::memmove(chunk, chunk + c.stage_off, c.stage_len - c.stage_off);
    c.stage_len -= c.stage_off;
    c.stage_off = 0;
    room = kStageChunk - c.stage_len;
  }
  size_t taken = std::min(room, payload.size());
  std::memcpy(chunk + c.stage_len, payload.data(), taken);
  c.stage_len += static_cast<uint32_t>(taken);
  return taken;
}

// The tail of a partial write becomes the chunk's whole content.
bool GuestRxBuffers::stage_tail(TcpConn& c, std::span<const uint8_t> tail) {
  if (!c.stage && !stage_free_.empty()) {
    c.stage = stage_free_.back();
    stage_free_.pop_back();
    c.stage_off = c.stage_len = 0;
  }
  if (!c.stage || tail.size() > kStageChunk) return false;
  std::memcpy(stage_chunk(c), tail.data(), tail.size());
  c.stage_off = 0;
  c.stage_len = static_cast<uint32_t>(tail.size());
  return true;
}

// [stage_off, stage_len) of the chunk.
std::span<const uint8_t> GuestRxBuffers::stage_pending(const TcpConn& c) const {
  if (!c.stage) return {};
  return {stage_chunk(c) + c.stage_off, c.stage_len - c.stage_off};
}

// The chunk goes back to the pool (its pages stay: staging is common).
void GuestRxBuffers::stage_release(TcpConn& c) {
  if (!c.stage) return;
  stage_free_.push_back(c.stage);
  c.stage = 0;
  c.stage_off = c.stage_len = 0;
}

// ---- out-of-order ring -----------------------------------------------------------

// Merges [sq, sq + len) into the range table and copies the bytes into the
// ring: without SACK the guest learns only about the first hole, so
// dropping what follows it would cost one round trip per segment.
size_t GuestRxBuffers::ooo_store(TcpConn& c, uint32_t sq, std::span<const uint8_t> payload) {
  if (payload.empty()) return 0;
  if (!c.ooo) {
    if (ooo_free_.empty()) return 0;
    c.ooo = ooo_free_.back();
    ooo_free_.pop_back();
    ooo_meta_[c.ooo - 1].n = 0;
  }
  OooMeta& m = ooo_meta_[c.ooo - 1];
  uint32_t start = sq;
  uint32_t end = sq + static_cast<uint32_t>(payload.size());
  uint32_t limit = c.rcv_nxt + static_cast<uint32_t>(kOooChunk);
  if (seq::ge(start, limit)) return 0;
  if (seq::gt(end, limit)) end = limit;
  // Merge [start, end) into the sorted, disjoint, non-adjacent list.
  uint32_t s0 = start, e0 = end;
  unsigned first = 0;
  while (first < m.n && seq::lt(m.iv[first][1], s0)) first++;
  unsigned last = first;  // [first, last) overlap or touch the new range
  while (last < m.n && seq::le(m.iv[last][0], e0)) {
    s0 = seq::min(s0, m.iv[last][0]);
    e0 = seq::max(e0, m.iv[last][1]);
    last++;
  }
  unsigned n_after = m.n - (last - first) + 1;
  if (n_after > kOooIntervals) return 0;  // too fragmented: the guest resends it
  if (last - first != 1) {
    std::memmove(&m.iv[first + 1], &m.iv[last], sizeof(m.iv[0]) * (m.n - last));
  }
  m.iv[first][0] = s0;
  m.iv[first][1] = e0;
  m.n = static_cast<uint16_t>(n_after);
  m.last = start;
  uint8_t* ring = ooo_ring(c);
  size_t len = end - start;
  size_t pos = start & (kOooChunk - 1);
  size_t part = std::min(len, kOooChunk - pos);
  std::memcpy(ring + pos, payload.data(), part);
  if (part < len) std::memcpy(ring, payload.data() + part, len - part);
  return len;
}

// The first range, once it starts at (or before) rcv_nxt.
int GuestRxBuffers::ooo_ready(TcpConn& c, iovec iv[2]) {
  if (!c.ooo) return 0;
  OooMeta& m = ooo_meta_[c.ooo - 1];
  unsigned drop = 0;
  while (drop < m.n && seq::le(m.iv[drop][1], c.rcv_nxt)) drop++;
  if (drop) {
    std::memmove(&m.iv[0], &m.iv[drop], sizeof(m.iv[0]) * (m.n - drop));
    m.n = static_cast<uint16_t>(m.n - drop);
  }
  if (m.n == 0) {
    ooo_release(c);
    return 0;
  }
  if (seq::gt(m.iv[0][0], c.rcv_nxt)) return 0;  // a hole remains
  uint8_t* ring = ooo_ring(c);
  uint32_t len = m.iv[0][1] - c.rcv_nxt;
  size_t pos = c.rcv_nxt & (kOooChunk - 1);
  iv[0].iov_base = ring + pos;
  iv[0].iov_len = std::min<size_t>(len, kOooChunk - pos);
  iv[1].iov_base = ring;
  iv[1].iov_len = len - iv[0].iov_len;
  return iv[1].iov_len ? 2 : 1;
}

// Loss is rare: a chunk's pages should not stay resident.
void GuestRxBuffers::ooo_release(TcpConn& c) {
  if (!c.ooo) return;
  madvise(ooo_ring(c), kOooChunk, MADV_DONTNEED);
  ooo_free_.push_back(c.ooo);
  c.ooo = 0;
}

// RFC 2018 §4: the block with the most recently received segment first,
// then the others in order, at most four.
bool GuestRxBuffers::sack_blocks(const TcpConn& c, TcpOptions* o) const {
  if (!(c.flags & tcpconn::kSack) || !c.ooo) return false;
  const OooMeta& m = ooo_meta_[c.ooo - 1];
  uint8_t n = 0;
  int first = -1;
  for (unsigned i = 0; i < m.n; i++)
    if (seq::gt(m.iv[i][1], c.rcv_nxt) && seq::in_range(m.last, m.iv[i][0], m.iv[i][1])) first = static_cast<int>(i);
  if (first >= 0) {
    o->sack[n][0] = m.iv[first][0];
    o->sack[n++][1] = m.iv[first][1];
  }
  for (unsigned i = 0; i < m.n && n < 4; i++) {
    if (static_cast<int>(i) == first || seq::le(m.iv[i][1], c.rcv_nxt)) continue;
    o->sack[n][0] = seq::max(m.iv[i][0], c.rcv_nxt);
    o->sack[n++][1] = m.iv[i][1];
  }
  o->sack_count = n;
  return n > 0;
}

}  // namespace ferry
