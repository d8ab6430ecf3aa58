// /etc/resolv.conf parsing and the guest's copy (services/resolv_conf.h).
// test-libs: ferry_services ferry_codec
#include <gtest/gtest.h>

#include "services/resolv_conf.h"

namespace ferry::services {
namespace {

TEST(ResolvConf, ReadsWhatGlibcReads) {
  const ResolvConf rc = parse_resolv_conf(
      "# comment\n; another\nnameserver 127.0.0.53\nnameserver ::1\nnameserver fe80::1%eth0\n"
      "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n"
      "domain old.test\nsearch a.test b.test # trailing\noptions edns0 trust-ad\n");
  ASSERT_EQ(rc.nameservers.size(), 3u);  // MAXNS; the scoped one skipped
  EXPECT_EQ(rc.nameservers[0].str(), "127.0.0.53");
  EXPECT_EQ(rc.nameservers[1].str(), "::1");
  EXPECT_EQ(rc.nameservers[2].str(), "10.0.0.1");
  EXPECT_EQ(rc.search, (std::vector<std::string>{"a.test", "b.test"}));  // the last of search/domain
  EXPECT_EQ(rc.options, (std::vector<std::string>{"edns0 trust-ad"}));
  EXPECT_FALSE(rc.defaulted);
  EXPECT_FALSE(only_loopback(rc));
}

TEST(ResolvConf, EmptyMeansLocalhost) {
  const ResolvConf rc = parse_resolv_conf("garbage line\nnameserver not-an-address\n");
  ASSERT_EQ(rc.nameservers.size(), 1u);
  EXPECT_EQ(rc.nameservers[0].str(), "127.0.0.1");
  EXPECT_TRUE(rc.defaulted);
  EXPECT_TRUE(only_loopback(rc));
  EXPECT_TRUE(only_loopback(parse_resolv_conf("nameserver 127.0.0.53\nnameserver ::1\n")));
}

TEST(ResolvConf, RendersGuestCopy) {
  const ResolvConf host = parse_resolv_conf("nameserver 127.0.0.53\noptions edns0\n");
  const std::string out =
      render_guest_resolv_conf({*InetAddr::parse("198.18.0.1"), *InetAddr::parse("fd00:f::1")}, {"x.test"}, host);
  EXPECT_NE(out.find("nameserver 198.18.0.1\nnameserver fd00:f::1\nsearch x.test\noptions edns0\n"), std::string::npos)
      << out;
}

}  // namespace
}  // namespace ferry::services
