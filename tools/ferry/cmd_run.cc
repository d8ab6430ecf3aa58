// `ferry run [OPTIONS] [--] [CMD [ARGS]]`: pasta's one-liner, ferry's way.
//
// Theory of operation, in the order things happen:
//   1. a fresh anonymous network namespace (or --netns PATH|NAME);
//   2. a tap inside it, its fd held here (the tap dies with the fd);
//   3. the guest side configured over netlink: lo up, MTU, addresses
//      (IPv6 without DAD, so it is usable at once), default routes;
//   4. the BPF classifier attached to the tap's TC egress (the guest's
//      frames), maps pinned under /sys/fs/bpf/ferry/run-<pid>/; if BPF cannot
//      be loaded ferry warns and goes on without the fast path;
//   5. the translator is built, as `ferry attach` and `ferry vm` build it
//      (session.h: the --pcap capture, listening sockets for -t/-u, the
//      pinned connection view, the TCP fast path (userspace/fastpath) when
//      the classifier is loaded, raw ICMP sockets when the sandbox user may
//      not open ping sockets);
//   6. the translator process is forked (session.h, userspace/sandbox/
//      process_split.h): it enters the sandbox (no privileges, empty root,
//      seccomp) and says it is ready; this process stays privileged and only
//      supervises;
//   7. CMD is forked, by us, into the namespace (with the host's filesystem
//      and user: only the network is its own), FERRY_INSTANCE=run-<pid> in
//      its environment. When the host's resolv.conf names only loopback
//      resolvers (which the guest's loopback is not), or --dns was given,
//      CMD gets a private mount namespace whose /etc/resolv.conf names the
//      DNS servers ferry hands out (its forwarder, or --dns), as `ip netns
//      exec` does with /etc/netns/NAME/resolv.conf;
//   8. the translator's loop runs until we tell it CMD ended, and then for
//      at most 3 s more while TCP connections are still closing (so what
//      the guest wrote just before it exited still reaches the host); when
//      it has exited, everything above is undone in reverse order by
//      destructors, here, and ferry exits with CMD's status (128+N when CMD
//      was killed by signal N). If the translator dies first, CMD is
//      killed and ferry exits 1 saying how the translator ended.
// The counters file is written by this process from the translator's
// messages (the translator cannot see /run).
// Signals: SIGTERM and SIGHUP are forwarded to CMD; SIGINT and SIGQUIT are
// forwarded only when another process sent them (a terminal's Ctrl-C already
// reaches CMD, which shares our process group). A second SIGTERM/SIGINT kills
// CMD. If ferry itself dies, CMD gets SIGHUP and the translator SIGKILL
// (PR_SET_PDEATHSIG), and the next ferry removes the stale pins.
// Exit status: CMD's, or 1 when ferry fails before CMD runs, 2 on bad usage.
// As an ordinary user (no CAP_SYS_ADMIN/CAP_NET_ADMIN in the initial user
// namespace) steps 1-3 happen in a user namespace of the guest's own, 4 is
// skipped, and nothing is written under /run: the counters file and a file
// holding the connection view are under the caller's own directory
// (counters_file.h, run_rootless.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autofwd/listen_tables.h"
#include "bpf/classify.h"
#include "bpf/fastpath_maps.h"
#include "commands.h"
#include "common/option_table.h"
#include "ferry/contract.h"
#include "counters_file.h"
#include "attach/conn_view_file.h"
#include "loop/event_loop.h"
#include "netns/guest_setup.h"
#include "netns/netns.h"
#include "nsfwd/ns_listeners.h"
#include "nsfwd/ns_steering.h"
#include "stale_sweep.h"
#include "nsfwd/tcp_relay.h"
#include "nsfwd/udp_relay.h"
#include "common/instance_lock.h"
#include "options.h"
#include "port/tap.h"
#include "sandbox/options.h"
#include "sandbox/private_dir.h"
#include "sandbox/process_split.h"
#include "services/guest_services.h"
#include "services/resolv_conf.h"
#include "tcp/tcp_translator.h"
#include "translator/translator.h"
#include "run_rootless.h"
#include "session.h"
#include "udp/udp_translator.h"

namespace ferry::cli {

namespace {

// --pid FILE: ferry's own PID (SIGTERM/SIGHUP to it reach CMD), written
// when CMD has started and removed when this object goes (every exit path
// after set-up). An empty path writes nothing.
class PidFile {
 public:
  explicit PidFile(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
    if (std::FILE* f = std::fopen(path_.c_str(), "we")) {
      std::fprintf(f, "%d\n", static_cast<int>(getpid()));
      written_ = std::fclose(f) == 0;
    }
    if (!written_) std::fprintf(stderr, "ferry run: --pid %s: %s\n", path_.c_str(), std::strerror(errno));
  }
  ~PidFile() {
    if (written_) unlink(path_.c_str());
  }
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;

 private:
  std::string path_;
  bool written_ = false;
};

}  // namespace

namespace {

constexpr const char* kRunUsage =
    "usage: ferry run [OPTIONS] [--] [CMD [ARGS]]\n"
    "\n"
    "Runs CMD (default: $SHELL, else /bin/sh) in a fresh network namespace whose only\n"
    "interface is a tap that ferry translates: the guest's TCP connections, UDP flows\n"
    "and pings become ordinary sockets of this host. The gateway address reaches the\n"
    "host's loopback. Exits with CMD's exit status (128+N if CMD died of signal N),\n"
    "1 if ferry failed before CMD ran, 2 on a usage error.\n"
    "\n"
    "As an ordinary user ferry runs rootless: CMD gets a user namespace of its own\n"
    "(root inside, you outside), there is no BPF fast path, forwards take host ports\n"
    ">= 1024, and --netns, --runas and --mark need root (see README).\n"
    "\n"
    "options:\n";

// `ferry run`'s own settings (beside the translator's Config and the sandbox's).
struct RunArgs {
  std::string netns;     // --netns: an existing namespace instead of a new one
  std::string pid_path;  // --pid: ferry's PID, written once CMD runs, removed at exit
  bool quiet = false;
};

// --pid FILE: an empty name is as good as none.
bool apply_pid(RunArgs& a, const char* v, std::string* error) {
  if (*v == '\0') {
    *error = "option --pid needs a file name";
    return false;
  }
  a.pid_path = v;
  return true;
}

constexpr Option<RunArgs> kRunOptions[] = {
    {{"--netns", 0, "PATH|NAME", "use this existing namespace instead of a new one"}, option::text<&RunArgs::netns>},
    {{"--pid", 0, "FILE",
      "write ferry's PID (the one to signal) to FILE once\n"
      "CMD runs; removed when ferry exits",
      nullptr, "option --pid needs a file name"},
     apply_pid},
    {{"--quiet", 'q', nullptr, "no messages but errors"}, option::set<&RunArgs::quiet, true>},
};

// Signals we handle through a signalfd instead of by default action.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, s);
  return set;
}

// In the translator: after CMD ended, translation goes on while TCP
// connections are still closing, so data the guest wrote just before it
// exited (and that its kernel may still have to retransmit) reaches the
// host; at most kDrainNs.
class DrainAfterCmd final : public TimerClient {
 public:
  static constexpr uint64_t kDrainNs = 3'000'000'000;
  static constexpr uint64_t kDrainPollNs = 10'000'000;

  // `busy` tells whether connections are still open.
  DrainAfterCmd(EventLoop& loop, std::function<bool()> busy) : loop_(loop), busy_(std::move(busy)) {}

  // CMD ended (the parent said so): stop now or drain.
  void start() {
    if (!busy_()) {
      loop_.stop();
      return;
    }
    drain_until_ = now_ns() + kDrainNs;
    next_poll_ = now_ns() + kDrainPollNs;
  }
  uint64_t next_deadline_ns() const override { return next_poll_; }
  void on_timer(uint64_t now) override {
    if (now < next_poll_) return;
    if (!busy_() || now >= drain_until_) {
      loop_.stop();
      next_poll_ = kNever;
      return;
    }
    next_poll_ = now + kDrainPollNs;
  }

 private:
  EventLoop& loop_;
  std::function<bool()> busy_;
  uint64_t drain_until_ = 0;
  uint64_t next_poll_ = kNever;
};

// In the privileged parent: forwards signals to CMD, tells the translator
// when CMD ended (it drains) or when to stop at once.
class CmdSignals {
 public:
  explicit CmdSignals(sandbox::TranslatorSupervisor& sup) : sup_(sup) {}
  void set_child(pid_t child) { child_ = child; }

  void on_signal(const signalfd_siginfo& si) {
    const int sig = static_cast<int>(si.ssi_signo);
    const bool from_process = si.ssi_code == SI_USER || si.ssi_code == SI_QUEUE;
    if ((sig == SIGINT || sig == SIGQUIT) && !from_process) return;  // the tty told CMD too
    if (exit_code_ || child_ <= 0) {  // CMD is gone (we are draining), or not started: stop now
      sup_.send('S');
      return;
    }
    if ((sig == SIGTERM || sig == SIGINT) && ++terminations_ > 1) {
      kill(child_, SIGKILL);
      return;
    }
    kill(child_, sig);
  }
  void on_child_exit(pid_t pid, int status) {
    if (pid != child_) return;
    if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) exit_code_ = 128 + WTERMSIG(status);
    else exit_code_ = 1;
    sup_.send('D');
  }
  std::optional<int> exit_code() const { return exit_code_; }

 private:
  sandbox::TranslatorSupervisor& sup_;
  pid_t child_ = 0;
  int terminations_ = 0;
  std::optional<int> exit_code_;
};

// -v, in the translator after its loop: what it made of the guest's frames.
void print_translator_summary(Translator& translator) {
  const Translator::Counters& t = translator.counters();
  const TcpTranslator::Counters& tc = translator.tcp().counters();
  const services::GuestServices& sv = translator.services();
  const uint64_t services_malformed = sv.dhcp4().counters().malformed + sv.dhcp6().counters().malformed +
                                      sv.ra().counters().malformed + sv.dns().counters().malformed;
  std::fprintf(stderr,
               "ferry run: translator: frames=%llu malformed=%llu not_for_us=%llu unhandled=%llu "
               "tcp_dropped=%llu rst_to_guest=%llu challenge_acks=%llu services_malformed=%llu "
               "spoofed_source=%llu policy_refused=%llu\n",
               static_cast<unsigned long long>(t.frames), static_cast<unsigned long long>(t.malformed),
               static_cast<unsigned long long>(t.not_for_us), static_cast<unsigned long long>(t.unhandled),
               static_cast<unsigned long long>(tc.dropped_segments),
               static_cast<unsigned long long>(tc.rst_to_guest),
               static_cast<unsigned long long>(tc.challenge_acks),
               static_cast<unsigned long long>(services_malformed),
               static_cast<unsigned long long>(translator.policy().counters().spoofed_source),
               static_cast<unsigned long long>(translator.policy().counters().refused_total()));
}

// -T/-U: the guest-side sockets (made inside the guest's namespaces: userns
// is -1 for root's ferry) and the relays that watch them on `loop`; nothing
// when neither option was given. -T all's ports go through one listener
// per family where BPF can steer them (root's ferry; *steer keeps the
// program attached), else a listener each (prepare_forwards trimmed them).
Status open_ns_relays(const Config& config, int userns, int netns, EventLoop& loop, std::unique_ptr<NsTcpRelay>* tcp,
                      std::unique_ptr<NsUdpRelay>* udp, std::unique_ptr<NsSteering>* steer) {
  if (!config.tcp_ns_forwards.empty()) {
    if (userns < 0 && has_all_ports(config.tcp_ns_forwards)) {  // BPF needs root
      Result<std::unique_ptr<NsSteering>> s = NsSteering::load(config.tcp_ns_forwards);
      if (s) {
        *steer = std::move(*s);
      } else if (config.verbose) {
        std::fprintf(stderr, "ferry run: -T all: a listener per port (%s)\n", s.status().message().c_str());
      }
    }
    Result<std::vector<NsListener>> ls =
        open_ns_listeners(userns, netns, config.tcp_ns_forwards, false, config.ipv4, config.ipv6, *steer != nullptr);
    if (!ls) return Status(ls.status().err(), "-T: " + ls.status().what());
    if (*steer) {
      int fd[2] = {-1, -1};
      for (const NsListener& l : *ls)
        if (l.steered) fd[l.v6 ? 1 : 0] = l.fd;
      Status st = (*steer)->set_listeners(fd[0], fd[1]);
      if (st) st = (*steer)->attach(netns);
      if (!st) {
        for (const NsListener& l : *ls) close(l.fd);
        return Status(st.err(), "-T all: " + st.what());
      }
    }
    *tcp = std::make_unique<NsTcpRelay>(loop, config.socket_mark, config.verbose);
    if (Status st = (*tcp)->start(std::move(*ls), config.tcp_ns_forwards); !st) return st;
  }
  if (!config.udp_ns_forwards.empty()) {
    Result<std::vector<NsListener>> ls =
        open_ns_listeners(userns, netns, config.udp_ns_forwards, true, config.ipv4, config.ipv6);
    if (!ls) return Status(ls.status().err(), "-U: " + ls.status().what());
    *udp = std::make_unique<NsUdpRelay>(loop, config.socket_mark, config.verbose);
    if (Status st = (*udp)->start(std::move(*ls)); !st) return st;
  }
  return {};
}

// -v, in the translator after its loop: what -T and -U carried.
void print_ns_relay_summary(const NsTcpRelay* tcp, const NsUdpRelay* udp) {
  if (tcp) {
    const NsTcpRelay::Counters& c = tcp->counters();
    std::fprintf(stderr,
                 "ferry run: -T: accepted=%llu closed=%llu reset=%llu connect_failed=%llu refused_full=%llu "
                 "to_host=%llu to_guest=%llu\n",
                 static_cast<unsigned long long>(c.accepted), static_cast<unsigned long long>(c.closed),
                 static_cast<unsigned long long>(c.reset), static_cast<unsigned long long>(c.connect_failed),
                 static_cast<unsigned long long>(c.refused_full), static_cast<unsigned long long>(c.bytes_to_host),
                 static_cast<unsigned long long>(c.bytes_to_guest));
  }
  if (udp) {
    const NsUdpRelay::Counters& c = udp->counters();
    std::fprintf(stderr,
                 "ferry run: -U: flows=%llu datagrams_to_host=%llu datagrams_to_guest=%llu dropped_full=%llu "
                 "host_errors=%llu send_errors=%llu\n",
                 static_cast<unsigned long long>(c.flows_opened), static_cast<unsigned long long>(c.datagrams_to_host),
                 static_cast<unsigned long long>(c.datagrams_to_guest),
                 static_cast<unsigned long long>(c.dropped_full), static_cast<unsigned long long>(c.host_errors),
                 static_cast<unsigned long long>(c.send_errors));
  }
}

// Child side of the fork: enter the guest namespace (rootless: its user
// namespace first) and exec CMD.
[[noreturn]] void exec_guest(int userns_fd, int netns_fd, const std::vector<char*>& cmd, const std::string& instance,
                             const sigset_t& old_mask, mode_t old_umask, const std::string& resolv_conf) {
  umask(old_umask);
  Status entered = userns_fd >= 0 ? enter_guest_namespaces(userns_fd, netns_fd)
                                  : (setns(netns_fd, CLONE_NEWNET) == 0 ? Status() : Status::from_errno("setns"));
  if (!entered) {
    std::fprintf(stderr, "ferry: cannot enter the guest namespace: %s\n", entered.message().c_str());
    _exit(127);
  }
  prctl(PR_SET_PDEATHSIG, SIGHUP);  // after setns: a new user namespace clears it
  // The guest's own /etc/resolv.conf: a private mount namespace (mounts
  // propagate in from the host, not out) with the file bound over it.
  if (!resolv_conf.empty()) {
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0 ||
        mount(resolv_conf.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0) {
      std::fprintf(stderr, "ferry: warning: the guest keeps the host's /etc/resolv.conf: %s\n", std::strerror(errno));
    }
  }
  setenv("FERRY_INSTANCE", instance.c_str(), 1);
  signal(SIGPIPE, SIG_DFL);
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  std::vector<char*> argv = cmd;
  std::string shell;
  if (argv.empty()) {
    const char* sh = std::getenv("SHELL");
    shell = (sh != nullptr && *sh != '\0') ? sh : "/bin/sh";
    argv.push_back(shell.data());
  }
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  std::fprintf(stderr, "ferry: cannot run '%s': %s\n", argv[0], std::strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
}

}  // namespace

int cmd_run(int argc, char** argv) {
  Config config = Config::defaults();
  sandbox::Options sandbox_options;
  RunArgs args;
  OptionParser parser("ferry run");
  parser.text(kRunUsage).add(kRunOptions, &args).help_line();
  add_translator_options(parser, &config);
  parser.add(sandbox::option_table(), &sandbox_options).stop_at_operand();
  std::vector<char*> cmd;  // the first operand (or what follows --) and everything after it
  if (std::optional<int> exit = parser.parse_or_exit(argc, argv, &cmd)) return *exit;
  const bool seccomp_given = parser.seen("--seccomp");
  const bool runas_given = parser.seen("--runas");
  const std::string& netns_spec = args.netns;
  const bool quiet = args.quiet;
  const std::string& pid_path = args.pid_path;

  if (Status st = validate_config(config); !st.ok()) {
    std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
    return 2;
  }
  if (Status st = sandbox::resolve(&sandbox_options, seccomp_given); !st.ok()) {
    std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
    return 2;
  }
  const bool rootless = rootless::wanted();
  if (rootless) {
    if (int rc = rootless::prepare(&config, &sandbox_options, {!netns_spec.empty(), runas_given, quiet, parser.seen("--max-conns"), parser.seen("--max-udp-flows")}); rc != 0)
      return rc;
  }
  prepare_forwards(&config, !rootless);  // root's -T all: one listener per family (nsfwd/ns_steering.h)
  const services::ResolvConf host_dns = services::read_resolv_conf();
  finish_services_config(&config, host_dns);
  // The guest's resolv.conf, when the host's cannot serve it as it is.
  std::string guest_resolv;
  if (!config.services.dns.empty() || (config.services.dns_forward && services::only_loopback(host_dns))) {
    std::vector<InetAddr> servers;
    ServicesConfig::DnsList family;
    if (config.ipv4) {
      const size_t n = config.services.handed_out(false, config.gateway4, family);
      servers.insert(servers.end(), family.begin(), family.begin() + static_cast<long>(n));
    }
    if (config.ipv6) {
      const size_t n = config.services.handed_out(true, config.gateway6, family);
      servers.insert(servers.end(), family.begin(), family.begin() + static_cast<long>(n));
    }
    guest_resolv = services::render_guest_resolv_conf(servers, config.services.search, host_dns);
  }

  const std::string instance = "run-" + std::to_string(getpid());
  const mode_t old_umask = umask(077);  // ferry's files 0600, directories 0700 (CMD gets the caller's)
  signal(SIGPIPE, SIG_IGN);
  sigset_t handled = handled_signals(), old_mask;
  sigprocmask(SIG_BLOCK, &handled, &old_mask);

  // 1.-3. the namespace, the tap, the guest's addresses and routes;
  // rootless: all three at once, in a user namespace of the guest's own
  NetnsFd userns;  // rootless only
  NetnsFd guest_ns;
  std::unique_ptr<TapPort> tap;
  ListenTables guest_tables;  // -t/-u auto, rootless: opened by the helper that made the namespace
  if (rootless) {
    Result<rootless::Guest> guest = rootless::make_guest(config);
    if (!guest) {
      std::fprintf(stderr, "ferry run: the guest's namespaces: %s\n", guest.status().message().c_str());
      return 1;
    }
    userns = std::move(guest->ns.userns);
    guest_ns = std::move(guest->ns.netns);
    tap = std::move(guest->tap);
    guest_tables = std::move(guest->tables);
  } else {
    // 1. the namespace
    Result<NetnsFd> ns = netns_spec.empty() ? create_netns() : open_netns(netns_spec);
    if (!ns) {
      std::fprintf(stderr, "ferry run: %s\n", ns.status().message().c_str());
      return 1;
    }
    guest_ns = std::move(*ns);
    // Our own namespace as the guest's: its addresses and default route would
    // be written where our host sockets live.
    if (Result<NetnsFd> own = current_netns(); own && same_netns(own->get(), guest_ns.get())) {
      std::fprintf(stderr, "ferry run: --netns %s is ferry's own namespace (its host sockets live there)\n",
                   netns_spec.c_str());
      return 1;
    }
    // 2. the tap
    TapOptions tap_options;
    tap_options.ifname = config.ifname;
    tap_options.mtu = config.mtu;
    Result<std::unique_ptr<TapPort>> made = TapPort::create(guest_ns.get(), tap_options);
    if (!made) {
      std::fprintf(stderr, "ferry run: %s\n", made.status().message().c_str());
      return 1;
    }
    tap = std::move(*made);
    // 3. the guest's addresses and routes
    if (Status st = configure_guest_link(guest_ns.get(), guest_link_setup(config)); !st) {
      std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
      return 1;
    }
  }
  // 4. the classifier (its pin root and our run dir: root's alone; a
  // rootless run pins and writes nothing there)
  if (!rootless) {
    for (const char* root : {FERRY_PIN_ROOT, "/run/ferry-run"}) {
      if (Status st = sandbox::ensure_private_dir(root); !st) {
        std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
        return 1;
      }
    }
    // Our liveness lock before any pin: others judge run-PID by it, never by
    // kill(PID, 0), which another PID namespace answers wrongly.
    const int instance_lock = hold_run_instance_lock(instance);
    if (instance_lock < 0) {
      std::fprintf(stderr, "ferry run: %s/lock: %s\n", run_instance_dir(instance).c_str(),
                   errno == EWOULDBLOCK ? "held by a live instance of the same name (another PID namespace)"
                                        : std::strerror(errno));
      return 1;
    }
  }
  std::unique_ptr<BpfAttachment> bpf;
  if (config.fastpath) {
    bpf = std::make_unique<BpfAttachment>();
    Status st = bpf->load(config.max_conns);
    if (st.ok()) st = bpf->attach_tc_egress(guest_ns.get(), tap->ifindex());
    if (st.ok()) st = bpf->pin(instance);
    if (!st.ok()) {
      if (!quiet) std::fprintf(stderr, "ferry run: warning: no BPF classifier (%s); translating in userspace only\n", st.message().c_str());
      bpf.reset();
      config.fastpath = false;
    }
  }
  // 5. the translator, its connection view and fast path (session.h)
  Result<std::unique_ptr<Session>> made = Session::create("ferry run", quiet, *tap, config, sandbox_options);
  if (!made) {
    std::fprintf(stderr, "ferry run: %s\n", made.status().message().c_str());
    return 1;
  }
  Session& session = **made;
  Translator& translator = session.translator();
  translator.set_guest_mac(tap->guest_mac());
  if (Status st = session.start(); !st.ok()) {
    std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
    return 1;
  }
  // -t/-u auto: the guest's socket tables, opened in its namespace now (the
  // sandboxed translator cannot) and re-read by the translator every second.
  if (config.tcp_auto.enabled || config.udp_auto.enabled) {
    Result<ListenTables> tables =
        rootless ? Result<ListenTables>(std::move(guest_tables)) : ListenTables::open_in(guest_ns.get());
    if (!tables) {
      std::fprintf(stderr, "ferry run: -t/-u auto: the guest's socket tables: %s\n", tables.status().message().c_str());
      return 1;
    }
    translator.follow_guest_listeners(std::move(*tables));
  }
  // The live connection table, pinned for `ferry conns` and bpftool.
  if (!rootless) session.pin_conn_view(instance);
  // The TCP fast path: BPF absorbs the guest's pure ACKs of published flows.
  if (bpf && config.fastpath) session.open_fast_path(fastpath_map_fds(*bpf));
  if (!rootless) session.open_echo_sockets();
  // -T/-U: sockets on the guest's loopback, made inside its namespace by a
  // helper (nsfwd/ns_listeners.h); the translator relays them to the host's.
  std::unique_ptr<NsTcpRelay> ns_tcp;
  std::unique_ptr<NsUdpRelay> ns_udp;
  std::unique_ptr<NsSteering> ns_steer;
  if (Status st = open_ns_relays(config, userns.get(), guest_ns.get(), session.loop(), &ns_tcp, &ns_udp, &ns_steer); !st) {
    std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
    return 1;
  }
  // The translator's counters for `ferry stats`, rewritten every second (by us, from its messages).
  // (with the tap's drops, read here: the translator has no netlink socket)
  // (rootless: under the caller's own directory, counters_file.h)
  sweep_dead_instances();  // what killed instances (run, vm, attach) left (stale_sweep.h)
  RunCountersFile counters_file(
      instance, rootless ? GuestPathDrops()
                         : GuestPathDrops(GuestPathDrops::open_netlink(guest_ns.get()), tap->ifindex(), 0));
  std::unique_ptr<attach::ConnViewFile> conns_file;
  if (std::string error; !counters_file.open(&error)) {
    if (!quiet) std::fprintf(stderr, "ferry run: warning: no counters file (%s)\n", error.c_str());
  } else if (rootless) {
    // No bpffs to pin the connection view in: a file beside the counters.
    Result<std::unique_ptr<attach::ConnViewFile>> f =
        attach::ConnViewFile::create(counters_file.dir() + "/conns", translator.config().max_conns);
    if (f) {
      conns_file = std::move(*f);
      session.mirror_conns(conns_file->view(), conns_file->entries());
    } else if (!quiet) {
      std::fprintf(stderr, "ferry run: warning: no connection view (%s)\n", f.status().message().c_str());
    }
  }
  // The guest's resolv.conf, beside the counters (and removed with them);
  // readable by anyone, as /etc/resolv.conf is, for a CMD that drops root.
  // Rootless: in a private directory of the caller's.
  std::string resolv_path;
  rootless::PrivateTempDir rootless_dir;
  if (!guest_resolv.empty() && rootless) {
    if (!rootless_dir.make() || (resolv_path = rootless_dir.write("resolv.conf", guest_resolv)).empty()) {
      std::fprintf(stderr, "ferry run: cannot write the guest's resolv.conf: %s\n", std::strerror(errno));
      return 1;
    }
  } else if (!guest_resolv.empty()) {
    resolv_path = run_counters_dir(instance) + "/resolv.conf";
    std::ofstream out(resolv_path);
    out << guest_resolv;
    out.close();
    if (!out || chmod(resolv_path.c_str(), 0644) != 0) {
      std::fprintf(stderr, "ferry run: cannot write %s\n", resolv_path.c_str());
      return 1;
    }
  }
  if (Status st = session.watch_signals(handled); !st.ok()) {
    std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
    return 1;
  }
  // 6. the translator: a child that enters the sandbox and runs the loop
  // until CMD ends (and its connections closed, or kDrainNs). With the
  // guest's link gone (it deleted its interface) nothing can close any
  // more: CMD's end ends the translator at once.
  DrainAfterCmd drain(session.loop(), [&translator, &ns_tcp] {
    return (!translator.port_gone() && translator.tcp().connection_count() > 0) ||
           (ns_tcp && ns_tcp->connection_count() > 0);  // -T: what CMD wrote before it exited
  });
  Session::ChildHooks child_hooks;
  // The translator holds no handle on the guest's namespaces (the tap's fd
  // is all it needs of them); the parent keeps them alive.
  child_hooks.first = [&guest_ns, &userns] {
    guest_ns.reset();
    userns.reset();
  };
  child_hooks.counters = [&] { return counters_text(translator, *tap, ns_tcp.get(), ns_udp.get()); };
  child_hooks.prepare = [&](sandbox::ParentChannel& channel) {
    session.loop().add_timer_client(&drain);
    channel.set_on_drain([&drain] { drain.start(); });
  };
  child_hooks.after_loop = [&] {
    if (config.verbose) print_translator_summary(translator);
    if (config.verbose) print_ns_relay_summary(ns_tcp.get(), ns_udp.get());
    translator.udp().close_flows("exit");  // their -v close lines
    if (ns_udp) ns_udp->close_flows("exit");
  };
  if (Status st = session.spawn(instance, std::move(child_hooks)); !st.ok()) {
    std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
    return 1;
  }
  // The translator has its copies of the guest-side sockets: a guest that
  // connects after it died is refused, not left in a backlog we hold.
  if (ns_tcp) ns_tcp->drop_listeners_here();
  if (ns_udp) ns_udp->drop_sockets_here();
  sandbox::TranslatorSupervisor& supervisor = session.supervisor();
  CmdSignals cmd_signals(supervisor);
  supervisor.hooks.on_signal = [&cmd_signals](const signalfd_siginfo& si) { cmd_signals.on_signal(si); };
  supervisor.hooks.on_child_exit = [&cmd_signals](pid_t pid, int st) { cmd_signals.on_child_exit(pid, st); };
  supervisor.hooks.on_counters = [&counters_file](std::string_view text) { counters_file.write(text); };
  if (Status st = session.wait_ready(20000); !st) {
    std::fprintf(stderr, "ferry run: %s\n", st.message().c_str());
    return 1;
  }
  // 7. CMD, started by us (entering the guest's namespace needs CAP_SYS_ADMIN)
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr, "ferry run: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (child == 0) exec_guest(userns.get(), guest_ns.get(), cmd, instance, old_mask, old_umask, resolv_path);
  cmd_signals.set_child(child);
  PidFile pid_file(pid_path);
  const int translator_status = supervisor.run();
  if (!cmd_signals.exit_code()) {  // the translator ended first: do not leave CMD behind
    std::fprintf(stderr, "ferry run: the translator %s\n",
                 sandbox::TranslatorSupervisor::describe_exit(translator_status).c_str());
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    return 1;
  }
  if (!WIFEXITED(translator_status) || WEXITSTATUS(translator_status) != 0) {
    std::fprintf(stderr, "ferry run: the translator %s\n",
                 sandbox::TranslatorSupervisor::describe_exit(translator_status).c_str());
  }
  return *cmd_signals.exit_code();
}

}  // namespace ferry::cli
