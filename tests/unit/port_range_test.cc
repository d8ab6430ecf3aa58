// Ports and port ranges as every option reads them (common/port_range.h):
// the one parser behind -t/-u forwards and --allow/--deny rules.
// test-libs: ferry_common
#include <gtest/gtest.h>

#include "common/port_range.h"

namespace ferry {
namespace {

TEST(PortRange, Ports) {
  uint16_t p = 0;
  EXPECT_TRUE(parse_port("1", &p));
  EXPECT_EQ(p, 1);
  EXPECT_TRUE(parse_port("65535", &p));
  EXPECT_EQ(p, 65535);
  for (const char* bad : {"", "0", "65536", "-1", "+80", " 80", "80 ", "8o", "0x50", "99999999999999999999"})
    EXPECT_FALSE(parse_port(bad, &p)) << bad;
}

TEST(PortRange, Ranges) {
  uint16_t f = 0, l = 0;
  EXPECT_TRUE(parse_port_range("443", &f, &l));
  EXPECT_EQ(f, 443);
  EXPECT_EQ(l, 443);
  EXPECT_TRUE(parse_port_range("8000-8080", &f, &l));
  EXPECT_EQ(f, 8000);
  EXPECT_EQ(l, 8080);
  EXPECT_TRUE(parse_port_range("80-80", &f, &l));
  for (const char* bad : {"90-80", "-80", "80-", "80--90", "0-10", "1-65536", "1-2-3", "a-b"})
    EXPECT_FALSE(parse_port_range(bad, &f, &l)) << bad;
}

}  // namespace
}  // namespace ferry
