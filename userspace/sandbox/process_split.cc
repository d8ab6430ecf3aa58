// The parent/translator split: see process_split.h.
#include "sandbox/process_split.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace ferry::sandbox {

namespace {

constexpr size_t kMaxMessage = 16384;

}  // namespace

Result<TranslatorProcess> fork_translator() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return Status::from_errno("socketpair for the translator");
  const pid_t pid = fork();
  if (pid < 0) {
    const Status s = Status::from_errno("fork the translator");
    close(sv[0]);
    close(sv[1]);
    return s;
  }
  if (pid == 0) {
    close(sv[0]);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    return TranslatorProcess{0, sv[1]};
  }
  close(sv[1]);
  return TranslatorProcess{pid, sv[0]};
}

// ---- the translator's side ----------------------------------------------------

ParentChannel::ParentChannel(EventLoop& loop, int fd, CountersFn counters)
    : loop_(loop), fd_(fd), counters_(std::move(counters)) {
  loop_.add(fd_, EPOLLIN, loop_.register_handler(this), 0);
  loop_.add_timer_client(this);
}

ParentChannel::~ParentChannel() {
  loop_.remove(fd_);
  close(fd_);
}

bool ParentChannel::send_ready() { return ::send(fd_, "R", 1, MSG_NOSIGNAL) == 1; }

// Reads the parent's messages; EOF or "S" stops the loop.
void ParentChannel::on_io(uint64_t, uint32_t events) {
  for (;;) {
    char buf[kMaxMessage];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    const char m = n > 0 ? buf[0] : 0;
    if (n <= 0 || m == 'S') {  // the parent is gone, or says stop
      loop_.stop();
      next_ = kNever;
      return;
    }
    if (m == 'D') {
      if (on_drain_) on_drain_();
      else loop_.stop();
    }
    if (m == 'U' && on_update_) on_update_(std::string_view(buf + 1, static_cast<size_t>(n - 1)));
  }
  if (events & (EPOLLHUP | EPOLLERR)) loop_.stop();
}

// Once a second: the counters, for the parent to write.
void ParentChannel::on_timer(uint64_t now) {
  if (now < next_) return;
  next_ = now + 1'000'000'000;
  if (!counters_) return;
  std::string msg = "C" + counters_();
  if (msg.size() > kMaxMessage) msg.resize(kMaxMessage);
  (void)::send(fd_, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// ---- the parent's side --------------------------------------------------------

TranslatorSupervisor::TranslatorSupervisor(TranslatorProcess p, int sigfd) : pid_(p.pid), fd_(p.fd), sigfd_(sigfd) {}

TranslatorSupervisor::~TranslatorSupervisor() {
  if (fd_ >= 0) close(fd_);
  if (!exited_ && pid_ > 0) {  // never leave a translator behind
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void TranslatorSupervisor::reap() {
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(-1, &st, WNOHANG);
    if (r <= 0) return;
    if (r == pid_) {
      exited_ = true;
      status_ = st;
    } else if (hooks.on_child_exit) {
      hooks.on_child_exit(r, st);
    }
  }
}

Status TranslatorSupervisor::wait_ready(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status_, 0);
      exited_ = true;
      return Status(ETIMEDOUT, "the translator did not start");
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno != EINTR) return Status::from_errno("poll");
    if (r <= 0) continue;
    char buf[kMaxMessage];
    const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0 && buf[0] == 'R') return {};
    if (n > 0) continue;  // counters before ready: not expected, harmless
    waitpid(pid_, &status_, 0);  // EOF: it exited before it was ready
    exited_ = true;
    return Status(ECHILD, "the translator " + describe_exit(status_) + " while starting");
  }
}

int TranslatorSupervisor::run() {
  reap();  // a child may have ended already
  while (!exited_) {
    pollfd p[2] = {{sigfd_, POLLIN, 0}, {fd_, POLLIN, 0}};
    const int r = poll(p, fd_ >= 0 ? 2 : 1, -1);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    if (p[0].revents & POLLIN) {
      signalfd_siginfo si{};
      while (read(sigfd_, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
        if (si.ssi_signo == SIGCHLD) reap();
        else if (hooks.on_signal) hooks.on_signal(si);
      }
    }
    if (fd_ >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[kMaxMessage];
      const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 1 && buf[0] == 'C' && hooks.on_counters) {
        hooks.on_counters(std::string_view(buf + 1, static_cast<size_t>(n - 1)));
        // The translator is alive and reading: time for an update?
        if (hooks.update && now_ns() >= next_update_ns_) {
          next_update_ns_ = now_ns() + 2'000'000'000;
          std::string u = "U" + hooks.update();
          if (u.size() > 1 && u.size() <= kMaxMessage) (void)::send(fd_, u.data(), u.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        }
      } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(fd_);  // the translator is exiting: wait for SIGCHLD
        fd_ = -1;
      }
    }
  }
  if (!exited_) {  // poll failed: do not leave it behind
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    exited_ = true;
  }
  return status_;
}

void TranslatorSupervisor::send(char message) {
  if (fd_ >= 0 && !exited_) (void)::send(fd_, &message, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

std::string TranslatorSupervisor::describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    std::string s = "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    if (sig == SIGSYS)
      s += ": a system call outside its seccomp allow-list; FERRY_SECCOMP=log names it in the kernel log";
    return s;
  }
  return "ended (status " + std::to_string(status) + ")";
}

}  // namespace ferry::sandbox
