// -T/-U specs (parse_ns_forwards): pasta's grammar for the guest's loopback.
// test-libs: ferry_common ferry_codec
#include <gtest/gtest.h>

#include "common/port_forward.h"

namespace ferry {
namespace {

std::vector<NsForward> parse_ok(const char* spec) {
  std::vector<NsForward> out;
  const Status st = parse_ns_forwards(spec, "-T", &out);
  EXPECT_TRUE(st.ok()) << spec << ": " << st.message();
  return out;
}

std::string parse_error(const char* spec) {
  std::vector<NsForward> out(1);
  const Status st = parse_ns_forwards(spec, "-U", &out);
  EXPECT_FALSE(st.ok()) << spec;
  EXPECT_EQ(out.size(), 1u) << "a failed spec must not append anything";
  return st.message();
}

TEST(NsForwardSpec, PortRangeAndMapping) {
  auto r = parse_ok("5000,6000-6002,7000:8000,9000-9001:9100-9101");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].listen_first, 5000);
  EXPECT_EQ(r[0].listen_last, 5000);
  EXPECT_EQ(r[0].target_first, 5000);
  EXPECT_EQ(r[1].listen_first, 6000);
  EXPECT_EQ(r[1].listen_last, 6002);
  EXPECT_EQ(r[1].target_first, 6000);
  EXPECT_EQ(r[2].listen_first, 7000);  // PORT:TARGET: the guest's 7000 reaches the host's 8000
  EXPECT_EQ(r[2].target_first, 8000);
  EXPECT_EQ(r[3].listen_last, 9001);
  EXPECT_EQ(r[3].target_first, 9100);
  EXPECT_EQ(ns_forwarded_port_count(r), 1u + 3u + 1u + 2u);
}

TEST(NsForwardSpec, ExclusionSplitsARangeKeepingTheTargets) {
  auto r = parse_ok("5000-5003:6000-6003,~5001");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].listen_first, 5000);
  EXPECT_EQ(r[0].listen_last, 5000);
  EXPECT_EQ(r[0].target_first, 6000);
  EXPECT_EQ(r[1].listen_first, 5002);
  EXPECT_EQ(r[1].listen_last, 5003);
  EXPECT_EQ(r[1].target_first, 6002);
}

TEST(NsForwardSpec, AllAndExclusionsOnlyLeaveTheEphemeralRangeOut) {
  auto all = parse_ok("all");
  auto but = parse_ok("~22");
  ASSERT_FALSE(all.empty());
  EXPECT_TRUE(all[0].from_all);
  const HostPorts defaults;
  const size_t ephemeral = defaults.ephemeral_last - defaults.ephemeral_first + 1u;
  EXPECT_EQ(ns_forwarded_port_count(all), 65535u - ephemeral);
  EXPECT_EQ(ns_forwarded_port_count(but), 65535u - ephemeral - 1u);
  for (const NsForward& f : all) {
    EXPECT_EQ(f.listen_first, f.target_first);
    EXPECT_TRUE(f.listen_last < defaults.ephemeral_first || f.listen_first > defaults.ephemeral_last);
  }
}

TEST(NsForwardSpec, TrimKeepsTheLowestPortsOfAllAndEveryExplicitRule) {
  auto r = parse_ok("40000:80");
  auto all = parse_ok("all,~100-199");
  r.insert(r.end(), all.begin(), all.end());
  EXPECT_EQ(ns_forwarded_port_count(r, true), ns_forwarded_port_count(all));
  EXPECT_EQ(trim_all_ports(&r, 150), ns_forwarded_port_count(all) - 150);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].listen_first, 40000);  // explicit: kept whole
  EXPECT_EQ(r[0].target_first, 80);
  EXPECT_EQ(r[1].listen_first, 1);
  EXPECT_EQ(r[1].listen_last, 99);
  EXPECT_EQ(r[2].listen_first, 200);
  EXPECT_EQ(r[2].listen_last, 250);
  EXPECT_EQ(r[2].target_first, 200);
  EXPECT_EQ(ns_forwarded_port_count(r, true), 150u);
  EXPECT_EQ(ns_forwarded_port_count(r), 151u);
}

TEST(NsForwardSpec, NoneIsNothing) { EXPECT_TRUE(parse_ok("none").empty()); }

TEST(NsForwardSpec, Refusals) {
  EXPECT_NE(parse_error("127.0.0.1/8080").find("no ADDR/"), std::string::npos);
  EXPECT_NE(parse_error("8080,[::1]/80").find("no ADDR/"), std::string::npos);
  EXPECT_EQ(parse_error("auto"), "-U auto is not supported (name the ports)");
  EXPECT_FALSE(parse_error("0").empty());
  EXPECT_FALSE(parse_error("80-70").empty());
  EXPECT_FALSE(parse_error("80-81:90").empty());
  EXPECT_FALSE(parse_error("x").empty());
  EXPECT_FALSE(parse_error("80,~80").empty());  // nothing left
}

}  // namespace
}  // namespace ferry
