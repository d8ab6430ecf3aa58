// The counters file comes from the counter lists (include/ferry/counters.h):
// every `published` counter of every family is a line keyed PREFIX+field
// with the struct's value, no `internal` one is, and nothing else is there
// but written_at, tcp_conns_open and the policy's refusals. The fast path's
// -v line names every counter of its list. Unprivileged.
// test-libs: ferry_cli
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "counters_file.h"
#include "fastpath/fastpath_bridge.h"
#include "gateway/gateway.h"
#include "ferry/counters.h"
#include "loop/event_loop.h"
#include "nsfwd/tcp_relay.h"
#include "nsfwd/udp_relay.h"
#include "port/frame_port.h"
#include "services/guest_services.h"
#include "tcp/tcp_translator.h"
#include "translator/translator.h"
#include "udp/udp_translator.h"

namespace ferry::cli {
namespace {

// A port that drops what it is given and reports set counters.
class CountingPort final : public FramePort {
 public:
  int fd() const override { return -1; }
  size_t receive(FrameSink&, size_t) override { return 0; }
  bool send(const iovec*, int) override { return true; }
  const PortCounters& counters() const override { return counters_; }
  PortCounters counters_;
};

TEST(CountersFile, EveryPublishedCounterAndNoOther) {
  EventLoop loop;
  CountingPort port;
  // Distinct values per field, so a line cannot carry another field's value.
  uint64_t next = 1000;
#define SET_PORT(field, where) port.counters_.field = next++;
  FERRY_PORT_COUNTERS(SET_PORT)
#undef SET_PORT
  Translator tr(loop, port, Config::defaults());
  const attach::StateMap m = translator_counters(tr, port);

  size_t published = 0;
  auto check = [&](const std::string& key, bool is_published, uint64_t value) {
    if (is_published) {
      published++;
      auto it = m.find(key);
      ASSERT_NE(it, m.end()) << key;
      EXPECT_EQ(it->second, std::to_string(value)) << key;
    } else {
      EXPECT_EQ(m.count(key), 0u) << key << " is internal";
    }
  };
#define CHECK_FAMILY(LIST, PREFIX, S) \
  do {                                 \
    const auto& s_ = (S);              \
    const std::string prefix_ = (PREFIX); \
    LIST(CHECK_ONE)                    \
  } while (0)
#define CHECK_ONE(field, where) check(prefix_ + #field, std::string_view(#where) == "published", s_.field);
  CHECK_FAMILY(FERRY_TRANSLATOR_COUNTERS, "", tr.counters());
  CHECK_FAMILY(FERRY_PORT_COUNTERS, "port_", port.counters());
  CHECK_FAMILY(FERRY_TCP_COUNTERS, "tcp_", tr.tcp().counters());
  CHECK_FAMILY(FERRY_UDP_COUNTERS, "udp_", tr.udp().counters());
  CHECK_FAMILY(FERRY_DHCP4_COUNTERS, "dhcp4_", tr.services().dhcp4().counters());
  CHECK_FAMILY(FERRY_RA_COUNTERS, "ra_", tr.services().ra().counters());
  CHECK_FAMILY(FERRY_DHCP6_COUNTERS, "dhcp6_", tr.services().dhcp6().counters());
  CHECK_FAMILY(FERRY_DNS_COUNTERS, "dns_", tr.services().dns().counters());
  CHECK_FAMILY(FERRY_GATEWAY_COUNTERS, "gateway_", tr.gateway().counters());
#undef CHECK_ONE
#undef CHECK_FAMILY

  EXPECT_GT(published, 30u);
  size_t others = 0;
  for (const auto& [k, v] : m) {
    if (k == "written_at" || k == "tcp_conns_open" || k == "spoofed_source" || k.rfind("policy_refused", 0) == 0) others++;
  }
  EXPECT_EQ(m.size(), published + others);
  EXPECT_EQ(m.at("port_rx_frames"), "1000");
}

// ferry run -T / -U: their relays' published counters are lines (ns_tcp_*,
// ns_udp_*) when they are given, and absent without them.
TEST(CountersFile, NsRelayCountersWhenGiven) {
  EventLoop loop;
  CountingPort port;
  Translator tr(loop, port, Config::defaults());
  NsTcpRelay ns_tcp(loop, 0, false);
  NsUdpRelay ns_udp(loop, 0, false);
  const attach::StateMap without = translator_counters(tr, port);
  const attach::StateMap with = parse_counters_text(counters_text(tr, port, &ns_tcp, &ns_udp));
  size_t n = 0;
#define CHECK_NS(prefix, field, where)                                        \
  if (std::string_view(#where) == "published") {                              \
    n++;                                                                      \
    EXPECT_EQ(without.count(prefix #field), 0u) << prefix #field;             \
    ASSERT_EQ(with.count(prefix #field), 1u) << prefix #field;                \
    EXPECT_EQ(with.at(prefix #field), "0") << prefix #field;                  \
  }
#define CHECK_NS_TCP(field, where) CHECK_NS("ns_tcp_", field, where)
#define CHECK_NS_UDP(field, where) CHECK_NS("ns_udp_", field, where)
  FERRY_NS_TCP_COUNTERS(CHECK_NS_TCP)
  FERRY_NS_UDP_COUNTERS(CHECK_NS_UDP)
#undef CHECK_NS_UDP
#undef CHECK_NS_TCP
#undef CHECK_NS
  EXPECT_GE(n, 16u);
  EXPECT_EQ(with.size(), without.size() + n);
}

// `ferry attach` on a tap: the queue estimate's counters (tapq_*) and its
// capacity are lines when it exists, absent otherwise.
TEST(CountersFile, TapQueueCountersWhenFollowed) {
  struct Source final : DevTxCounterSource {
    bool read(DevTxCounters* out) override {
      *out = {};
      return true;
    }
    uint32_t txqueuelen() override { return 256; }
  };
  EventLoop loop;
  CountingPort port;
  Translator tr(loop, port, Config::defaults());
  const attach::StateMap without = translator_counters(tr, port);
  ASSERT_TRUE(tr.watch_tap_queue(std::make_unique<Source>()));
  const attach::StateMap with = translator_counters(tr, port);
  size_t n = 0;
#define CHECK_TAPQ(field, where)                                  \
  if (std::string_view(#where) == "published") {                 \
    n++;                                                         \
    EXPECT_EQ(without.count("tapq_" #field), 0u) << #field;      \
    EXPECT_EQ(with.count("tapq_" #field), 1u) << #field;         \
  }
  FERRY_TAP_QUEUE_COUNTERS(CHECK_TAPQ)
#undef CHECK_TAPQ
  EXPECT_EQ(with.at("tapq_capacity"), "256");
  EXPECT_EQ(with.size(), without.size() + n + 1);
}

TEST(CountersFile, TextRoundTrips) {
  EventLoop loop;
  CountingPort port;
  port.counters_.tx_dropped = 7;
  Translator tr(loop, port, Config::defaults());
  const attach::StateMap m = parse_counters_text(counters_text(tr, port));
  EXPECT_EQ(m.at("port_tx_dropped"), "7");
  EXPECT_EQ(m.size(), translator_counters(tr, port).size());
}

TEST(FastPathCounters, LogLineNamesEveryCounter) {
  EventLoop loop;
  CountingPort port;
  Translator tr(loop, port, Config::defaults());
  FastPathBridge bridge(loop, tr.tcp());
  const std::string line = " " + bridge.counters_line() + " ";
  size_t n = 0;
#define CHECK_PAIR(field, where) \
  n++;                           \
  EXPECT_NE(line.find(" " #field "=0 "), std::string::npos) << #field;
  FERRY_FASTPATH_BRIDGE_COUNTERS(CHECK_PAIR)
#undef CHECK_PAIR
  EXPECT_EQ(static_cast<size_t>(std::count(line.begin(), line.end(), '=')), n);
}

}  // namespace
}  // namespace ferry::cli
