// Tests of userspace/cni's plugin (plugin.h), exec helper and state store.
//
// Unprivileged: VERSION, the error objects of bad environments and
// configurations, run_program and StateStore on a temporary directory.
// As root (skipped otherwise): ADD / CHECK / DEL / GC / rollback in two
// anonymous namespaces (a "host" one the test enters and a "pod" one),
// with a stand-in `ferry` script that records its arguments, so the plugin's
// own work (veth, addresses, routes, state, undo) is tested without the
// translator. Nothing outside those namespaces and the temp dir is touched.
// test-libs: ferry_cni ferry_netns ferry_common ferry_codec
#include <linux/if.h>
#include <sched.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cni/cni.h"
#include "cni/exec.h"
#include "cni/plugin.h"
#include "cni/state.h"
#include "netns/netlink.h"
#include "netns/netns.h"

namespace ferry::cni {
namespace {

namespace fs = std::filesystem;

// A fresh temporary directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/cni_plugin_test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

json out_json(const PluginRun& r) { return json::parse(r.out, nullptr, false); }

TEST(CniPlugin, Version) {
  PluginRun r = run_plugin({{"CNI_COMMAND", "VERSION"}}, "", "/x/ferry-cni");
  EXPECT_EQ(r.exit_code, 0);
  json j = out_json(r);
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  EXPECT_EQ(j["supportedVersions"], json({"0.4.0", "1.0.0", "1.1.0"}));
}

TEST(CniPlugin, ErrorsAreSpecObjects) {
  std::map<std::string, std::string> env = {{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c"},
                                            {"CNI_NETNS", "/nonexistent/ns"}, {"CNI_IFNAME", "eth0"},
                                            {"CNI_PATH", "/nonexistent"}};
  PluginRun r = run_plugin({{"CNI_COMMAND", "ADD"}}, "{}", "");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(out_json(r)["code"], 4);
  r = run_plugin(env, "{not json", "");
  EXPECT_EQ(out_json(r)["code"], 6);
  r = run_plugin(env, R"({"cniVersion":"1.0.0","name":"n","mtu":1})", "");
  EXPECT_EQ(out_json(r)["code"], 7);
  EXPECT_EQ(out_json(r)["cniVersion"], "1.0.0");  // answered in the version asked
  r = run_plugin({{"CNI_COMMAND", "STATUS"}}, R"({"cniVersion":"1.0.0","name":"n"})", "");
  EXPECT_EQ(out_json(r)["code"], 1);
  TempDir t;
  r = run_plugin({{"CNI_COMMAND", "GC"}},
                 R"({"cniVersion":"1.1.0","name":"n","stateDir":")" + t.path.string() + R"("})", "");
  EXPECT_EQ(out_json(r)["code"], 7);  // GC without the valid list is refused
}

// Rootless Podman runs its CNI plugins in a user namespace of its own: ADD
// and STATUS say at once that ferry cannot work there (50), instead of
// ferry attach's bpffs error after the veth was made. Run in a child that
// made a user namespace (no map written: what it sees is not the initial one).
TEST(CniPlugin, InUserNamespaceIsCode50) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    std::string said;
    if (unshare(CLONE_NEWUSER) != 0) {
      said = "unshare";
    } else {
      std::map<std::string, std::string> env = {{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"},
                                                {"CNI_NETNS", "/proc/self/ns/net"}, {"CNI_IFNAME", "eth0"},
                                                {"CNI_PATH", "/nonexistent"}};
      PluginRun add = run_plugin(env, R"({"cniVersion":"1.0.0","name":"n","stateDir":"/nonexistent/s"})", "");
      PluginRun st = run_plugin({{"CNI_COMMAND", "STATUS"}}, R"({"cniVersion":"1.1.0","name":"n"})", "");
      said = add.out + '\x1e' + st.out;  // the results may span lines
    }
    (void)!write(fds[1], said.data(), said.size());
    _exit(0);
  }
  close(fds[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int wst = 0;
  waitpid(pid, &wst, 0);
  if (got == "unshare") GTEST_SKIP() << "no unprivileged user namespaces here";
  const size_t nl = got.find('\x1e');
  ASSERT_NE(nl, std::string::npos) << got;
  for (const std::string& part : {got.substr(0, nl), got.substr(nl + 1)}) {
    json j = json::parse(part, nullptr, false);
    EXPECT_EQ(j["code"], 50) << part;
    EXPECT_NE(part.find("user namespace (rootless Podman?)"), std::string::npos) << part;
  }
}

TEST(CniExec, RunsWithInputAndCapturesOutput) {
  auto r = run_program("/bin/sh", {"-c", "cat; echo err >&2; echo \"$FOO\"; exit 3"}, "hello\n", 5000, {"FOO=bar"});
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->out, "hello\nbar\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(CniExec, TimesOutAndKills) {
  auto r = run_program("/bin/sh", {"-c", "sleep 10"}, "", 200);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + 9);
}

TEST(CniExec, DaemonHoldingStdoutDoesNotBlock) {
  // The grandchild keeps stdout open for 5 s; we must return at once.
  auto r = run_program("/bin/sh", {"-c", "echo started; (sleep 5 &) ; exit 0"}, "", 3000);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->out, "started\n");
}

TEST(CniExec, FindInDirs) {
  EXPECT_EQ(find_in_dirs("sh", {"/nonexistent", "/bin"}), "/bin/sh");
  EXPECT_EQ(find_in_dirs("../bin/sh", {"/bin"}), "");
  EXPECT_EQ(find_in_dirs("no-such-program", {"/bin"}), "");
}

TEST(CniState, SaveLoadListRemove) {
  TempDir t;
  StateStore s((t.path / "sub").string());
  std::string k = attachment_key("net", "c1", "eth0");
  ASSERT_TRUE(s.lock(k, 1000).ok());
  AttachmentRecord r{"net", "c1", "eth0", "/run/netns/p", "fy0000000000001", "main", "ready", true};
  r.socket_mark = 0x6abc0000;
  ASSERT_TRUE(s.save(k, r).ok());
  auto back = s.load(k);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->host_dev, r.host_dev);
  EXPECT_TRUE(back->ipam);
  EXPECT_EQ(back->socket_mark, 0x6abc0000u);
  EXPECT_EQ(s.list().size(), 1u);
  std::ofstream(t.path / "sub" / "garbage.json") << "{";
  std::ofstream(t.path / "sub" / "0123456789abcdef.json") << "{\"network\":1}";
  EXPECT_EQ(s.list().size(), 1u);
  ASSERT_TRUE(s.remove(k).ok());
  ASSERT_TRUE(s.remove(k).ok());  // idempotent
  EXPECT_FALSE(s.load(k));
}

// One lock per attachment: the same key is exclusive, another key is not
// held up; a lock file removed by its holder (DEL) is taken afresh.
TEST(CniState, LockIsPerAttachment) {
  TempDir t;
  StateStore a(t.path.string()), b(t.path.string()), c(t.path.string());
  const std::string k1 = attachment_key("net", "c1", "eth0"), k2 = attachment_key("net", "c2", "eth0");
  ASSERT_TRUE(a.lock(k1, 100).ok());
  Status st = b.lock(k1, 100);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.err(), EAGAIN);
  EXPECT_TRUE(c.lock(k2, 0).ok());
  a.unlock(true);
  EXPECT_FALSE(std::filesystem::exists(t.path / (k1 + ".lock")));
  EXPECT_TRUE(b.lock(k1, 100).ok());
  EXPECT_TRUE(std::filesystem::exists(t.path / (k1 + ".lock")));
}

TEST(CniConfig, SocketMarkPerAttachment) {
  const std::string k1 = attachment_key("net", "c1", "eth0"), k2 = attachment_key("net", "c2", "eth0");
  EXPECT_EQ(socket_mark_for(k1) & 0xf000ffffu, 0x60000000u);  // bits 0-15 clear (kube-proxy's)
  EXPECT_NE(socket_mark_for(k1), socket_mark_for(k2));
  EXPECT_EQ(socket_mark_for(k1), socket_mark_for(attachment_key("net", "c1", "eth0")));
}

TEST(CniState, GarbageDeviceNameRejected) {
  EXPECT_FALSE(record_from_text(R"({"network":"n","containerID":"c","ifname":"e","hostDevice":"../x/y"})"));
}

TEST(CniPlugin, GcTouchesOnlyItsNetworkAndUnlisted) {
  // Chained records (ferry made no link, so GC only runs `ferry detach`),
  // in two networks; a stand-in ferry logs what it is asked.
  TempDir t;
  std::string ferry = (t.path / "ferry").string(), log = (t.path / "log").string();
  std::ofstream(ferry) << "#!/bin/sh\necho \"$@\" >> " << log << "\nexit 0\n";
  ::chmod(ferry.c_str(), 0755);
  const std::string dir = (t.path / "state").string();
  auto rec = [](const char* net, const char* cid, const char* dev) {
    return AttachmentRecord{net, cid, "eth0", "/run/netns/x", dev, "chained", "ready", false};
  };
  {
    StateStore w(dir);
    ASSERT_TRUE(w.lock(attachment_key("a", "c1", "eth0"), 1000).ok());  // makes the directory
    w.unlock();
    ASSERT_TRUE(w.save(attachment_key("a", "c1", "eth0"), rec("a", "c1", "vetha1")).ok());
    ASSERT_TRUE(w.save(attachment_key("a", "c2", "eth0"), rec("a", "c2", "vetha2")).ok());
    ASSERT_TRUE(w.save(attachment_key("b", "c3", "eth0"), rec("b", "c3", "vethb3")).ok());
  }
  std::string conf = R"({"cniVersion":"1.1.0","name":"a","ferryPath":")" + ferry + R"(","stateDir":")" +
                     (t.path / "state").string() +
                     R"(","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]})";
  PluginRun r = run_plugin({{"CNI_COMMAND", "GC"}}, conf, "");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::ifstream f(log);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(text, "detach vetha2\n");
  StateStore s(dir);
  EXPECT_TRUE(s.load(attachment_key("a", "c1", "eth0")));
  EXPECT_FALSE(s.load(attachment_key("a", "c2", "eth0")));
  EXPECT_TRUE(s.load(attachment_key("b", "c3", "eth0")));
}

// ---- privileged: the plugin in two anonymous namespaces ---------------------------------

class CniPluginNs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    auto h = create_netns();
    auto p = create_netns();
    ASSERT_TRUE(h && p);
    host_ = std::move(*h);
    pod_ = std::move(*p);
    ASSERT_TRUE(guard_.enter(host_.get()).ok());
    pod_path_ = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(pod_.get());
    ferry_ = (dir_.path / "ferry").string();
    log_ = (dir_.path / "ferry.log").string();
    write_ferry(0);
  }
  // A stand-in ferry: logs argv; `attach` exits with attach_rc.
  void write_ferry(int attach_rc) {
    std::ofstream f(ferry_);
    f << "#!/bin/sh\necho \"$@\" >> " << log_ << "\n"
      << "case \"$1\" in\n  attach) exit " << attach_rc << ";;\n"
      << "  status) echo '{\"attachments\":[{\"device\":\"'$2'\",\"alive\":" << (status_alive_ ? "true" : "false")
      << ",\"programs\":{\"dev\":7,\"tap\":8},\"link_present\":true}]}';;\nesac\nexit 0\n";
    f.close();
    ::chmod(ferry_.c_str(), 0755);
  }
  std::string conf(const std::string& extra = "") const {
    return R"({"cniVersion":"1.1.0","name":"utnet","type":"ferry-cni","fastpath":false,"ferryPath":")" + ferry_ +
           R"(","stateDir":")" + (dir_.path / "state").string() + "\"" + extra + "}";
  }
  PluginRun run(const std::string& cmd, const std::string& config, const std::string& cid = "ctr1") {
    return run_plugin({{"CNI_COMMAND", cmd}, {"CNI_CONTAINERID", cid}, {"CNI_NETNS", pod_path_},
                       {"CNI_IFNAME", "eth0"}, {"CNI_PATH", "/usr/lib/cni"}},
                      config, "/nonexistent/ferry-cni");
  }
  std::string ferry_log() const {
    std::ifstream f(log_);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  // Links of the pod namespace.
  bool pod_has(const std::string& name) {
    NetnsGuard g;
    if (!g.enter(pod_.get()).ok()) return false;
    auto nl = Netlink::open();
    return nl && nl->get_link(name).ok();
  }
  size_t state_files() const {
    size_t n = 0;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(dir_.path / "state", ec)) n += e.path().extension() == ".json";
    return n;
  }

  TempDir dir_;
  NetnsFd host_, pod_;
  NetnsGuard guard_;
  std::string pod_path_, ferry_, log_;
  bool status_alive_ = true;
};

TEST_F(CniPluginNs, AddCheckGcDelDefaults) {
  PluginRun r = run("ADD", conf());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  json j = out_json(r);
  ASSERT_EQ(j["interfaces"].size(), 2u);
  std::string host = j["interfaces"][0]["name"];
  EXPECT_EQ(j["interfaces"][1]["name"], "eth0");
  EXPECT_EQ(j["interfaces"][1]["sandbox"], pod_path_);
  EXPECT_EQ(j["interfaces"][1]["mtu"], 1500);
  EXPECT_EQ(j["ips"][0]["address"], "198.18.0.2/24");
  EXPECT_EQ(j["ips"][1]["address"], "fd00:f::2/64");
  EXPECT_EQ(j["routes"].size(), 2u);
  EXPECT_NE(ferry_log().find("attach " + host + " -a 198.18.0.2/24 -g 198.18.0.1 -a fd00:f::2/64 -g fd00:f::1"),
            std::string::npos)
      << ferry_log();
  EXPECT_NE(ferry_log().find("--no-fastpath"), std::string::npos);
  EXPECT_TRUE(pod_has("eth0"));
  {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    auto li = nl->get_link(host);
    ASSERT_TRUE(li);
    EXPECT_TRUE(li->flags & IFF_UP);
  }
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(pod_.get()).ok());
    auto nl = Netlink::open();
    auto idx = nl->link_index("eth0");
    auto addrs = nl->addresses(*idx);
    ASSERT_TRUE(addrs);
    bool v4 = false;
    for (auto& a : *addrs) v4 |= a.prefix.str() == "198.18.0.2/24";
    EXPECT_TRUE(v4);
    auto routes = nl->default_routes(AF_INET);
    ASSERT_TRUE(routes);
    ASSERT_EQ(routes->size(), 1u);
    EXPECT_EQ(inet_text((*routes)[0].gateway), "198.18.0.1");
  }
  // CHECK with the result as prevResult.
  std::string with_prev = conf(R"(,"prevResult":)" + j.dump());
  r = run("CHECK", with_prev);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // A dead service fails CHECK with 107.
  status_alive_ = false;
  write_ferry(0);
  EXPECT_EQ(out_json(run("CHECK", with_prev))["code"], 107);
  status_alive_ = true;
  write_ferry(0);
  // GC keeping it, then GC dropping it.
  r = run_plugin({{"CNI_COMMAND", "GC"}}, conf(R"(,"cni.dev/valid-attachments":[{"containerID":"ctr1","ifname":"eth0"}])"), "");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(pod_has("eth0"));
  r = run_plugin({{"CNI_COMMAND", "GC"}}, conf(R"(,"cni.dev/valid-attachments":[])"), "");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(pod_has("eth0"));
  EXPECT_NE(ferry_log().find("detach " + host), std::string::npos);
  EXPECT_EQ(state_files(), 0u);
  r = run("CHECK", with_prev);
  EXPECT_EQ(out_json(r)["code"], 109);
  // DEL twice after GC: both succeed.
  EXPECT_EQ(run("DEL", with_prev).exit_code, 0);
  EXPECT_EQ(run("DEL", with_prev).exit_code, 0);
}

// runtimeConfig.mac (podman --mac-address, the "mac" capability): the pod's
// interface has it, and the result and ferry attach --guest-mac say so.
TEST_F(CniPluginNs, RuntimeMacIsThePodInterfaces) {
  PluginRun r = run("ADD", conf(R"(,"runtimeConfig":{"mac":"02:42:ac:11:00:07"})"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  json j = out_json(r);
  EXPECT_EQ(j["interfaces"][1]["mac"], "02:42:ac:11:00:07");
  EXPECT_NE(ferry_log().find("--guest-mac 02:42:ac:11:00:07"), std::string::npos) << ferry_log();
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(pod_.get()).ok());
    auto nl = Netlink::open();
    auto li = nl->get_link("eth0");
    ASSERT_TRUE(li);
    EXPECT_EQ(li->mac.str(), "02:42:ac:11:00:07");
  }
  EXPECT_EQ(run("DEL", conf()).exit_code, 0);
  EXPECT_FALSE(pod_has("eth0"));
}

// Podman 4 passes --mac-address as CNI_ARGS MAC=...; a bad one is error 4
// before anything is made.
TEST_F(CniPluginNs, CniArgsMacIsThePodInterfaces) {
  auto add = [&](const std::string& args) {
    return run_plugin({{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "ctr1"}, {"CNI_NETNS", pod_path_},
                       {"CNI_IFNAME", "eth0"}, {"CNI_PATH", "/usr/lib/cni"}, {"CNI_ARGS", args}},
                      conf(), "/nonexistent/ferry-cni");
  };
  PluginRun r = add("IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:42:ac:11:00:08");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(out_json(r)["interfaces"][1]["mac"], "02:42:ac:11:00:08");
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(pod_.get()).ok());
    auto li = Netlink::open()->get_link("eth0");
    ASSERT_TRUE(li);
    EXPECT_EQ(li->mac.str(), "02:42:ac:11:00:08");
  }
  EXPECT_EQ(run("DEL", conf()).exit_code, 0);
  r = add("IgnoreUnknown=1;MAC=01:00:5e:00:00:01");
  EXPECT_EQ(out_json(r)["code"], 4) << r.out;
  EXPECT_FALSE(pod_has("eth0"));
  EXPECT_EQ(state_files(), 0u);
}

TEST_F(CniPluginNs, DelAfterNamespaceGoneAndTwice) {
  ASSERT_EQ(run("ADD", conf(R"(,"mtu":1400)")).exit_code, 0);
  EXPECT_EQ(state_files(), 1u);
  pod_.reset();  // the pod namespace disappears (its veth end with it)
  PluginRun r = run_plugin({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "ctr1"}, {"CNI_NETNS", ""},
                            {"CNI_IFNAME", "eth0"}, {"CNI_PATH", "/usr/lib/cni"}},
                           conf(), "");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(state_files(), 0u);
  r = run_plugin({{"CNI_COMMAND", "DEL"}, {"CNI_CONTAINERID", "ctr1"}, {"CNI_IFNAME", "eth0"},
                  {"CNI_PATH", "/usr/lib/cni"}},
                 conf(), "");
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST_F(CniPluginNs, FailedAttachLeavesNothing) {
  write_ferry(1);
  PluginRun r = run("ADD", conf());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(out_json(r)["code"], 101) << r.out;
  EXPECT_FALSE(pod_has("eth0"));
  EXPECT_EQ(state_files(), 0u);
  // A failed attach made nothing: no `ferry detach` (the device could be
  // another attachment's).
  EXPECT_EQ(ferry_log().find("detach"), std::string::npos) << ferry_log();
  auto nl = Netlink::open();
  ASSERT_TRUE(nl);
  auto li = nl->get_link(host_ifname_for(attachment_key("utnet", "ctr1", "eth0")));
  EXPECT_FALSE(li.ok());
}

TEST_F(CniPluginNs, MissingFerryIsCode100AndStatus50) {
  std::string c = conf();
  c.replace(c.find(ferry_), ferry_.size(), "/nonexistent/ferry");
  PluginRun r = run("ADD", c);
  EXPECT_EQ(out_json(r)["code"], 100) << r.out;
  EXPECT_FALSE(pod_has("eth0"));
  EXPECT_EQ(state_files(), 0u);
  r = run_plugin({{"CNI_COMMAND", "STATUS"}}, c, "");
  EXPECT_EQ(out_json(r)["code"], 50) << r.out;
  r = run_plugin({{"CNI_COMMAND", "STATUS"}}, conf(), "");
  EXPECT_EQ(r.exit_code, 0) << r.out;  // root, BPF, ferry present
}

TEST_F(CniPluginNs, ExistingInterfaceIsRefusedAndKept) {
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(pod_.get()).ok());
    auto nl = Netlink::open();
    ASSERT_TRUE(nl->create_veth("eth0", "other0", -1).ok());
  }
  PluginRun r = run("ADD", conf());
  EXPECT_EQ(out_json(r)["code"], 103) << r.out;
  EXPECT_TRUE(pod_has("eth0"));  // not ours: left alone
  EXPECT_EQ(state_files(), 0u);
}

TEST_F(CniPluginNs, Chained) {
  // A previous plugin's veth: host end here, eth0 in the pod.
  {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl->create_veth("utveth0", "eth0", pod_.get()).ok());
  }
  json prev = {{"cniVersion", "1.0.0"},
               {"interfaces", {{{"name", "utveth0"}, {"mac", "02:00:00:00:00:01"}},
                               {{"name", "eth0"}, {"mac", "02:00:00:00:00:02"}, {"sandbox", pod_path_}}}},
               {"ips", {{{"address", "198.19.7.2/24"}, {"gateway", "198.19.7.1"}, {"interface", 1}}}}};
  std::string c = R"({"cniVersion":"1.0.0","name":"utnet","type":"ferry-cni","fastpath":false,"ferryPath":")" +
                  ferry_ + R"(","stateDir":")" + (dir_.path / "state").string() + R"(","prevResult":)" + prev.dump() +
                  R"(,"runtimeConfig":{"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]}})";
  PluginRun r = run("ADD", c);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  json j = out_json(r);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["interfaces"], prev["interfaces"]);
  EXPECT_NE(ferry_log().find("attach utveth0 -a 198.19.7.2/24 -g 198.19.7.1 -4 --max-conns 4096 --max-udp-flows 512 --memory-max 256M -t 18080:80"), std::string::npos)
      << ferry_log();
  EXPECT_EQ(run("CHECK", c).exit_code, 0);
  EXPECT_EQ(run("DEL", c).exit_code, 0);
  EXPECT_NE(ferry_log().find("detach utveth0"), std::string::npos);
  auto nl = Netlink::open();
  EXPECT_TRUE(nl->get_link("utveth0").ok());  // not ferry's to delete
  EXPECT_EQ(state_files(), 0u);
  // The pod's eth0 with its peer inside the pod too: no host end, 108,
  // nothing recorded, nothing attached.
  {
    NetnsGuard g;
    ASSERT_TRUE(g.enter(pod_.get()).ok());
    auto pnl = Netlink::open();
    ASSERT_TRUE(pnl->delete_link(*pnl->link_index("eth0")).ok());
    ASSERT_TRUE(pnl->create_veth("eth0", "inpod0", -1).ok());
  }
  std::string before = ferry_log();
  EXPECT_EQ(out_json(run("ADD", c))["code"], 108);
  EXPECT_EQ(state_files(), 0u);
  EXPECT_EQ(ferry_log(), before);
}

// Chained after a bridge-style plugin whose prevResult lists the bridge
// first: ferry attaches to the pod's own veth peer (with --force: it is a
// bridge port), never to the bridge.
TEST_F(CniPluginNs, ChainedFindsThePodsVethPeerNotTheBridge) {
  std::string host_peer;
  {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl->create_veth("utbr0", "utother", -1).ok());  // any link named first in prevResult
    ASSERT_TRUE(nl->create_veth("utpeer0", "eth0", pod_.get()).ok());
  }
  json prev = {{"cniVersion", "1.0.0"},
               {"interfaces", {{{"name", "utbr0"}, {"mac", "02:00:00:00:00:09"}},
                               {{"name", "utpeer0"}, {"mac", "02:00:00:00:00:01"}},
                               {{"name", "eth0"}, {"mac", "02:00:00:00:00:02"}, {"sandbox", pod_path_}}}},
               {"ips", {{{"address", "198.19.8.2/24"}, {"gateway", "198.19.8.1"}, {"interface", 2}}}}};
  std::string c = R"({"cniVersion":"1.0.0","name":"utnet","type":"ferry-cni","fastpath":false,"ferryPath":")" +
                  ferry_ + R"(","stateDir":")" + (dir_.path / "state").string() + R"(","prevResult":)" + prev.dump() +
                  "}";
  PluginRun r = run("ADD", c);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string log = ferry_log();
  EXPECT_NE(log.find("attach utpeer0 -a 198.19.8.2/24 -g 198.19.8.1 -4"), std::string::npos) << log;
  EXPECT_NE(log.find("--force"), std::string::npos) << log;
  EXPECT_NE(log.find("--no-map-gw"), std::string::npos) << log;  // pod defaults
  EXPECT_NE(log.find("--no-node"), std::string::npos) << log;
  EXPECT_EQ(log.find("utbr0"), std::string::npos) << log;
  EXPECT_EQ(run("DEL", c).exit_code, 0);
  EXPECT_EQ(ferry_log().find("utbr0"), std::string::npos);
}

// CNI_NETNS naming ferry-cni's own namespace: refused, nothing made.
TEST_F(CniPluginNs, OwnNamespaceIsRefused) {
  PluginRun r = run_plugin({{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "ctr1"},
                            {"CNI_NETNS", "/proc/" + std::to_string(::getpid()) + "/task/" +
                                              std::to_string(::gettid()) + "/ns/net"},
                            {"CNI_IFNAME", "eth0"}, {"CNI_PATH", "/usr/lib/cni"}},
                           conf(), "/nonexistent/ferry-cni");
  EXPECT_EQ(out_json(r)["code"], 4) << r.out;
  EXPECT_NE(out_json(r)["msg"].get<std::string>().find("runs in"), std::string::npos) << r.out;
  EXPECT_EQ(state_files(), 0u);
  EXPECT_EQ(ferry_log(), "");
}

// ferry in CNI_PATH is preferred to PATH and to the one beside ferry-cni.
TEST_F(CniPluginNs, FerryFromCniPathFirst) {
  std::string c = conf();
  c.replace(c.find("\"ferryPath\":\"" + ferry_ + "\","), ("\"ferryPath\":\"" + ferry_ + "\",").size(), "");
  PluginRun r = run_plugin({{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "ctr1"}, {"CNI_NETNS", pod_path_},
                            {"CNI_IFNAME", "eth0"}, {"CNI_PATH", "/nonexistent:" + dir_.path.string()}},
                           c, "/usr/bin/ferry-cni");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(ferry_log().find("attach fy"), std::string::npos) << ferry_log();
  EXPECT_EQ(run("DEL", conf()).exit_code, 0);
}

}  // namespace
}  // namespace ferry::cni
