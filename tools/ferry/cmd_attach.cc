// `ferry attach DEV [OPTIONS]`: ferry as a service on a device that exists.
//
// Theory of operation. DEV is the host end of a veth whose peer is the guest
// (or a tap whose guest side is a VM elsewhere); the guest side is already
// configured by whoever made it, ferry touches nothing there. The command:
//   1. checks, in the order an operator wants to hear about problems: usage,
//      root, DEV's name, an existing live attachment of DEV (its lock), DEV
//      present in its namespace, a device ferry must not take (lo, a
//      bridge or bridge port, one holding an address, not a veth or tap:
//      attach/device_check.h) or a foreign XDP program (refused unless
//      --force);
//   2. takes DEV's lock (/run/ferry/DEV/lock, flock): two attaches racing
//      meet here, and one of them gets "already attached". Holding the lock
//      it removes what a dead earlier service left (pins, its DEV link);
//   3. forks the service (setsid, stdio to /run/ferry/DEV/log), which
//      inherits the lock and keeps it for its life, builds the datapath
//      (userspace/attach/datapath.h: private tap + BPF redirects), starts the
//      translator on the tap exactly as `ferry run` does, mirrors its TCP
//      table into the pinned `conns` view, wires the TCP fast path (the
//      bridge on the attach program's fast-path maps: BPF absorbs the
//      guest's pure ACKs on DEV's hook, at XDP only those with a full and
//      valid checksum; not with --no-fastpath), forks the
//      translator process, which enters the sandbox (userspace/sandbox:
//      unprivileged user, no capabilities, empty root, seccomp) and says it
//      is ready; then writes `pid` and `state`, and only then reports "ok"
//      through the readiness pipe. From then on the service process (root)
//      only waits: it turns SIGTERM/SIGINT/SIGHUP into "stop" for the
//      translator, writes `counters` from the translator's messages once a
//      second, and when the translator has exited it tears down;
//   4. returns 0 once the service said ok; any failure is one line on
//      stderr, exit 1, and everything made so far is removed.
// The service runs until SIGTERM/SIGINT/SIGHUP or until DEV disappears
// (checked once a second by the translator), then undoes everything
// (DEV link, pins, tap, run dir) and exits 0. Killed with SIGKILL it leaves
// its DEV link pinned (guest frames then dropped, never routed) and its run
// dir; `ferry detach DEV` or the next `ferry attach DEV` removes them.
//
// Exit status: 0 attached; 1 failure (no device, already attached, foreign
// XDP program, not root, BPF or tap failure, service died); 2 usage error.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "attach/conn_mirror.h"
#include "attach/datapath.h"
#include "attach/device_check.h"
#include "attach/instance.h"
#include "bpf/fastpath_maps.h"
#include "commands.h"
#include "common/instance_lock.h"
#include "common/option_table.h"
#include "counters_file.h"
#include "loop/event_loop.h"
#include "netns/netlink.h"
#include "netns/netns.h"
#include "options.h"
#include "sandbox/options.h"
#include "sandbox/private_dir.h"
#include "sandbox/process_identity.h"
#include "sandbox/process_split.h"
#include "sandbox/service_cgroup.h"
#include "stale_sweep.h"
#include "tapq/netlink_tx_counters.h"
#include "tcp/tcp_translator.h"
#include "translator/translator.h"
#include "session.h"
#include "udp/udp_translator.h"

namespace ferry::cli {

namespace {

constexpr const char* kAttachUsage =
    "usage: ferry attach DEV [OPTIONS]\n"
    "\n"
    "Starts ferry as a background service on DEV, an existing device: the host end of a\n"
    "veth pair whose peer is the guest, or a tap whose guest side is elsewhere. The\n"
    "guest's frames are taken at DEV's ingress (BPF) and translated to host sockets;\n"
    "they never reach the host's IP stack. The guest side is not configured: give its\n"
    "addresses with -a (needed for -t/-u forwards) if they are not the defaults\n"
    "(198.18.0.2/24, fd00:f::2/64, gateway .1 / ::1). State, pid and log live in\n"
    "/run/ferry/DEV/, BPF pins in /sys/fs/bpf/ferry/DEV/. Returns once traffic is\n"
    "being translated. Stop it with `ferry detach DEV`.\n"
    "Exit status: 0 attached, 1 failure, 2 usage error.\n"
    "\n"
    "options:\n";

constexpr const char* kAttachTranslatorNote =
    "\ntranslator options, as for `ferry run`; here -m defaults to DEV's MTU, -I is\n"
    "ignored (the private tap needs no name), and --no-fastpath only keeps pure ACKs\n"
    "in userspace (the redirect programs are always loaded). With --hook xdp BPF absorbs\n"
    "only pure ACKs whose checksum it verified (XDP cannot see partial checksums). DEV\n"
    "is set up if down.\n";

constexpr int kReadyTimeoutMs = 20000;

struct AttachArgs {
  std::string dev;
  std::string netns;
  attach::Hook hook = attach::Hook::tc;
  bool force = false;
  bool foreground = false;
  bool quiet = false;
  bool mtu_given = false;
  std::optional<MacAddr> guest_mac;
  Config config = Config::defaults();
  sandbox::Options sandbox;
  bool seccomp_given = false;
  std::optional<uint64_t> memory_max;  // --memory-max: the service's cgroup memory.max
};

bool apply_hook(AttachArgs& a, const char* v, std::string* error) {
  const std::string_view h = v;
  if (h == "tc") {
    a.hook = attach::Hook::tc;
  } else if (h == "xdp") {
    a.hook = attach::Hook::xdp;
  } else {
    *error = "bad --hook '" + std::string(h) + "' (tc or xdp)";
    return false;
  }
  return true;
}

bool apply_memory_max(AttachArgs& a, const char* v, std::string* error) {
  if (sandbox::parse_memory_size(v, &a.memory_max)) return true;
  *error = "bad --memory-max (bytes, or with K, M, G; or max)";
  return false;
}

bool apply_guest_mac(AttachArgs& a, const char* v, std::string* error) {
  a.guest_mac = MacAddr::parse(v);
  if (!a.guest_mac || a.guest_mac->is_multicast() || *a.guest_mac == MacAddr{}) {
    *error = "bad --guest-mac '" + std::string(v) + "' (want a unicast MAC, e.g. 02:00:00:00:00:01)";
    return false;
  }
  return true;
}

constexpr Option<AttachArgs> kAttachOptions[] = {
    {{"--netns", 0, "PATH|NAME",
      "the namespace DEV lives in (default: ours); ferry's host\n"
      "sockets stay in ours"},
     option::text<&AttachArgs::netns>},
    {{"--hook", 0, "tc|xdp",
      "where guest frames are taken: tcx ingress (default) or\n"
      "XDP (driver mode, else generic). Driver-mode XDP loses\n"
      "the guest's checksum offload: its partial checksums are\n"
      "taken in userspace (counter partial_checksums)"},
     apply_hook},
    {{"--force", 0, nullptr,
      "attach even if DEV is not a veth or tap, is a bridge, is\n"
      "enslaved, holds an address, or already has an XDP program\n"
      "(with --hook xdp that program is removed)"},
     option::set<&AttachArgs::force, true>},
    {{"--memory-max", 0, "SIZE",
      "memory.max of the service's own cgroup (bytes, K, M, G\n"
      "or max; default max), with cgroup v2 writable",
      nullptr, "bad --memory-max (bytes, or with K, M, G; or max)"},
     apply_memory_max},
    {{"--foreground", 0, nullptr,
      "be the service: no fork, log to stderr, exit on\n"
      "SIGTERM (for supervisors such as systemd)"},
     option::set<&AttachArgs::foreground, true>},
    {{"--guest-mac", 0, "MAC",
      "the guest's MAC (the veth peer's, the VM's NIC's), so that\n"
      "inbound connections reach a guest that has sent nothing\n"
      "yet; without it ferry asks the guest (ARP / neighbour\n"
      "solicitation) when it first has a frame for it"},
     apply_guest_mac},
    {{"--quiet", 'q', nullptr, "no messages but errors"}, option::set<&AttachArgs::quiet, true>},
};

// In the translator, once a second: stops the service when DEV disappears
// (the pod or VM went away: its link went with it, nothing is left to
// translate for), polling DEV's ifindex on a netlink socket of DEV's
// namespace opened before the sandbox.
class DeviceWatch final : public TimerClient {
 public:
  DeviceWatch(EventLoop& loop, std::optional<Netlink> nl, int ifindex, std::string dev)
      : loop_(loop), nl_(std::move(nl)), ifindex_(ifindex), dev_(std::move(dev)) {}
  uint64_t next_deadline_ns() const override { return nl_ ? next_ : kNever; }
  void on_timer(uint64_t now) override {
    if (now < next_) return;
    next_ = now + 1'000'000'000;
    Result<LinkInfo> li = nl_->get_link(ifindex_);
    if (!li && li.status().err() == ENODEV) {
      std::fprintf(stderr, "ferry: %s disappeared, stopping\n", dev_.c_str());
      loop_.stop();
    }
  }

 private:
  EventLoop& loop_;
  std::optional<Netlink> nl_;
  int ifindex_;
  std::string dev_;
  uint64_t next_ = 0;
};

// Writes one line to the readiness pipe and closes it; without a pipe
// (--foreground) errors go to stderr.
void report(int* ready_fd, const std::string& line) {
  if (*ready_fd < 0) {
    if (line.rfind("error ", 0) == 0) std::fprintf(stderr, "ferry attach: %s\n", line.c_str() + 6);
    return;
  }
  const std::string msg = line + "\n";
  ssize_t n;
  do {
    n = write(*ready_fd, msg.data(), msg.size());
  } while (n < 0 && errno == EINTR);
  close(*ready_fd);
  *ready_fd = -1;
}

// The service's pid file, and beside it `identity`: pid, start time and
// executable, which detach checks before it signals the pid.
void write_pid_file(const std::string& path) {
  if (FILE* f = std::fopen(path.c_str(), "w")) {
    std::fprintf(f, "%d\n", getpid());
    std::fclose(f);
  }
  Result<sandbox::ProcessIdentity> me = sandbox::identify(getpid());
  if (!me) return;
  if (FILE* f = std::fopen((path + ".identity").c_str(), "w")) {
    std::fprintf(f, "%s\n", me->to_line().c_str());
    std::fclose(f);
  }
}

// An address for the state file, "" when the family is off.
std::string addr_or_empty(bool on, const std::string& s) { return on ? s : std::string(); }

// The service: builds everything, reports readiness, translates until told to stop.
int run_service(const AttachArgs& a, int ns_fd, int ready_fd) {
  const std::string dir = attach::run_dir(a.dev);
  sweep_dead_instances();  // what killed instances (attach, run, vm) left (stale_sweep.h)
  // A cgroup of its own, before anything is made (maps and buffers are charged there).
  std::string cgroup_dir;
  const std::string cgroup_home = sandbox::current_cgroup();
  if (sandbox::writable_cgroup2(sandbox::kCgroupRoot)) {
    Result<std::string> cg = sandbox::join_service_cgroup(sandbox::kCgroupRoot, a.dev, a.memory_max, getpid());
    if (cg) cgroup_dir = *cg;
    else std::fprintf(stderr, "ferry: warning: no cgroup of its own (%s)\n", cg.status().message().c_str());
  } else if (a.memory_max) {
    std::fprintf(stderr, "ferry: warning: --memory-max needs a writable cgroup v2 hierarchy at %s: not limited\n",
                 sandbox::kCgroupRoot);
  }
  struct LeaveCgroup {
    const std::string& d;
    const std::string& home;
    ~LeaveCgroup() {
      if (!d.empty()) sandbox::leave_service_cgroup(sandbox::kCgroupRoot, d, home, getpid());
    }
  } leave_cgroup{cgroup_dir, cgroup_home};
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&sigs, s);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  attach::DatapathOptions dopts;
  dopts.dev = a.dev;
  dopts.dev_ns_fd = ns_fd;
  dopts.hook = a.hook;
  dopts.max_conns = a.config.max_conns;
  dopts.force = a.force;
  dopts.fastpath = a.config.fastpath;
  Result<std::unique_ptr<attach::Datapath>> dp = attach::Datapath::create(dopts);
  if (!dp) {
    report(&ready_fd, "error " + dp.status().message());
    return 1;
  }
  Config config = a.config;
  config.fastpath = dopts.fastpath;
  if (!a.mtu_given) config.mtu = std::min((*dp)->device().mtu, 65520u);

  int rc = 0;
  {
    // The translator, its connection view and fast path (session.h), as in `ferry run`.
    Result<std::unique_ptr<Session>> made = Session::create("ferry", false, (*dp)->port(), config, a.sandbox);
    if (!made) {
      report(&ready_fd, "error " + made.status().message());
      return 1;
    }
    Session& session = **made;
    session.set_service_cgroup(cgroup_dir);  // --mark: the translator's cgroup goes inside it
    EventLoop& loop = session.loop();
    Translator& translator = session.translator();
    // Its private tap deleted under it (by an operator): the service ends
    // and removes the rest of its state, as when DEV goes.
    translator.set_on_port_gone([&loop] { loop.stop(); });
    if (a.guest_mac) translator.set_guest_mac(*a.guest_mac);
    // Native XDP has no CHECKSUM_PARTIAL flag to pass on (the kernel's XDP
    // metadata kfuncs offer none): a guest with TX checksum offload on sends
    // TCP/UDP whose checksum only the partial form identifies.
    if ((*dp)->attach_mode() == "xdp-driver") translator.accept_partial_checksums(true);
    // DEV a tap (a VM's): TCP's sender follows how full its queue toward
    // the guest's reader is (tapq/), on a netlink socket of DEV's namespace
    // that the sandboxed translator keeps. A veth counts its frames when
    // sent, not read: nothing to follow there.
    if ((*dp)->device().kind == "tun") {
      std::optional<Netlink> qnl = GuestPathDrops::open_netlink(ns_fd);
      if (!qnl || !translator.watch_tap_queue(std::make_unique<NetlinkTxCounters>(std::move(*qnl),
                                                                                  (*dp)->device().ifindex)))
        std::fprintf(stderr, "ferry: %s's queue counters cannot be read: its queue is not followed\n", a.dev.c_str());
    }
    if (Status st = session.start(); !st.ok()) {
      report(&ready_fd, "error " + st.message());
      return 1;
    }
    session.mirror_conns((*dp)->conns(), (*dp)->conns_entries());
    // The TCP fast path: BPF absorbs the guest's pure ACKs of published flows.
    if (config.fastpath) {
      FastPathMapFds fds;
      fds.conn_hash = (*dp)->map_fd("conn_hash");
      fds.conn_state = (*dp)->map_fd("conn_state");
      fds.events = (*dp)->map_fd("events");
      if (!session.open_fast_path(fds)) config.fastpath = false;
    }
    session.open_echo_sockets();
    std::optional<Netlink> nl;
    {
      NetnsGuard g;
      if (ns_fd < 0 || g.enter(ns_fd).ok()) {
        if (Result<Netlink> r = Netlink::open(); r) nl.emplace(std::move(*r));
      }
    }
    DeviceWatch watch(loop, std::move(nl), (*dp)->device().ifindex, a.dev);
    loop.add_timer_client(&watch);
    if (Status st = session.watch_signals(sigs); !st.ok()) {
      report(&ready_fd, "error " + st.message());
      return 1;
    }
    // The translator: a child that enters the sandbox and runs the loop; we
    // stay privileged, relay stop signals, write its counters, tear down.
    const FramePort& port = (*dp)->port();
    Session::ChildHooks child_hooks;
    child_hooks.first = [&ready_fd] {
      if (ready_fd >= 0) close(ready_fd);
    };
    child_hooks.counters = [&translator, &port] { return counters_text(translator, port); };
    child_hooks.after_loop = [&translator] { translator.udp().close_flows("exit"); };  // their -v close lines
    if (Status st = session.spawn(a.dev, std::move(child_hooks)); !st.ok()) {
      report(&ready_fd, "error " + st.message());
      return 1;
    }
    sandbox::TranslatorSupervisor& supervisor = session.supervisor();
    supervisor.hooks.on_signal = [&supervisor](const signalfd_siginfo&) { supervisor.send('S'); };
    const std::string counters_path = attach_counters_path(a.dev);
    // With the drops toward the guest, read here (DEV's namespace holds the
    // private tap too).
    GuestPathDrops drops(GuestPathDrops::open_netlink(ns_fd), (*dp)->tap_ifindex(), (*dp)->device().ifindex);
    supervisor.hooks.on_counters = [&counters_path, &drops](std::string_view text) {
      attach::StateMap m = parse_counters_text(text);
      drops.add_to(m);
      (void)attach::write_state(counters_path, m);
    };
    if (Status st = session.wait_ready(kReadyTimeoutMs / 2); !st) {
      report(&ready_fd, "error " + st.message());
      return 1;
    }
    const attach::Datapath& d = **dp;
    const std::string& drv = d.device().driver;
    attach::StateMap st{
        {"dev", a.dev},
        {"ifindex", std::to_string(d.device().ifindex)},
        {"netns", a.netns},
        {"mode", drv == "veth" ? "veth" : drv == "tun" ? "tap" : (drv.empty() ? "unknown" : drv)},
        {"hook", attach::to_string(a.hook)},
        {"attach_mode", d.attach_mode()},
        {"tap", d.tap_name()},
        {"tap_ifindex", std::to_string(d.tap_ifindex())},
        {"prog_dev", std::to_string(d.dev_prog_id())},
        {"prog_tap", std::to_string(d.tap_prog_id())},
        {"link_dev", std::to_string(d.dev_link_id())},
        {"pid", std::to_string(getpid())},
        {"translator_pid", std::to_string(supervisor.translator())},
        {"sandbox", a.sandbox.enabled ? "on" : "off"},
        {"cgroup", cgroup_dir},
        {"started", std::to_string(static_cast<long long>(std::time(nullptr)))},
        {"mtu", std::to_string(config.mtu)},
        {"max_conns", std::to_string(config.max_conns)},
        {"fastpath", config.fastpath ? "1" : "0"},
        {"guest4", addr_or_empty(config.ipv4, config.guest4.str())},
        {"gateway4", addr_or_empty(config.ipv4, config.gateway4.str())},
        {"guest6", addr_or_empty(config.ipv6, config.guest6.str())},
        {"gateway6", addr_or_empty(config.ipv6, config.gateway6.str())},
    };
    if (Status s = attach::write_state(dir + "/state", st); !s) {
      report(&ready_fd, "error " + s.message());
      return 1;
    }
    std::fprintf(stderr, "ferry: attached to %s (%s, tap %s, prog %u/%u), pid %d\n", a.dev.c_str(),
                 d.attach_mode().c_str(), d.tap_name().c_str(), d.dev_prog_id(), d.tap_prog_id(), getpid());
    report(&ready_fd, "ok " + std::to_string(getpid()));
    const int translator_status = supervisor.run();
    if (WIFEXITED(translator_status) && WEXITSTATUS(translator_status) == 0) {
      std::fprintf(stderr, "ferry: stopping\n");
    } else {
      std::fprintf(stderr, "ferry: the translator %s; stopping\n",
                   sandbox::TranslatorSupervisor::describe_exit(translator_status).c_str());
    }
    rc = 0;
  }
  (*dp)->teardown();
  (void)attach::remove_dir_flat(dir);
  return rc;
}

// Reads the service's one readiness line, bounded by kReadyTimeoutMs.
std::string wait_ready(int fd) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReadyTimeoutMs);
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "error the service did not become ready in time";
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[512];
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  if (line.empty()) return "error the service exited while starting";
  return line.substr(0, line.find('\n'));
}

}  // namespace

int cmd_attach(int argc, char** argv) {
  AttachArgs a;
  OptionParser parser("ferry attach");
  parser.text(kAttachUsage).add(kAttachOptions, &a).help_line().text(kAttachTranslatorNote);
  add_translator_options(parser, &a.config);
  parser.add(sandbox::option_table(), &a.sandbox);
  std::vector<char*> operands;
  if (std::optional<int> exit = parser.parse_or_exit(argc, argv, &operands)) return *exit;
  a.seccomp_given = parser.seen("--seccomp");
  a.mtu_given = parser.seen("--mtu");
  if (operands.size() > 1) {
    std::fprintf(stderr, "ferry attach: one device only ('%s' and '%s')\n", operands[0], operands[1]);
    return 2;
  }
  if (!operands.empty()) a.dev = operands[0];
  if (a.dev.empty()) {
    std::fprintf(stderr, "ferry attach: which device? (usage: ferry attach DEV [OPTIONS])\n");
    return 2;
  }
  if (!attach::valid_ifname(a.dev)) {
    std::fprintf(stderr, "ferry attach: bad device name '%s'\n", a.dev.c_str());
    return 2;
  }
  // Pin dirs are named after DEV, and run-<pid> is `ferry run`'s (whose stale
  // pins are removed by pid): such a device name would collide.
  if (a.dev.rfind("run-", 0) == 0 && a.dev.size() > 4 &&
      a.dev.find_first_not_of("0123456789", 4) == std::string::npos) {
    std::fprintf(stderr, "ferry attach: device names run-N are reserved for `ferry run` instances\n");
    return 2;
  }
  Status valid = validate_config(a.config);
  if (valid.ok()) valid = refuse_auto_forwards(a.config);
  if (valid.ok()) valid = refuse_ns_forwards(a.config);
  if (!valid.ok()) {
    std::fprintf(stderr, "ferry attach: %s\n", valid.message().c_str());
    return 2;
  }
  prepare_forwards(&a.config);
  if (Status st = sandbox::resolve(&a.sandbox, a.seccomp_given); !st.ok()) {
    std::fprintf(stderr, "ferry attach: %s\n", st.message().c_str());
    return 2;
  }
  finish_services_config(&a.config, services::read_resolv_conf());
  if (geteuid() != 0) {
    std::fprintf(stderr, "ferry attach: needs root (CAP_NET_ADMIN, CAP_BPF, CAP_SYS_ADMIN)\n");
    return 1;
  }
  if (attach::service_alive(a.dev)) {
    std::fprintf(stderr, "ferry attach: %s is already attached (pid %d); 'ferry detach %s' first\n", a.dev.c_str(),
                 attach::service_pid(a.dev), a.dev.c_str());
    return 1;
  }
  NetnsFd ns;
  if (!a.netns.empty()) {
    Result<NetnsFd> r = open_netns(a.netns);
    if (!r) {
      std::fprintf(stderr, "ferry attach: namespace '%s': %s\n", a.netns.c_str(), r.status().message().c_str());
      return 1;
    }
    ns = std::move(*r);
  }
  Result<attach::DeviceInfo> dev = attach::probe_device(ns.get(), a.dev);
  if (!dev) {
    std::fprintf(stderr, "ferry attach: %s%s\n", dev.status().err() == ENODEV ? dev.status().what().c_str()
                                                                               : dev.status().message().c_str(),
                 a.netns.empty() ? "" : (" in namespace " + a.netns).c_str());
    return 1;
  }
  if (std::string why = attach::device_refusal(a.dev, *dev); !why.empty() && !a.force) {
    std::fprintf(stderr, "ferry attach: %s\n", why.c_str());
    return 1;
  }
  if (dev->xdp_prog_id != 0 && !a.force) {
    std::fprintf(stderr, "ferry attach: %s already has an XDP program (id %u); --force to attach anyway\n",
                 a.dev.c_str(), dev->xdp_prog_id);
    return 1;
  }

  // The lock: created with the run dir, held by the service for its life.
  const std::string dir = attach::run_dir(a.dev);
  umask(077);  // every file of the service 0600, every directory 0700
  for (const char* root : {attach::kRunRoot, FERRY_PIN_ROOT}) {
    if (Status st = sandbox::ensure_private_dir(root); !st) {
      std::fprintf(stderr, "ferry attach: %s\n", st.message().c_str());
      return 1;
    }
  }
  struct stat dir_st {};
  const bool made_dir = stat(dir.c_str(), &dir_st) != 0;
  // (ordered against a sweep of dead instances: common/instance_lock.h)
  const int lock = hold_instance_lock(dir);
  if (lock < 0) {
    const bool busy = errno == EWOULDBLOCK;
    if (busy) {
      std::fprintf(stderr, "ferry attach: %s is already attached (pid %d); 'ferry detach %s' first\n", a.dev.c_str(),
                   attach::service_pid(a.dev), a.dev.c_str());
    } else {
      std::fprintf(stderr, "ferry attach: lock %s/lock: %s\n", dir.c_str(), std::strerror(errno));
    }
    if (made_dir && !busy) (void)attach::remove_dir_flat(dir);
    return 1;
  }
  chmod(dir.c_str(), 0700);
  // A dead service's leftovers: its DEV link and pins, its files.
  (void)attach::remove_pins(a.dev);
  for (const char* f : {"pid", "pid.identity", "state", "state.tmp", "log"}) unlink((dir + "/" + f).c_str());

  if (a.foreground) {  // for supervisors (systemd Type=simple): same files, no fork
    write_pid_file(dir + "/pid");
    const int rc = run_service(a, ns.get(), -1);
    if (rc != 0) (void)attach::remove_dir_flat(dir);
    close(lock);
    return rc;
  }

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "ferry attach: pipe: %s\n", std::strerror(errno));
    (void)attach::remove_dir_flat(dir);
    return 1;
  }
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr, "ferry attach: fork: %s\n", std::strerror(errno));
    (void)attach::remove_dir_flat(dir);
    return 1;
  }
  if (child == 0) {
    close(pipefd[0]);
    setsid();
    const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    const int log = open((dir + "/log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    if (chdir("/") != 0) std::perror("ferry: chdir /");  // hold no directory (or mount) busy
    write_pid_file(dir + "/pid");
    int ready = pipefd[1];
    const int rc = run_service(a, ns.get(), ready);
    if (rc != 0) (void)attach::remove_dir_flat(dir);
    _exit(rc);  // the lock goes with us
  }
  close(pipefd[1]);
  close(lock);  // the child holds it now
  const std::string line = wait_ready(pipefd[0]);
  close(pipefd[0]);
  if (line.rfind("ok", 0) == 0) {
    if (!a.quiet)
      std::fprintf(stderr, "ferry: attached to %s (hook %s), service pid %d, log %s/log\n", a.dev.c_str(),
                   attach::to_string(a.hook), child, dir.c_str());
    return 0;
  }
  std::fprintf(stderr, "ferry attach: %s\n", line.rfind("error ", 0) == 0 ? line.c_str() + 6 : line.c_str());
  // The service failed: make sure it is gone and nothing of it stays.
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  (void)attach::remove_pins(a.dev);
  (void)attach::remove_dir_flat(dir);
  return 1;
}

}  // namespace ferry::cli
