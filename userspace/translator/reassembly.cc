#include "translator/reassembly.h"

#include <cstring>

#include "codec/bytes.h"
#include "codec/checksum.h"

namespace ferry {

void Reassembler::drop(Slot& s) {
  s.used = false;
  counters_.dropped++;
}

Reassembler::Slot* Reassembler::find_or_make(bool v6, uint8_t proto, const uint8_t* src,
                                             const uint8_t* dst, uint32_t id, uint64_t now) {
  const size_t alen = v6 ? 16 : 4;
  Slot* free_slot = nullptr;
  Slot* oldest = nullptr;
  for (Slot& s : slots_) {
    if (s.used && now - s.started > kTimeoutNs) drop(s);  // timed out
    if (!s.used) {
      if (free_slot == nullptr) free_slot = &s;
      continue;
    }
    if (s.v6 == v6 && s.proto == proto && s.id == id && std::memcmp(s.src, src, alen) == 0 &&
        std::memcmp(s.dst, dst, alen) == 0)
      return &s;
    if (oldest == nullptr || s.started < oldest->started) oldest = &s;
  }
  Slot* s = free_slot;
  if (s == nullptr) {  // all busy: the oldest gives way
    s = oldest != nullptr ? oldest : &slots_[0];
    drop(*s);
  }
  if (!s->buf) {
    s->buf = std::make_unique<uint8_t[]>(kHeadRoom + kMaxPayload);
    s->have = std::make_unique<uint64_t[]>((kBlocks + 63) / 64);
  }
  s->used = true;
  s->v6 = v6;
  s->proto = proto;
  std::memset(s->src, 0, sizeof(s->src));
  std::memset(s->dst, 0, sizeof(s->dst));
  std::memcpy(s->src, src, alen);
  std::memcpy(s->dst, dst, alen);
  s->id = id;
  s->started = now;
  s->total = 0;
  s->blocks_have = 0;
  s->head_len = 0;
  std::memset(s->have.get(), 0, (kBlocks + 63) / 64 * sizeof(uint64_t));
  return s;
}

std::optional<std::span<const uint8_t>> Reassembler::add(std::span<const uint8_t> frame,
                                                         uint64_t now) {
  counters_.fragments++;
  const uint8_t* f = frame.data();
  const size_t n = frame.size();
  if (n < 14 + 20) {
    counters_.dropped++;
    return std::nullopt;
  }
  const uint16_t ethertype = get16(f + 12);
  bool v6 = false, more = false;
  uint8_t proto = 0;
  uint32_t id = 0;
  size_t hl = 0, off = 0, data_at = 0, data_len = 0;
  const uint8_t* ip = f + 14;
  if (ethertype == 0x0800 && (ip[0] >> 4) == 4) {
    hl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    const size_t tot = get16(ip + 2);
    if (hl < 20 || tot < hl || 14 + tot > n) {
      counters_.dropped++;
      return std::nullopt;
    }
    const uint16_t fo = get16(ip + 6);
    more = fo & 0x2000;
    off = static_cast<size_t>(fo & 0x1fff) * 8;
    proto = ip[9];
    id = get16(ip + 4);
    data_at = 14 + hl;
    data_len = tot - hl;
  } else if (ethertype == 0x86dd && (ip[0] >> 4) == 6 && n >= 14 + 48 && ip[6] == 44) {
    v6 = true;
    hl = 40;
    const size_t plen = get16(ip + 4);
    const uint8_t* fh = ip + 40;
    // A Fragment header right behind another (nested, e.g. atomic fragments
    // in atomic fragments): no stack sends that; reassembled, it would be a
    // fragment again, handed back here from inside our own buffer.
    if (plen < 8 || 14 + 40 + plen > n || fh[0] == 44) {
      counters_.dropped++;
      return std::nullopt;
    }
    proto = fh[0];
    const uint16_t fo = get16(fh + 2);
    more = fo & 1;
    off = fo & 0xfff8;
    id = static_cast<uint32_t>(get16(fh + 4)) << 16 | get16(fh + 6);
    data_at = 14 + 48;
    data_len = plen - 8;
  } else {
    counters_.dropped++;
    return std::nullopt;
  }
  const uint8_t* src = v6 ? ip + 8 : ip + 12;
  const uint8_t* dst = v6 ? ip + 24 : ip + 16;
  Slot* s = find_or_make(v6, proto, src, dst, id, now);
  if ((more && (data_len == 0 || data_len % 8 != 0)) || off + data_len > kMaxPayload ||
      (s->total != 0 && off + data_len > s->total) || (!more && s->total != 0)) {
    drop(*s);
    return std::nullopt;
  }
  if (!more) {
    s->total = off + data_len;
    // a fragment already beyond this end
    for (size_t b = (s->total + 7) / 8; b < kBlocks; b++) {
      if (s->have[b / 64] & (1ull << (b % 64))) {
        drop(*s);
        return std::nullopt;
      }
    }
  }
  const size_t b0 = off / 8, b1 = (off + data_len + 7) / 8;
  for (size_t b = b0; b < b1; b++) {
    if (s->have[b / 64] & (1ull << (b % 64))) {  // overlap (RFC 5722)
      drop(*s);
      return std::nullopt;
    }
  }
  for (size_t b = b0; b < b1; b++) s->have[b / 64] |= 1ull << (b % 64);
  s->blocks_have += b1 - b0;
  std::memcpy(s->buf.get() + kHeadRoom + off, f + data_at, data_len);
  if (off == 0) {  // its headers become the datagram's
    s->head_len = 14 + hl;
    std::memcpy(s->buf.get() + kHeadRoom - s->head_len, f, s->head_len);
  }
  if (s->total == 0 || s->head_len == 0 || s->blocks_have != (s->total + 7) / 8) return std::nullopt;
  // complete: fix the header up in front of the payload; it is the first
  // fragment's, whose length may differ from this one's (RFC 791: options
  // without the copy flag are in the first fragment only)
  uint8_t* out = s->buf.get() + kHeadRoom - s->head_len;
  uint8_t* h = out + 14;
  hl = s->head_len - 14;
  if (!v6) {
    if (hl + s->total > 65535) {
      drop(*s);
      return std::nullopt;
    }
    put16(h + 2, static_cast<uint16_t>(hl + s->total));
    put16(h + 6, 0);
    put16(h + 10, 0);
    uint16_t c = csum_fold(csum_partial(h, hl, 0));
    std::memcpy(h + 10, &c, 2);
  } else {
    put16(h + 4, static_cast<uint16_t>(s->total));
    h[6] = proto;
  }
  s->used = false;
  counters_.datagrams++;
  return std::span<const uint8_t>(out, s->head_len + s->total);
}

}  // namespace ferry
