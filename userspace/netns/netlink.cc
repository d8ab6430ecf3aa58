// rtnetlink client: see netlink.h for the theory of operation.
//
// Wire layout reminders: every message and every attribute starts 4-byte
// aligned; nlmsg_len covers header + payload without trailing pad; rta_len
// covers the attribute header + payload without pad. The parsers below trust
// none of these lengths until checked against what is left of the buffer.
#include "netns/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

namespace ferry {

namespace {

constexpr size_t kAlign = 4;
constexpr size_t align4(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }
constexpr size_t kAttrHdr = align4(sizeof(nlattr));
constexpr size_t kRecvBuf = 64 * 1024;
constexpr uint16_t kAttrTypeMask = 0x3fff;  // ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)

// Copies a trivially copyable struct out of possibly unaligned bytes.
template <class T>
bool read_struct(std::span<const uint8_t> s, T* out) {
  if (s.size() < sizeof(T)) return false;
  std::memcpy(out, s.data(), sizeof(T));
  return true;
}

// The address bytes to put on the wire: 4 for IPv4, 16 for IPv6.
std::span<const uint8_t> addr_bytes(const InetAddr& a) {
  if (inet_family(a) == AF_INET) return {a.b.data() + 12, 4};
  return {a.b.data(), 16};
}

// An InetAddr from wire bytes of a family; nullopt on a length mismatch.
std::optional<InetAddr> addr_from(int family, std::span<const uint8_t> d) {
  InetAddr a;
  if (family == AF_INET && d.size() == 4) {
    a.b[10] = 0xff;
    a.b[11] = 0xff;
    std::memcpy(a.b.data() + 12, d.data(), 4);
    return a;
  }
  if (family == AF_INET6 && d.size() == 16) {
    std::memcpy(a.b.data(), d.data(), 16);
    return a;
  }
  return std::nullopt;
}

// "ifindex N" for error texts.
std::string on_if(int ifindex) { return " on ifindex " + std::to_string(ifindex); }

}  // namespace

// ---- addresses without codec code --------------------------------------------------

// IPv4-mapped (::ffff:0:0/96) means IPv4, as codec/addr.h defines.
int inet_family(const InetAddr& a) {
  for (int i = 0; i < 10; i++) {
    if (a.b[static_cast<size_t>(i)] != 0) return AF_INET6;
  }
  return (a.b[10] == 0xff && a.b[11] == 0xff) ? AF_INET : AF_INET6;
}

// inet_ntop of either family.
std::string inet_text(const InetAddr& a) {
  char text[INET6_ADDRSTRLEN] = {};
  std::span<const uint8_t> bytes = addr_bytes(a);
  if (::inet_ntop(inet_family(a), bytes.data(), text, sizeof(text)) == nullptr) return "?";
  return text;
}

// ---- NlBuilder ------------------------------------------------------------------

// Starts a message with its header.
NlBuilder::NlBuilder(uint16_t type, uint16_t flags, uint32_t seq) {
  nlmsghdr h{};
  h.nlmsg_len = sizeof(nlmsghdr);
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  std::memcpy(buf_.data(), &h, sizeof(h));
  len_ = align4(sizeof(nlmsghdr));
}

// Appends bytes at the next aligned offset and updates nlmsg_len.
void* NlBuilder::put_raw(const void* data, size_t len) {
  size_t start = len_;
  if (overflow_ || start + align4(len) > buf_.size()) {
    overflow_ = true;
    return nullptr;
  }
  std::memcpy(buf_.data() + start, data, len);
  std::memset(buf_.data() + start + len, 0, align4(len) - len);
  len_ = start + align4(len);
  header()->nlmsg_len = static_cast<uint32_t>(len_);
  return buf_.data() + start;
}

// Appends header + payload + pad of one attribute.
bool NlBuilder::attr(uint16_t type, const void* data, size_t len) {
  if (overflow_ || len > 0xffff - kAttrHdr || len_ + kAttrHdr + align4(len) > buf_.size()) {
    overflow_ = true;
    return false;
  }
  nlattr a{};
  a.nla_len = static_cast<uint16_t>(kAttrHdr + len);
  a.nla_type = type;
  uint8_t* p = buf_.data() + len_;
  std::memcpy(p, &a, sizeof(a));
  if (len > 0) std::memcpy(p + kAttrHdr, data, len);
  std::memset(p + kAttrHdr + len, 0, align4(len) - len);
  len_ += kAttrHdr + align4(len);
  header()->nlmsg_len = static_cast<uint32_t>(len_);
  return true;
}

// String attributes carry their terminating NUL, as the kernel expects.
bool NlBuilder::attr_str(uint16_t type, std::string_view s) {
  std::array<char, 256> tmp{};
  if (s.size() >= tmp.size()) {
    overflow_ = true;
    return false;
  }
  std::memcpy(tmp.data(), s.data(), s.size());
  return attr(type, tmp.data(), s.size() + 1);
}

// Opens a nest: an attribute header whose length is fixed by nest_end.
size_t NlBuilder::nest_begin(uint16_t type) {
  size_t token = len_;
  if (!attr(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0)) return SIZE_MAX;
  return token;
}

// Closes a nest: its length now covers everything appended since.
void NlBuilder::nest_end(size_t token) {
  if (token == SIZE_MAX || overflow_ || token + sizeof(nlattr) > len_) return;
  size_t nest_len = len_ - token;
  if (nest_len > 0xffff) {
    overflow_ = true;
    return;
  }
  uint16_t l = static_cast<uint16_t>(nest_len);
  std::memcpy(buf_.data() + token + offsetof(nlattr, nla_len), &l, sizeof(l));
}

// ---- parsing ------------------------------------------------------------------

// Next message; checks nlmsg_len against the header size and what is left.
std::optional<NlMessage> NlMessages::next() {
  if (rest_.empty() || malformed_) return std::nullopt;
  nlmsghdr h{};
  if (!read_struct(rest_, &h) || h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > rest_.size()) {
    malformed_ = true;
    return std::nullopt;
  }
  NlMessage m;
  m.type = h.nlmsg_type;
  m.flags = h.nlmsg_flags;
  m.seq = h.nlmsg_seq;
  size_t hdr = align4(sizeof(nlmsghdr));
  m.payload = h.nlmsg_len > hdr ? rest_.subspan(hdr, h.nlmsg_len - hdr) : std::span<const uint8_t>{};
  size_t step = align4(h.nlmsg_len);
  rest_ = step >= rest_.size() ? std::span<const uint8_t>{} : rest_.subspan(step);
  return m;
}

// A u32 attribute payload.
std::optional<uint32_t> NlAttr::u32() const {
  uint32_t v = 0;
  if (data.size() != sizeof(v)) return std::nullopt;
  std::memcpy(&v, data.data(), sizeof(v));
  return v;
}

// String payload up to NUL.
std::string NlAttr::str() const {
  const char* p = reinterpret_cast<const char*>(data.data());
  size_t n = 0;
  while (n < data.size() && p[n] != '\0') n++;
  return std::string(p, n);
}

// Next attribute; checks nla_len against its header and what is left.
std::optional<NlAttr> NlAttrs::next() {
  if (malformed_ || rest_.size() < sizeof(nlattr)) return std::nullopt;
  nlattr a{};
  read_struct(rest_, &a);
  if (a.nla_len < sizeof(nlattr) || a.nla_len > rest_.size()) {
    malformed_ = true;
    return std::nullopt;
  }
  NlAttr out;
  out.type = static_cast<uint16_t>(a.nla_type & kAttrTypeMask);
  out.data = rest_.subspan(kAttrHdr, a.nla_len - kAttrHdr);
  size_t step = align4(a.nla_len);
  rest_ = step >= rest_.size() ? std::span<const uint8_t>{} : rest_.subspan(step);
  return out;
}

// Decodes nlmsgerr, and the extended-ack message when the kernel sent TLVs.
std::optional<NlAck> parse_ack(const NlMessage& m) {
  nlmsgerr e{};
  if (m.type != NLMSG_ERROR || !read_struct(m.payload, &e)) return std::nullopt;
  NlAck ack;
  ack.err = e.error < 0 ? -e.error : e.error;
  ack.seq = e.msg.nlmsg_seq;
  if ((m.flags & NLM_F_ACK_TLVS) == 0) return ack;
  // With NETLINK_CAP_ACK the echoed request is only its header; without it,
  // an error echoes the whole request: skip whatever length it claims.
  size_t skip = sizeof(nlmsgerr);
  if ((m.flags & NLM_F_CAPPED) == 0 && ack.err != 0) {
    skip = sizeof(nlmsgerr) - sizeof(nlmsghdr) + align4(e.msg.nlmsg_len);
  }
  if (skip > m.payload.size()) return ack;
  NlAttrs attrs(m.payload.subspan(align4(skip)));
  while (auto a = attrs.next()) {
    if (a->type == NLMSGERR_ATTR_MSG) ack.ext_msg = a->str();
  }
  return ack;
}

// ---- request builders ------------------------------------------------------------

// RTM_GETLINK for one name.
void build_getlink_by_name(NlBuilder& b, std::string_view name) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  b.put(ifi);
  b.attr_str(IFLA_IFNAME, name);
}

// RTM_NEWLINK changing only the flag bits in `change`.
void build_setlink_flags(NlBuilder& b, int ifindex, unsigned flags, unsigned change) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = flags;
  ifi.ifi_change = change;
  b.put(ifi);
}

// RTM_NEWLINK setting one u32 attribute (IFLA_MTU, IFLA_TXQLEN).
void build_setlink_u32(NlBuilder& b, int ifindex, uint16_t ifla, uint32_t value) {
  build_setlink_flags(b, ifindex, 0, 0);
  b.attr_u32(ifla, value);
}

// RTM_NEWADDR with IFA_LOCAL (v4) / IFA_ADDRESS and, for v6, NODAD.
bool build_newaddr(NlBuilder& b, int ifindex, const InetPrefix& p) {
  int family = inet_family(p.addr);
  unsigned max_len = family == AF_INET ? 32 : 128;
  if (p.len > max_len) return false;
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(family);
  ifa.ifa_prefixlen = static_cast<uint8_t>(p.len);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(ifindex);
  uint32_t flags = family == AF_INET6 ? IFA_F_NODAD : 0;
  ifa.ifa_flags = static_cast<uint8_t>(flags);
  b.put(ifa);
  std::span<const uint8_t> bytes = addr_bytes(p.addr);
  if (family == AF_INET) b.attr(IFA_LOCAL, bytes.data(), bytes.size());
  b.attr(IFA_ADDRESS, bytes.data(), bytes.size());
  if (flags != 0) b.attr_u32(IFA_FLAGS, flags);
  return !b.overflow();
}

// RTM_NEWROUTE 0/0 (or ::/0) via gw, main table, static.
void build_default_route(NlBuilder& b, int ifindex, const InetAddr& gw) {
  rtmsg rt{};
  rt.rtm_family = static_cast<uint8_t>(inet_family(gw));
  rt.rtm_dst_len = 0;
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_STATIC;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  b.put(rt);
  std::span<const uint8_t> bytes = addr_bytes(gw);
  b.attr(RTA_GATEWAY, bytes.data(), bytes.size());
  b.attr_u32(RTA_OIF, static_cast<uint32_t>(ifindex));
}

// RTM_NEWNEIGH, NUD_PERMANENT.
void build_newneigh(NlBuilder& b, int ifindex, const InetAddr& addr, const MacAddr& mac) {
  ndmsg nd{};
  nd.ndm_family = static_cast<uint8_t>(inet_family(addr));
  nd.ndm_ifindex = ifindex;
  nd.ndm_state = NUD_PERMANENT;
  b.put(nd);
  std::span<const uint8_t> bytes = addr_bytes(addr);
  b.attr(NDA_DST, bytes.data(), bytes.size());
  b.attr(NDA_LLADDR, mac.b.data(), mac.b.size());
}

// RTM_NEWLINK kind veth; the peer's ifinfomsg and attributes nest in
// IFLA_LINKINFO / IFLA_INFO_DATA / VETH_INFO_PEER.
void build_newveth(NlBuilder& b, std::string_view name, std::string_view peer, int peer_ns_fd, unsigned mtu,
                   const MacAddr* peer_mac) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  b.put(ifi);
  b.attr_str(IFLA_IFNAME, name);
  if (mtu != 0) b.attr_u32(IFLA_MTU, mtu);
  size_t linkinfo = b.nest_begin(IFLA_LINKINFO);
  b.attr_str(IFLA_INFO_KIND, "veth");
  size_t data = b.nest_begin(IFLA_INFO_DATA);
  size_t peer_nest = b.nest_begin(VETH_INFO_PEER);
  ifinfomsg pi{};
  pi.ifi_family = AF_UNSPEC;
  b.put(pi);
  b.attr_str(IFLA_IFNAME, peer);
  if (mtu != 0) b.attr_u32(IFLA_MTU, mtu);
  if (peer_ns_fd >= 0) b.attr_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns_fd));
  if (peer_mac) b.attr(IFLA_ADDRESS, peer_mac->b.data(), peer_mac->b.size());
  b.nest_end(peer_nest);
  b.nest_end(data);
  b.nest_end(linkinfo);
}

// RTM_DELLINK of one index.
void build_dellink(NlBuilder& b, int ifindex) { build_setlink_flags(b, ifindex, 0, 0); }

// RTM_NEWROUTE dst/len via gw or on-link; the kernel refuses a dst with
// host bits set, so they are cleared here.
void build_route(NlBuilder& b, int ifindex, const InetPrefix& dst, const std::optional<InetAddr>& gw) {
  const int family = inet_family(dst.addr);
  const unsigned max_len = family == AF_INET ? 32 : 128;
  const unsigned len = dst.len > max_len ? max_len : dst.len;
  InetAddr masked = dst.addr;
  const unsigned skip = family == AF_INET ? 96 : 0;  // IPv4-mapped prefix bits
  for (unsigned i = skip + len; i < 128; i++) {
    masked.b[i / 8] = static_cast<uint8_t>(masked.b[i / 8] & ~(0x80u >> (i % 8)));
  }
  rtmsg rt{};
  rt.rtm_family = static_cast<uint8_t>(family);
  rt.rtm_dst_len = static_cast<uint8_t>(len);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_STATIC;
  rt.rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rt.rtm_type = RTN_UNICAST;
  b.put(rt);
  if (len != 0) {
    std::span<const uint8_t> bytes = addr_bytes(masked);
    b.attr(RTA_DST, bytes.data(), bytes.size());
  }
  if (gw) {
    std::span<const uint8_t> bytes = addr_bytes(*gw);
    b.attr(RTA_GATEWAY, bytes.data(), bytes.size());
  }
  b.attr_u32(RTA_OIF, static_cast<uint32_t>(ifindex));
}

// RTM_NEWLINK with IFLA_NET_NS_FD.
void build_setlink_netns(NlBuilder& b, int ifindex, int ns_fd) {
  build_setlink_flags(b, ifindex, 0, 0);
  b.attr_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(ns_fd));
}

// ---- Netlink client --------------------------------------------------------------

// Opens and binds the socket; asks for extended, capped acks.
Result<Netlink> Netlink::open() {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return Status::from_errno("socket(AF_NETLINK, NETLINK_ROUTE)");
  Netlink nl(fd);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return Status::from_errno("bind netlink socket");
  }
  int one = 1;
  // Both are optional comforts: older kernels simply give plainer errors.
  (void)::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  (void)::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  // The kernel answers at once; a bound wait keeps a wedged reply from
  // hanging ferry's start-up forever.
  timeval tv{};
  tv.tv_sec = 5;
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  nl.buf_.resize(kRecvBuf);
  return nl;
}

// Moves the socket.
Netlink::Netlink(Netlink&& o) noexcept : fd_(o.fd_), seq_(o.seq_), buf_(std::move(o.buf_)) {
  o.fd_ = -1;
}

// Moves the socket, closing ours.
Netlink& Netlink::operator=(Netlink&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    seq_ = o.seq_;
    buf_ = std::move(o.buf_);
    o.fd_ = -1;
  }
  return *this;
}

// Closes the socket.
Netlink::~Netlink() {
  if (fd_ >= 0) ::close(fd_);
}

// Sends one built message to the kernel.
Status Netlink::send(NlBuilder& b, const std::string& what) {
  if (b.overflow()) return Status(EMSGSIZE, what + ": request too large");
  b.header()->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::span<const uint8_t> m = b.bytes();
  ssize_t n;
  do {
    n = ::sendto(fd_, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::from_errno(what + ": send");
  if (static_cast<size_t>(n) != m.size()) return Status(EIO, what + ": short send");
  return Status();
}

// One datagram from the kernel; a truncated one is an error.
Result<std::span<const uint8_t>> Netlink::recv_batch(const std::string& what) {
  ssize_t n;
  do {
    n = ::recv(fd_, buf_.data(), buf_.size(), MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::from_errno(what + ": receive reply");
  if (static_cast<size_t>(n) > buf_.size()) return Status(EMSGSIZE, what + ": reply truncated");
  return std::span<const uint8_t>(buf_.data(), static_cast<size_t>(n));
}

// Sends b, then reads replies and hands each of this request's messages
// (by sequence number: a stale reply of an earlier request is skipped) to
// `on`, until `on` returns the outcome.
template <class F>
Status Netlink::exchange(NlBuilder& b, const std::string& what, F&& on) {
  if (Status st = send(b, what); !st) return st;
  for (;;) {
    Result<std::span<const uint8_t>> got = recv_batch(what);
    if (!got) return got.status();
    NlMessages msgs(*got);
    while (auto m = msgs.next()) {
      if (m->seq != seq_) continue;
      if (std::optional<Status> end = on(*m)) return *end;
    }
    if (msgs.malformed()) return Status(EBADMSG, what + ": malformed reply");
  }
}

namespace {

// The failure an NLMSG_ERROR carries, or nullopt for another message or an
// ack (error 0).
std::optional<Status> error_of(const NlMessage& m, const std::string& what) {
  if (m.type != NLMSG_ERROR) return std::nullopt;
  std::optional<NlAck> ack = parse_ack(m);
  if (!ack || ack->err == 0) return std::nullopt;
  return Status(ack->err, what);
}

}  // namespace

// Sends and waits for the ack of this sequence number.
Status Netlink::transact(NlBuilder& b, const std::string& what) {
  return exchange(b, what, [&](const NlMessage& m) -> std::optional<Status> {
    std::optional<NlAck> ack = parse_ack(m);
    if (!ack) return std::nullopt;
    if (ack->err == 0) return Status();
    std::string text = what;
    if (!ack->ext_msg.empty()) text += " (" + ack->ext_msg + ")";
    return Status(ack->err, text);
  });
}

// Sends a dump request and feeds each reply to `each` until NLMSG_DONE.
template <class F>
Status Netlink::dump(NlBuilder& b, const std::string& what, F&& each) {
  return exchange(b, what, [&](const NlMessage& m) -> std::optional<Status> {
    if (m.type == NLMSG_DONE) return Status();
    if (m.type == NLMSG_ERROR) return error_of(m, what);
    each(m);
    return std::nullopt;
  });
}

// Fills a LinkInfo from an RTM_NEWLINK message; false if it is too short.
bool parse_link(const NlMessage& m, LinkInfo* li) {
  ifinfomsg ifi{};
  if (m.type != RTM_NEWLINK || !read_struct(m.payload, &ifi)) return false;
  if (m.payload.size() < align4(sizeof(ifinfomsg))) return false;
  li->index = ifi.ifi_index;
  li->flags = ifi.ifi_flags;
  li->type = ifi.ifi_type;
  NlAttrs attrs(m.payload.subspan(align4(sizeof(ifinfomsg))));
  while (auto a = attrs.next()) {
    if (a->type == IFLA_IFNAME) li->name = a->str();
    if (a->type == IFLA_MASTER && a->u32()) li->master = static_cast<int>(*a->u32());
    if (a->type == IFLA_LINK && a->u32()) li->link = static_cast<int>(*a->u32());
    if (a->type == IFLA_LINK_NETNSID && a->u32()) li->link_netnsid = static_cast<int>(*a->u32());
    if (a->type == IFLA_LINKINFO) {
      NlAttrs info(a->data);
      while (auto i = info.next()) {
        if (i->type == IFLA_INFO_KIND) li->kind = i->str();
        if (i->type == IFLA_INFO_DATA && li->kind == "tun") {
          NlAttrs data(i->data);
          while (auto d = data.next())
            if (d->type == IFLA_TUN_TYPE && d->data.size() == 1) li->tun_type = d->data[0];
        }
      }
    }
    if (a->type == IFLA_MTU && a->u32()) li->mtu = *a->u32();
    if (a->type == IFLA_TXQLEN && a->u32()) li->txqlen = *a->u32();
    if (a->type == IFLA_ADDRESS && a->data.size() == li->mac.b.size()) {
      std::memcpy(li->mac.b.data(), a->data.data(), li->mac.b.size());
    }
    if (a->type == IFLA_STATS64 && a->data.size() >= offsetof(rtnl_link_stats64, tx_dropped) + sizeof(uint64_t)) {
      std::memcpy(&li->rx_dropped, a->data.data() + offsetof(rtnl_link_stats64, rx_dropped), sizeof(uint64_t));
      std::memcpy(&li->tx_dropped, a->data.data() + offsetof(rtnl_link_stats64, tx_dropped), sizeof(uint64_t));
    }
  }
  return true;
}

// The IFLA_STATS_LINK_64 attribute's transmit counters.
bool parse_link_tx_stats(const NlMessage& m, LinkTxStats* out) {
  if (m.type != RTM_NEWSTATS || m.payload.size() < align4(sizeof(if_stats_msg))) return false;
  NlAttrs attrs(m.payload.subspan(align4(sizeof(if_stats_msg))));
  while (auto a = attrs.next()) {
    if (a->type != IFLA_STATS_LINK_64 || a->data.size() < sizeof(rtnl_link_stats64)) continue;
    std::memcpy(&out->tx_packets, a->data.data() + offsetof(rtnl_link_stats64, tx_packets), sizeof(uint64_t));
    std::memcpy(&out->tx_dropped, a->data.data() + offsetof(rtnl_link_stats64, tx_dropped), sizeof(uint64_t));
    std::memcpy(&out->tx_bytes, a->data.data() + offsetof(rtnl_link_stats64, tx_bytes), sizeof(uint64_t));
    return true;
  }
  return false;
}

// RTM_GETSTATS for ifindex, the 64-bit link counters only.
void build_getstats(NlBuilder& b, int ifindex) {
  if_stats_msg st{};
  st.family = AF_UNSPEC;
  st.ifindex = static_cast<uint32_t>(ifindex);
  st.filter_mask = IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64);
  b.put(st);
}

// One RTM_GETSTATS and its RTM_NEWSTATS (or the error).
Status Netlink::link_tx_stats(int ifindex, LinkTxStats* out) {
  NlBuilder b(RTM_GETSTATS, NLM_F_REQUEST, 0);
  build_getstats(b, ifindex);
  static const std::string what = "link stats";
  return exchange(b, what, [&](const NlMessage& m) -> std::optional<Status> {
    if (m.type == NLMSG_ERROR) return error_of(m, what);
    if (parse_link_tx_stats(m, out)) return Status();
    if (m.type == RTM_NEWSTATS) return Status(EBADMSG, what);
    return std::nullopt;
  });
}

// Sends an RTM_GETLINK and waits for its RTM_NEWLINK (or the error).
Result<LinkInfo> Netlink::query_link(NlBuilder& b, const std::string& what) {
  LinkInfo li;
  Status st = exchange(b, what, [&](const NlMessage& m) -> std::optional<Status> {
    if (m.type == NLMSG_ERROR) return error_of(m, what);
    if (parse_link(m, &li)) return Status();
    return std::nullopt;
  });
  if (!st) return st;
  return li;
}

// RTM_GETLINK by name.
Result<LinkInfo> Netlink::get_link(std::string_view name) {
  std::string what = "look up link " + std::string(name);
  if (name.empty() || name.size() >= IFNAMSIZ) return Status(EINVAL, what + ": bad interface name");
  NlBuilder b(RTM_GETLINK, NLM_F_REQUEST, 0);
  build_getlink_by_name(b, name);
  return query_link(b, what);
}

// RTM_GETLINK by index (ifi_index set, no name).
Result<LinkInfo> Netlink::get_link(int ifindex) {
  std::string what = "look up link ifindex " + std::to_string(ifindex);
  if (ifindex <= 0) return Status(EINVAL, what);
  NlBuilder b(RTM_GETLINK, NLM_F_REQUEST, 0);
  build_setlink_flags(b, ifindex, 0, 0);
  return query_link(b, what);
}

// Index of a named link.
Result<int> Netlink::link_index(std::string_view name) {
  Result<LinkInfo> li = get_link(name);
  if (!li) return li.status();
  return li->index;
}

// Flips IFF_UP.
Status Netlink::set_link_up(int ifindex, bool up) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0);
  build_setlink_flags(b, ifindex, up ? IFF_UP : 0, IFF_UP);
  return transact(b, std::string(up ? "set link up" : "set link down") + on_if(ifindex));
}

// IFLA_MTU.
Status Netlink::set_mtu(int ifindex, unsigned mtu) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0);
  build_setlink_u32(b, ifindex, IFLA_MTU, mtu);
  return transact(b, "set MTU " + std::to_string(mtu) + on_if(ifindex));
}

// IFLA_TXQLEN.
Status Netlink::set_txqueuelen(int ifindex, unsigned qlen) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0);
  build_setlink_u32(b, ifindex, IFLA_TXQLEN, qlen);
  return transact(b, "set txqueuelen " + std::to_string(qlen) + on_if(ifindex));
}

// RTM_NEWADDR.
Status Netlink::add_address(int ifindex, const InetPrefix& p) {
  std::string what = "add address " + inet_text(p.addr) + "/" + std::to_string(p.len) + on_if(ifindex);
  NlBuilder b(RTM_NEWADDR, kNlCreateFlags, 0);
  if (!build_newaddr(b, ifindex, p)) return Status(EINVAL, what + ": bad prefix length");
  return transact(b, what);
}

// RTM_NEWROUTE default via gw.
Status Netlink::add_default_route(int ifindex, const InetAddr& gw) {
  NlBuilder b(RTM_NEWROUTE, kNlCreateFlags, 0);
  build_default_route(b, ifindex, gw);
  return transact(b, "add default route via " + inet_text(gw) + on_if(ifindex));
}

// RTM_NEWNEIGH permanent.
Status Netlink::add_neighbor(int ifindex, const InetAddr& addr, const MacAddr& mac) {
  NlBuilder b(RTM_NEWNEIGH, kNlCreateFlags, 0);
  build_newneigh(b, ifindex, addr, mac);
  return transact(b, "add neighbour " + inet_text(addr) + on_if(ifindex));
}

// lo up: the guest's own loopback traffic needs it.
Status Netlink::bring_lo_up() {
  Result<int> lo = link_index("lo");
  if (!lo) return lo.status();
  return set_link_up(*lo, true);
}

// RTM_NEWLINK kind veth, exclusive: an existing name is EEXIST.
Status Netlink::create_veth(std::string_view name, std::string_view peer, int peer_ns_fd, unsigned mtu,
                            const MacAddr* peer_mac) {
  std::string what = "create veth " + std::string(name) + " <-> " + std::string(peer);
  if (name.empty() || name.size() >= IFNAMSIZ || peer.empty() || peer.size() >= IFNAMSIZ) {
    return Status(EINVAL, what + ": bad interface name");
  }
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 0);
  build_newveth(b, name, peer, peer_ns_fd, mtu, peer_mac);
  return transact(b, what);
}

// RTM_DELLINK.
Status Netlink::delete_link(int ifindex) {
  NlBuilder b(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, 0);
  build_dellink(b, ifindex);
  return transact(b, "delete link" + on_if(ifindex));
}

// RTM_NEWROUTE to a prefix.
Status Netlink::add_route(int ifindex, const InetPrefix& dst, const std::optional<InetAddr>& gw) {
  NlBuilder b(RTM_NEWROUTE, kNlCreateFlags, 0);
  build_route(b, ifindex, dst, gw);
  std::string what = "add route " + inet_text(dst.addr) + "/" + std::to_string(dst.len);
  if (gw) what += " via " + inet_text(*gw);
  return transact(b, what + on_if(ifindex));
}

// RTM_NEWLINK IFLA_NET_NS_FD.
Status Netlink::move_link_to_netns(int ifindex, int ns_fd) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 0);
  build_setlink_netns(b, ifindex, ns_fd);
  return transact(b, "move link" + on_if(ifindex) + " to another namespace");
}

// RTM_GETADDR dump, filtered by ifindex.
Result<std::vector<AddrInfo>> Netlink::addresses(int ifindex) {
  NlBuilder b(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 0);
  ifaddrmsg req{};
  req.ifa_family = AF_UNSPEC;
  b.put(req);
  std::vector<AddrInfo> out;
  Status st = dump(b, "dump addresses", [&](const NlMessage& m) {
    ifaddrmsg ifa{};
    if (m.type != RTM_NEWADDR || !read_struct(m.payload, &ifa)) return;
    if (ifindex != 0 && ifa.ifa_index != static_cast<uint32_t>(ifindex)) return;
    if (m.payload.size() < align4(sizeof(ifaddrmsg))) return;
    AddrInfo ai;
    ai.ifindex = static_cast<int>(ifa.ifa_index);
    ai.prefix.len = ifa.ifa_prefixlen;
    ai.flags = ifa.ifa_flags;
    std::optional<InetAddr> local, address;
    NlAttrs attrs(m.payload.subspan(align4(sizeof(ifaddrmsg))));
    while (auto a = attrs.next()) {
      if (a->type == IFA_LOCAL) local = addr_from(ifa.ifa_family, a->data);
      if (a->type == IFA_ADDRESS) address = addr_from(ifa.ifa_family, a->data);
      if (a->type == IFA_FLAGS && a->u32()) ai.flags = *a->u32();
    }
    // IFA_LOCAL is the interface's own address on point-to-point IPv4 links.
    if (local) {
      ai.prefix.addr = *local;
    } else if (address) {
      ai.prefix.addr = *address;
    } else {
      return;
    }
    out.push_back(ai);
  });
  if (!st) return st;
  return out;
}

// RTM_GETROUTE dump, keeping main-table routes of prefix length 0.
Result<std::vector<RouteInfo>> Netlink::default_routes(int family) {
  NlBuilder b(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, 0);
  rtmsg req{};
  req.rtm_family = static_cast<uint8_t>(family);
  b.put(req);
  std::vector<RouteInfo> out;
  Status st = dump(b, "dump routes", [&](const NlMessage& m) {
    rtmsg rt{};
    if (m.type != RTM_NEWROUTE || !read_struct(m.payload, &rt)) return;
    if (rt.rtm_family != family || rt.rtm_dst_len != 0 || m.payload.size() < align4(sizeof(rtmsg))) return;
    uint32_t table = rt.rtm_table;
    RouteInfo ri;
    bool has_gw = false;
    NlAttrs attrs(m.payload.subspan(align4(sizeof(rtmsg))));
    while (auto a = attrs.next()) {
      if (a->type == RTA_TABLE && a->u32()) table = *a->u32();
      if (a->type == RTA_OIF && a->u32()) ri.oif = static_cast<int>(*a->u32());
      if (a->type == RTA_GATEWAY) {
        if (auto g = addr_from(family, a->data)) {
          ri.gateway = *g;
          has_gw = true;
        }
      }
    }
    if (table == RT_TABLE_MAIN && has_gw) out.push_back(ri);
  });
  if (!st) return st;
  return out;
}

// ---- sysctls -------------------------------------------------------------------

namespace {

// /proc/sys/<key> for a key under net/ without "..".
std::optional<std::string> sysctl_path(std::string_view key) {
  if (key.substr(0, 4) != "net/" || key.find("..") != std::string_view::npos) return std::nullopt;
  if (key.find('\0') != std::string_view::npos) return std::nullopt;
  return "/proc/sys/" + std::string(key);
}

}  // namespace

// Opens the file in this thread's namespace and writes the value.
Status write_sysctl(std::string_view key, std::string_view value) {
  std::optional<std::string> path = sysctl_path(key);
  std::string what = "sysctl " + std::string(key) + "=" + std::string(value);
  if (!path) return Status(EINVAL, what + ": key must be under net/");
  int fd = ::open(path->c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(what);
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n < 0) return Status(err, what);
  if (static_cast<size_t>(n) != value.size()) return Status(EIO, what + ": short write");
  return Status();
}

// Reads a sysctl, trailing newline removed.
Result<std::string> read_sysctl(std::string_view key) {
  std::optional<std::string> path = sysctl_path(key);
  std::string what = "read sysctl " + std::string(key);
  if (!path) return Status(EINVAL, what + ": key must be under net/");
  int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(what);
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  int err = errno;
  ::close(fd);
  if (n < 0) return Status(err, what);
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The five knobs that keep IPv6 from waiting (DAD) or talking (RS) on its own.
Status quiet_ipv6(std::string_view ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ || ifname.find('/') != std::string_view::npos ||
      ifname == "." || ifname == "..") {
    return Status(EINVAL, "bad interface name '" + std::string(ifname) + "'");
  }
  static constexpr std::string_view kKnobs[] = {"accept_dad", "dad_transmits", "accept_ra", "autoconf",
                                                "router_solicitations"};
  std::string base = "net/ipv6/conf/" + std::string(ifname) + "/";
  for (std::string_view knob : kKnobs) {
    if (Status st = write_sysctl(base + std::string(knob), "0"); !st) return st;
  }
  return Status();
}

}  // namespace ferry
