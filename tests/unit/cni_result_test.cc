// Tests of userspace/cni/cni.h: results and errors as JSON in each spec
// version, parsing of results other plugins made (IPAM answers, prevResult),
// and ferry's own pure helpers (attachment keys, host device names, the
// `ferry attach` command line, default gateways).
// test-libs: ferry_cni ferry_netns ferry_common ferry_codec
#include <gtest/gtest.h>

#include "cni/cni.h"

namespace ferry::cni {
namespace {

CniResult sample() {
  CniResult r;
  r.interfaces = {{"fy0123456789abc", "02:00:00:00:00:01", "", 0}, {"eth0", "02:00:00:00:00:02", "/run/netns/p", 1500}};
  r.ips = {{*InetPrefix::parse("198.18.0.2/24"), InetAddr::parse("198.18.0.1"), 1},
           {*InetPrefix::parse("fd00:f::2/64"), InetAddr::parse("fd00:f::1"), 1}};
  r.routes = {{*InetPrefix::parse("0.0.0.0/0"), InetAddr::parse("198.18.0.1")}, {*InetPrefix::parse("::/0"), std::nullopt}};
  r.dns.nameservers = {"198.18.0.1"};
  return r;
}

TEST(CniResult, Version110) {
  json j = sample().to_json("1.1.0");
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  ASSERT_EQ(j["interfaces"].size(), 2u);
  EXPECT_FALSE(j["interfaces"][0].contains("sandbox"));
  EXPECT_EQ(j["interfaces"][1]["sandbox"], "/run/netns/p");
  EXPECT_EQ(j["interfaces"][1]["mtu"], 1500);
  EXPECT_EQ(j["ips"][0]["address"], "198.18.0.2/24");
  EXPECT_EQ(j["ips"][0]["gateway"], "198.18.0.1");
  EXPECT_EQ(j["ips"][0]["interface"], 1);
  EXPECT_FALSE(j["ips"][0].contains("version"));
  EXPECT_EQ(j["routes"][0]["dst"], "0.0.0.0/0");
  EXPECT_EQ(j["routes"][0]["gw"], "198.18.0.1");
  EXPECT_FALSE(j["routes"][1].contains("gw"));
  EXPECT_EQ(j["dns"]["nameservers"][0], "198.18.0.1");
}

TEST(CniResult, Version100HasNoMtuOrVersion) {
  json j = sample().to_json("1.0.0");
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_FALSE(j["interfaces"][1].contains("mtu"));
  EXPECT_FALSE(j["ips"][1].contains("version"));
}

TEST(CniResult, Version040HasIpVersion) {
  json j = sample().to_json("0.4.0");
  EXPECT_EQ(j["ips"][0]["version"], "4");
  EXPECT_EQ(j["ips"][1]["version"], "6");
  EXPECT_FALSE(j["interfaces"][1].contains("mtu"));
}

TEST(CniResult, RoundTrip) {
  for (const char* v : {"0.4.0", "1.0.0", "1.1.0"}) {
    std::string why;
    auto r = CniResult::from_json(sample().to_json(v), &why);
    ASSERT_TRUE(r) << v << ": " << why;
    ASSERT_EQ(r->ips.size(), 2u);
    EXPECT_EQ(r->ips[1].address.str(), "fd00:f::2/64");
    EXPECT_EQ(*r->ips[0].interface, 1);
    EXPECT_EQ(r->interfaces[1].sandbox, "/run/netns/p");
    EXPECT_EQ(r->routes.size(), 2u);
    EXPECT_EQ(r->dns.nameservers.size(), 1u);
  }
}

TEST(CniResult, HostLocalAnswer) {
  // What host-local prints (no interfaces, no interface index).
  json j = json::parse(R"({"cniVersion":"1.0.0","ips":[{"address":"198.19.0.2/24","gateway":"198.19.0.1"}],
                           "routes":[{"dst":"0.0.0.0/0"}],"dns":{}})");
  std::string why;
  auto r = CniResult::from_json(j, &why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->ips.size(), 1u);
  EXPECT_FALSE(r->ips[0].interface);
  EXPECT_EQ(r->ips[0].gateway->str(), "198.19.0.1");
  EXPECT_FALSE(r->routes[0].gw);
}

TEST(CniResult, BadResultsAreRejected) {
  for (const char* text : {R"([])", R"({"ips":[{"gateway":"1.2.3.4"}]})", R"({"ips":[{"address":"nope"}]})",
                           R"({"ips":[{"address":"1.2.3.4/24","interface":3}]})",
                           R"({"ips":[{"address":"1.2.3.4/24","gateway":"x"}]})", R"({"routes":[{"gw":"1.2.3.4"}]})"}) {
    std::string why;
    EXPECT_FALSE(CniResult::from_json(json::parse(text), &why)) << text;
    EXPECT_FALSE(why.empty());
  }
}

TEST(CniError, Json) {
  CniError e{kErrInvalidConfig, "bad mtu", "more"};
  json j = e.to_json("1.0.0");
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["code"], 7);
  EXPECT_EQ(j["msg"], "bad mtu");
  EXPECT_EQ(j["details"], "more");
  CniError plain{kErrTryAgain, "busy", ""};
  json p = plain.to_json("");
  EXPECT_EQ(p["cniVersion"], "1.1.0");
  EXPECT_EQ(p["code"], 11);
  EXPECT_FALSE(p.contains("details"));
}

TEST(CniFerry, KeysAndDeviceNames) {
  std::string k = attachment_key("net", "ctr", "eth0");
  EXPECT_EQ(k.size(), 16u);
  EXPECT_EQ(k, attachment_key("net", "ctr", "eth0"));
  EXPECT_NE(k, attachment_key("net", "ctr", "eth1"));
  EXPECT_NE(attachment_key("ab", "c", "x"), attachment_key("a", "bc", "x"));
  std::string dev = host_ifname_for(k);
  EXPECT_EQ(dev.size(), 15u);
  EXPECT_EQ(dev.substr(0, 2), "fy");
  EXPECT_TRUE(valid_ifname(dev));
}

TEST(CniFerry, AttachArgv) {
  AttachPlan p;
  p.device = "fyabc";
  p.addr4 = InetPrefix::parse("198.19.0.2/24");
  p.gw4 = InetAddr::parse("198.19.0.1");
  p.mtu = 1500;
  p.max_conns = 4096;
  p.max_udp_flows = 512;
  p.memory_max = "256M";
  p.tcp_specs = {"8080:80"};
  p.udp_specs = {"5353:53"};
  p.fastpath = false;
  p.hook = "xdp";
  p.map_gateway = false;
  p.guest_mac = "02:9a:4f:31:c2:5d";
  std::vector<std::string> want = {"attach", "fyabc", "-a", "198.19.0.2/24", "-g", "198.19.0.1", "-4",
                                   "-m", "1500", "--max-conns", "4096", "--max-udp-flows", "512", "--memory-max", "256M",
                                   "-t", "8080:80",
                                   "-u", "5353:53", "--no-map-gw", "--guest-mac", "02:9a:4f:31:c2:5d", "--no-node",
                                   "--no-fastpath", "--hook", "xdp"};
  EXPECT_EQ(attach_argv(p), want);
  // The policy a configuration opens, the mark, and --force (chained).
  p.map_gateway = true;
  p.map_gateway_ports = "53,8000-8080";
  p.allow_node = true;
  p.allow = {"169.254.169.254/32:80"};
  p.deny = {"10.0.0.0/8"};
  p.socket_mark = 0x60010000;
  p.force = true;
  want = {"attach", "fyabc", "-a", "198.19.0.2/24", "-g", "198.19.0.1", "-4", "-m", "1500", "--max-conns", "4096",
          "--max-udp-flows", "512", "--memory-max", "256M", "-t", "8080:80", "-u", "5353:53", "--guest-mac",
          "02:9a:4f:31:c2:5d", "--map-gw-ports", "53,8000-8080", "--node", "--allow", "169.254.169.254/32:80",
          "--deny", "10.0.0.0/8", "--mark", "1610678272", "--force", "--no-fastpath", "--hook", "xdp"};
  EXPECT_EQ(attach_argv(p), want);
  AttachPlan both;
  both.device = "d";
  both.addr4 = InetPrefix::parse("198.18.0.2/24");
  both.addr6 = InetPrefix::parse("fd00:f::2/64");
  std::vector<std::string> a = attach_argv(both);
  EXPECT_EQ(std::count(a.begin(), a.end(), "-4"), 0);
  EXPECT_EQ(std::count(a.begin(), a.end(), "-6"), 0);
  EXPECT_EQ(std::count(a.begin(), a.end(), "-a"), 2);
}

// The guest services follow the configuration and the pod's DNS and routes.
TEST(CniFerry, GuestServicesInAttachArgv) {
  CniError err;
  auto conf = parse_netconf(R"({"cniVersion":"1.0.0","name":"n","dhcp":false,"dhcpv6":false,
                                 "dnsForward":"198.19.0.53"})",
                            &err);
  ASSERT_TRUE(conf) << err.msg;
  Dns dns;
  dns.nameservers = {"198.19.0.1", "not-an-address", "fd00:f::1"};
  dns.search = {"svc.cluster.local", "bad,one"};
  dns.domain = "cluster.local";
  std::vector<CniRoute> routes = {{*InetPrefix::parse("0.0.0.0/0"), InetAddr::parse("198.19.0.1")},
                                  {*InetPrefix::parse("10.96.0.0/12"), InetAddr::parse("198.19.0.1")},
                                  {*InetPrefix::parse("fd10::/64"), InetAddr::parse("fd00:f::1")}};
  AttachPlan p;
  p.device = "d";
  plan_guest_services(&p, *conf, dns, routes);
  const std::vector<std::string> a = attach_argv(p);
  const std::vector<std::string> want = {"attach", "d", "--no-map-gw", "--no-node", "--no-dhcp", "--no-dhcpv6", "--dns-forward", "198.19.0.53",
                                         "--dns", "198.19.0.1", "--dns", "fd00:f::1", "--search",
                                         "svc.cluster.local", "--domain", "cluster.local", "--route",
                                         "10.96.0.0/12,198.19.0.1"};
  EXPECT_EQ(a, want);
  auto off = parse_netconf(R"({"cniVersion":"1.0.0","name":"n","ra":false,"dnsForward":false})", &err);
  ASSERT_TRUE(off) << err.msg;
  AttachPlan q;
  q.device = "d";
  plan_guest_services(&q, *off, Dns{}, {});
  EXPECT_EQ(attach_argv(q), (std::vector<std::string>{"attach", "d", "--no-map-gw", "--no-node", "--no-ra", "--no-dns"}));
}

TEST(CniFerry, DefaultGateway) {
  EXPECT_EQ(default_gateway_for(*InetPrefix::parse("198.19.4.7/24")).str(), "198.19.4.1");
  EXPECT_EQ(default_gateway_for(*InetPrefix::parse("198.19.4.1/24")).str(), "198.19.4.2");
  EXPECT_EQ(default_gateway_for(*InetPrefix::parse("fd00:f::9/64")).str(), "fd00:f::1");
}

}  // namespace
}  // namespace ferry::cni
