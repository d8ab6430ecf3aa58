// `ferry vm (--socket PATH | --fd N) [OPTIONS]`: ferry for a QEMU guest that
// connects over QEMU's stream socket, as passt serves it.
//
// Theory of operation. QEMU's `-netdev stream,server=off,addr.type=unix,
// addr.path=PATH` connects to PATH and exchanges Ethernet frames, each behind
// its 32-bit big-endian length (the protocol passt speaks on its --socket).
// This command listens on PATH (or serves fd N handed over by a parent, as
// libvirt does: a listening socket, or one already connected to the guest),
// and runs the same translator as `ferry run` and `ferry attach` on a
// StreamPort (userspace/port/stream.h): one guest at a time, reconnects
// accepted (a rebooted or restarted VM finds ferry again), a second guest
// while one is served refused. There is no device, so no BPF: no classifier,
// no fast path, no pinned maps; `ferry stats` lists the instance (vm-PID)
// from its counters file (/run/ferry-run/vm-PID/counters) and says so. The
// stream carries no vnet header, so no offloads: frames are at most the
// MTU (1500 unless -m, which must match the guest's: QEMU's host_mtu),
// with full checksums both ways.
// As `ferry run` does (userspace/sandbox/process_split.h), it splits in two
// after set-up (socket, listeners for -t/-u, counters directory): the
// translator, the only process that reads guest frames, enters the sandbox
// (nobody, no capabilities, empty root, seccomp); the parent writes the
// counters file from the translator's messages, relays SIGTERM/SIGINT/SIGHUP
// as "stop", and removes the socket file at the end. Run by a user other than
// root there is no sandbox to enter (it needs root): ferry says so and
// translates all the same; its counters file is then under the caller's own
// directory (run_base_dir(), counters_file.h), where `ferry stats` run by
// that user finds it.
// Runs in the foreground until SIGTERM/SIGINT/SIGHUP, or, when given a
// connected fd, until that guest leaves.
// Exit status: 0 after a signal or the guest leaving, 1 on failure, 2 usage.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "common/instance_lock.h"
#include "commands.h"
#include "common/option_table.h"
#include "counters_file.h"
#include "loop/event_loop.h"
#include "options.h"
#include "port/stream.h"
#include "sandbox/options.h"
#include "sandbox/process_split.h"
#include "translator/translator.h"
#include "session.h"
#include "stale_sweep.h"

namespace ferry::cli {

namespace {

constexpr const char* kVmUsage =
    "usage: ferry vm (--socket PATH | --fd N) [OPTIONS]\n"
    "\n"
    "Serves a QEMU guest over QEMU's stream socket (the protocol of passt's --socket:\n"
    "each Ethernet frame behind its 32-bit big-endian length). Point QEMU at PATH:\n"
    "  qemu-system-x86_64 ... -netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH \\\n"
    "                         -device virtio-net-pci,netdev=n0\n"
    "One guest at a time; it may disconnect and connect again. The guest's TCP, UDP and\n"
    "pings become sockets of this host, as with `ferry run`; the gateway reaches this\n"
    "host's loopback. No BPF in this mode. Runs until SIGTERM/SIGINT.\n"
    "\n"
    "options:\n";

constexpr const char* kVmMtuNote = "  (the MTU defaults to 1500, virtio-net's; -m must match the guest's MTU)\n";

// Frames up to this much above the MTU: the Ethernet header and a VLAN tag.
constexpr size_t kFrameOverhead = 14 + 4;

// Says when guests come and go (unless quiet), and stops the loop when a
// port without a listener lost its guest.
class GuestWatch {
 public:
  GuestWatch(EventLoop& loop, const StreamPort& port, bool quiet) : loop_(loop), port_(port), quiet_(quiet) {}
  void check() {
    const StreamPort::Counters& c = port_.stream_counters();
    if (!quiet_) {
      if (c.protocol_errors != seen_.protocol_errors) {
        std::fprintf(stderr,
                     "ferry vm: a frame length outside %zu..%zu bytes: not QEMU's stream protocol, or "
                     "the guest's MTU is above ferry's (-m); connection dropped\n",
                     StreamPort::kMinFrame, port_.max_frame());
      }
      if (c.disconnects != seen_.disconnects) std::fprintf(stderr, "ferry vm: guest disconnected\n");
      if (c.connections != seen_.connections) std::fprintf(stderr, "ferry vm: guest connected\n");
      if (c.refused != seen_.refused) std::fprintf(stderr, "ferry vm: refused a second guest (one at a time)\n");
    }
    seen_ = c;
    if (port_.closed()) loop_.stop();
  }

  // The counters file's lines: the translator's, then the stream's.
  static std::string counters(Translator& tr, const StreamPort& port) {
    std::string text = counters_text(tr, port);
    const StreamPort::Counters& c = port.stream_counters();
    auto line = [&text](const char* k, uint64_t v) { text += std::string(k) + "=" + std::to_string(v) + "\n"; };
    line("stream_connected", port.connected() ? 1 : 0);
    line("stream_connections", c.connections);
    line("stream_disconnects", c.disconnects);
    line("stream_refused", c.refused);
    line("stream_protocol_errors", c.protocol_errors);
    line("stream_rx_reads", c.rx_reads);
    line("stream_tx_partial", c.tx_partial);
    return text;
  }

 private:
  EventLoop& loop_;
  const StreamPort& port_;
  bool quiet_;
  StreamPort::Counters seen_;
};

// Parses --fd's value: a descriptor this process has open.
bool parse_fd(const char* text, int* fd) {
  const char* end = text + std::strlen(text);
  auto [p, ec] = std::from_chars(text, end, *fd);
  return ec == std::errc() && p == end && *fd >= 0 && fcntl(*fd, F_GETFD) >= 0;
}

// `ferry vm`'s own settings (beside the translator's Config and the sandbox's).
struct VmArgs {
  std::string socket_path;  // --socket
  int given_fd = -1;        // --fd
  bool quiet = false;
};

bool apply_fd(VmArgs& a, const char* v, std::string* error) {
  if (parse_fd(v, &a.given_fd)) return true;
  *error = "--fd " + std::string(v) + " is not an open file descriptor";
  return false;
}

constexpr Option<VmArgs> kVmOptions[] = {
    {{"--socket", 's', "PATH", "listen on a UNIX socket at PATH (a stale one is replaced)"},
     option::text<&VmArgs::socket_path>},
    {{"--fd", 0, "N",
      "serve inherited fd N instead: a listening stream socket,\n"
      "or one connected to the guest (ferry exits when it leaves)"},
     apply_fd},
    {{"--quiet", 'q', nullptr, "no messages but errors"}, option::set<&VmArgs::quiet, true>},
};

}  // namespace

int cmd_vm(int argc, char** argv) {
  Config config = Config::defaults();
  sandbox::Options sandbox_options;
  config.mtu = 1500;  // virtio-net's default; -m overrides
  config.fastpath = false;
  VmArgs args;
  OptionParser parser("ferry vm");
  parser.text(kVmUsage).add(kVmOptions, &args).help_line().text(kVmMtuNote);
  add_translator_options(parser, &config);
  parser.add(sandbox::option_table(), &sandbox_options).unknown_format("unknown option or argument '%s' (try 'ferry vm --help')");
  std::vector<char*> operands;
  if (std::optional<int> exit = parser.parse_or_exit(argc, argv, &operands)) return *exit;
  if (!operands.empty()) {
    std::fprintf(stderr, "ferry vm: unknown option or argument '%s' (try 'ferry vm --help')\n", operands[0]);
    return 2;
  }
  const bool seccomp_given = parser.seen("--seccomp");
  const std::string& socket_path = args.socket_path;
  int given_fd = args.given_fd;
  const bool quiet = args.quiet;
  if (socket_path.empty() == (given_fd < 0)) {
    std::fprintf(stderr, "ferry vm: give exactly one of --socket PATH and --fd N\n");
    return 2;
  }
  config.fastpath = false;  // no device, no BPF, whatever was asked
  Status valid = validate_config(config);
  if (valid.ok()) valid = refuse_auto_forwards(config);
  if (valid.ok()) valid = refuse_ns_forwards(config);
  if (!valid.ok()) {
    std::fprintf(stderr, "ferry vm: %s\n", valid.message().c_str());
    return 2;
  }
  prepare_forwards(&config);
  if (Status st = sandbox::resolve(&sandbox_options, seccomp_given); !st.ok()) {
    std::fprintf(stderr, "ferry vm: %s\n", st.message().c_str());
    return 2;
  }
  const bool root = geteuid() == 0;
  if (!root && sandbox_options.enabled) {
    if (!quiet) std::fprintf(stderr, "ferry vm: note: not root: no sandbox\n");
    sandbox_options.enabled = false;
  }

  signal(SIGPIPE, SIG_IGN);
  sigset_t handled;
  sigemptyset(&handled);
  for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP}) sigaddset(&handled, s);
  sigprocmask(SIG_BLOCK, &handled, nullptr);

  // The guest's socket: ours at PATH, or the one handed over.
  int listen_fd = -1, conn_fd = -1;
  if (!socket_path.empty()) {
    Result<int> l = StreamPort::listen_unix(socket_path);
    if (!l) {
      std::fprintf(stderr, "ferry vm: %s\n", l.status().message().c_str());
      return 1;
    }
    listen_fd = *l;
  } else {
    int type = 0, listening = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(given_fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
      std::fprintf(stderr, "ferry vm: --fd %d is not a stream socket\n", given_fd);
      return 1;
    }
    len = sizeof(listening);
    getsockopt(given_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    fcntl(given_fd, F_SETFD, FD_CLOEXEC);
    (listening ? listen_fd : conn_fd) = given_fd;
  }
  // Removes the socket file we made, however we leave.
  struct Unlink {
    std::string path;
    ~Unlink() {
      if (!path.empty()) unlink(path.c_str());
    }
  } unlink_socket{socket_path};

  Result<std::unique_ptr<StreamPort>> port = StreamPort::create(listen_fd, conn_fd, config.mtu + kFrameOverhead);
  if (!port) {
    std::fprintf(stderr, "ferry vm: %s\n", port.status().message().c_str());
    return 1;
  }
  // The translator (session.h): no connection view, no fast path here.
  Result<std::unique_ptr<Session>> made = Session::create("ferry vm", quiet, **port, config, sandbox_options);
  if (!made) {
    std::fprintf(stderr, "ferry vm: %s\n", made.status().message().c_str());
    return 1;
  }
  Session& session = **made;
  Translator& translator = session.translator();
  if (Status st = session.start(); !st.ok()) {
    std::fprintf(stderr, "ferry vm: %s\n", st.message().c_str());
    return 1;
  }
  session.open_echo_sockets();
  const std::string instance = "vm-" + std::to_string(getpid());
  std::optional<RunCountersFile> counters_file;
  {
    const mode_t old_umask = umask(077);
    // Alive for others while this lock is held (common/instance_lock.h);
    // on failure the counters directory is judged by kill(PID, 0) instead.
    // Not root: no lock (/run/ferry-run is root's), and the directory is
    // under the caller's own base (run_base_dir), as a rootless ferry run's.
    if (root) (void)hold_run_instance_lock(instance);
    sweep_dead_instances();  // what killed instances left (stale_sweep.h)
    counters_file.emplace(instance);
    if (std::string error; !counters_file->open(&error) && !quiet) {
      std::fprintf(stderr, "ferry vm: warning: no counters file (%s)\n", error.c_str());
    }
    umask(old_umask);
  }
  if (Status st = session.watch_signals(handled); !st.ok()) {
    std::fprintf(stderr, "ferry vm: %s\n", st.message().c_str());
    return 1;
  }
  if (!quiet) {
    if (!socket_path.empty())
      std::fprintf(stderr, "ferry vm: listening on %s (instance %s, MTU %u, no BPF)\n", socket_path.c_str(),
                   instance.c_str(), config.mtu);
    else
      std::fprintf(stderr, "ferry vm: serving fd %d (instance %s, MTU %u, no BPF)\n", given_fd, instance.c_str(),
                   config.mtu);
  }
  // The translator: a child that enters the sandbox and runs the loop.
  const StreamPort& sp = **port;
  GuestWatch watch(session.loop(), sp, quiet);
  Session::ChildHooks child_hooks;
  child_hooks.first = [&unlink_socket] { unlink_socket.path.clear(); };  // the parent's to remove
  child_hooks.counters = [&translator, &sp] { return GuestWatch::counters(translator, sp); };
  child_hooks.prepare = [&session, &watch](sandbox::ParentChannel&) {
    session.loop().add_batch_end_hook([&watch] { watch.check(); });
  };
  child_hooks.run = [&session, &watch, &sp] {
    watch.check();
    if (!sp.closed()) session.loop().run();
  };
  if (Status st = session.spawn(instance, std::move(child_hooks)); !st.ok()) {
    std::fprintf(stderr, "ferry vm: %s\n", st.message().c_str());
    return 1;
  }
  sandbox::TranslatorSupervisor& supervisor = session.supervisor();
  supervisor.hooks.on_signal = [&supervisor](const signalfd_siginfo&) { supervisor.send('S'); };
  supervisor.hooks.on_counters = [&counters_file](std::string_view text) {
    if (counters_file) counters_file->write(text);
  };
  if (Status st = session.wait_ready(20000); !st) {
    std::fprintf(stderr, "ferry vm: %s\n", st.message().c_str());
    return 1;
  }
  const int status = supervisor.run();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "ferry vm: the translator %s\n", sandbox::TranslatorSupervisor::describe_exit(status).c_str());
    return 1;
  }
  return 0;
}

}  // namespace ferry::cli
