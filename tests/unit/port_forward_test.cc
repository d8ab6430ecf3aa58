// Port-forward rule parsing: the passt syntax and every way it can be wrong.
// test-libs: ferry_common ferry_codec
#include <gtest/gtest.h>

#include "common/port_forward.h"

namespace ferry {
namespace {

std::vector<PortForward> parse_ok(const char* spec) {
  std::vector<PortForward> out;
  const Status st = parse_port_forwards(spec, &out);
  EXPECT_TRUE(st.ok()) << spec << ": " << st.message();
  return out;
}

std::string parse_error(const char* spec) {
  std::vector<PortForward> out{PortForward{}};
  const Status st = parse_port_forwards(spec, &out);
  EXPECT_FALSE(st.ok()) << spec;
  EXPECT_EQ(out.size(), 1u) << "a failed spec must not append anything";
  return st.message();
}

TEST(PortForward, SinglePort) {
  auto r = parse_ok("8080");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].bind_any);
  EXPECT_EQ(r[0].host_first, 8080);
  EXPECT_EQ(r[0].host_last, 8080);
  EXPECT_EQ(r[0].guest_first, 8080);
}

TEST(PortForward, MappedPortAndRange) {
  auto r = parse_ok("18080:8080,8000-8010,9000-9002:7000-7002");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].host_first, 18080);
  EXPECT_EQ(r[0].guest_first, 8080);
  EXPECT_EQ(r[1].host_first, 8000);
  EXPECT_EQ(r[1].host_last, 8010);
  EXPECT_EQ(r[1].guest_first, 8000);
  EXPECT_EQ(r[2].guest_first, 7000);
  EXPECT_EQ(to_string(r[2]), "9000-9002:7000-7002");
}

TEST(PortForward, BoundAddress) {
  auto r = parse_ok("127.0.0.1/8080:80");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].bind_any);
  EXPECT_EQ(r[0].bind_addr.str(), "127.0.0.1");
  EXPECT_EQ(r[0].guest_first, 80);
  auto v6 = parse_ok("::1/2222:22");
  ASSERT_EQ(v6.size(), 1u);
  EXPECT_FALSE(v6[0].bind_addr.is_v4());
  EXPECT_EQ(to_string(v6[0]), "::1/2222:22");
}

TEST(PortForward, None) { EXPECT_TRUE(parse_ok("none").empty()); }

TEST(PortForward, Errors) {
  EXPECT_NE(parse_error("0").find("bad port"), std::string::npos);
  parse_error("65536");
  parse_error("80-70");
  parse_error("abc");
  parse_error("");
  parse_error("80,");
  parse_error("8000-8010:80");          // range to a single port
  parse_error("8000-8010:9000-9001");   // unequal ranges
  parse_error("1.2.3/80");              // bad address
  parse_error("80:0");
  parse_error("80x");
}

// Specs with `all` and exclusions, against a host whose ephemeral range is
// 40000-60999 and which uses ports 22 and 8080: the host ranges each spec
// gives ("F-L" or "F-L:GF" for a shifted one), and how many in-use ports
// `all` skipped.
TEST(PortForward, AllAndExclusionsTable) {
  HostPorts host;
  host.ephemeral_first = 40000;
  host.ephemeral_last = 60999;
  host.in_use.set(22);
  host.in_use.set(8080);
  struct Case {
    const char* spec;
    std::vector<std::string> runs;
    size_t skipped;
  };
  const Case cases[] = {
      {"8000-8100,~8050", {"8000-8049", "8051-8100"}, 0},
      {"8000-8100,~8000-8010,~8100", {"8011-8099"}, 0},
      {"~8050,8000-8100", {"8000-8049", "8051-8100"}, 0},  // order does not matter
      {"9000-9003:7000-7003,~9001", {"9000:7000", "9002-9003:7002-7003"}, 0},
      {"127.0.0.1/80-82,~81", {"127.0.0.1/80", "127.0.0.1/82"}, 0},
      {"8080", {"8080"}, 0},  // explicit ports are not checked against the host
      {"all", {"1-21", "23-8079", "8081-39999", "61000-65535"}, 2},
      {"all,~22", {"1-21", "23-8079", "8081-39999", "61000-65535"}, 1},
      {"all,~1-1000,~65535", {"1001-8079", "8081-39999", "61000-65534"}, 1},
      {"~1-30000", {"30001-39999", "61000-65535"}, 0},  // exclusions only: all but those
      {"~22", {"1-21", "23-8079", "8081-39999", "61000-65535"}, 1},
  };
  for (const Case& c : cases) {
    std::vector<PortForward> out;
    size_t skipped = 99;
    const Status st = parse_port_forwards(c.spec, &out, &host, &skipped);
    ASSERT_TRUE(st.ok()) << c.spec << ": " << st.message();
    std::vector<std::string> runs;
    for (const PortForward& f : out) runs.push_back(to_string(f));
    EXPECT_EQ(runs, c.runs) << c.spec;
    EXPECT_EQ(skipped, c.skipped) << c.spec;
  }
}

TEST(PortForward, BadSpecsTable) {
  const struct {
    const char* spec;
    const char* says;
  } cases[] = {
      {"~", "bad exclusion"},
      {"~0", "bad exclusion"},
      {"~90-80", "bad exclusion"},
      {"~x", "bad exclusion"},
      {"~80:90", "bad exclusion"},
      {"~127.0.0.1/80", "bad exclusion"},
      {"8000,~", "bad exclusion"},
      {"80,~80", "leaves no port"},
      {"8000-8001,~7000-9000", "leaves no port"},
      {"~1-65535", "leaves no port"},
      {"auto", "not supported"},  // no AutoForwardSpec given: not ferry run
      {"all,", "bad port"},
      {"alll", "bad port"},
      {"none,80", "bad port"},
  };
  for (const auto& c : cases) {
    std::string e = parse_error(c.spec);
    EXPECT_NE(e.find(c.says), std::string::npos) << c.spec << " said: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << c.spec;
  }
}

// -t auto: alone, with exclusions (which apply to it), beside explicit rules.
TEST(PortForward, AutoAndItsExclusions) {
  {
    std::vector<PortForward> out;
    AutoForwardSpec a;
    const Status st = parse_port_forwards("auto", &out, nullptr, nullptr, &a);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(a.enabled);
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(a.excluded.none());
  }
  {
    std::vector<PortForward> out;
    AutoForwardSpec a;
    const Status st = parse_port_forwards("auto,~22,~8000-8001", &out, nullptr, nullptr, &a);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(a.enabled);
    EXPECT_TRUE(out.empty()) << "exclusions beside auto do not mean all";
    EXPECT_EQ(a.excluded.count(), 3u);
    EXPECT_TRUE(a.excluded.test(22) && a.excluded.test(8000) && a.excluded.test(8001));
  }
  {
    std::vector<PortForward> out;
    AutoForwardSpec a;
    const Status st = parse_port_forwards("~22,8080:80,auto", &out, nullptr, nullptr, &a);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(a.enabled);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(to_string(out[0]), "8080:80");
    EXPECT_TRUE(a.excluded.test(22));
  }
  {
    std::vector<PortForward> out;
    AutoForwardSpec a;
    // Not auto: exclusions alone are all but those, and auto stays off.
    const Status st = parse_port_forwards("~22", &out, nullptr, nullptr, &a);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_FALSE(a.enabled);
    EXPECT_FALSE(out.empty());
  }
  const struct {
    const char* spec;
    const char* says;
  } bad[] = {
      {"auto,all", "both auto and all"},
      {"all,auto,~22", "both auto and all"},
      {"127.0.0.1/auto", "bad port"},
      {"auto:80", "bad port"},
      {"auto,~0", "bad exclusion"},
      {"auto,", "bad port"},
  };
  for (const auto& c : bad) {
    std::vector<PortForward> out;
    AutoForwardSpec a;
    const Status st = parse_port_forwards(c.spec, &out, nullptr, nullptr, &a);
    EXPECT_FALSE(st.ok()) << c.spec;
    EXPECT_FALSE(a.enabled) << c.spec << ": a failed spec changes nothing";
    EXPECT_NE(st.message().find(c.says), std::string::npos) << c.spec << " said: " << st.message();
  }
}

TEST(PortForward, ReadHostPortsSeesAListener) {
  HostPorts tcp = read_host_ports(false);
  EXPECT_LE(tcp.ephemeral_first, tcp.ephemeral_last);
  EXPECT_GE(tcp.ephemeral_first, 1);
}

TEST(PortForward, TrimKeepsTheLowestPortsOfAll) {
  std::vector<PortForward> r = parse_ok("8080:80");
  std::vector<PortForward> all = parse_ok("all,~100-199");
  r.insert(r.end(), all.begin(), all.end());
  EXPECT_EQ(trim_all_ports(&r, 150), forwarded_port_count(all) - 150);
  std::vector<std::string> runs;
  for (const PortForward& f : r) runs.push_back(to_string(f));
  EXPECT_EQ(runs, (std::vector<std::string>{"8080:80", "1-99", "200-250"}));
  EXPECT_EQ(forwarded_port_count(r, true), 150u);
}

TEST(PortForward, Count) {
  EXPECT_EQ(forwarded_port_count(parse_ok("80,8000-8009,~8005")), 10u);
}

}  // namespace
}  // namespace ferry
