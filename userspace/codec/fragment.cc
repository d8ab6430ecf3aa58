#include "codec/fragment.h"

#include <cstring>

#include "codec/bytes.h"
#include "codec/checksum.h"
#include "codec/frame.h"

namespace ferry {

namespace {

constexpr size_t kFragHdr = 8;
constexpr uint8_t kIpProtoFragment = 44;

}  // namespace

size_t fragment_frame(std::span<const uint8_t> frame, unsigned mtu, uint32_t id,
                      std::span<uint8_t> scratch,
                      const std::function<bool(std::span<const uint8_t>)>& emit) {
  if (frame.size() < kEthHeaderLen + 20 || frame.size() - kEthHeaderLen <= mtu) return 0;
  const uint8_t* f = frame.data();
  const uint16_t ethertype = static_cast<uint16_t>(f[12] << 8 | f[13]);
  uint8_t* out = scratch.data();
  size_t sent = 0;
  if (ethertype == 0x0800) {
    const size_t ihl = static_cast<size_t>(f[kEthHeaderLen] & 0x0f) * 4;
    if (ihl < 20 || frame.size() < kEthHeaderLen + ihl || mtu < ihl + 8) return 0;
    const size_t hdr = kEthHeaderLen + ihl;
    const size_t data_len = frame.size() - hdr;
    const size_t chunk = (mtu - ihl) & ~size_t{7};
    if (scratch.size() < hdr + chunk) return 0;
    for (size_t off = 0; off < data_len; off += chunk) {
      const size_t len = std::min(chunk, data_len - off);
      const bool more = off + len < data_len;
      std::memcpy(out, f, hdr);
      std::memcpy(out + hdr, f + hdr + off, len);
      uint8_t* h = out + kEthHeaderLen;
      put16(h + 2, static_cast<uint16_t>(ihl + len));
      put16(h + 4, static_cast<uint16_t>(id));
      put16(h + 6, static_cast<uint16_t>((more ? 0x2000 : 0) | (off / 8)));  // no DF
      put16(h + 10, 0);
      uint16_t c = csum_fold(csum_partial(h, ihl, 0));
      std::memcpy(h + 10, &c, 2);
      sent++;
      if (!emit(std::span<const uint8_t>(out, hdr + len))) break;
    }
    return sent;
  }
  if (ethertype == 0x86dd) {
    if (frame.size() < kEthHeaderLen + kIpv6HeaderLen || mtu < kIpv6HeaderLen + kFragHdr + 8) return 0;
    const size_t hdr = kEthHeaderLen + kIpv6HeaderLen;
    const uint8_t next = f[kEthHeaderLen + 6];
    const size_t data_len = frame.size() - hdr;
    const size_t chunk = (mtu - kIpv6HeaderLen - kFragHdr) & ~size_t{7};
    if (scratch.size() < hdr + kFragHdr + chunk) return 0;
    for (size_t off = 0; off < data_len; off += chunk) {
      const size_t len = std::min(chunk, data_len - off);
      const bool more = off + len < data_len;
      std::memcpy(out, f, hdr);
      uint8_t* h = out + kEthHeaderLen;
      put16(h + 4, static_cast<uint16_t>(kFragHdr + len));
      h[6] = kIpProtoFragment;
      uint8_t* fh = out + hdr;
      fh[0] = next;
      fh[1] = 0;
      put16(fh + 2, static_cast<uint16_t>(off | (more ? 1 : 0)));  // offset in 8-byte units << 3
      put16(fh + 4, static_cast<uint16_t>(id >> 16));
      put16(fh + 6, static_cast<uint16_t>(id));
      std::memcpy(out + hdr + kFragHdr, f + hdr + off, len);
      sent++;
      if (!emit(std::span<const uint8_t>(out, hdr + kFragHdr + len))) break;
    }
    return sent;
  }
  return 0;
}

}  // namespace ferry
