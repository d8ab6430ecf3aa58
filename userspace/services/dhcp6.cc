// DHCPv6 server: parse, validate, answer (see dhcp6.h).
#include "services/dhcp6.h"

#include <cstring>

#include "codec/bytes.h"
#include "services/dns_name.h"

namespace ferry::services {

namespace {

enum : uint16_t {
  kOptClientId = 1, kOptServerId = 2, kOptIaNa = 3, kOptIaTa = 4, kOptIaAddr = 5, kOptOro = 6, kOptPreference = 7,
  kOptStatusCode = 13, kOptRapidCommit = 14, kOptDnsServers = 23, kOptDomainList = 24, kOptIaPd = 25,
};
enum : uint16_t { kStatusSuccess = 0, kStatusNotOnLink = 4 };
constexpr size_t kMaxDuidLen = 130;  // RFC 8415 11.1: 2 + 128

// Appends DHCPv6 options (2-byte code and length) within out (BoundedWriter).
class OptionWriter : public BoundedWriter {
 public:
  explicit OptionWriter(std::span<uint8_t> out, size_t start) : BoundedWriter(out, start) {}
  // Starts an option; returns where its length goes, or SIZE_MAX on no room.
  size_t open(uint16_t code) {
    if (!room(4)) return SIZE_MAX;
    put16(out_.data() + n_, code);
    n_ += 4;
    return n_ - 2;
  }
  void close(size_t len_at) {
    if (len_at != SIZE_MAX && ok_) put16(out_.data() + len_at, static_cast<uint16_t>(n_ - len_at - 2));
  }
  void option(uint16_t code, std::span<const uint8_t> data) {
    const size_t at = open(code);
    bytes(data);
    close(at);
  }
};

}  // namespace

Dhcp6Parse parse_dhcp6(std::span<const uint8_t> msg, const InetPrefix& prefix, Dhcp6Request* out) {
  *out = Dhcp6Request{};
  if (msg.size() < 4) return Dhcp6Parse::truncated;
  const uint8_t* m = msg.data();
  out->type = m[0];
  switch (static_cast<Dhcp6Type>(m[0])) {
    case Dhcp6Type::solicit: case Dhcp6Type::request: case Dhcp6Type::confirm: case Dhcp6Type::renew:
    case Dhcp6Type::rebind: case Dhcp6Type::release: case Dhcp6Type::decline:
    case Dhcp6Type::information_request:
      break;
    default:
      return Dhcp6Parse::not_client_message;
  }
  std::memcpy(out->xid, m + 1, 3);
  for (size_t off = 4; off < msg.size();) {
    if (msg.size() - off < 4) return Dhcp6Parse::bad_option;
    const uint16_t code = get16(m + off);
    const size_t len = get16(m + off + 2);
    if (len > msg.size() - off - 4) return Dhcp6Parse::bad_option;
    const std::span<const uint8_t> v = msg.subspan(off + 4, len);
    if (code == kOptIaNa || code == kOptIaTa || code == kOptIaPd) out->has_ia = true;
    switch (code) {
      case kOptClientId:
      case kOptServerId:
        if (len < 2 || len > kMaxDuidLen) return Dhcp6Parse::bad_option;
        (code == kOptClientId ? out->client_id : out->server_id) = v;
        break;
      case kOptRapidCommit:
        if (len != 0) return Dhcp6Parse::bad_option;
        out->rapid_commit = true;
        break;
      case kOptIaNa: {
        if (len < 12) return Dhcp6Parse::bad_option;
        if (!out->has_ia_na) {
          out->has_ia_na = true;
          out->iaid = get32(v.data());
        }
        // Sub-options, each inside the IA_NA; addresses matter for CONFIRM.
        for (size_t s = 12; s < len;) {
          if (len - s < 4) return Dhcp6Parse::bad_option;
          const uint16_t sc = get16(v.data() + s);
          const size_t sl = get16(v.data() + s + 2);
          if (sl > len - s - 4) return Dhcp6Parse::bad_option;
          if (sc == kOptIaAddr) {
            if (sl < 24) return Dhcp6Parse::bad_option;
            const InetAddr a = InetAddr::from_v6_bytes(v.data() + s + 4);
            if (!a.same_prefix(prefix.addr, prefix.len)) out->confirm_off_link = true;
          }
          s += 4 + sl;
        }
        break;
      }
      default:
        break;
    }
    off += 4 + len;
  }
  return Dhcp6Parse::ok;
}

Dhcp6Server::Dhcp6Server(GuestLink& link) : link_(link) {
  duid_[1] = 3;  // DUID-LL
  duid_[3] = 1;  // Ethernet
  std::memcpy(duid_.data() + 4, link_.our_mac().b.data(), 6);
}

size_t Dhcp6Server::build_answer(const Dhcp6Request& req, Dhcp6Type type, std::span<uint8_t> out) const {
  const Config& c = link_.config();
  const ServicesConfig& s = c.services;
  if (out.size() < 4) return 0;
  out[0] = static_cast<uint8_t>(type);
  std::memcpy(out.data() + 1, req.xid, 3);
  OptionWriter w(out, 4);
  w.option(kOptServerId, duid());
  if (!req.client_id.empty()) w.option(kOptClientId, req.client_id);
  const auto msg_type = static_cast<Dhcp6Type>(req.type);
  if (type == Dhcp6Type::advertise) {
    const uint8_t pref = 255;
    w.option(kOptPreference, std::span<const uint8_t>(&pref, 1));
  }
  if (type == Dhcp6Type::reply && msg_type == Dhcp6Type::solicit) w.option(kOptRapidCommit, {});
  const bool binding = msg_type == Dhcp6Type::solicit || msg_type == Dhcp6Type::request ||
                       msg_type == Dhcp6Type::renew || msg_type == Dhcp6Type::rebind;
  if (binding && req.has_ia_na) {
    const size_t ia = w.open(kOptIaNa);
    w.u32(req.iaid);
    w.u32(s.lease_s / 2);                                            // T1
    w.u32(static_cast<uint32_t>(uint64_t{s.lease_s} * 4 / 5));      // T2
    const size_t addr = w.open(kOptIaAddr);
    w.bytes(c.guest6.addr.b);
    w.u32(s.lease_s);  // preferred
    w.u32(s.lease_s);  // valid
    w.close(addr);
    w.close(ia);
  }
  if (msg_type == Dhcp6Type::confirm || msg_type == Dhcp6Type::release || msg_type == Dhcp6Type::decline) {
    const size_t st = w.open(kOptStatusCode);
    w.u16(req.confirm_off_link ? kStatusNotOnLink : kStatusSuccess);
    w.close(st);
  }
  if (msg_type != Dhcp6Type::release && msg_type != Dhcp6Type::decline) {
    ServicesConfig::DnsList dns;
    if (const size_t count = s.handed_out(true, c.gateway6, dns)) {
      const size_t d = w.open(kOptDnsServers);
      for (size_t i = 0; i < count; i++) w.bytes(dns[i].b);
      w.close(d);
    }
    if (!s.search.empty()) {
      uint8_t names[1024];
      if (size_t k = encode_dns_names(s.search, names)) w.option(kOptDomainList, std::span<const uint8_t>(names, k));
    }
  }
  return w.ok() ? w.size() : 0;
}

void Dhcp6Server::on_datagram(const ParsedFrame& f, std::span<const uint8_t> frame) {
  const Config& c = link_.config();
  if (!f.is_udp() || f.udp.dport != kDhcp6ServerPort || f.udp.payload_offset > frame.size() ||
      f.udp.payload_len > frame.size() - f.udp.payload_offset) {
    counters_.malformed++;
    return;
  }
  Dhcp6Request req;
  if (parse_dhcp6(frame.subspan(f.udp.payload_offset, f.udp.payload_len), c.guest6, &req) != Dhcp6Parse::ok) {
    counters_.malformed++;
    return;
  }
  const auto type = static_cast<Dhcp6Type>(req.type);
  const bool ours = req.server_id.size() == duid_.size() &&
                    std::memcmp(req.server_id.data(), duid_.data(), duid_.size()) == 0;
  bool valid = c.ipv6 && !f.src.is_unspecified();  // clients send from their link-local address
  Dhcp6Type answer = Dhcp6Type::reply;
  switch (type) {
    case Dhcp6Type::solicit:
      counters_.solicits++;
      valid = valid && !req.client_id.empty() && req.server_id.empty();
      if (!req.rapid_commit) answer = Dhcp6Type::advertise;
      break;
    case Dhcp6Type::request:
    case Dhcp6Type::renew:
    case Dhcp6Type::release:
    case Dhcp6Type::decline:
      (type == Dhcp6Type::request ? counters_.requests
       : type == Dhcp6Type::renew ? counters_.renews
       : type == Dhcp6Type::release ? counters_.releases
                                    : counters_.declines)++;
      valid = valid && !req.client_id.empty() && ours;
      break;
    case Dhcp6Type::rebind:
    case Dhcp6Type::confirm:
      (type == Dhcp6Type::rebind ? counters_.rebinds : counters_.confirms)++;
      valid = valid && !req.client_id.empty() && req.server_id.empty();
      break;
    case Dhcp6Type::information_request:
      counters_.info_requests++;
      // RFC 8415 16.12: one that asks for addresses or prefixes is discarded.
      valid = valid && (req.server_id.empty() || ours) && !req.has_ia;
      break;
    default:
      valid = false;
      break;
  }
  if (!valid) {
    counters_.ignored++;
    return;
  }
  const size_t hdr = udp_frame_header_len(true);
  const size_t plen = build_answer(req, answer, std::span<uint8_t>(out_).subspan(hdr));
  UdpDatagram d;
  d.ip.eth_src = link_.our_mac();
  d.ip.eth_dst = f.eth_src;
  d.ip.src = link_local_from_mac(link_.our_mac());
  d.ip.dst = f.src;
  d.ip.ttl = 255;
  d.sport = kDhcp6ServerPort;
  d.dport = f.udp.sport;
  d.payload = std::span<const uint8_t>(out_.data() + hdr, plen);
  const size_t n = plen ? build_udp_frame(out_, d) : 0;
  if (n == 0 || !link_.send_to_guest(std::span<const uint8_t>(out_.data(), n))) {
    counters_.send_failed++;
    return;
  }
  (answer == Dhcp6Type::advertise ? counters_.advertises : counters_.replies)++;
}

}  // namespace ferry::services
