// Tests of userspace/cni/cni.h: the CNI environment and network
// configuration parsers, for every spec version ferry-cni accepts, and the
// error objects they produce. No privileges, no I/O.
// test-libs: ferry_cni ferry_netns ferry_common ferry_codec
#include <gtest/gtest.h>

#include "cni/cni.h"

namespace ferry::cni {
namespace {

// A full, valid per-container environment.
std::map<std::string, std::string> env_for(const std::string& cmd) {
  return {{"CNI_COMMAND", cmd},   {"CNI_CONTAINERID", "ctr-1.a_b"}, {"CNI_NETNS", "/run/netns/pod"},
          {"CNI_IFNAME", "eth0"}, {"CNI_PATH", "/usr/lib/cni::/opt/cni/bin"}, {"CNI_ARGS", "K8S_POD_NAME=x"}};
}

std::optional<NetConf> parse(const std::string& text, CniError* err) { return parse_netconf(text, err); }

TEST(CniEnv, ValidAdd) {
  CniError err;
  auto e = parse_env(env_for("ADD"), &err);
  ASSERT_TRUE(e) << err.msg;
  EXPECT_EQ(e->command, Command::kAdd);
  EXPECT_EQ(e->container_id, "ctr-1.a_b");
  EXPECT_EQ(e->netns, "/run/netns/pod");
  EXPECT_EQ(e->ifname, "eth0");
  ASSERT_EQ(e->path.size(), 2u);  // the empty element is dropped
  EXPECT_EQ(e->path[1], "/opt/cni/bin");
  EXPECT_EQ(e->args, "K8S_POD_NAME=x");
}

TEST(CniEnv, UnknownOrMissingCommandIsCode4) {
  CniError err;
  auto env = env_for("FROB");
  EXPECT_FALSE(parse_env(env, &err));
  EXPECT_EQ(err.code, 4u);
  EXPECT_NE(err.msg.find("CNI_COMMAND"), std::string::npos);
  env.erase("CNI_COMMAND");
  EXPECT_FALSE(parse_env(env, &err));
  EXPECT_EQ(err.code, 4u);
}

TEST(CniEnv, BadVariablesAreNamed) {
  CniError err;
  auto env = env_for("ADD");
  env["CNI_CONTAINERID"] = "-bad/id";
  env["CNI_IFNAME"] = "this-name-is-too-long";
  env.erase("CNI_PATH");
  EXPECT_FALSE(parse_env(env, &err));
  EXPECT_EQ(err.code, 4u);
  for (const char* v : {"CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"}) {
    EXPECT_NE(err.msg.find(v), std::string::npos) << v << " in " << err.msg;
  }
  EXPECT_EQ(err.msg.find("CNI_NETNS"), std::string::npos);
}

TEST(CniEnv, DelWithoutNetnsIsFineAddIsNot) {
  CniError err;
  auto env = env_for("DEL");
  env.erase("CNI_NETNS");
  EXPECT_TRUE(parse_env(env, &err)) << err.msg;
  env["CNI_COMMAND"] = "ADD";
  EXPECT_FALSE(parse_env(env, &err));
  EXPECT_NE(err.msg.find("CNI_NETNS"), std::string::npos);
  env["CNI_NETNS"] = "relative/path";
  EXPECT_FALSE(parse_env(env, &err));
}

TEST(CniEnv, StatusGcVersionNeedNoContainer) {
  CniError err;
  for (const char* c : {"STATUS", "GC", "VERSION"}) {
    auto e = parse_env({{"CNI_COMMAND", c}}, &err);
    EXPECT_TRUE(e) << c << ": " << err.msg;
  }
}

TEST(CniEnv, Names) {
  EXPECT_TRUE(valid_ifname("eth0"));
  EXPECT_TRUE(valid_ifname("fy0123456789abc"));
  EXPECT_FALSE(valid_ifname("fy0123456789abcd"));
  EXPECT_FALSE(valid_ifname(""));
  EXPECT_FALSE(valid_ifname("a/b"));
  EXPECT_FALSE(valid_ifname(".."));
  EXPECT_FALSE(valid_ifname("a b"));
  EXPECT_TRUE(valid_container_id("abc123"));
  EXPECT_FALSE(valid_container_id("_abc"));
  EXPECT_FALSE(valid_container_id("a;b"));
  EXPECT_FALSE(valid_network_name(""));
}

TEST(CniConfig, MinimalEachVersion) {
  for (const char* v : {"0.4.0", "1.0.0", "1.1.0"}) {
    CniError err;
    auto c = parse(std::string(R"({"cniVersion":")") + v + R"(","name":"net1","type":"ferry-cni"})", &err);
    ASSERT_TRUE(c) << v << ": " << err.msg;
    EXPECT_EQ(c->cni_version, v);
    EXPECT_EQ(c->name, "net1");
    EXPECT_EQ(c->type, "ferry-cni");
    EXPECT_EQ(c->mtu, 0u);
    EXPECT_EQ(c->max_conns, 4096u);  // modest per-pod limits unless configured
    EXPECT_EQ(c->max_udp_flows, 512u);
    EXPECT_EQ(c->memory_max, "256M");
    EXPECT_EQ(c->fastpath, Fastpath::kAuto);
    EXPECT_FALSE(c->map_gateway);  // a pod does not reach the node's loopback by default
    EXPECT_FALSE(c->allow_node);
    EXPECT_FALSE(c->socket_mark);  // derived per attachment
    EXPECT_FALSE(c->ipam);
    EXPECT_FALSE(c->prev_result);
    EXPECT_EQ(c->state_dir, "/run/ferry-cni");
  }
}

TEST(CniConfig, UnsupportedOrMissingVersionIsCode1) {
  for (const char* text : {R"({"cniVersion":"0.3.1","name":"n"})", R"({"cniVersion":"2.0.0","name":"n"})",
                           R"({"name":"n"})", R"({"cniVersion":1,"name":"n"})"}) {
    CniError err;
    EXPECT_FALSE(parse(text, &err)) << text;
    EXPECT_EQ(err.code, 1u) << text;
  }
}

TEST(CniConfig, NotJsonIsCode6) {
  for (const char* text : {"", "{", "nope", "[1,2]", "\"str\"", "{\"cniVersion\":\"1.0.0\",}"}) {
    CniError err;
    EXPECT_FALSE(parse(text, &err)) << text;
    EXPECT_EQ(err.code, 6u) << text;
  }
}

TEST(CniConfig, AllFields) {
  CniError err;
  auto c = parse(R"({
    "cniVersion": "1.1.0", "name": "k8s-pod-network", "type": "ferry-cni",
    "mtu": 9000, "fastpath": "require", "hook": "tc", "mapGateway": false,
    "maxConns": 100000, "maxUdpFlows": 64,
    "ferryPath": "/usr/local/bin/ferry", "stateDir": "/tmp/x",
    "tcpPorts": ["8080:80"], "udpPorts": ["5353"],
    "dns": {"nameservers": ["198.18.0.1"], "domain": "cluster.local", "search": ["a", "b"], "options": ["ndots:5"]},
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.19.0.0/24"}]]},
    "runtimeConfig": {"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"}],
      "mac": "02:42:ac:11:00:07"},
    "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]
  })", &err);
  ASSERT_TRUE(c) << err.msg;
  EXPECT_EQ(c->mtu, 9000u);
  EXPECT_EQ(c->max_conns, 100000u);
  EXPECT_EQ(c->max_udp_flows, 64u);
  EXPECT_EQ(c->fastpath, Fastpath::kRequire);
  EXPECT_EQ(c->hook, "tc");
  EXPECT_FALSE(c->map_gateway);
  EXPECT_EQ(c->ferry_path, "/usr/local/bin/ferry");
  EXPECT_EQ(c->state_dir, "/tmp/x");
  EXPECT_EQ(c->tcp_ports, std::vector<std::string>{"8080:80"});
  EXPECT_EQ(c->udp_ports, std::vector<std::string>{"5353"});
  EXPECT_EQ(c->dns.domain, "cluster.local");
  EXPECT_EQ(c->dns.search.size(), 2u);
  ASSERT_TRUE(c->ipam);
  EXPECT_EQ(c->ipam_type, "host-local");
  ASSERT_EQ(c->port_mappings.size(), 2u);
  EXPECT_EQ(c->port_mappings[1].protocol, "udp");
  EXPECT_EQ(c->port_mappings[1].host_ip, "127.0.0.1");
  EXPECT_EQ(port_mapping_spec(c->port_mappings[0]), "8080:80");
  EXPECT_EQ(port_mapping_spec(c->port_mappings[1]), "127.0.0.1/5353:53");
  ASSERT_TRUE(c->mac);
  EXPECT_EQ(c->mac->str(), "02:42:ac:11:00:07");
  EXPECT_TRUE(c->has_valid_attachments);
  ASSERT_EQ(c->valid_attachments.size(), 1u);
  EXPECT_EQ(c->valid_attachments[0], (Attachment{"c1", "eth0"}));
}

TEST(CniConfig, PolicyFields) {
  CniError err;
  auto c = parse(R"({"cniVersion":"1.1.0","name":"n","mapGateway":[53,"8000-8080"],"allowNode":true,
                     "allow":["169.254.169.254/32:80","[fd00::1]:443"],"deny":["10.0.0.0/8"],"socketMark":4096})",
                 &err);
  ASSERT_TRUE(c) << err.msg;
  EXPECT_TRUE(c->map_gateway);
  EXPECT_EQ(c->map_gateway_ports, "53,8000-8080");
  EXPECT_TRUE(c->allow_node);
  EXPECT_EQ(c->allow, (std::vector<std::string>{"169.254.169.254/32:80", "[fd00::1]:443"}));
  EXPECT_EQ(c->deny, std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(c->socket_mark, 4096u);
  c = parse(R"({"cniVersion":"1.1.0","name":"n","mapGateway":true,"socketMark":false})", &err);
  ASSERT_TRUE(c) << err.msg;
  EXPECT_TRUE(c->map_gateway);
  EXPECT_EQ(c->map_gateway_ports, "");
  EXPECT_EQ(c->socket_mark, 0u);
}

TEST(CniConfig, FastpathForms) {
  auto fp = [](const std::string& v) {
    CniError err;
    auto c = parse_netconf(R"({"cniVersion":"1.0.0","name":"n","fastpath":)" + v + "}", &err);
    return c ? std::optional<Fastpath>(c->fastpath) : std::nullopt;
  };
  EXPECT_EQ(fp("true"), Fastpath::kAuto);
  EXPECT_EQ(fp("false"), Fastpath::kOff);
  EXPECT_EQ(fp("\"auto\""), Fastpath::kAuto);
  EXPECT_EQ(fp("\"off\""), Fastpath::kOff);
  EXPECT_EQ(fp("\"require\""), Fastpath::kRequire);
  EXPECT_EQ(fp("\"maybe\""), std::nullopt);
  EXPECT_EQ(fp("1"), std::nullopt);
}

TEST(CniConfig, UnknownFieldsAreIgnored) {
  CniError err;
  auto c = parse(R"({"cniVersion":"1.0.0","name":"n","type":"ferry-cni","somethingElse":{"x":1},
                    "args":{"cni":{"ips":["1.2.3.4"]}},"capabilities":{"portMappings":true},
                    "runtimeConfig":{"bandwidth":{"ingressRate":1}}})",
                 &err);
  ASSERT_TRUE(c) << err.msg;
  EXPECT_TRUE(c->port_mappings.empty());
  EXPECT_EQ(c->raw["somethingElse"]["x"], 1);  // kept for delegates
}

TEST(CniConfig, InvalidValuesAreCode7NamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"cniVersion":"1.0.0"})", "name"},
      {R"({"cniVersion":"1.0.0","name":"bad name"})", "name"},
      {R"({"cniVersion":"1.0.0","name":"n","mtu":-1})", "mtu"},
      {R"({"cniVersion":"1.0.0","name":"n","mtu":1000})", "mtu"},
      {R"({"cniVersion":"1.0.0","name":"n","mtu":70000})", "mtu"},
      {R"({"cniVersion":"1.0.0","name":"n","maxConns":8})", "maxConns"},
      {R"({"cniVersion":"1.0.0","name":"n","maxConns":"4096"})", "maxConns"},
      {R"({"cniVersion":"1.0.0","name":"n","maxUdpFlows":0})", "maxUdpFlows"},
      {R"({"cniVersion":"1.0.0","name":"n","memoryMax":256})", "memoryMax"},
      {R"({"cniVersion":"1.0.0","name":"n","memoryMax":"1; rm"})", "memoryMax"},
      {R"({"cniVersion":"1.0.0","name":"n","maxUdpFlows":70000})", "maxUdpFlows"},
      {R"({"cniVersion":"1.0.0","name":"n","hook":"kprobe"})", "hook"},
      {R"({"cniVersion":"1.0.0","name":"n","mapGateway":"yes"})", "mapGateway"},
      {R"({"cniVersion":"1.0.0","name":"n","dhcp":"no"})", "dhcp"},
      {R"({"cniVersion":"1.0.0","name":"n","ra":1})", "ra"},
      {R"({"cniVersion":"1.0.0","name":"n","dhcpv6":"off"})", "dhcpv6"},
      {R"({"cniVersion":"1.0.0","name":"n","dnsForward":"gateway"})", "dnsForward"},
      {R"({"cniVersion":"1.0.0","name":"n","dnsForward":53})", "dnsForward"},
      {R"({"cniVersion":"1.0.0","name":"n","mapGateway":[]})", "mapGateway"},
      {R"({"cniVersion":"1.0.0","name":"n","mapGateway":[0]})", "mapGateway"},
      {R"({"cniVersion":"1.0.0","name":"n","mapGateway":["80-70"]})", "mapGateway"},
      {R"({"cniVersion":"1.0.0","name":"n","allowNode":1})", "allowNode"},
      {R"({"cniVersion":"1.0.0","name":"n","allow":"10.0.0.0/8"})", "allow"},
      {R"({"cniVersion":"1.0.0","name":"n","allow":["10.0.0.0/40"]})", "allow"},
      {R"({"cniVersion":"1.0.0","name":"n","deny":["10.0.0.0/8:0"]})", "deny"},
      {R"({"cniVersion":"1.0.0","name":"n","socketMark":-1})", "socketMark"},
      {R"({"cniVersion":"1.0.0","name":"n","socketMark":true})", "socketMark"},
      {R"({"cniVersion":"1.0.0","name":"n","ferryPath":"ferry"})", "ferryPath"},
      {R"({"cniVersion":"1.0.0","name":"n","stateDir":""})", "stateDir"},
      {R"({"cniVersion":"1.0.0","name":"n","tcpPorts":"80"})", "tcpPorts"},
      {R"({"cniVersion":"1.0.0","name":"n","dns":[]})", "dns"},
      {R"({"cniVersion":"1.0.0","name":"n","dns":{"nameservers":[1]}})", "dns.nameservers"},
      {R"({"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"x"}})", "ipam.type"},
      {R"({"cniVersion":"1.0.0","name":"n","ipam":{"type":"../evil"}})", "ipam.type"},
      {R"({"cniVersion":"1.0.0","name":"n","ipam":"host-local"})", "ipam"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":{}}})", "portMappings"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":80}]}})", "portMappings"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}})",
       "hostPort"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":80,"protocol":"sctp"}]}})",
       "protocol"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":80,"hostIP":"nope"}]}})",
       "hostIP"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"mac":"02:42:ac:11:00"}})", "runtimeConfig.mac"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"mac":"03:42:ac:11:00:07"}})", "runtimeConfig.mac"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"mac":"00:00:00:00:00:00"}})", "runtimeConfig.mac"},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"mac":42}})", "runtimeConfig.mac"},
      {R"({"cniVersion":"1.0.0","name":"n","prevResult":[]})", "prevResult"},
      {R"({"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":1}]})", "valid-attachments"},
  };
  for (auto [text, field] : cases) {
    CniError err;
    EXPECT_FALSE(parse_netconf(text, &err)) << text;
    EXPECT_EQ(err.code, 7u) << text << ": " << err.msg;
    EXPECT_NE(err.msg.find(field), std::string::npos) << text << ": " << err.msg;
  }
}

TEST(CniConfig, CniArgs) {
  EXPECT_EQ(cni_arg("IgnoreUnknown=1;K8S_POD_NAME=web;MAC=02:42:ac:11:00:08", "MAC"), "02:42:ac:11:00:08");
  EXPECT_EQ(cni_arg("MAC=x", "MAC"), "x");
  EXPECT_EQ(cni_arg("", "MAC"), std::nullopt);
  EXPECT_EQ(cni_arg("mac=x;MACS=y;MAC", "MAC"), std::nullopt);
  CniError err;
  // runtimeConfig.mac first, then CNI_ARGS MAC, else none
  EXPECT_EQ(requested_mac(MacAddr::parse("02:00:00:00:00:01"), "MAC=02:00:00:00:00:02", &err)->str(), "02:00:00:00:00:01");
  EXPECT_EQ(requested_mac(std::nullopt, "IgnoreUnknown=1;MAC=02:00:00:00:00:02", &err)->str(), "02:00:00:00:00:02");
  EXPECT_FALSE(requested_mac(std::nullopt, "IgnoreUnknown=1", &err));
  EXPECT_EQ(err.code, 0u);
  for (const char* bad : {"MAC=01:00:5e:00:00:01", "MAC=00:00:00:00:00:00", "MAC=nope"}) {
    CniError e;
    EXPECT_FALSE(requested_mac(std::nullopt, bad, &e)) << bad;
    EXPECT_EQ(e.code, 4u) << bad;
  }
}

TEST(CniConfig, EmptyIpamMeansNone) {
  CniError err;
  auto c = parse(R"({"cniVersion":"1.0.0","name":"n","ipam":{}})", &err);
  ASSERT_TRUE(c) << err.msg;
  EXPECT_FALSE(c->ipam);
}

TEST(CniConfig, OldAttachmentsKeyAccepted) {
  CniError err;
  auto c = parse(R"({"cniVersion":"1.1.0","name":"n","cni.dev/attachments":[]})", &err);
  ASSERT_TRUE(c) << err.msg;
  EXPECT_TRUE(c->has_valid_attachments);
  EXPECT_TRUE(c->valid_attachments.empty());
}

TEST(CniVersions, Compare) {
  EXPECT_LT(compare_versions("0.4.0", "1.0.0"), 0);
  EXPECT_EQ(compare_versions("1.1.0", "1.1.0"), 0);
  EXPECT_GT(compare_versions("1.10.0", "1.9.0"), 0);
  EXPECT_TRUE(version_supported("1.1.0"));
  EXPECT_FALSE(version_supported("0.3.1"));
}

}  // namespace
}  // namespace ferry::cni
