// DHCPv4 server: parse, decide, answer (see dhcp4.h).
#include "services/dhcp4.h"

#include <cstring>

#include "codec/bytes.h"
#include "services/dns_name.h"

namespace ferry::services {

namespace {

constexpr uint8_t kMagic[4] = {99, 130, 83, 99};
constexpr size_t kBootpMinLen = 300;  // RFC 1542 2.1: some relays and clients want this much
constexpr size_t kDhcp4SnameOffset = 44, kDhcp4SnameLen = 64;  // the fixed header's sname
constexpr size_t kDhcp4FileOffset = 108, kDhcp4FileLen = 128;  // ... and file

enum : uint8_t {
  kOptPad = 0, kOptSubnetMask = 1, kOptRouter = 3, kOptDns = 6, kOptHostname = 12, kOptDomain = 15,
  kOptMtu = 26, kOptRequestedIp = 50, kOptLease = 51, kOptOverload = 52, kOptMsgType = 53,
  kOptServerId = 54, kOptT1 = 58, kOptT2 = 59, kOptClientId = 61, kOptSearch = 119, kOptClasslessRoutes = 121, kOptEnd = 255,
};

// Appends options to a reply, never past its end (BoundedWriter); a failed
// write leaves `ok` false and the caller sends nothing.
class OptionWriter : public BoundedWriter {
 public:
  explicit OptionWriter(std::span<uint8_t> out) : BoundedWriter(out) {}

  // One option; data longer than 255 bytes goes as consecutive instances
  // of the same code, which the client concatenates (RFC 3396).
  void put(uint8_t code, std::span<const uint8_t> data) {
    size_t done = 0;
    do {
      const size_t piece = std::min<size_t>(255, data.size() - done);
      if (!room(2 + piece)) return;
      u8(code);
      u8(static_cast<uint8_t>(piece));
      bytes(data.subspan(done, piece));
      done += piece;
    } while (done < data.size());
  }
  void put_u8(uint8_t code, uint8_t v) { put(code, std::span<const uint8_t>(&v, 1)); }
  void put_u16(uint8_t code, uint16_t v) {
    uint8_t b[2];
    put16(b, v);
    put(code, b);
  }
  void put_u32(uint8_t code, uint32_t v) {
    uint8_t b[4];
    put32(b, v);
    put(code, b);
  }
  void put_addr(uint8_t code, const InetAddr& a) { put(code, std::span<const uint8_t>(a.v4_bytes(), 4)); }
  void end() { u8(kOptEnd); }
};

// A prefix length as a netmask.
uint32_t netmask(unsigned len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }

// RFC 3442 destination encoding: width, then only the significant octets.
size_t put_classless_route(uint8_t* p, const InetPrefix& dst, const InetAddr& via) {
  const size_t octets = (dst.len + 7) / 8;
  size_t n = 0;
  p[n++] = static_cast<uint8_t>(dst.len);
  for (size_t i = 0; i < octets; i++) p[n++] = dst.addr.v4_bytes()[i];
  std::memcpy(p + n, via.v4_bytes(), 4);
  return n + 4;
}

}  // namespace

namespace {

// The options in one field (the options area, or sname/file when
// overloaded): code, length, data; pad and end have no length. Sets
// *overload from option 52. False when an option runs past the field or a
// known option has the wrong length.
bool parse_options(std::span<const uint8_t> field, Dhcp4Request* out, uint8_t* overload) {
  const uint8_t* m = field.data();
  for (size_t off = 0; off < field.size();) {
    const uint8_t code = m[off];
    if (code == kOptPad) {
      off++;
      continue;
    }
    if (code == kOptEnd) break;
    if (off + 2 > field.size()) return false;
    const size_t len = m[off + 1];
    const uint8_t* v = m + off + 2;
    if (off + 2 + len > field.size()) return false;
    switch (code) {
      case kOptMsgType:
        if (len != 1) return false;
        if (v[0] >= 1 && v[0] <= 8) out->type = static_cast<Dhcp4Type>(v[0]);
        break;
      case kOptRequestedIp:
        if (len != 4) return false;
        out->has_requested = true;
        out->requested = InetAddr::from_v4_bytes(v);
        break;
      case kOptServerId:
        if (len != 4) return false;
        out->has_server_id = true;
        out->server_id = InetAddr::from_v4_bytes(v);
        break;
      case kOptOverload:
        if (len != 1 || v[0] < 1 || v[0] > 3) return false;
        if (overload) *overload = v[0];
        break;
      case kOptClientId:
        // RFC 2132 9.14: at least 2 bytes (type and an identifier); a
        // shorter one is not echoed, and the message is still served.
        if (len >= 2) out->client_id = field.subspan(off + 2, len);
        break;
      default:
        break;
    }
    off += 2 + len;
  }
  return true;
}

}  // namespace

Dhcp4Parse parse_dhcp4(std::span<const uint8_t> msg, Dhcp4Request* out) {
  *out = Dhcp4Request{};
  if (msg.size() < kDhcp4MinLen) return Dhcp4Parse::truncated;
  const uint8_t* m = msg.data();
  if (m[0] != 1 || m[1] != 1 || m[2] != 6) return Dhcp4Parse::not_request;
  if (std::memcmp(m + kDhcp4FixedLen, kMagic, 4) != 0) return Dhcp4Parse::bad_cookie;
  out->xid = get32(m + 4);
  out->flags = get16(m + 10);
  out->ciaddr = InetAddr::from_v4_bytes(m + 12);
  out->giaddr = InetAddr::from_v4_bytes(m + 24);
  std::memcpy(out->chaddr.b.data(), m + 28, 6);
  // Option overload (52, RFC 2131 4.1, RFC 2132 9.3): more options in
  // file (1), sname (2) or both (3), read after the options field; an
  // overload named there again is not followed.
  uint8_t overload = 0;
  if (!parse_options(msg.subspan(kDhcp4MinLen), out, &overload)) return Dhcp4Parse::bad_option;
  if ((overload & 1) && !parse_options(msg.subspan(kDhcp4FileOffset, kDhcp4FileLen), out, nullptr))
    return Dhcp4Parse::bad_option;
  if ((overload & 2) && !parse_options(msg.subspan(kDhcp4SnameOffset, kDhcp4SnameLen), out, nullptr))
    return Dhcp4Parse::bad_option;
  if (out->type == Dhcp4Type::none) return Dhcp4Parse::no_type;
  return Dhcp4Parse::ok;
}

size_t Dhcp4Server::build_reply(const Dhcp4Request& req, Dhcp4Type type, std::span<uint8_t> out) const {
  const Config& c = link_.config();
  const ServicesConfig& s = c.services;
  if (out.size() < kBootpMinLen) return 0;
  std::memset(out.data(), 0, kDhcp4MinLen);
  uint8_t* m = out.data();
  m[0] = 2;  // BOOTREPLY
  m[1] = 1;
  m[2] = 6;
  put32(m + 4, req.xid);
  put16(m + 10, req.flags & 0x8000);
  if (type == Dhcp4Type::ack && req.type == Dhcp4Type::inform) {
    std::memcpy(m + 12, req.ciaddr.v4_bytes(), 4);  // INFORM: ciaddr back, no yiaddr
  } else if (type != Dhcp4Type::nak) {
    std::memcpy(m + 16, c.guest4.addr.v4_bytes(), 4);  // yiaddr
  }
  std::memcpy(m + 24, req.giaddr.v4_bytes(), 4);
  std::memcpy(m + 28, req.chaddr.b.data(), 6);
  std::memcpy(m + kDhcp4FixedLen, kMagic, 4);

  OptionWriter w(out.subspan(kDhcp4MinLen));
  w.put_u8(kOptMsgType, static_cast<uint8_t>(type));
  w.put_addr(kOptServerId, c.gateway4);
  // RFC 6842 3: the client identifier goes back as sent, in every answer
  // (a client may drop answers without it, or with another one).
  if (!req.client_id.empty()) w.put(kOptClientId, req.client_id);
  if (type != Dhcp4Type::nak) {
    if (req.type != Dhcp4Type::inform) {
      w.put_u32(kOptLease, s.lease_s);
      w.put_u32(kOptT1, s.lease_s / 2);
      w.put_u32(kOptT2, static_cast<uint32_t>(uint64_t{s.lease_s} * 7 / 8));
    }
    w.put_u32(kOptSubnetMask, netmask(c.guest4.len));
    w.put_addr(kOptRouter, c.gateway4);
    ServicesConfig::DnsList dns;
    if (const size_t count = s.handed_out(false, c.gateway4, dns)) {
      uint8_t b[4 * ServicesConfig::kMaxDnsHandedOut];
      for (size_t i = 0; i < count; i++) std::memcpy(b + 4 * i, dns[i].v4_bytes(), 4);
      w.put(kOptDns, std::span<const uint8_t>(b, 4 * count));
    }
    const std::string& domain = !s.domain.empty() ? s.domain : (s.search.empty() ? s.domain : s.search[0]);
    if (!domain.empty()) {
      w.put(kOptDomain, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(domain.data()), domain.size()));
    }
    if (!s.search.empty()) {
      uint8_t b[1024];
      if (size_t n = encode_dns_names(s.search, b)) w.put(kOptSearch, std::span<const uint8_t>(b, n));
    }
    w.put_u16(kOptMtu, static_cast<uint16_t>(c.mtu));
    if (!s.hostname.empty()) {
      w.put(kOptHostname,
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.hostname.data()), s.hostname.size()));
    }
    if (!s.routes.empty()) {
      uint8_t b[9 * 33];
      size_t n = 0;
      for (const Route4& r : s.routes) {
        if (n + 9 > sizeof(b)) break;
        n += put_classless_route(b + n, r.dst, r.via);
      }
      InetPrefix def;
      def.addr = *InetAddr::parse("0.0.0.0");
      if (n + 9 <= sizeof(b)) n += put_classless_route(b + n, def, c.gateway4);
      w.put(kOptClasslessRoutes, std::span<const uint8_t>(b, n));
    }
  }
  w.end();
  if (!w.ok()) return 0;
  size_t len = kDhcp4MinLen + w.size();
  if (len < kBootpMinLen) {
    std::memset(m + len, 0, kBootpMinLen - len);  // pad options
    len = kBootpMinLen;
  }
  return len;
}

void Dhcp4Server::on_datagram(const ParsedFrame& f, std::span<const uint8_t> frame) {
  const Config& c = link_.config();
  if (!f.is_udp() || f.udp.dport != kDhcp4ServerPort || f.udp.payload_offset > frame.size() ||
      f.udp.payload_len > frame.size() - f.udp.payload_offset) {
    counters_.malformed++;
    return;
  }
  Dhcp4Request req;
  if (parse_dhcp4(frame.subspan(f.udp.payload_offset, f.udp.payload_len), &req) != Dhcp4Parse::ok) {
    counters_.malformed++;
    return;
  }
  // Relayed messages belong to another network; a client port other than
  // 68 is not a DHCP client (RFC 2131 4.1).
  if (!c.ipv4 || !req.giaddr.is_unspecified() || f.udp.sport != kDhcp4ClientPort) {
    counters_.ignored++;
    return;
  }
  const bool for_us = !req.has_server_id || req.server_id == c.gateway4;
  switch (req.type) {
    case Dhcp4Type::discover:
      counters_.discovers++;
      return reply(f, req, Dhcp4Type::offer);
    case Dhcp4Type::request: {
      counters_.requests++;
      if (!for_us) {  // the client took another server's offer
        counters_.ignored++;
        return;
      }
      const InetAddr& wanted = req.has_requested ? req.requested : req.ciaddr;
      return reply(f, req, wanted == c.guest4.addr ? Dhcp4Type::ack : Dhcp4Type::nak);
    }
    case Dhcp4Type::inform:
      counters_.informs++;
      return reply(f, req, Dhcp4Type::ack);
    case Dhcp4Type::release:
      counters_.releases++;
      return;
    case Dhcp4Type::decline:
      counters_.declines++;
      return;
    default:
      counters_.ignored++;  // OFFER/ACK/NAK from a guest: it is no server of ours
      return;
  }
}

// Sends a reply to where RFC 2131 4.1 says: ciaddr if the client has one,
// else broadcast (flag set, or a NAK), else unicast to yiaddr/chaddr.
void Dhcp4Server::reply(const ParsedFrame& f, const Dhcp4Request& req, Dhcp4Type type) {
  const Config& c = link_.config();
  const size_t hdr = udp_frame_header_len(false);
  const size_t plen = build_reply(req, type, std::span<uint8_t>(out_).subspan(hdr));
  if (plen == 0) {
    counters_.send_failed++;
    return;
  }
  UdpDatagram d;
  d.ip.eth_src = link_.our_mac();
  d.ip.src = c.gateway4;
  const bool broadcast = (req.flags & 0x8000) != 0 || type == Dhcp4Type::nak;
  if (!req.ciaddr.is_unspecified() && type != Dhcp4Type::nak) {
    d.ip.dst = req.ciaddr;
    d.ip.eth_dst = f.eth_src;
  } else if (broadcast) {
    d.ip.dst = *InetAddr::parse("255.255.255.255");
    d.ip.eth_dst = MacAddr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  } else {
    d.ip.dst = c.guest4.addr;
    d.ip.eth_dst = req.chaddr;
  }
  d.sport = kDhcp4ServerPort;
  d.dport = kDhcp4ClientPort;
  d.payload = std::span<const uint8_t>(out_.data() + hdr, plen);
  const size_t n = build_udp_frame(out_, d);
  if (n == 0 || !link_.send_to_guest(std::span<const uint8_t>(out_.data(), n))) {
    counters_.send_failed++;
    return;
  }
  switch (type) {
    case Dhcp4Type::offer: counters_.offers++; break;
    case Dhcp4Type::ack: counters_.acks++; break;
    case Dhcp4Type::nak: counters_.naks++; break;
    default: break;
  }
}

}  // namespace ferry::services
