// Session: see session.h for the theory of operation and the order of steps.
#include "session.h"

#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "gateway/gateway.h"
#include "policy/node_addresses.h"
#include "sandbox/credentials.h"
#include "translator_child.h"

namespace ferry::cli {

Session::Session(const char* who, bool quiet, const sandbox::Options& sandbox)
    : who_(who), quiet_(quiet), sandbox_(sandbox) {}

Result<std::unique_ptr<Session>> Session::create(const char* who, bool quiet, FramePort& port, const Config& config,
                                                 const sandbox::Options& sandbox) {
  std::unique_ptr<Session> s(new Session(who, quiet, sandbox));
  std::string capture_error;
  s->capture_ = open_capture(config.pcap_path, config.pcap_max_bytes, port, s->loop_, &capture_error);
  if (!s->capture_ && !config.pcap_path.empty()) return Status::failure(capture_error);
  s->translator_ = std::make_unique<Translator>(s->loop_, s->capture_ ? static_cast<FramePort&>(*s->capture_) : port,
                                                config);
  return Result<std::unique_ptr<Session>>(std::move(s));
}

// In the parent: the supervisor first (the translator has exited by now, or
// is killed), then the fast path off the TCP table before it goes.
Session::~Session() {
  supervisor_.reset();
  if (sigfd_ >= 0) close(sigfd_);
  if (fast_path_) {
    if (observer_ != nullptr) observer_->chain(nullptr);
    else translator_->tcp().set_observer(nullptr);
  }
}

Status Session::start() { return translator_->start(); }

void Session::pin_conn_view(const std::string& instance) {
  Result<std::unique_ptr<attach::ConnView>> view =
      attach::start_conn_view(loop_, translator_->tcp(), instance, translator_->config().max_conns);
  if (!view) {
    if (!quiet_) std::fprintf(stderr, "%s: warning: no connection view (%s)\n", who_, view.status().message().c_str());
    return;
  }
  conn_view_ = std::move(*view);
  observer_ = &conn_view_->mirror();
}

void Session::mirror_conns(ferry_conn_view* view, uint32_t entries) {
  mirror_ = std::make_unique<attach::ConnMirror>(loop_, translator_->tcp(), view, entries);
  observer_ = mirror_.get();
}

bool Session::open_fast_path(const FastPathMapFds& fds) {
  fast_path_ = std::make_unique<FastPathBridge>(loop_, translator_->tcp(), FastPathBridge::Options::from_environment());
  if (Status st = fast_path_->open(fds); !st.ok()) {
    if (!quiet_) std::fprintf(stderr, "%s: warning: no TCP fast path (%s)\n", who_, st.message().c_str());
    fast_path_.reset();
    return false;
  }
  if (observer_ != nullptr) observer_->chain(fast_path_.get());
  else translator_->tcp().set_observer(fast_path_.get());
  return true;
}

void Session::open_echo_sockets() {
  if (sandbox_.enabled && !sandbox::ping_sockets_allowed(sandbox_.gid)) translator_->gateway().open_raw_echo_sockets();
}

Status Session::watch_signals(const sigset_t& signals) {
  sigfd_ = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sigfd_ < 0) return Status::from_errno("signalfd");
  return {};
}

Status Session::spawn(const std::string& mark_name, ChildHooks hooks) {
  const Config& config = translator_->config();
  if (config.socket_mark != 0 && sandbox_.enabled) {
    Result<std::unique_ptr<MarkCgroup>> mc = MarkCgroup::create(mark_name, config.socket_mark, service_cgroup_);
    if (!mc) return Status::failure("--mark: " + mc.status().message(), mc.status().err());
    mark_cgroup_ = std::move(*mc);
  }
  std::fflush(nullptr);
  Result<sandbox::TranslatorProcess> tp = sandbox::fork_translator();
  if (!tp) return tp.status();
  if (tp->pid == 0) {  // the translator: never returns
    if (hooks.first) hooks.first();
    if (sigfd_ >= 0) close(sigfd_);
    prctl(PR_SET_NAME, "ferry-translate");
    sandbox::ParentChannel channel(loop_, tp->fd, std::move(hooks.counters));
    if (hooks.prepare) hooks.prepare(channel);
    enter_translator_sandbox(who_, *translator_, channel, mark_cgroup_.get(), sandbox_);
    if (hooks.run) hooks.run();
    else loop_.run();
    if (fast_path_ && config.verbose) std::fprintf(stderr, "%s: fast path: %s\n", who_, fast_path_->counters_line().c_str());
    if (hooks.after_loop) hooks.after_loop();
    if (capture_) capture_->finish(who_, config.verbose);
    _exit(0);  // the set-up is the parent's to undo
  }
  supervisor_.emplace(*tp, sigfd_);
  supervisor_->hooks.update = [] { return NodeAddresses::snapshot_text(); };
  return {};
}

Status Session::wait_ready(int timeout_ms) { return supervisor_->wait_ready(timeout_ms); }

}  // namespace ferry::cli
