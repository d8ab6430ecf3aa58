// The translator's sandbox: the seccomp allow-list kills what it does not
// list (in a forked child, no privileges needed), log mode only logs, the
// options parse, and (as root) a child that entered the whole sandbox is
// unprivileged, filtered and sees an empty root, as /proc/PID/status says.
// test-libs: ferry_sandbox
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/options.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp_filter.h"
#include "support/proc_status.h"

namespace ferry::sandbox {
namespace {

// Runs body in a child that loaded the filter (mode) first; returns its wait status.
int run_filtered(SeccompMode mode, const std::function<void()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(90);
    if (!install_seccomp_filter(mode).ok()) _exit(91);
    body();
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return st;
}

bool killed_by_sigsys(int st) { return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS; }

TEST(SeccompFilter, DataPathCallsAreAllowed) {
  const int st = run_filtered(SeccompMode::kill, [] {
    int p[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p) != 0) _exit(1);
    _exit(2);
  });
  // socketpair(AF_UNIX) is not on the list: the translator never makes one.
  EXPECT_TRUE(killed_by_sigsys(st)) << st;

  const int ok = run_filtered(SeccompMode::kill, [] {
    const int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) _exit(3);
    const int s6 = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s6 < 0) _exit(4);
    char b = 'x';
    if (sendto(s, &b, 1, MSG_DONTWAIT, nullptr, 0) < 0 && errno == ENOSYS) _exit(5);
    close(s);
    close(s6);
    void* m = malloc(1 << 22);  // the allocator's mmap
    if (m == nullptr) _exit(6);
    free(m);
  });
  EXPECT_TRUE(WIFEXITED(ok) && WEXITSTATUS(ok) == 0) << ok;
}

TEST(SeccompFilter, ForbiddenCallsKill) {
  // open: the translator never opens a file once sandboxed
  EXPECT_TRUE(killed_by_sigsys(run_filtered(SeccompMode::kill, [] { (void)open("/dev/null", O_RDONLY); })));
  // socket of another family
  EXPECT_TRUE(killed_by_sigsys(run_filtered(SeccompMode::kill, [] { (void)socket(AF_NETLINK, SOCK_RAW, 0); })));
  // bpf() beyond map operations
  EXPECT_TRUE(killed_by_sigsys(run_filtered(SeccompMode::kill, [] {
    bpf_attr attr{};
    (void)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
  })));
  // executable memory
  EXPECT_TRUE(killed_by_sigsys(run_filtered(SeccompMode::kill, [] {
    (void)mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  })));
  // new processes
  EXPECT_TRUE(killed_by_sigsys(run_filtered(SeccompMode::kill, [] { (void)syscall(SYS_fork); })));
}

TEST(SeccompFilter, LogModeOnlyLogs) {
  const int st = run_filtered(SeccompMode::log, [] {
    const int fd = open("/dev/null", O_RDONLY);
    _exit(fd >= 0 ? 0 : 7);
  });
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

TEST(SandboxOptions, Parse) {
  Options o;
  OptionParser p("ferry test");
  p.add(option_table(), &o);
  char a0[] = "test", a1[] = "--runas", a2[] = "daemon:nogroup", a3[] = "--seccomp", a4[] = "log",
       a5[] = "--no-sandbox";
  char* argv[] = {a0, a1, a2, a3, a4, a5};
  OptionParser::Outcome r = p.parse(6, argv);
  ASSERT_EQ(r.kind, OptionParser::Outcome::ok) << r.line;
  EXPECT_EQ(o.runas, "daemon:nogroup");
  EXPECT_EQ(o.seccomp, SeccompMode::log);
  EXPECT_FALSE(o.enabled);
  EXPECT_TRUE(p.seen("--seccomp"));

  char b1[] = "--seccomp", b2[] = "maybe";
  char* bad[] = {a0, b1, b2};
  r = p.parse(3, bad);
  ASSERT_EQ(r.kind, OptionParser::Outcome::error);
  EXPECT_EQ(r.line, "ferry test: bad --seccomp 'maybe' (kill, log or off)");
  char c1[] = "--runas", c2[] = ":wheel";
  char* bad_runas[] = {a0, c1, c2};
  EXPECT_EQ(p.parse(3, bad_runas).line, "ferry test: bad --runas ':wheel' (USER or USER:GROUP)");
  char d1[] = "-t";
  char* unknown[] = {a0, d1};
  EXPECT_EQ(p.parse(2, unknown).line, "ferry test: unknown option '-t' (try 'ferry test --help')");
}

TEST(SandboxOptions, Resolve) {
  Options o;
  o.runas = "nobody";
  Status st = resolve(&o, true);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(o.uid, 65534u);
  o.runas = "1234:5678";
  st = resolve(&o, true);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(o.uid, 1234u);
  EXPECT_EQ(o.gid, 5678u);
  o.runas = "no-such-user-ferry";
  EXPECT_EQ(resolve(&o, true).message(), "--runas: no user 'no-such-user-ferry'");
  o.runas = "nobody:no-such-group-ferry";
  EXPECT_EQ(resolve(&o, true).message(), "--runas: no group 'no-such-group-ferry'");
  o.runas = "nobody";
  setenv("FERRY_SECCOMP", "log", 1);
  EXPECT_TRUE(resolve(&o, false).ok());
  EXPECT_EQ(o.seccomp, SeccompMode::log);
  o.seccomp = SeccompMode::kill;
  EXPECT_TRUE(resolve(&o, true).ok());  // an option wins over the environment
  EXPECT_EQ(o.seccomp, SeccompMode::kill);
  setenv("FERRY_SECCOMP", "sometimes", 1);
  EXPECT_EQ(resolve(&o, false).message(), "bad FERRY_SECCOMP 'sometimes' (kill, log or off)");
  unsetenv("FERRY_SECCOMP");
}

using test::proc_status;

TEST(Sandbox, ChildIsUnprivilegedFilteredAndRootless) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  int to_parent[2], to_child[2];
  ASSERT_EQ(pipe(to_parent), 0);
  ASSERT_EQ(pipe(to_child), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    Options o;
    o.seccomp = SeccompMode::log;  // so the child may look at its root below
    if (!enter(o).ok()) _exit(1);
    // The root is empty: nothing of the host's filesystem is in view.
    const bool empty_root = access("/etc/passwd", F_OK) != 0 && access("/proc/self", F_OK) != 0;
    const char r = empty_root ? 'R' : 'F';
    (void)!write(to_parent[1], &r, 1);
    char c;
    (void)!read(to_child[0], &c, 1);
    _exit(0);
  }
  char r = 0;
  ASSERT_EQ(read(to_parent[0], &r, 1), 1);
  auto st = proc_status(pid);
  const char go = 'g';
  (void)!write(to_child[1], &go, 1);
  int ws = 0;
  waitpid(pid, &ws, 0);
  EXPECT_EQ(r, 'R') << "the child still sees the host's files";
  EXPECT_EQ(st["Uid"], "65534\t65534\t65534\t65534");
  EXPECT_EQ(st["Gid"], "65534\t65534\t65534\t65534");
  EXPECT_EQ(st["CapEff"], "0000000000000000");
  EXPECT_EQ(st["CapPrm"], "0000000000000000");
  EXPECT_EQ(st["CapInh"], "0000000000000000");
  EXPECT_EQ(st["CapBnd"], "0000000000000000");
  EXPECT_EQ(st["CapAmb"], "0000000000000000");
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) << ws;
}

}  // namespace
}  // namespace ferry::sandbox
