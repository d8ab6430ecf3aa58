// Tests of the rtnetlink additions ferry-cni uses (userspace/netns/netlink.h):
// build_newveth, build_route, build_dellink, build_setlink_netns, parsed
// back attribute by attribute; and, as root, the real thing in anonymous
// namespaces: a veth whose peer is created directly in another namespace,
// a route, a move, a delete.
// test-libs: ferry_netns ferry_common ferry_codec
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "netns/netlink.h"
#include "netns/netns.h"

namespace ferry {
namespace {

// The attributes after a fixed struct of size `fixed` in a built message.
NlAttrs attrs_after(std::span<const uint8_t> msg, size_t fixed) {
  size_t off = NLMSG_ALIGN(sizeof(nlmsghdr)) + NLMSG_ALIGN(fixed);
  return NlAttrs(msg.subspan(off));
}

TEST(CniNetlink, NewVethNestsThePeer) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST, 1);
  build_newveth(b, "fyhost", "eth0", 7, 1400);
  ASSERT_FALSE(b.overflow());
  NlAttrs top = attrs_after(b.bytes(), sizeof(ifinfomsg));
  bool name = false, mtu = false, kind = false, peer_name = false, peer_ns = false, peer_mtu = false;
  while (auto a = top.next()) {
    if (a->type == IFLA_IFNAME) name = a->str() == "fyhost";
    if (a->type == IFLA_MTU) mtu = a->u32() == 1400u;
    if (a->type != IFLA_LINKINFO) continue;
    NlAttrs li(a->data);
    while (auto l = li.next()) {
      if (l->type == IFLA_INFO_KIND) kind = l->str() == "veth";
      if (l->type != IFLA_INFO_DATA) continue;
      NlAttrs data(l->data);
      auto p = data.next();
      ASSERT_TRUE(p);
      ASSERT_EQ(p->type, VETH_INFO_PEER);
      ASSERT_GE(p->data.size(), sizeof(ifinfomsg));
      NlAttrs pa(p->data.subspan(NLMSG_ALIGN(sizeof(ifinfomsg))));
      while (auto x = pa.next()) {
        if (x->type == IFLA_IFNAME) peer_name = x->str() == "eth0";
        if (x->type == IFLA_NET_NS_FD) peer_ns = x->u32() == 7u;
        if (x->type == IFLA_MTU) peer_mtu = x->u32() == 1400u;
      }
      EXPECT_FALSE(pa.malformed());
    }
  }
  EXPECT_TRUE(name && mtu && kind && peer_name && peer_ns && peer_mtu);
}

TEST(CniNetlink, NewVethWithoutNamespaceOrMtu) {
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST, 1);
  build_newveth(b, "a", "b", -1, 0);
  ASSERT_FALSE(b.overflow());
  NlAttrs top = attrs_after(b.bytes(), sizeof(ifinfomsg));
  while (auto a = top.next()) EXPECT_NE(a->type, IFLA_MTU);
}

// The peer's IFLA_ADDRESS (podman --mac-address through runtimeConfig.mac)
// sits in the peer's nest, not on the host end.
TEST(CniNetlink, NewVethPeerMac) {
  const MacAddr mac = *MacAddr::parse("02:42:ac:11:00:07");
  NlBuilder b(RTM_NEWLINK, NLM_F_REQUEST, 1);
  build_newveth(b, "fyhost", "eth0", -1, 0, &mac);
  ASSERT_FALSE(b.overflow());
  NlAttrs top = attrs_after(b.bytes(), sizeof(ifinfomsg));
  bool peer_mac = false;
  while (auto a = top.next()) {
    EXPECT_NE(a->type, IFLA_ADDRESS);
    if (a->type != IFLA_LINKINFO) continue;
    NlAttrs li(a->data);
    while (auto l = li.next()) {
      if (l->type != IFLA_INFO_DATA) continue;
      NlAttrs data(l->data);
      auto p = data.next();
      ASSERT_TRUE(p);
      NlAttrs pa(p->data.subspan(NLMSG_ALIGN(sizeof(ifinfomsg))));
      while (auto x = pa.next()) {
        if (x->type == IFLA_ADDRESS) peer_mac = x->data.size() == 6 && std::memcmp(x->data.data(), mac.b.data(), 6) == 0;
      }
    }
  }
  EXPECT_TRUE(peer_mac);
}

TEST(CniNetlink, RouteClearsHostBits) {
  NlBuilder b(RTM_NEWROUTE, NLM_F_REQUEST, 1);
  build_route(b, 3, *InetPrefix::parse("198.19.5.77/24"), InetAddr::parse("198.19.5.1"));
  rtmsg rt{};
  std::memcpy(&rt, b.bytes().data() + NLMSG_ALIGN(sizeof(nlmsghdr)), sizeof(rt));
  EXPECT_EQ(rt.rtm_family, AF_INET);
  EXPECT_EQ(rt.rtm_dst_len, 24);
  EXPECT_EQ(rt.rtm_scope, RT_SCOPE_UNIVERSE);
  NlAttrs at = attrs_after(b.bytes(), sizeof(rtmsg));
  bool dst = false, gw = false, oif = false;
  while (auto a = at.next()) {
    if (a->type == RTA_DST) dst = a->data.size() == 4 && a->data[0] == 198 && a->data[2] == 5 && a->data[3] == 0;
    if (a->type == RTA_GATEWAY) gw = a->data.size() == 4 && a->data[3] == 1;
    if (a->type == RTA_OIF) oif = a->u32() == 3u;
  }
  EXPECT_TRUE(dst && gw && oif);
}

TEST(CniNetlink, OnLinkAndDefaultRoutes) {
  NlBuilder b(RTM_NEWROUTE, NLM_F_REQUEST, 1);
  build_route(b, 3, *InetPrefix::parse("::/0"), std::nullopt);
  rtmsg rt{};
  std::memcpy(&rt, b.bytes().data() + NLMSG_ALIGN(sizeof(nlmsghdr)), sizeof(rt));
  EXPECT_EQ(rt.rtm_family, AF_INET6);
  EXPECT_EQ(rt.rtm_dst_len, 0);
  EXPECT_EQ(rt.rtm_scope, RT_SCOPE_LINK);
  NlAttrs at = attrs_after(b.bytes(), sizeof(rtmsg));
  while (auto a = at.next()) {
    EXPECT_NE(a->type, RTA_DST);
    EXPECT_NE(a->type, RTA_GATEWAY);
  }
}

// ---- as root, in anonymous namespaces -----------------------------------------------

TEST(CniNetlinkPriv, VethIntoAnotherNamespaceRouteMoveDelete) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto host = create_netns();
  auto pod = create_netns();
  auto third = create_netns();
  ASSERT_TRUE(host && pod && third);
  NetnsGuard g;
  ASSERT_TRUE(g.enter(host->get()).ok());
  auto nl = Netlink::open();
  ASSERT_TRUE(nl);
  ASSERT_TRUE(nl->create_veth("fytest0", "eth0", pod->get(), 1400).ok());
  EXPECT_EQ(nl->create_veth("fytest0", "eth1", pod->get()).err(), EEXIST);
  auto li = nl->get_link("fytest0");
  ASSERT_TRUE(li);
  EXPECT_EQ(li->mtu, 1400u);
  EXPECT_FALSE(nl->get_link("eth0").ok());  // the peer never lived here
  {
    NetnsGuard in;
    ASSERT_TRUE(in.enter(pod->get()).ok());
    auto pnl = Netlink::open();
    auto eth0 = pnl->get_link("eth0");
    ASSERT_TRUE(eth0);
    EXPECT_EQ(eth0->mtu, 1400u);
    ASSERT_TRUE(pnl->set_link_up(eth0->index).ok());
    ASSERT_TRUE(pnl->add_address(eth0->index, *InetPrefix::parse("198.19.9.2/24")).ok());
    ASSERT_TRUE(pnl->add_route(eth0->index, *InetPrefix::parse("198.19.100.0/24"), InetAddr::parse("198.19.9.1")).ok());
    ASSERT_TRUE(pnl->add_route(eth0->index, *InetPrefix::parse("198.19.9.1/32"), std::nullopt).ok());
    ASSERT_TRUE(pnl->add_route(eth0->index, *InetPrefix::parse("0.0.0.0/0"), InetAddr::parse("198.19.9.1")).ok());
    auto defaults = pnl->default_routes(AF_INET);
    ASSERT_TRUE(defaults);
    ASSERT_EQ(defaults->size(), 1u);
  }
  // Move the host end elsewhere, then delete it there: the pod's end goes too.
  ASSERT_TRUE(nl->move_link_to_netns(li->index, third->get()).ok());
  EXPECT_FALSE(nl->get_link("fytest0").ok());
  {
    NetnsGuard in;
    ASSERT_TRUE(in.enter(third->get()).ok());
    auto tnl = Netlink::open();
    auto moved = tnl->get_link("fytest0");
    ASSERT_TRUE(moved);
    ASSERT_TRUE(tnl->delete_link(moved->index).ok());
    EXPECT_EQ(tnl->delete_link(moved->index).err(), ENODEV);
  }
  {
    NetnsGuard in;
    ASSERT_TRUE(in.enter(pod->get()).ok());
    auto pnl = Netlink::open();
    EXPECT_FALSE(pnl->get_link("eth0").ok());
  }
}

}  // namespace
}  // namespace ferry
