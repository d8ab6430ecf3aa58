// A small rtnetlink client: just what ferry needs to set up a guest link.
//
// Theory of operation: requests are built into a fixed buffer by NlBuilder
// (header, one fixed family struct, attributes, nests), sent on a
// NETLINK_ROUTE socket, and answered by the kernel with an NLMSG_ERROR ack
// (error 0 = success) or, for dumps, a run of messages closed by NLMSG_DONE.
// Replies are walked with NlMessages / NlAttrs, which check every length
// against the bytes actually received before touching a field, so a short or
// garbled reply is an error and never an out-of-bounds read.
//
// A netlink socket belongs to the network namespace its creating thread was
// in, for its whole life. So: enter a namespace (NetnsGuard), Netlink::open(),
// leave, and the Netlink object still configures *that* namespace. Requests
// are synchronous (one in flight, matched by sequence number); extended acks
// are on, so the kernel's own explanation ("Nexthop has invalid gateway")
// ends up in the error text.
//
// Builders and parsers are free of I/O and are unit-tested on their own
// (tests/unit/netlink_test.cc). No libnl, no exec of ip(8).
#pragma once

#include <linux/netlink.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/addr.h"
#include "common/status.h"

namespace ferry {

// ---- message building ----------------------------------------------------------

// Builds one netlink message in a fixed, aligned buffer. Appends past the
// end set overflow() and are otherwise ignored; send nothing that overflowed.
class NlBuilder {
 public:
  static constexpr size_t kCapacity = 1024;

  // Starts a message (clears anything built before).
  NlBuilder(uint16_t type, uint16_t flags, uint32_t seq);

  // Appends a family header struct (ifinfomsg, ifaddrmsg, rtmsg, ndmsg...),
  // padded to 4 bytes. Returns where it landed, nullptr on overflow.
  template <class T>
  T* put(const T& fixed) {
    return static_cast<T*>(put_raw(&fixed, sizeof(T)));
  }
  void* put_raw(const void* data, size_t len);

  // Appends an attribute (rtattr/nlattr layout: u16 len, u16 type, data, pad).
  bool attr(uint16_t type, const void* data, size_t len);
  bool attr_u8(uint16_t type, uint8_t v) { return attr(type, &v, 1); }
  bool attr_u32(uint16_t type, uint32_t v) { return attr(type, &v, 4); }
  // NUL-terminated string attribute.
  bool attr_str(uint16_t type, std::string_view s);
  // Nested attribute: begin returns a token for end (SIZE_MAX on overflow).
  size_t nest_begin(uint16_t type);
  void nest_end(size_t token);

  bool overflow() const { return overflow_; }
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  // The finished message (nlmsg_len set).
  std::span<const uint8_t> bytes() const { return {buf_.data(), len_}; }

 private:
  alignas(nlmsghdr) std::array<uint8_t, kCapacity> buf_{};
  size_t len_ = 0;
  bool overflow_ = false;
};

// ---- message parsing -----------------------------------------------------------

// One message of a received buffer: header plus payload after it.
struct NlMessage {
  uint16_t type = 0;
  uint16_t flags = 0;
  uint32_t seq = 0;
  std::span<const uint8_t> payload;  // nlmsg_len - header, bounds-checked
};

// Iterates the messages of one recv() buffer. Stops (and sets malformed())
// at the first message whose length is impossible.
class NlMessages {
 public:
  explicit NlMessages(std::span<const uint8_t> buf) : rest_(buf) {}
  std::optional<NlMessage> next();
  bool malformed() const { return malformed_; }

 private:
  std::span<const uint8_t> rest_;
  bool malformed_ = false;
};

// One attribute: type (flag bits masked off) and payload.
struct NlAttr {
  uint16_t type = 0;
  std::span<const uint8_t> data;
  // Reads a u32 payload; nullopt when the payload is not 4 bytes.
  std::optional<uint32_t> u32() const;
  // The payload as a string up to its NUL (or its end).
  std::string str() const;
};

// Iterates attributes in a span (a message's tail after its family struct,
// or a nest's payload). Stops at the first impossible length.
class NlAttrs {
 public:
  explicit NlAttrs(std::span<const uint8_t> buf) : rest_(buf) {}
  std::optional<NlAttr> next();
  bool malformed() const { return malformed_; }

 private:
  std::span<const uint8_t> rest_;
  bool malformed_ = false;
};

// Reads an NLMSG_ERROR message: the (positive) errno, 0 for an ack, and the
// kernel's extended-ack text if any. nullopt when the payload is too short.
struct NlAck {
  int err = 0;
  uint32_t seq = 0;  // sequence number of the request it answers
  std::string ext_msg;
};
std::optional<NlAck> parse_ack(const NlMessage& m);

struct LinkInfo;
// Fills a LinkInfo from an RTM_NEWLINK message; false when it is not one or
// is too short.
bool parse_link(const NlMessage& m, LinkInfo* li);

// A link's transmit counters from an RTM_NEWSTATS message (its
// IFLA_STATS_LINK_64): frames and bytes sent (for a tap: read by its fd's
// owner) and frames dropped; false when it is not one or lacks them.
struct LinkTxStats {
  uint64_t tx_packets = 0;
  uint64_t tx_dropped = 0;
  uint64_t tx_bytes = 0;
};
bool parse_link_tx_stats(const NlMessage& m, LinkTxStats* out);

// ---- request builders (pure; used by Netlink, tested directly) -------------------

// Flags for requests that create-or-replace and want an ack.
inline constexpr uint16_t kNlCreateFlags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;

// Address family of an InetAddr (IPv4-mapped -> AF_INET), without codec code.
int inet_family(const InetAddr& a);
// Textual form, without codec code ("198.18.0.2", "fd00:f::2").
std::string inet_text(const InetAddr& a);

void build_getlink_by_name(NlBuilder& b, std::string_view name);
// RTM_GETSTATS of one link, IFLA_STATS_LINK_64 only (the cheapest way to its counters).
void build_getstats(NlBuilder& b, int ifindex);
void build_setlink_flags(NlBuilder& b, int ifindex, unsigned flags, unsigned change);
void build_setlink_u32(NlBuilder& b, int ifindex, uint16_t ifla, uint32_t value);
// RTM_NEWADDR; IPv6 gets IFA_F_NODAD (usable at once, no DAD traffic).
// False when the prefix length is impossible for the family.
bool build_newaddr(NlBuilder& b, int ifindex, const InetPrefix& p);
// RTM_NEWROUTE: default route of the gateway's family via `gw` out of ifindex.
void build_default_route(NlBuilder& b, int ifindex, const InetAddr& gw);
// RTM_NEWNEIGH: a permanent neighbour entry.
void build_newneigh(NlBuilder& b, int ifindex, const InetAddr& addr, const MacAddr& mac);
// RTM_NEWLINK creating a veth pair: `name` here, `peer` in the namespace of
// `peer_ns_fd` (-1: here too); both get `mtu` unless it is 0; `peer` gets
// `peer_mac` when given (else the kernel's random one).
void build_newveth(NlBuilder& b, std::string_view name, std::string_view peer, int peer_ns_fd, unsigned mtu,
                   const MacAddr* peer_mac = nullptr);
// RTM_DELLINK by index.
void build_dellink(NlBuilder& b, int ifindex);
// RTM_NEWROUTE to `dst` (host bits cleared) out of ifindex, via `gw` when
// given, else on-link (scope link).
void build_route(NlBuilder& b, int ifindex, const InetPrefix& dst, const std::optional<InetAddr>& gw);
// RTM_NEWLINK moving a link into the namespace of `ns_fd`.
void build_setlink_netns(NlBuilder& b, int ifindex, int ns_fd);

// ---- the client ----------------------------------------------------------------

struct LinkInfo {
  int index = 0;
  std::string name;
  unsigned flags = 0;  // IFF_*
  unsigned mtu = 0;
  unsigned txqlen = 0;
  MacAddr mac;
  // From IFLA_STATS64: frames the kernel dropped on this device, received
  // (for a tap: written by its fd's owner) and to be sent (for a tap: its
  // reader's queue was full; for a veth: its peer's backlog was).
  uint64_t rx_dropped = 0, tx_dropped = 0;
  unsigned short type = 0;  // ARPHRD_*
  std::string kind;         // IFLA_INFO_KIND: "veth", "bridge", "tun" ...; "" for none
  uint8_t tun_type = 0;     // IFLA_TUN_TYPE for kind "tun": IFF_TUN or IFF_TAP (0: not told)
  int master = 0;           // IFLA_MASTER: the bridge or bond this link is enslaved to
  int link = 0;             // IFLA_LINK: a veth's peer ifindex (in link_netnsid's namespace)
  std::optional<int> link_netnsid;  // IFLA_LINK_NETNSID: the peer is in another namespace
};

struct AddrInfo {
  int ifindex = 0;
  InetPrefix prefix;
  unsigned flags = 0;  // IFA_F_* (IFA_FLAGS when present)
};

struct RouteInfo {
  int oif = 0;
  InetAddr gateway;
};

class Netlink {
 public:
  // A NETLINK_ROUTE socket in the calling thread's current namespace.
  static Result<Netlink> open();

  Netlink(Netlink&& o) noexcept;
  Netlink& operator=(Netlink&& o) noexcept;
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;
  ~Netlink();

  // ifindex of `name` in the socket's namespace (ENODEV if absent).
  Result<int> link_index(std::string_view name);
  Result<LinkInfo> get_link(int ifindex);
  Result<LinkInfo> get_link(std::string_view name);
  // A link's transmit counters (RTM_GETSTATS): one request, one answer, no
  // allocation; what the sandboxed translator may do on a socket opened
  // before the sandbox.
  Status link_tx_stats(int ifindex, LinkTxStats* out);

  Status set_link_up(int ifindex, bool up = true);
  Status set_mtu(int ifindex, unsigned mtu);
  Status set_txqueuelen(int ifindex, unsigned qlen);
  // Adds (or replaces) an address; IPv6 addresses get IFA_F_NODAD.
  Status add_address(int ifindex, const InetPrefix& p);
  // Adds (or replaces) the default route of gw's family via gw on ifindex.
  Status add_default_route(int ifindex, const InetAddr& gw);
  // Adds (or replaces) a permanent neighbour (ARP/NDP) entry.
  Status add_neighbor(int ifindex, const InetAddr& addr, const MacAddr& mac);
  // Sets `lo` up.
  Status bring_lo_up();
  // Creates a veth pair `name` <-> `peer`, the peer directly inside the
  // namespace of `peer_ns_fd` (-1: this one), with MAC `peer_mac` when
  // given. EEXIST when a name is taken.
  Status create_veth(std::string_view name, std::string_view peer, int peer_ns_fd, unsigned mtu = 0,
                     const MacAddr* peer_mac = nullptr);
  // Deletes a link (for a veth, both ends). ENODEV when it is not there.
  Status delete_link(int ifindex);
  // Adds (or replaces) a route to `dst` via `gw` (or on-link) out of ifindex.
  Status add_route(int ifindex, const InetPrefix& dst, const std::optional<InetAddr>& gw);
  // Moves a link into the namespace of `ns_fd`.
  Status move_link_to_netns(int ifindex, int ns_fd);

  // Dumps: every address (ifindex 0) or those of one link; default routes of
  // a family (AF_INET / AF_INET6) in the main table.
  Result<std::vector<AddrInfo>> addresses(int ifindex = 0);
  Result<std::vector<RouteInfo>> default_routes(int family);

 private:
  explicit Netlink(int fd) : fd_(fd) {}
  // Sends one request and hands each reply message of it to `on` (returns
  // std::optional<Status>) until that returns the outcome.
  template <class F>
  Status exchange(NlBuilder& b, const std::string& what, F&& on);
  // Sends one request and waits for its ack.
  Status transact(NlBuilder& b, const std::string& what);
  // Sends a dump request and hands each reply message to `each`.
  template <class F>
  Status dump(NlBuilder& b, const std::string& what, F&& each);
  Status send(NlBuilder& b, const std::string& what);
  // Sends an RTM_GETLINK and parses the answer.
  Result<LinkInfo> query_link(NlBuilder& b, const std::string& what);
  // One recv() into buf_; returns the bytes.
  Result<std::span<const uint8_t>> recv_batch(const std::string& what);

  int fd_ = -1;
  uint32_t seq_ = 0;
  std::vector<uint8_t> buf_;  // receive buffer, allocated once
};

// ---- sysctls -------------------------------------------------------------------

// Writes /proc/sys/<key> for the calling thread's current namespace; key as
// "net/ipv6/conf/eth0/accept_dad". Only keys under net/ are accepted, no "..".
Status write_sysctl(std::string_view key, std::string_view value);
Result<std::string> read_sysctl(std::string_view key);

// Makes IPv6 on `ifname` quiet and immediately usable: no DAD (accept_dad=0,
// dad_transmits=0), no router solicitations or SLAAC (accept_ra=0,
// autoconf=0, router_solicitations=0). Call before the link goes up, in the
// link's namespace. ENOENT when IPv6 is disabled in the kernel.
Status quiet_ipv6(std::string_view ifname);

}  // namespace ferry
