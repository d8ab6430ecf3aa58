// Tests of userspace/netns: the netlink message builders and parsers (no
// privileges), namespace handles, and, as root, a real round trip: a fresh
// namespace with a tap in it, configured through Netlink and read back.
//
// Privileged tests skip when not root. They touch only the namespaces they
// create (anonymous: nothing to clean up beyond closing fds).
// test-libs: ferry_netns
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "netns/guest_setup.h"
#include "netns/netlink.h"
#include "netns/netns.h"

namespace ferry {
namespace {

// InetAddr from text, without codec code.
InetAddr ip(const char* text) {
  InetAddr a;
  in_addr v4{};
  if (inet_pton(AF_INET, text, &v4) == 1) {
    a.b[10] = 0xff;
    a.b[11] = 0xff;
    std::memcpy(a.b.data() + 12, &v4, 4);
    return a;
  }
  in6_addr v6{};
  EXPECT_EQ(inet_pton(AF_INET6, text, &v6), 1) << text;
  std::memcpy(a.b.data(), &v6, 16);
  return a;
}

InetPrefix prefix(const char* text, unsigned len) {
  InetPrefix p;
  p.addr = ip(text);
  p.len = len;
  return p;
}

// The attributes after a family struct of `fixed` bytes.
std::vector<NlAttr> attrs_after(const NlMessage& m, size_t fixed) {
  std::vector<NlAttr> out;
  if (m.payload.size() < fixed) return out;
  NlAttrs it(m.payload.subspan(fixed));
  while (auto a = it.next()) out.push_back(*a);
  EXPECT_FALSE(it.malformed());
  return out;
}

const NlAttr* find(const std::vector<NlAttr>& v, uint16_t type) {
  for (const NlAttr& a : v) {
    if (a.type == type) return &a;
  }
  return nullptr;
}

// ---- pure: builders ------------------------------------------------------------

TEST(NlBuilder, HeaderAndAlignment) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST, 7);
  EXPECT_EQ(b.bytes().size(), sizeof(nlmsghdr));
  ASSERT_TRUE(b.attr_u8(1, 0xab));  // 4 header + 1 data, padded to 8
  EXPECT_EQ(b.bytes().size(), sizeof(nlmsghdr) + 8);
  EXPECT_EQ(b.header()->nlmsg_len, sizeof(nlmsghdr) + 8);
  EXPECT_EQ(b.header()->nlmsg_seq, 7u);
  ASSERT_TRUE(b.attr_str(2, "eth0"));  // 4 + 5 -> 12
  EXPECT_EQ(b.bytes().size(), sizeof(nlmsghdr) + 8 + 12);

  NlMessages msgs(b.bytes());
  auto m = msgs.next();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, RTM_NEWLINK);
  auto attrs = attrs_after(*m, 0);
  ASSERT_EQ(attrs.size(), 2u);
  EXPECT_EQ(attrs[0].data.size(), 1u);
  EXPECT_EQ(attrs[0].data[0], 0xab);
  EXPECT_EQ(attrs[1].str(), "eth0");
  EXPECT_FALSE(msgs.next());
}

TEST(NlBuilder, NestCoversChildren) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST, 1);
  size_t tok = b.nest_begin(IFLA_LINKINFO);
  b.attr_str(1, "dummy");
  b.attr_u32(2, 5);
  b.nest_end(tok);
  NlMessages msgs(b.bytes());
  auto m = msgs.next();
  ASSERT_TRUE(m);
  auto outer = attrs_after(*m, 0);
  ASSERT_EQ(outer.size(), 1u);
  EXPECT_EQ(outer[0].type, IFLA_LINKINFO);  // NLA_F_NESTED masked off
  NlAttrs inner(outer[0].data);
  auto a = inner.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->str(), "dummy");
  a = inner.next();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->u32(), 5u);
  EXPECT_FALSE(inner.next());
  EXPECT_FALSE(inner.malformed());
}

TEST(NlBuilder, OverflowIsStickyAndSafe) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST, 1);
  uint8_t blob[200] = {};
  int ok = 0;
  for (int i = 0; i < 20; i++) ok += b.attr(1, blob, sizeof(blob)) ? 1 : 0;
  EXPECT_TRUE(b.overflow());
  EXPECT_LT(ok, 20);
  EXPECT_LE(b.bytes().size(), NlBuilder::kCapacity);
  EXPECT_FALSE(b.attr_u8(1, 1));  // stays overflowed
  std::string huge(300, 'x');
  NlBuilder c(RTM_NEWLINK, NLM_F_REQUEST, 1);
  EXPECT_FALSE(c.attr_str(IFLA_IFNAME, huge));
  EXPECT_TRUE(c.overflow());
}

TEST(NlRequests, NewAddrV4) {
  NlBuilder b(RTM_NEWADDR, kNlCreateFlags, 1);
  ASSERT_TRUE(build_newaddr(b, 3, prefix("198.18.0.2", 24)));
  NlMessages msgs(b.bytes());
  auto m = msgs.next();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->flags, kNlCreateFlags);
  ifaddrmsg ifa{};
  ASSERT_GE(m->payload.size(), sizeof(ifa));
  std::memcpy(&ifa, m->payload.data(), sizeof(ifa));
  EXPECT_EQ(ifa.ifa_family, AF_INET);
  EXPECT_EQ(ifa.ifa_prefixlen, 24);
  EXPECT_EQ(ifa.ifa_index, 3u);
  EXPECT_EQ(ifa.ifa_flags, 0);
  auto attrs = attrs_after(*m, NLMSG_ALIGN(sizeof(ifaddrmsg)));
  const NlAttr* local = find(attrs, IFA_LOCAL);
  ASSERT_TRUE(local);
  ASSERT_EQ(local->data.size(), 4u);
  EXPECT_EQ(local->data[0], 198);
  EXPECT_EQ(local->data[3], 2);
  EXPECT_TRUE(find(attrs, IFA_ADDRESS));
  EXPECT_FALSE(find(attrs, IFA_FLAGS));
}

TEST(NlRequests, NewAddrV6IsNoDad) {
  NlBuilder b(RTM_NEWADDR, kNlCreateFlags, 1);
  ASSERT_TRUE(build_newaddr(b, 4, prefix("fd00:f::2", 64)));
  NlMessages msgs(b.bytes());
  auto m = msgs.next();
  ASSERT_TRUE(m);
  ifaddrmsg ifa{};
  std::memcpy(&ifa, m->payload.data(), sizeof(ifa));
  EXPECT_EQ(ifa.ifa_family, AF_INET6);
  EXPECT_EQ(ifa.ifa_prefixlen, 64);
  EXPECT_TRUE(ifa.ifa_flags & IFA_F_NODAD);
  auto attrs = attrs_after(*m, NLMSG_ALIGN(sizeof(ifaddrmsg)));
  const NlAttr* addr = find(attrs, IFA_ADDRESS);
  ASSERT_TRUE(addr);
  ASSERT_EQ(addr->data.size(), 16u);
  EXPECT_EQ(addr->data[0], 0xfd);
  EXPECT_EQ(addr->data[15], 2);
  EXPECT_FALSE(find(attrs, IFA_LOCAL));
  const NlAttr* flags = find(attrs, IFA_FLAGS);
  ASSERT_TRUE(flags);
  EXPECT_EQ(flags->u32(), uint32_t{IFA_F_NODAD});
}

TEST(NlRequests, BadPrefixLengthRefused) {
  NlBuilder b(RTM_NEWADDR, kNlCreateFlags, 1);
  EXPECT_FALSE(build_newaddr(b, 1, prefix("198.18.0.2", 33)));
  NlBuilder c(RTM_NEWADDR, kNlCreateFlags, 1);
  EXPECT_FALSE(build_newaddr(c, 1, prefix("fd00:f::2", 129)));
}

TEST(NlRequests, DefaultRoutes) {
  for (const char* gw : {"198.18.0.1", "fd00:f::1"}) {
    NlBuilder b(RTM_NEWROUTE, kNlCreateFlags, 1);
    build_default_route(b, 9, ip(gw));
    NlMessages msgs(b.bytes());
    auto m = msgs.next();
    ASSERT_TRUE(m);
    rtmsg rt{};
    std::memcpy(&rt, m->payload.data(), sizeof(rt));
    bool v4 = std::strchr(gw, ':') == nullptr;
    EXPECT_EQ(rt.rtm_family, v4 ? AF_INET : AF_INET6);
    EXPECT_EQ(rt.rtm_dst_len, 0);
    EXPECT_EQ(rt.rtm_table, RT_TABLE_MAIN);
    auto attrs = attrs_after(*m, NLMSG_ALIGN(sizeof(rtmsg)));
    const NlAttr* g = find(attrs, RTA_GATEWAY);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->data.size(), v4 ? 4u : 16u);
    const NlAttr* oif = find(attrs, RTA_OIF);
    ASSERT_TRUE(oif);
    EXPECT_EQ(oif->u32(), 9u);
  }
}

TEST(NlRequests, SetLink) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1);
  build_setlink_u32(b, 5, IFLA_MTU, 65520);
  NlMessages msgs(b.bytes());
  auto m = msgs.next();
  ASSERT_TRUE(m);
  ifinfomsg ifi{};
  std::memcpy(&ifi, m->payload.data(), sizeof(ifi));
  EXPECT_EQ(ifi.ifi_index, 5);
  EXPECT_EQ(ifi.ifi_change, 0u);
  auto attrs = attrs_after(*m, NLMSG_ALIGN(sizeof(ifinfomsg)));
  const NlAttr* mtu = find(attrs, IFLA_MTU);
  ASSERT_TRUE(mtu);
  EXPECT_EQ(mtu->u32(), 65520u);
}

// ---- pure: parsers on hostile input ----------------------------------------------

TEST(NlParse, RejectsImpossibleLengths) {
  alignas(4) uint8_t buf[64] = {};
  nlmsghdr h{};
  h.nlmsg_len = 100;  // longer than the buffer
  std::memcpy(buf, &h, sizeof(h));
  NlMessages a(std::span<const uint8_t>(buf, sizeof(buf)));
  EXPECT_FALSE(a.next());
  EXPECT_TRUE(a.malformed());

  h.nlmsg_len = 8;  // shorter than a header
  std::memcpy(buf, &h, sizeof(h));
  NlMessages b(std::span<const uint8_t>(buf, sizeof(buf)));
  EXPECT_FALSE(b.next());
  EXPECT_TRUE(b.malformed());

  NlMessages c(std::span<const uint8_t>(buf, 10));  // less than a header
  EXPECT_FALSE(c.next());
  EXPECT_TRUE(c.malformed());

  uint8_t attr_buf[8] = {2, 0, 1, 0};  // nla_len 2 < 4
  NlAttrs d(std::span<const uint8_t>(attr_buf, sizeof(attr_buf)));
  EXPECT_FALSE(d.next());
  EXPECT_TRUE(d.malformed());

  uint8_t attr_buf2[8] = {40, 0, 1, 0};  // nla_len past the end
  NlAttrs e(std::span<const uint8_t>(attr_buf2, sizeof(attr_buf2)));
  EXPECT_FALSE(e.next());
  EXPECT_TRUE(e.malformed());

  NlAttr short_u32;
  short_u32.data = std::span<const uint8_t>(attr_buf, 3);
  EXPECT_FALSE(short_u32.u32());
}

TEST(NlParse, TwoMessagesInOneBuffer) {
  NlBuilder a(NLMSG_NOOP, 0, 1);
  a.attr_u8(1, 1);  // odd length to exercise padding between messages
  NlBuilder b(NLMSG_DONE, 0, 2);
  std::vector<uint8_t> buf(a.bytes().begin(), a.bytes().end());
  buf.insert(buf.end(), b.bytes().begin(), b.bytes().end());
  NlMessages msgs(buf);
  auto m1 = msgs.next();
  auto m2 = msgs.next();
  ASSERT_TRUE(m1 && m2);
  EXPECT_EQ(m1->seq, 1u);
  EXPECT_EQ(m2->type, NLMSG_DONE);
  EXPECT_FALSE(msgs.next());
  EXPECT_FALSE(msgs.malformed());
}

TEST(NlParse, AckWithExtendedMessage) {
  NlBuilder b(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 42);
  nlmsgerr e{};
  e.error = -EEXIST;
  e.msg.nlmsg_seq = 42;
  e.msg.nlmsg_len = sizeof(nlmsghdr);
  b.put(e);
  b.attr_str(NLMSGERR_ATTR_MSG, "File exists, really");
  NlMessages msgs(b.bytes());
  auto m = msgs.next();
  ASSERT_TRUE(m);
  auto ack = parse_ack(*m);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->err, EEXIST);
  EXPECT_EQ(ack->seq, 42u);
  EXPECT_EQ(ack->ext_msg, "File exists, really");

  NlBuilder ok(NLMSG_ERROR, 0, 1);
  nlmsgerr z{};
  ok.put(z);
  auto m2 = NlMessages(ok.bytes()).next();
  ASSERT_TRUE(m2);
  auto ack2 = parse_ack(*m2);
  ASSERT_TRUE(ack2);
  EXPECT_EQ(ack2->err, 0);

  NlBuilder truncated(NLMSG_ERROR, 0, 1);
  truncated.attr_u8(1, 1);
  auto m3 = NlMessages(truncated.bytes()).next();
  ASSERT_TRUE(m3);
  EXPECT_FALSE(parse_ack(*m3));
}

TEST(NlParse, LinkMessage) {
  NlBuilder b(RTM_NEWLINK, 0, 1);
  ifinfomsg ifi{};
  ifi.ifi_index = 12;
  ifi.ifi_flags = IFF_UP;
  b.put(ifi);
  b.attr_str(IFLA_IFNAME, "eth0");
  b.attr_u32(IFLA_MTU, 65520);
  b.attr_u32(IFLA_TXQLEN, 5000);
  uint8_t mac[6] = {2, 1, 2, 3, 4, 5};
  b.attr(IFLA_ADDRESS, mac, 6);
  rtnl_link_stats64 st{};
  st.rx_dropped = 7;
  st.tx_dropped = 1234;
  b.attr(IFLA_STATS64, &st, sizeof(st));
  auto m = NlMessages(b.bytes()).next();
  ASSERT_TRUE(m);
  LinkInfo li;
  ASSERT_TRUE(parse_link(*m, &li));
  EXPECT_EQ(li.index, 12);
  EXPECT_EQ(li.name, "eth0");
  EXPECT_EQ(li.mtu, 65520u);
  EXPECT_EQ(li.txqlen, 5000u);
  EXPECT_EQ(li.mac.b[5], 5);
  EXPECT_TRUE(li.flags & IFF_UP);
  EXPECT_EQ(li.rx_dropped, 7u);
  EXPECT_EQ(li.tx_dropped, 1234u);

  NlBuilder shortmsg(RTM_NEWLINK, 0, 1);
  auto m2 = NlMessages(shortmsg.bytes()).next();
  ASSERT_TRUE(m2);
  EXPECT_FALSE(parse_link(*m2, &li));
}

TEST(NlParse, LinkTxStats) {
  NlBuilder req(RTM_GETSTATS, NLM_F_REQUEST, 1);
  build_getstats(req, 9);
  auto r = NlMessages(req.bytes()).next();
  ASSERT_TRUE(r);
  ASSERT_GE(r->payload.size(), sizeof(if_stats_msg));
  if_stats_msg q{};
  std::memcpy(&q, r->payload.data(), sizeof(q));
  EXPECT_EQ(q.ifindex, 9u);
  EXPECT_EQ(q.filter_mask, static_cast<uint32_t>(IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64)));

  NlBuilder b(RTM_NEWSTATS, 0, 1);
  if_stats_msg hdr{};
  hdr.ifindex = 9;
  b.put(hdr);
  rtnl_link_stats64 st{};
  st.tx_packets = 777;
  st.tx_dropped = 55;
  st.tx_bytes = 123456;
  b.attr(IFLA_STATS_LINK_64, &st, sizeof(st));
  auto m = NlMessages(b.bytes()).next();
  ASSERT_TRUE(m);
  LinkTxStats got;
  ASSERT_TRUE(parse_link_tx_stats(*m, &got));
  EXPECT_EQ(got.tx_packets, 777u);
  EXPECT_EQ(got.tx_dropped, 55u);
  EXPECT_EQ(got.tx_bytes, 123456u);

  // Too short an attribute, or none: not parsed.
  NlBuilder cut(RTM_NEWSTATS, 0, 1);
  cut.put(hdr);
  cut.attr(IFLA_STATS_LINK_64, &st, 16);
  auto m2 = NlMessages(cut.bytes()).next();
  ASSERT_TRUE(m2);
  EXPECT_FALSE(parse_link_tx_stats(*m2, &got));
}

// The real kernel answers RTM_GETSTATS without privileges (lo is ifindex 1
// in every namespace).
TEST(Netlink, LinkTxStatsOfLoopback) {
  Result<Netlink> nl = Netlink::open();
  ASSERT_TRUE(nl) << nl.status().message();
  LinkTxStats st;
  Status s = nl->link_tx_stats(1, &st);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(nl->link_tx_stats(999999, &st).ok());
}

TEST(Inet, FamilyAndText) {
  EXPECT_EQ(inet_family(ip("198.18.0.1")), AF_INET);
  EXPECT_EQ(inet_family(ip("fd00:f::1")), AF_INET6);
  EXPECT_EQ(inet_family(ip("::")), AF_INET6);
  EXPECT_EQ(inet_text(ip("198.18.0.1")), "198.18.0.1");
  EXPECT_EQ(inet_text(ip("fd00:f::1")), "fd00:f::1");
}

TEST(Status, Messages) {
  EXPECT_EQ(Status().message(), "ok");
  Status st(ENODEV, "look up link eth9");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message(), std::string("look up link eth9: ") + std::strerror(ENODEV));
  EXPECT_EQ(Status(0, "lost errno").err(), EIO);
  Result<int> r(Status{});
  EXPECT_FALSE(r.ok());
}

TEST(Sysctl, RefusesKeysOutsideNet) {
  EXPECT_EQ(write_sysctl("kernel/hostname", "x").err(), EINVAL);
  EXPECT_EQ(write_sysctl("net/../kernel/hostname", "x").err(), EINVAL);
  EXPECT_EQ(read_sysctl("/etc/passwd").status().err(), EINVAL);
  EXPECT_EQ(quiet_ipv6("../all").err(), EINVAL);
  EXPECT_EQ(quiet_ipv6("").err(), EINVAL);
}

// ---- unprivileged but real -----------------------------------------------------

TEST(Netns, OpenRefusesBadSpecs) {
  EXPECT_EQ(open_netns("").status().err(), EINVAL);
  EXPECT_EQ(open_netns("..").status().err(), EINVAL);
  EXPECT_EQ(open_netns("/proc/self/ns/uts").status().err(), EINVAL);  // not a netns
  EXPECT_EQ(open_netns("/etc/hostname").status().err(), EINVAL);      // not nsfs
  EXPECT_EQ(open_netns("ferry-no-such-ns-xyz").status().err(), ENOENT);
}

TEST(Netns, OpenCurrentByPath) {
  auto cur = current_netns();
  ASSERT_TRUE(cur) << cur.status().message();
  auto byp = open_netns("/proc/self/ns/net");
  ASSERT_TRUE(byp) << byp.status().message();
  EXPECT_TRUE(same_netns(cur->get(), byp->get()));
  EXPECT_NE(netns_inode(cur->get()), 0u);
}

TEST(NetlinkLive, LoopbackLookup) {
  auto nl = Netlink::open();
  ASSERT_TRUE(nl) << nl.status().message();
  auto lo = nl->link_index("lo");
  ASSERT_TRUE(lo) << lo.status().message();
  EXPECT_GT(*lo, 0);
  auto li = nl->get_link(*lo);
  ASSERT_TRUE(li) << li.status().message();
  EXPECT_EQ(li->name, "lo");
  auto none = nl->link_index("ferrynoif0");
  EXPECT_FALSE(none);
  EXPECT_EQ(none.status().err(), ENODEV);
}

// ---- privileged ----------------------------------------------------------------

bool privileged() { return geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0; }

// A tap in the calling thread's namespace, kept while the fd is open.
int open_tap(const char* name) {
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(NetnsPriv, CreateAndGuard) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  auto orig = current_netns();
  ASSERT_TRUE(orig);
  auto ns = create_netns();
  ASSERT_TRUE(ns) << ns.status().message();
  EXPECT_FALSE(same_netns(orig->get(), ns->get()));
  {
    auto now = current_netns();
    ASSERT_TRUE(now);
    EXPECT_TRUE(same_netns(now->get(), orig->get())) << "create_netns must return the thread";
  }
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(ns->get()));
    EXPECT_EQ(g.enter(ns->get()).err(), EBUSY);
    auto inside = current_netns();
    ASSERT_TRUE(inside);
    EXPECT_TRUE(same_netns(inside->get(), ns->get()));
    // The new namespace has only lo.
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    auto addrs = nl->addresses();
    ASSERT_TRUE(addrs) << addrs.status().message();
    EXPECT_TRUE(addrs->empty());  // lo is down: no 127.0.0.1 yet
  }
  auto after = current_netns();
  ASSERT_TRUE(after);
  EXPECT_TRUE(same_netns(after->get(), orig->get()));
}

TEST(NetlinkPriv, ConfigureTapAndReadBack) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  auto ns = create_netns();
  ASSERT_TRUE(ns) << ns.status().message();
  int tap = -1;
  Result<Netlink> nl = Status(EIO, "unset");
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(ns->get()));
    tap = open_tap("ftest0");
    ASSERT_GE(tap, 0) << std::strerror(errno);
    ASSERT_TRUE(quiet_ipv6("ftest0")) << quiet_ipv6("ftest0").message();
    auto dad = read_sysctl("net/ipv6/conf/ftest0/accept_dad");
    ASSERT_TRUE(dad);
    EXPECT_EQ(*dad, "0");
    nl = Netlink::open();  // stays bound to `ns` after the guard leaves
    ASSERT_TRUE(nl);
  }
  auto idx = nl->link_index("ftest0");
  ASSERT_TRUE(idx) << idx.status().message();
  ASSERT_TRUE(nl->bring_lo_up());
  ASSERT_TRUE(nl->set_mtu(*idx, 9000));
  ASSERT_TRUE(nl->set_txqueuelen(*idx, 3000));
  ASSERT_TRUE(nl->set_link_up(*idx));
  ASSERT_TRUE(nl->add_address(*idx, prefix("198.18.0.2", 24)));
  Status st6 = nl->add_address(*idx, prefix("fd00:f::2", 64));
  ASSERT_TRUE(st6) << st6.message();
  EXPECT_TRUE(nl->add_address(*idx, prefix("198.18.0.2", 24))) << "replace must be idempotent";
  Status r4 = nl->add_default_route(*idx, ip("198.18.0.1"));
  ASSERT_TRUE(r4) << r4.message();
  Status r6 = nl->add_default_route(*idx, ip("fd00:f::1"));
  ASSERT_TRUE(r6) << r6.message();
  MacAddr mac{{2, 0, 0, 0, 0, 1}};
  ASSERT_TRUE(nl->add_neighbor(*idx, ip("198.18.0.1"), mac));

  auto li = nl->get_link(*idx);
  ASSERT_TRUE(li);
  EXPECT_EQ(li->mtu, 9000u);
  EXPECT_EQ(li->txqlen, 3000u);
  EXPECT_TRUE(li->flags & IFF_UP);
  EXPECT_NE(li->mac, MacAddr{});

  auto addrs = nl->addresses(*idx);
  ASSERT_TRUE(addrs) << addrs.status().message();
  bool v4 = false, v6 = false;
  for (const AddrInfo& a : *addrs) {
    if (a.prefix.addr == ip("198.18.0.2") && a.prefix.len == 24) v4 = true;
    if (a.prefix.addr == ip("fd00:f::2") && a.prefix.len == 64) {
      v6 = true;
      EXPECT_TRUE(a.flags & IFA_F_NODAD);
      EXPECT_FALSE(a.flags & IFA_F_TENTATIVE) << "must be usable at once";
    }
  }
  EXPECT_TRUE(v4);
  EXPECT_TRUE(v6);

  auto d4 = nl->default_routes(AF_INET);
  ASSERT_TRUE(d4);
  ASSERT_EQ(d4->size(), 1u);
  EXPECT_EQ((*d4)[0].gateway, ip("198.18.0.1"));
  EXPECT_EQ((*d4)[0].oif, *idx);
  auto d6 = nl->default_routes(AF_INET6);
  ASSERT_TRUE(d6);
  ASSERT_EQ(d6->size(), 1u);
  EXPECT_EQ((*d6)[0].gateway, ip("fd00:f::1"));

  // A gateway that is not on-link fails with a message naming the step.
  Status bad = nl->add_default_route(*idx, ip("10.200.0.1"));
  EXPECT_FALSE(bad);
  EXPECT_NE(bad.message().find("default route via 10.200.0.1"), std::string::npos) << bad.message();
  EXPECT_FALSE(nl->set_mtu(*idx, 70000));
  close(tap);
}

TEST(NetlinkPriv, ConfigureGuestLink) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  auto ns = create_netns();
  ASSERT_TRUE(ns);
  int tap = -1;
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(ns->get()));
    tap = open_tap("eth0");
    ASSERT_GE(tap, 0);
  }
  GuestLinkSetup s;
  s.ifname = "eth0";
  s.mtu = 65520;
  s.addr4 = prefix("198.18.0.2", 24);
  s.gateway4 = ip("198.18.0.1");
  s.addr6 = prefix("fd00:f::2", 64);
  s.gateway6 = ip("fd00:f::1");
  Status st = configure_guest_link(ns->get(), s);
  ASSERT_TRUE(st) << st.message();

  auto orig = current_netns();
  Result<Netlink> nl = Status(EIO, "unset");
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(ns->get()));
    nl = Netlink::open();
    ASSERT_TRUE(nl);
    auto ra = read_sysctl("net/ipv6/conf/eth0/accept_ra");
    ASSERT_TRUE(ra);
    EXPECT_EQ(*ra, "0");
  }
  auto li = nl->get_link("eth0");
  ASSERT_TRUE(li);
  EXPECT_EQ(li->mtu, 65520u);
  EXPECT_TRUE(li->flags & IFF_UP);
  auto lo = nl->get_link("lo");
  ASSERT_TRUE(lo);
  EXPECT_TRUE(lo->flags & IFF_UP);
  auto d4 = nl->default_routes(AF_INET);
  ASSERT_TRUE(d4);
  EXPECT_EQ(d4->size(), 1u);
  auto d6 = nl->default_routes(AF_INET6);
  ASSERT_TRUE(d6);
  EXPECT_EQ(d6->size(), 1u);

  // A missing link is reported, and the thread is back home either way.
  s.ifname = "nosuch0";
  Status missing = configure_guest_link(ns->get(), s);
  EXPECT_EQ(missing.err(), ENODEV);
  auto now = current_netns();
  ASSERT_TRUE(now && orig);
  EXPECT_TRUE(same_netns(now->get(), orig->get()));
  close(tap);
}

TEST(NetlinkPriv, GuestLinkIpv4OnlyDisablesIpv6) {
  if (!privileged()) GTEST_SKIP() << "needs root";
  auto ns = create_netns();
  ASSERT_TRUE(ns);
  int tap = -1;
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(ns->get()));
    tap = open_tap("eth0");
    ASSERT_GE(tap, 0);
  }
  GuestLinkSetup s;
  s.addr4 = prefix("198.18.0.2", 24);
  s.gateway4 = ip("198.18.0.1");
  Status st = configure_guest_link(ns->get(), s);
  ASSERT_TRUE(st) << st.message();
  NetnsGuard g;
  ASSERT_TRUE(g.enter(ns->get()));
  auto dis = read_sysctl("net/ipv6/conf/eth0/disable_ipv6");
  ASSERT_TRUE(dis);
  EXPECT_EQ(*dis, "1");
  auto nl = Netlink::open();
  ASSERT_TRUE(nl);
  auto addrs = nl->addresses(*nl->link_index("eth0"));
  ASSERT_TRUE(addrs);
  ASSERT_EQ(addrs->size(), 1u) << "only 198.18.0.2, no IPv6 link-local";
  EXPECT_EQ((*addrs)[0].prefix.addr, ip("198.18.0.2"));
  close(tap);
}

}  // namespace
}  // namespace ferry
