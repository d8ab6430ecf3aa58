// `ferry detach DEV`: stops DEV's service and removes everything ferry put
// there, and nothing else.
//
// Theory of operation: if a service holds DEV's lock, and the process its
// pid file names is really that service (same start time and executable,
// sandbox/process_identity.h), it gets SIGTERM (it then
// removes its own link, pins, tap and run dir), and SIGKILL if it is still
// there after --timeout seconds (default 5). Then, whatever state the service
// left (killed, crashed, never started), detach removes ferry's pinned DEV
// link (detaching its program), the pins under /sys/fs/bpf/ferry/DEV and
// /run/ferry/DEV. The private tap needs nothing: it vanished with the
// service's fd. Other owners' qdiscs, filters and programs on DEV are never
// touched: ferry's programs are bpf_links, removed by their own handle.
//
// Exit status: 0 detached, or DEV was not attached (a message says so: detach
// is idempotent); 1 the service could not be stopped or a removal failed;
// 2 usage error.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <thread>

#include "attach/datapath.h"
#include "attach/instance.h"
#include "commands.h"
#include "common/option_table.h"
#include "sandbox/process_identity.h"
#include "sandbox/service_cgroup.h"

namespace ferry::cli {

namespace {

constexpr const char* kDetachUsage =
    "usage: ferry detach DEV [OPTIONS]\n"
    "\n"
    "Stops the ferry service attached to DEV (SIGTERM, then SIGKILL after the timeout)\n"
    "and removes ferry's BPF programs and pins (/sys/fs/bpf/ferry/DEV), its private\n"
    "tap and /run/ferry/DEV. Nothing else on DEV is touched. Works after the service\n"
    "was killed. Detaching a device that is not attached prints a message and exits 0.\n"
    "Exit status: 0 detached or not attached, 1 failure, 2 usage error.\n"
    "\n"
    "options:\n";

struct DetachArgs {
  bool quiet = false;
  int timeout_s = 5;
};

bool apply_timeout(DetachArgs& a, const char* v, std::string* error) {
  unsigned long s = 0;
  if (!option::parse_uint(v, 0, 3600, &s)) {
    *error = "bad --timeout (0-3600 seconds)";
    return false;
  }
  a.timeout_s = static_cast<int>(s);
  return true;
}

constexpr Option<DetachArgs> kDetachOptions[] = {
    {{"--timeout", 0, "SECS", "wait this long after SIGTERM before SIGKILL (5)", nullptr, "bad --timeout (0-3600 seconds)"},
     apply_timeout},
    {{"--quiet", 'q', nullptr, "no messages but errors"}, option::set<&DetachArgs::quiet, true>},
};

// Waits until DEV's lock is free, at most ms milliseconds.
bool wait_gone(const std::string& dev, int ms) {
  for (int waited = 0; waited < ms; waited += 20) {
    if (!attach::service_alive(dev)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !attach::service_alive(dev);
}

// True when pid is still the process that wrote the pid file: its
// identity file (pid.identity) names the same pid, start time and
// executable (a recycled pid is someone else). Without one (an older
// ferry) the process's name decides.
bool is_that_service(const std::string& pid_file, int pid) {
  std::ifstream in(pid_file + ".identity");
  std::string line;
  std::getline(in, line);
  sandbox::ProcessIdentity recorded;
  if (!sandbox::ProcessIdentity::parse(line, &recorded)) {
    std::ifstream comm_in("/proc/" + std::to_string(pid) + "/comm");
    std::string comm;
    return static_cast<bool>(std::getline(comm_in, comm)) && comm == "ferry";
  }
  Result<sandbox::ProcessIdentity> live = sandbox::identify(pid);
  return recorded.pid == pid && live && *live == recorded;
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

}  // namespace

int cmd_detach(int argc, char** argv) {
  DetachArgs args;
  OptionParser parser("ferry detach");
  parser.text(kDetachUsage).add(kDetachOptions, &args);
  std::vector<char*> operands;
  if (std::optional<int> exit = parser.parse_or_exit(argc, argv, &operands)) return *exit;
  if (operands.size() > 1) {
    std::fprintf(stderr, "ferry detach: one device only\n");
    return 2;
  }
  const std::string dev = operands.empty() ? std::string() : operands[0];
  const bool quiet = args.quiet;
  const int timeout_s = args.timeout_s;
  if (dev.empty()) {
    std::fprintf(stderr, "ferry detach: which device? (usage: ferry detach DEV)\n");
    return 2;
  }
  if (!attach::valid_ifname(dev)) {
    std::fprintf(stderr, "ferry detach: bad device name '%s'\n", dev.c_str());
    return 2;
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "ferry detach: needs root\n");
    return 1;
  }
  const std::string rdir = attach::run_dir(dev), pdir = attach::pin_dir(dev);
  if (!exists(rdir) && !exists(pdir + "/link_dev")) {
    if (!quiet) std::fprintf(stderr, "ferry detach: %s is not attached (nothing to do)\n", dev.c_str());
    return 0;
  }
  if (attach::service_alive(dev)) {
    const int pid = attach::service_pid(dev);
    if (pid <= 0 || !is_that_service(rdir + "/pid", pid)) {
      std::fprintf(stderr,
                   "ferry detach: %s's service holds its lock but its pid file (%d) names another process "
                   "(start time or executable differ): not signalling it\n",
                   dev.c_str(), pid);
      return 1;
    }
    kill(pid, SIGTERM);
    if (!wait_gone(dev, timeout_s * 1000)) {
      if (!quiet) std::fprintf(stderr, "ferry detach: pid %d ignored SIGTERM for %d s: SIGKILL\n", pid, timeout_s);
      kill(pid, SIGKILL);
      if (!wait_gone(dev, 5000)) {
        std::fprintf(stderr, "ferry detach: pid %d does not die\n", pid);
        return 1;
      }
    }
  }
  // A killed service's cgroup and --mark cgroup, in either layout.
  if (sandbox::writable_cgroup2(sandbox::kCgroupRoot)) sandbox::remove_service_cgroups(sandbox::kCgroupRoot, dev);
  sandbox::remove_service_cgroups(sandbox::cgroup2_mount(), dev);
  Status a = attach::remove_pins(dev);
  Status b = attach::remove_dir_flat(rdir);
  if (!a || !b) {
    std::fprintf(stderr, "ferry detach: %s\n", (!a ? a : b).message().c_str());
    return 1;
  }
  if (!quiet) std::fprintf(stderr, "ferry: detached from %s\n", dev.c_str());
  return 0;
}

}  // namespace ferry::cli
