// run_program(): see exec.h for the theory of operation.
#include "cni/exec.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

extern char** environ;

namespace ferry::cni {

namespace {

constexpr size_t kOutputCap = 4 << 20;

// An anonymous in-memory file.
int make_memfd(const char* name) { return ::memfd_create(name, MFD_CLOEXEC); }

// Reads a memfd from its start, at most kOutputCap bytes.
std::string slurp(int fd) {
  std::string s;
  if (::lseek(fd, 0, SEEK_SET) < 0) return s;
  char buf[8192];
  while (s.size() < kOutputCap) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    s.append(buf, static_cast<size_t>(n));
  }
  return s;
}

// Milliseconds on the monotonic clock.
long long now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Closes the fds it owns.
struct Fds {
  int in = -1, out = -1, err = -1;
  ~Fds() {
    for (int fd : {in, out, err}) {
      if (fd >= 0) ::close(fd);
    }
  }
};

}  // namespace

bool is_executable(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string find_in_dirs(std::string_view name, const std::vector<std::string>& dirs) {
  if (name.empty() || name.find('/') != std::string_view::npos) return "";
  for (const std::string& d : dirs) {
    std::string p = d + "/" + std::string(name);
    if (is_executable(p)) return p;
  }
  return "";
}

Result<ExecResult> run_program(const std::string& path, const std::vector<std::string>& args,
                               std::string_view input, int timeout_ms, const std::vector<std::string>& extra_env) {
  Fds fds;
  fds.in = make_memfd("cni-in");
  fds.out = make_memfd("cni-out");
  fds.err = make_memfd("cni-err");
  if (fds.in < 0 || fds.out < 0 || fds.err < 0) return Status::from_errno("memfd_create");
  for (size_t off = 0; off < input.size();) {
    ssize_t n = ::write(fds.in, input.data() + off, input.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::from_errno("write child input");
    off += static_cast<size_t>(n);
  }
  if (::lseek(fds.in, 0, SEEK_SET) < 0) return Status::from_errno("rewind child input");

  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> argv_s = {path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; e != nullptr && *e != nullptr; e++) {
    std::string_view kv = *e;
    bool overridden = false;
    for (const std::string& x : extra_env) {
      size_t eq = x.find('=');
      if (eq != std::string::npos && kv.substr(0, eq + 1) == std::string_view(x).substr(0, eq + 1)) overridden = true;
    }
    if (!overridden) env_s.emplace_back(kv);
  }
  env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (std::string& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return Status::from_errno("fork for " + path);
  if (pid == 0) {
    ::dup2(fds.in, 0);
    ::dup2(fds.out, 1);
    ::dup2(fds.err, 2);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(path.c_str(), argv.data(), envp.data());
    const char msg[] = "exec failed\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  ExecResult r;
  const long long deadline = now_ms() + timeout_ms;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return Status::from_errno("waitpid " + path);
    if (now_ms() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      r.timed_out = true;
      break;
    }
    ::usleep(2000);
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.exit_code = 128 + WTERMSIG(status);
  r.out = slurp(fds.out);
  r.err = slurp(fds.err);
  return r;
}

}  // namespace ferry::cni
