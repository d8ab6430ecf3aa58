// -t/-u auto: the step between two scans (plan_changes) and AutoForward
// rounds over tables in files rewritten between rounds (the same fds,
// re-read from offset 0), with an opener that records and can refuse.
// test-libs: ferry_autofwd ferry_loop ferry_netns ferry_common ferry_codec
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "autofwd/auto_forward.h"

namespace ferry {
namespace {

PortSet ports(std::initializer_list<unsigned> list) {
  PortSet s;
  for (unsigned p : list) s.set(p);
  return s;
}

TEST(AutoForwardPlan, OpensNewClosesGoneKeepsTheRest) {
  const AutoForwardPlan p = plan_changes(ports({80, 8080, 9000}), ports({}), ports({8080, 7000}), ports({}), false);
  EXPECT_EQ(p.open, ports({80, 9000}));
  EXPECT_EQ(p.close, ports({7000}));
}

TEST(AutoForwardPlan, ExcludedNeverOpenedAndClosedIfForwarded) {
  const AutoForwardPlan p = plan_changes(ports({22, 8080}), ports({22, 8080}), ports({8080}), ports({}), false);
  EXPECT_TRUE(p.open.none());
  EXPECT_EQ(p.close, ports({8080}));
}

TEST(AutoForwardPlan, FailedOnlyOnRetryRounds) {
  EXPECT_TRUE(plan_changes(ports({80}), ports({}), ports({}), ports({80}), false).open.none());
  EXPECT_EQ(plan_changes(ports({80}), ports({}), ports({}), ports({80}), true).open, ports({80}));
}

TEST(AutoForwardPlan, PortZeroNever) {
  EXPECT_TRUE(plan_changes(ports({0}), ports({}), ports({}), ports({}), true).open.none());
}

TEST(AutoForwardPlan, NothingChangesWhenNothingDid) {
  const AutoForwardPlan p = plan_changes(ports({80, 443}), ports({}), ports({80, 443}), ports({}), true);
  EXPECT_TRUE(p.open.none());
  EXPECT_TRUE(p.close.none());
}

// Records what AutoForward asks; refuses the ports in `refuse`.
class RecordingOpener : public ForwardOpener {
 public:
  Status open_forward(bool udp, uint16_t port) override {
    log.push_back(std::string(udp ? "udp" : "tcp") + " open " + std::to_string(port));
    if (refuse.count(port)) return Status(EACCES, "bind 0.0.0.0 port " + std::to_string(port));
    if (ours.count(port)) return Status(EEXIST, "port " + std::to_string(port) + " is held by one of ferry's own flows");
    return {};
  }
  void close_forward(bool udp, uint16_t port) override {
    log.push_back(std::string(udp ? "udp" : "tcp") + " close " + std::to_string(port));
  }
  std::vector<std::string> take() { return std::exchange(log, {}); }
  std::vector<std::string> log;
  std::set<uint16_t> refuse;
  std::set<uint16_t> ours;  // EEXIST: ferry's own flow holds it
};

// A table line: local 0.0.0.0:port (or 127.0.0.1 when loopback), state st.
std::string line4(unsigned port, unsigned st, bool loopback = false) {
  char b[160];
  std::snprintf(b, sizeof(b), "   0: %s:%04X 00000000:0000 %02X 00000000:00000000 00:00000000 00000000 0 0 1\n",
                loopback ? "0100007F" : "00000000", port, st);
  return b;
}
std::string line6(unsigned port, unsigned st) {
  char b[200];
  std::snprintf(b, sizeof(b), "   0: 00000000000000000000000000000000:%04X 00000000000000000000000000000000:0000 %02X 0\n",
                port, st);
  return b;
}

// Four temporary files standing for the guest's tables.
class Tables {
 public:
  Tables() {
    for (auto& p : paths_) {
      char t[] = "/tmp/ferry-autofwd-XXXXXX";
      const int fd = mkstemp(t);
      EXPECT_GE(fd, 0);
      close(fd);
      p = t;
    }
  }
  ~Tables() {
    for (auto& p : paths_) unlink(p.c_str());
  }
  void write(ListenTables::Table t, const std::string& body) {
    std::FILE* f = std::fopen(paths_[t].c_str(), "w");
    std::fputs(("  sl  local_address rem_address   st\n" + body).c_str(), f);
    std::fclose(f);
  }
  ListenTables open() {
    std::vector<int> fds;
    for (auto& p : paths_) fds.push_back(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    return std::move(*ListenTables::adopt(fds));
  }

 private:
  std::string paths_[ListenTables::kCount];
};

TEST(AutoForward, FollowsTheGuestsListeners) {
  Tables files;
  files.write(ListenTables::kTcp4, line4(8080, 0x0A) + line4(631, 0x0A, true) + line4(5000, 0x01));
  files.write(ListenTables::kTcp6, line6(9000, 0x0A));
  files.write(ListenTables::kUdp4, line4(5353, 0x07) + line4(40000, 0x01));
  files.write(ListenTables::kUdp6, "");
  Config config = Config::defaults();
  config.tcp_auto.enabled = true;
  config.tcp_auto.excluded.set(22);
  config.udp_auto.enabled = true;
  PortForward fixed;  // -t 9000: ferry binds it itself; auto leaves it alone
  fixed.host_first = fixed.host_last = fixed.guest_first = 9000;
  config.tcp_forwards.push_back(fixed);
  NsForward ns;  // -T 7443: ferry's own socket in the guest (were it not on loopback)
  ns.listen_first = ns.listen_last = ns.target_first = 7443;
  config.tcp_ns_forwards.push_back(ns);
  EventLoop loop;
  RecordingOpener opener;
  AutoForward af(loop, files.open(), config, opener);
  EXPECT_EQ(af.next_deadline_ns(), 0u) << "the first round comes at once";

  af.scan();
  EXPECT_EQ(opener.take(), (std::vector<std::string>{"tcp open 8080", "udp open 5353"}));
  EXPECT_EQ(af.forwarded(false), ports({8080}));
  EXPECT_EQ(af.forwarded(true), ports({5353}));

  af.scan();  // nothing changed: nothing asked
  EXPECT_TRUE(opener.take().empty());

  // The guest stops listening on 8080, listens on 22 (excluded) and 8443 (v6).
  files.write(ListenTables::kTcp4, line4(22, 0x0A));
  files.write(ListenTables::kTcp6, line6(8443, 0x0A) + line6(9000, 0x0A) + line6(7443, 0x0A));
  files.write(ListenTables::kUdp4, "");
  af.scan();
  EXPECT_EQ(opener.take(), (std::vector<std::string>{"tcp close 8080", "tcp open 8443", "udp close 5353"}));
  EXPECT_EQ(af.forwarded(false), ports({8443}));
  EXPECT_TRUE(af.forwarded(true).none());
  EXPECT_EQ(af.counters().opened, 3u);
  EXPECT_EQ(af.counters().closed, 2u);
  EXPECT_EQ(af.counters().scans, 3u);
  EXPECT_EQ(af.counters().malformed_lines, 0u);
}

TEST(AutoForward, RefusedPortSaidOnceRetriedEveryTenRounds) {
  Tables files;
  files.write(ListenTables::kTcp4, line4(80, 0x0A));
  for (auto t : {ListenTables::kTcp6, ListenTables::kUdp4, ListenTables::kUdp6}) files.write(t, "");
  Config config = Config::defaults();
  config.tcp_auto.enabled = true;
  EventLoop loop;
  RecordingOpener opener;
  opener.refuse.insert(80);
  AutoForward af(loop, files.open(), config, opener);
  testing::internal::CaptureStderr();
  for (unsigned i = 0; i < AutoForward::kRetryRounds + 1; i++) af.scan();
  const std::string said = testing::internal::GetCapturedStderr();
  // Round 0 tries, rounds 1-9 do not, round 10 tries again.
  EXPECT_EQ(opener.take(), (std::vector<std::string>{"tcp open 80", "tcp open 80"}));
  EXPECT_EQ(af.counters().open_failed, 2u);
  EXPECT_NE(said.find("-t auto: the guest listens on port 80, not forwarded"), std::string::npos) << said;
  EXPECT_NE(said.find("CAP_NET_BIND_SERVICE"), std::string::npos) << said;
  EXPECT_EQ(said.find('\n'), said.size() - 1) << "one line: " << said;
  // Allowed now: the next retry opens it.
  opener.refuse.clear();
  for (unsigned i = 0; i < AutoForward::kRetryRounds; i++) af.scan();
  EXPECT_EQ(opener.take(), (std::vector<std::string>{"tcp open 80"}));
  EXPECT_EQ(af.forwarded(false), ports({80}));
}

// An unconnected guest UDP client looks like a server; its port is held by
// ferry's own flow (EEXIST): not said, retried, forwarded once free.
TEST(AutoForward, PortOfFerrysOwnFlowIsNotSaid) {
  Tables files;
  files.write(ListenTables::kUdp4, line4(40000, 0x07));
  for (auto t : {ListenTables::kTcp4, ListenTables::kTcp6, ListenTables::kUdp6}) files.write(t, "");
  Config config = Config::defaults();
  config.udp_auto.enabled = true;
  EventLoop loop;
  RecordingOpener opener;
  opener.ours.insert(40000);
  AutoForward af(loop, files.open(), config, opener);
  testing::internal::CaptureStderr();
  af.scan();
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(af.counters().open_failed, 1u);
  opener.ours.clear();
  for (unsigned i = 0; i < AutoForward::kRetryRounds; i++) af.scan();
  EXPECT_EQ(af.forwarded(true), ports({40000}));
}

TEST(AutoForward, UnreadableTableChangesNothing) {
  Tables files;
  files.write(ListenTables::kTcp4, line4(8080, 0x0A));
  for (auto t : {ListenTables::kTcp6, ListenTables::kUdp4, ListenTables::kUdp6}) files.write(t, "");
  Config config = Config::defaults();
  config.tcp_auto.enabled = true;
  EventLoop loop;
  RecordingOpener opener;
  ListenTables tables = files.open();
  // A directory fd: pread fails with EISDIR.
  std::vector<int> fds = tables.release();
  close(fds[ListenTables::kTcp6]);
  fds[ListenTables::kTcp6] = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  AutoForward af(loop, std::move(*ListenTables::adopt(fds)), config, opener);
  af.scan();
  EXPECT_TRUE(opener.take().empty());
  EXPECT_EQ(af.counters().scan_errors, 1u);
}

TEST(AutoForward, AdoptWantsFourTables) {
  EXPECT_FALSE(ListenTables::adopt({}).ok());
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_FALSE(ListenTables::adopt({fd}).ok());  // and closes it
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
}

}  // namespace
}  // namespace ferry
