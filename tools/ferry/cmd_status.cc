// `ferry status [DEV] [-j]`: every attachment (or DEV's), read from
// /run/ferry/DEV/state and the pins alone, so it answers while a service hangs.
//
// JSON (-j), stable; keys are only ever added:
//   {"attachments": [{
//      "device": "veth0", "netns": "", "mode": "veth"|"tap"|DRIVER|"unknown",
//      "hook": "tc"|"xdp", "attach_mode": "tcx"|"xdp-driver"|"xdp-generic",
//      "tap": "fy12", "programs": {"dev": ID, "tap": ID}, "link_dev": ID,
//      "link_present": true, "pid": N, "alive": true, "uptime_s": N,
//      "guest4": "198.18.0.2/24", "guest6": "fd00:f::2/64", "mtu": N,
//      "connections": N,
//      "service_counters": {"frames": N, "malformed": N, "not_for_us": N,
//                   "unhandled": N, "port_rx_frames": N, "port_rx_bytes": N,
//                   "port_tx_frames": N, "port_tx_bytes": N,
//                   "port_tx_dropped": N, "tcp_conns_outbound": N,
//                   "tcp_conns_inbound": N, "tcp_conns_closed": N,
//                   "tcp_bytes_to_host": N, "tcp_bytes_to_guest": N,
//                   "tcp_retransmits": N, "tcp_rst_to_guest": N,
//                   "udp_guest_datagrams": N, "udp_host_received": N,
//                   "udp_flows_opened": N}, "service_counters_age_s": N,
//        (the translator's own, written by the service once a second: a
//        hung service shows a growing age),
//      "counters": {"guest_frames": N, ... every ferry_stats field ...,
//                   "from_guest_bytes": N, "to_guest_frames": N,
//                   "to_guest_bytes": N, "redirect_failed": N}}]}
// Fields that cannot be read (pins gone after a crash) are null.
// Exit status: 0; 1 when DEV is given and not attached; 2 usage error.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "attach/datapath.h"
#include "attach/inspect.h"
#include "attach/instance.h"
#include "bpf/counters_map.h"
#include "commands.h"
#include "common/option_table.h"
#include "counters_file.h"

namespace ferry::cli {

namespace {

constexpr const char* kStatusUsage =
    "usage: ferry status [DEV] [-j]\n"
    "\n"
    "Shows each ferry attachment (or DEV's): device, mode, hook, program ids, service\n"
    "pid, whether it is alive, uptime, connection count and counters. Reads only files\n"
    "and BPF pins, so it works while a service is hung.\n"
    "Exit status: 0, 1 if DEV is not attached, 2 usage error.\n"
    "\n"
    "options:\n";

struct StatusArgs {
  bool json = false;
};

constexpr Option<StatusArgs> kStatusOptions[] = {
    {{"--json", 'j', nullptr,
      "JSON output (format in the file header of cmd_status.cc\n"
      "and in README.md)"},
     option::set<&StatusArgs::json, true>},
};

// A number from the state map, or "null".
std::string num_or_null(const attach::StateMap& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || it->second.empty()) return "null";
  char* end = nullptr;
  const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
  return *end == '\0' ? std::to_string(v) : "null";
}

std::string get(const attach::StateMap& m, const char* key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

// Prints one attachment, as JSON or text.
void show(const std::string& dev, bool json, bool first) {
  const std::string pdir = attach::pin_dir(dev);
  Result<attach::StateMap> sm = attach::read_state(attach::run_dir(dev) + "/state");
  const attach::StateMap m = sm ? *sm : attach::StateMap{};
  const bool alive = attach::service_alive(dev);
  const int pid = attach::service_pid(dev);
  long long uptime = -1;
  if (auto it = m.find("started"); it != m.end()) uptime = static_cast<long long>(std::time(nullptr)) - std::atoll(it->second.c_str());
  struct stat stl {};
  const bool link_present = stat((pdir + "/link_dev").c_str(), &stl) == 0;
  Result<std::vector<attach::ConnEntry>> conns = attach::read_conns(pdir + "/conns");
  Result<ferry_stats> stats = read_counters_map<ferry_stats>(pdir + "/stats");
  Result<ferry_attach_stats> as = read_counters_map<ferry_attach_stats>(pdir + "/attach_stats");
  attach::StateMap sc;
  if (Result<attach::StateMap> r = attach::read_state(attach_counters_path(dev)); r) sc = *r;
  for (auto it = sc.begin(); it != sc.end();) {  // numbers only: the JSON must stay valid
    if (it->first != "written_at" && it->second.find_first_not_of("0123456789") != std::string::npos) it = sc.erase(it);
    else ++it;
  }
  long long sc_age = -1;
  if (auto it = sc.find("written_at"); it != sc.end())
    sc_age = static_cast<long long>(std::time(nullptr)) - std::atoll(it->second.c_str());

  if (json) {
    std::printf("%s{\"device\":%s,\"netns\":%s,\"mode\":%s,\"hook\":%s,\"attach_mode\":%s,\"tap\":%s,", first ? "" : ",",
                attach::json_str(dev).c_str(), attach::json_str(get(m, "netns")).c_str(),
                attach::json_str(get(m, "mode")).c_str(), attach::json_str(get(m, "hook")).c_str(),
                attach::json_str(get(m, "attach_mode")).c_str(), attach::json_str(get(m, "tap")).c_str());
    std::printf("\"programs\":{\"dev\":%s,\"tap\":%s},\"link_dev\":%s,\"link_present\":%s,", num_or_null(m, "prog_dev").c_str(),
                num_or_null(m, "prog_tap").c_str(), num_or_null(m, "link_dev").c_str(), link_present ? "true" : "false");
    std::printf("\"pid\":%s,\"alive\":%s,\"uptime_s\":%s,", pid > 0 ? std::to_string(pid).c_str() : "null",
                alive ? "true" : "false", uptime >= 0 ? std::to_string(uptime).c_str() : "null");
    std::printf("\"guest4\":%s,\"guest6\":%s,\"mtu\":%s,", attach::json_str(get(m, "guest4")).c_str(),
                attach::json_str(get(m, "guest6")).c_str(), num_or_null(m, "mtu").c_str());
    std::printf("\"connections\":%s,", conns ? std::to_string(conns->size()).c_str() : "null");
    std::printf("\"service_counters\":");
    if (sc.empty()) {
      std::printf("null,\"service_counters_age_s\":null,");
    } else {
      std::printf("{");
      bool firstc = true;
      for (const auto& [k, v] : sc) {
        if (k == "written_at") continue;
        std::printf("%s%s:%s", firstc ? "" : ",", attach::json_str(k).c_str(), v.empty() ? "null" : v.c_str());
        firstc = false;
      }
      std::printf("},\"service_counters_age_s\":%s,", sc_age >= 0 ? std::to_string(sc_age).c_str() : "null");
    }
    std::printf("\"counters\":");
    if (!stats || !as) {
      std::printf("null}");
      return;
    }
    // The classifier's counters, then the attachment's, in their contract order.
    const char* sep = "{";
#define FERRY_JSON_STAT(name)                                                                   \
  std::printf("%s\"" #name "\":%llu", sep, static_cast<unsigned long long>(stats->name)); \
  sep = ",";
#define FERRY_JSON_ATTACH(name)                                                              \
  std::printf("%s\"" #name "\":%llu", sep, static_cast<unsigned long long>(as->name)); \
  sep = ",";
    FERRY_STATS_FIELDS(FERRY_JSON_STAT)
    FERRY_ATTACH_STATS_FIELDS(FERRY_JSON_ATTACH)
#undef FERRY_JSON_ATTACH
#undef FERRY_JSON_STAT
    std::printf("}}");
    return;
  }
  std::printf("%s: %s, hook %s (%s), tap %s\n", dev.c_str(), get(m, "mode").c_str(), get(m, "hook").c_str(),
              get(m, "attach_mode").c_str(), get(m, "tap").c_str());
  std::printf("  service: pid %d, %s", pid, alive ? "alive" : "NOT RUNNING");
  if (uptime >= 0) std::printf(", up %llds", uptime);
  std::printf("\n  programs: dev %s (link %s%s), tap %s\n", get(m, "prog_dev").c_str(), get(m, "link_dev").c_str(),
              link_present ? "" : ", not pinned", get(m, "prog_tap").c_str());
  std::printf("  guest: %s %s, mtu %s\n", get(m, "guest4").c_str(), get(m, "guest6").c_str(), get(m, "mtu").c_str());
  if (conns) std::printf("  connections: %zu\n", conns->size());
  if (!sc.empty()) {
    std::printf("  translator (%llds ago):", sc_age);
    for (const auto& [k, v] : sc)
      if (k != "written_at") std::printf(" %s=%s", k.c_str(), v.c_str());
    std::printf("\n");
  }
  if (stats && as) {
    std::printf("  counters:");
#define FERRY_TEXT_STAT(name) std::printf(" " #name "=%llu", static_cast<unsigned long long>(stats->name));
#define FERRY_TEXT_ATTACH(name) std::printf(" " #name "=%llu", static_cast<unsigned long long>(as->name));
    FERRY_STATS_FIELDS(FERRY_TEXT_STAT)
    FERRY_ATTACH_STATS_FIELDS(FERRY_TEXT_ATTACH)
#undef FERRY_TEXT_ATTACH
#undef FERRY_TEXT_STAT
    std::printf("\n");
  }
}

}  // namespace

int cmd_status(int argc, char** argv) {
  StatusArgs args;
  OptionParser parser("ferry status");
  parser.text(kStatusUsage).add(kStatusOptions, &args);
  std::vector<char*> operands;
  if (std::optional<int> exit = parser.parse_or_exit(argc, argv, &operands)) return *exit;
  if (operands.size() > 1) {
    std::fprintf(stderr, "ferry status: one device only\n");
    return 2;
  }
  const bool json = args.json;
  const std::string dev = operands.empty() ? std::string() : operands[0];
  std::vector<std::string> devs;
  if (!dev.empty()) {
    if (!attach::valid_ifname(dev)) {
      std::fprintf(stderr, "ferry status: bad device name '%s'\n", dev.c_str());
      return 2;
    }
    struct stat st {};
    if (stat(attach::run_dir(dev).c_str(), &st) != 0) {
      std::fprintf(stderr, "ferry status: %s is not attached\n", dev.c_str());
      return 1;
    }
    devs.push_back(dev);
  } else {
    devs = attach::list_attachments();
  }
  if (json) std::printf("{\"attachments\":[");
  bool first = true;
  for (const std::string& d : devs) {
    show(d, json, first);
    first = false;
  }
  if (json) std::printf("]}\n");
  else if (devs.empty()) std::printf("no attachments\n");
  return 0;
}

}  // namespace ferry::cli
