// Router advertisements: build, send on schedule, answer solicitations (see ra.h).
#include "services/ra.h"

#include <cstring>

#include "codec/bytes.h"
#include "services/dns_name.h"

namespace ferry::services {

namespace {
enum : uint8_t { kOptSlla = 1, kOptPrefix = 3, kOptMtu = 5, kOptRdnss = 25, kOptDnssl = 31 };
constexpr MacAddr kAllNodesMac{{0x33, 0x33, 0, 0, 0, 1}};
}  // namespace

RaServer::RaServer(EventLoop& loop, GuestLink& link) : link_(link) {
  rng_ ^= now_ns();
  loop.add_timer_client(this);
}

size_t RaServer::build_body(std::span<uint8_t> out) const {
  const Config& c = link_.config();
  const ServicesConfig& s = c.services;
  size_t n = 0;
  // Each piece checks its room before writing.
  auto room = [&](size_t k) { return n + k <= out.size(); };
  if (!room(12 + 8 + 8 + 32)) return 0;
  uint8_t* p = out.data();
  p[0] = 64;  // cur hop limit
  p[1] = s.dhcp6 ? 0xc0 : 0x00;  // M, O
  put16(p + 2, kRouterLifetime);
  put32(p + 4, 0);  // reachable time: unspecified
  put32(p + 8, 0);  // retrans timer: unspecified
  n = 12;
  p[n] = kOptSlla;
  p[n + 1] = 1;
  std::memcpy(p + n + 2, link_.our_mac().b.data(), 6);
  n += 8;
  p[n] = kOptMtu;
  p[n + 1] = 1;
  put16(p + n + 2, 0);
  put32(p + n + 4, c.mtu);
  n += 8;
  p[n] = kOptPrefix;
  p[n + 1] = 4;
  p[n + 2] = static_cast<uint8_t>(c.guest6.len);
  p[n + 3] = static_cast<uint8_t>(0x80 | (c.guest6.len == 64 ? 0x40 : 0));  // on-link, autonomous
  put32(p + n + 4, kValidLifetime);
  put32(p + n + 8, kPreferredLifetime);
  put32(p + n + 12, 0);
  InetAddr prefix = c.guest6.addr;  // host bits cleared
  for (unsigned i = 0; i < 16; i++) {
    const unsigned keep = c.guest6.len > i * 8 ? std::min(8u, c.guest6.len - i * 8) : 0;
    prefix.b[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  std::memcpy(p + n + 16, prefix.b.data(), 16);
  n += 32;
  ServicesConfig::DnsList dns;
  if (const size_t count = s.handed_out(true, c.gateway6, dns)) {
    const size_t len = 8 + 16 * count;
    if (!room(len)) return 0;
    p[n] = kOptRdnss;
    p[n + 1] = static_cast<uint8_t>(len / 8);
    put16(p + n + 2, 0);
    put32(p + n + 4, kDnsLifetime);
    for (size_t i = 0; i < count; i++) std::memcpy(p + n + 8 + 16 * i, dns[i].b.data(), 16);
    n += len;
  }
  if (!s.search.empty()) {
    uint8_t names[1024];
    const size_t k = encode_dns_names(s.search, names);
    const size_t len = (8 + k + 7) / 8 * 8;  // padded with zeros to 8 octets
    if (k != 0 && len / 8 <= 255 && room(len)) {
      std::memset(p + n, 0, len);
      p[n] = kOptDnssl;
      p[n + 1] = static_cast<uint8_t>(len / 8);
      put32(p + n + 4, kDnsLifetime);
      std::memcpy(p + n + 8, names, k);
      n += len;
    }
  }
  return n;
}

void RaServer::send(uint64_t now) {
  const Config& c = link_.config();
  last_sent_ = now;
  if (initial_left_ > 0) initial_left_--;
  if (initial_left_ > 0) {
    next_ = now + kInitialInterval;
  } else {
    rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;  // LCG: jitter only
    next_ = now + kMinInterval + (rng_ >> 33) % (kMaxInterval - kMinInterval);
  }
  if (!c.ipv6 || !c.services.ra) {
    next_ = kNever;
    return;
  }
  constexpr size_t hdr = kEthHeaderLen + kIpv6HeaderLen + 4;
  const size_t body = build_body(std::span<uint8_t>(out_).subspan(hdr));
  L2L3 ip;
  ip.eth_src = link_.our_mac();
  ip.eth_dst = kAllNodesMac;
  ip.src = link_local_from_mac(link_.our_mac());
  ip.dst = *InetAddr::parse("ff02::1");
  ip.ttl = 255;
  const size_t n = body ? build_icmp_frame(out_, ip, kIcmp6RouterAdvert, 0,
                                           std::span<const uint8_t>(out_.data() + hdr, body))
                        : 0;
  if (n == 0 || !link_.send_to_guest(std::span<const uint8_t>(out_.data(), n))) {
    counters_.send_failed++;
    return;
  }
  counters_.adverts++;
}

void RaServer::on_timer(uint64_t now) {
  if (now >= next_) send(now);
}

void RaServer::on_solicit(const ParsedFrame& f, std::span<const uint8_t> frame) {
  // RFC 4861 6.1.1: hop limit 255, code 0, at least 8 octets, options well formed.
  const size_t len = f.icmp.body_len;  // after type, code, checksum: reserved(4) options
  if (f.ttl != 255 || f.icmp.code != 0 || len < 4 || f.icmp.body_offset > frame.size() ||
      len > frame.size() - f.icmp.body_offset) {
    counters_.malformed++;
    return;
  }
  const uint8_t* b = frame.data() + f.icmp.body_offset;
  for (size_t off = 4; off < len;) {
    if (len - off < 2 || b[off + 1] == 0 || size_t{b[off + 1]} * 8 > len - off ||
        (b[off] == kOptSlla && f.src.is_unspecified())) {
      counters_.malformed++;
      return;
    }
    off += size_t{b[off + 1]} * 8;
  }
  counters_.solicitations++;
  const uint64_t now = now_ns();
  if (last_sent_ != 0 && now < last_sent_ + kMinDelayBetweenRas) {
    next_ = std::min(next_, last_sent_ + kMinDelayBetweenRas);  // answered at the gap's end
    return;
  }
  send(now);
}

}  // namespace ferry::services
