// Port-forward rule parsing: the passt syntax and every way it can be wrong.
// test-libs: ferry_common ferry_codec
#include <gtest/gtest.h>

#include "common/port_forward.h"

namespace ferry {
namespace {

std::vector<PortForward> parse_ok(const char* spec) {
  std::vector<PortForward> out;
  std::string error;
  EXPECT_TRUE(parse_port_forwards(spec, &out, &error)) << spec << ": " << error;
  return out;
}

std::string parse_error(const char* spec) {
  std::vector<PortForward> out{PortForward{}};
  std::string error;
  EXPECT_FALSE(parse_port_forwards(spec, &out, &error)) << spec;
  EXPECT_EQ(out.size(), 1u) << "a failed spec must not append anything";
  return error;
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

}  // namespace
}  // namespace ferry
