// `ferry conns [INSTANCE] [-j]`: the live TCP table of ferry instances, read
// from their pinned `conns` views (include/ferry/conn_view.h), never from the
// process, so it works while the process is hung. INSTANCE is an attached
// device (veth0) or a `ferry run` instance (run-1234); without it, every
// instance under /sys/fs/bpf/ferry that has a `conns` pin, and every live
// run-PID whose directory holds the view as a file (a rootless `ferry run`,
// which has no bpffs: attach/conn_view_file.h; listed to the user who runs
// it, from $XDG_RUNTIME_DIR/ferry-run/ or /tmp/ferry-run-UID/, see
// counters_file.h).
//
// JSON (-j), stable; keys are only ever added:
//   {"connections": [{"instance": "veth0", "slot": 0, "family": "ipv4"|"ipv6",
//     "guest": "198.18.0.2", "guest_port": 40000, "peer": "127.0.0.1"
//     (as the guest sees it), "peer_port": 80, "state": "connecting"|
//     "syn_rcvd"|"syn_sent"|"established", "inbound": false,
//     "guest_fin": false, "host_eof": false, "fin_sent": false,
//     "snd_una": N, "snd_nxt": N, "rcv_nxt": N, "snd_wnd": N, "rcv_wnd": N,
//     "mss": N, "idle_ms": N}]}
// Sequence numbers are absolute (as on the wire), windows in bytes; the view
// is refreshed every 250 ms (FERRY_CONN_VIEW_REFRESH_MS).
// Exit status: 0; 1 when INSTANCE is given and has no readable view; 2 usage.
#include <arpa/inet.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "attach/inspect.h"
#include "attach/instance.h"
#include "commands.h"
#include "common/option_table.h"
#include "counters_file.h"

namespace ferry::cli {

namespace {

constexpr const char* kConnsUsage =
    "usage: ferry conns [INSTANCE] [-j]\n"
    "\n"
    "Lists the TCP connections of ferry instances (an attached DEV, or run-PID of a\n"
    "`ferry run`): addresses and ports as the guest sees them, state, sequence numbers,\n"
    "windows, time since the last segment. Read from the pinned map\n"
    "/sys/fs/bpf/ferry/INSTANCE/conns (refreshed every 250 ms), so it works while the\n"
    "instance is hung; a rootless `ferry run`'s from the same view kept in a file of\n"
    "its own directory (listed to the user who runs it).\n"
    "Exit status: 0, 1 if INSTANCE has no readable table, 2 usage error.\n"
    "\n"
    "options:\n";

struct ConnsArgs {
  bool json = false;
};

constexpr Option<ConnsArgs> kConnsOptions[] = {
    {{"--json", 'j', nullptr, "JSON output (format in cmd_conns.cc and README.md)"}, option::set<&ConnsArgs::json, true>},
};

// A rootless run's view file (counters_file.h), "" for other instances.
std::string view_file(const std::string& name) {
  return is_run_instance(name) ? run_counters_dir(name) + "/conns" : std::string();
}

// The live slots of instance `name`: its pin, else its view file.
Result<std::vector<attach::ConnEntry>> read_view(const std::string& name) {
  const std::string pin = attach::pin_dir(name) + "/conns";
  struct stat st {};
  const std::string file = view_file(name);
  if (stat(pin.c_str(), &st) != 0 && !file.empty() && lstat(file.c_str(), &st) == 0)
    return attach::read_conns_file(file);
  return attach::read_conns(pin);
}

// Instances with a conns pin or view file, sorted.
std::vector<std::string> instances() {
  std::vector<std::string> out;
  if (DIR* d = opendir(FERRY_PIN_ROOT)) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st {};
      if (stat((attach::pin_dir(name) + "/conns").c_str(), &st) == 0) out.push_back(name);
    }
    closedir(d);
  }
  for (const std::string& name : list_run_dir_instances()) {
    struct stat st {};
    if (std::find(out.begin(), out.end(), name) == out.end() && lstat(view_file(name).c_str(), &st) == 0)
      out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

int cmd_conns(int argc, char** argv) {
  ConnsArgs args;
  OptionParser parser("ferry conns");
  parser.text(kConnsUsage).add(kConnsOptions, &args);
  std::vector<char*> operands;
  if (std::optional<int> exit = parser.parse_or_exit(argc, argv, &operands)) return *exit;
  if (operands.size() > 1) {
    std::fprintf(stderr, "ferry conns: one instance only\n");
    return 2;
  }
  const bool json = args.json;
  const std::string inst = operands.empty() ? std::string() : operands[0];
  std::vector<std::string> list;
  if (!inst.empty()) {
    if (inst.find('/') != std::string::npos || inst == "." || inst == "..") {
      std::fprintf(stderr, "ferry conns: bad instance name '%s'\n", inst.c_str());
      return 2;
    }
    list.push_back(inst);
  } else {
    list = instances();
  }
  const uint64_t now = mono_ns();
  if (json) std::printf("{\"connections\":[");
  else std::printf("%-10s %5s %-28s %-28s %-11s %10s %10s %10s %8s %8s %5s %7s\n", "INSTANCE", "SLOT", "GUEST", "PEER",
                   "STATE", "SND_UNA", "SND_NXT", "RCV_NXT", "SND_WND", "RCV_WND", "MSS", "IDLE_MS");
  bool first = true;
  int rc = 0;
  for (const std::string& name : list) {
    Result<std::vector<attach::ConnEntry>> conns = read_view(name);
    if (!conns) {
      if (!inst.empty()) {
        if (json) std::printf("]}\n");
        std::fprintf(stderr, "ferry conns: %s: %s\n", name.c_str(),
                     conns.status().err() == ENOENT ? "no such instance" : conns.status().message().c_str());
        return 1;
      }
      continue;
    }
    for (const attach::ConnEntry& e : *conns) {
      const ferry_conn_view& v = e.v;
      const std::string g = attach::conn_addr(v.guest_addr, v.family), p = attach::conn_addr(v.peer_addr, v.family);
      const unsigned gp = ntohs(v.guest_port), pp = ntohs(v.peer_port);
      const unsigned long long idle =
          v.last_activity_ns != 0 && now > v.last_activity_ns ? (now - v.last_activity_ns) / 1'000'000 : 0;
      if (json) {
        std::printf("%s{\"instance\":%s,\"slot\":%u,\"family\":\"%s\",\"guest\":%s,\"guest_port\":%u,\"peer\":%s,"
                    "\"peer_port\":%u,\"state\":\"%s\",\"inbound\":%s,\"guest_fin\":%s,\"host_eof\":%s,\"fin_sent\":%s,"
                    "\"snd_una\":%u,\"snd_nxt\":%u,\"rcv_nxt\":%u,\"snd_wnd\":%u,\"rcv_wnd\":%u,\"mss\":%u,\"idle_ms\":%llu}",
                    first ? "" : ",", attach::json_str(name).c_str(), e.slot, v.family == AF_INET ? "ipv4" : "ipv6",
                    attach::json_str(g).c_str(), gp, attach::json_str(p).c_str(), pp, attach::conn_state_name(v.state),
                    (v.flags & FERRY_CONN_F_INBOUND) ? "true" : "false", (v.flags & FERRY_CONN_F_GUEST_FIN) ? "true" : "false",
                    (v.flags & FERRY_CONN_F_HOST_EOF) ? "true" : "false", (v.flags & FERRY_CONN_F_FIN_SENT) ? "true" : "false",
                    v.snd_una, v.snd_nxt, v.rcv_nxt, v.snd_wnd, v.rcv_wnd, v.mss, idle);
        first = false;
      } else {
        const std::string ga = (v.family == AF_INET6 ? "[" + g + "]" : g) + ":" + std::to_string(gp);
        const std::string pa = (v.family == AF_INET6 ? "[" + p + "]" : p) + ":" + std::to_string(pp);
        std::printf("%-10s %5u %-28s %-28s %-11s %10u %10u %10u %8u %8u %5u %7llu%s\n", name.c_str(), e.slot, ga.c_str(),
                    pa.c_str(), attach::conn_state_name(v.state), v.snd_una, v.snd_nxt, v.rcv_nxt, v.snd_wnd, v.rcv_wnd,
                    v.mss, idle, (v.flags & FERRY_CONN_F_INBOUND) ? " in" : "");
      }
    }
  }
  if (json) std::printf("]}\n");
  return rc;
}

}  // namespace ferry::cli
