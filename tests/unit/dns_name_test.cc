// DNS name encoding and walking (services/dns_name.h): table-driven valid
// and malformed names, compression pointers, loops, and query checks.
// test-libs: ferry_services ferry_codec
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "services/dns_name.h"

namespace ferry::services {
namespace {

using Bytes = std::vector<uint8_t>;

TEST(DnsName, EncodesLabels) {
  uint8_t out[300];
  const size_t n = encode_dns_name("corp.example.", out);
  EXPECT_EQ(Bytes(out, out + n), (Bytes{4, 'c', 'o', 'r', 'p', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0}));
  EXPECT_EQ(encode_dns_names({"a.b", "c"}, out), 5u + 3u);
}

TEST(DnsName, RefusesBadNames) {
  uint8_t out[300];
  const std::string label64(64, 'x');
  std::string long_name;
  for (int i = 0; i < 60; i++) long_name += "abcd.";  // 300 bytes on the wire
  for (const std::string& bad : {std::string(""), std::string("."), std::string("a..b"), std::string(".a"),
                                 label64 + ".com", long_name}) {
    EXPECT_EQ(encode_dns_name(bad, out), 0u) << bad;
    EXPECT_FALSE(valid_dns_name(bad)) << bad;
  }
  uint8_t small[4];
  EXPECT_EQ(encode_dns_name("abcd", small), 0u);  // needs 6
}

struct WalkCase {
  const char* what;
  Bytes msg;
  size_t off;
  size_t want;  // 0: malformed
};

TEST(DnsName, WalksTableOfNames) {
  const std::vector<WalkCase> cases = {
      {"root", {0}, 0, 1},
      {"two labels", {1, 'a', 1, 'b', 0}, 0, 5},
      {"pointer back", {1, 'a', 0, 0xc0, 0x00}, 3, 5},
      {"label then pointer", {1, 'a', 0, 1, 'b', 0xc0, 0x00}, 3, 7},
      {"truncated label", {3, 'a', 'b'}, 0, 0},
      {"no root", {1, 'a'}, 0, 0},
      {"half pointer", {0xc0}, 0, 0},
      {"pointer to itself", {0xc0, 0x00}, 0, 0},
      {"pointer loop of two", {0xc0, 0x02, 0xc0, 0x00}, 0, 0},
      {"label into loop", {1, 'a', 0xc0, 0x00}, 0, 0},
      {"pointer outside", {0xc0, 0x40}, 0, 0},
      {"extended label type 01", {0x41, 'a', 0}, 0, 0},
      {"reserved label type 10", {0x81, 'a', 0}, 0, 0},
      {"offset past end", {0}, 1, 0},
  };
  for (const WalkCase& c : cases) EXPECT_EQ(skip_dns_name(c.msg, c.off), c.want) << c.what;
}

TEST(DnsName, RefusesNamesLongerThan255Decoded) {
  // 5 labels of 63 bytes: 320 bytes, no loop, still refused.
  Bytes m;
  for (int i = 0; i < 5; i++) {
    m.push_back(63);
    m.insert(m.end(), 63, 'x');
  }
  m.push_back(0);
  EXPECT_EQ(skip_dns_name(m, 0), 0u);
}

Bytes Query(const Bytes& name, uint8_t flags = 0x01, uint16_t qd = 1) {
  Bytes q = {0x12, 0x34, flags, 0x00, static_cast<uint8_t>(qd >> 8), static_cast<uint8_t>(qd), 0, 0, 0, 0, 0, 0};
  q.reserve(q.size() + name.size() + 4);  // also silences GCC 12's false -Wstringop-overread on insert
  q.insert(q.end(), name.begin(), name.end());
  q.insert(q.end(), {0, 1, 0, 1});
  return q;
}

TEST(DnsName, ChecksQueries) {
  const Bytes name = {3, 'f', 'o', 'o', 0};
  EXPECT_EQ(check_dns_query(Query(name)), DnsQueryCheck::ok);
  EXPECT_EQ(check_dns_query(Bytes(11, 0)), DnsQueryCheck::truncated);
  EXPECT_EQ(check_dns_query(Query(name, 0x81)), DnsQueryCheck::not_query);  // QR
  EXPECT_EQ(check_dns_query(Query(name, 0x18)), DnsQueryCheck::not_query);  // opcode 3
  EXPECT_EQ(check_dns_query(Query(name, 0x01, 0)), DnsQueryCheck::bad_count);
  EXPECT_EQ(check_dns_query(Query(name, 0x01, 2)), DnsQueryCheck::bad_count);
  EXPECT_EQ(check_dns_query(Query({0xc0, 0x0c})), DnsQueryCheck::bad_name);  // points at itself
  Bytes cut = Query(name);
  cut.resize(cut.size() - 2);  // QCLASS cut off
  EXPECT_EQ(check_dns_query(cut), DnsQueryCheck::truncated);
}

}  // namespace
}  // namespace ferry::services
