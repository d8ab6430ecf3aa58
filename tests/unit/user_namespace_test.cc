// Rootless building blocks: id map lines and the initial map (tables), and,
// in forked children as uid 65534 (dropped to when the test runs as root),
// a new user namespace with one mapped id, the guest's user + network
// namespace made by the helper (fds and text handed back, errors carried
// back), entering them, and the rootless translator sandbox (no
// capabilities, the caller's uid seen from outside, seccomp, empty root).
// Cases that need user namespaces skip when the machine forbids them.
// test-libs: ferry_sandbox ferry_netns
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "netns/netns.h"
#include "netns/unprivileged_guest_ns.h"
#include "netns/user_namespace.h"
#include "sandbox/options.h"
#include "sandbox/sandbox.h"
#include "support/proc_status.h"

namespace ferry {
namespace {

constexpr uid_t kUser = 65534;

TEST(UserNamespace, SingleIdMapLine) {
  EXPECT_EQ(single_id_map(0, 1000), "0 1000 1\n");
  EXPECT_EQ(single_id_map(65534, 65534), "65534 65534 1\n");
  EXPECT_EQ(single_id_map(0, 0), "0 0 1\n");
}

TEST(UserNamespace, InitialMapIsRecognised) {
  struct Case {
    const char* text;
    bool initial;
  } cases[] = {
      {"         0          0 4294967295\n", true},
      {"0 0 4294967295", true},
      {"         0       1000          1\n", false},
      {"0 0 4294967294\n", false},
      {"0 0 4294967295\n1 1 1\n", false},
      {"", false},
      {"zero zero all\n", false},
      {"0 1 4294967295\n", false},
  };
  for (const Case& c : cases) EXPECT_EQ(is_initial_id_map(c.text), c.initial) << "'" << c.text << "'";
}

TEST(UserNamespace, ThisProcessIsInTheInitialNamespace) {
  // The test runner is not started in a user namespace of its own.
  EXPECT_TRUE(in_initial_user_namespace());
}

// In a forked child: uid/gid 65534 with no groups when running as root
// (else as it is), dumpable as an exec'd user process is (setresuid made
// it non-dumpable, and /proc/self/uid_map would then be root's).
bool become_user() {
  if (geteuid() == 0 && (setgroups(0, nullptr) != 0 || setresgid(kUser, kUser, kUser) != 0 ||
                         setresuid(kUser, kUser, kUser) != 0))
    return false;
  return prctl(PR_SET_DUMPABLE, 1) == 0;
}

// Runs body in a child that is (or became) uid/gid 65534 with no groups;
// returns body's exit code, 77 when user namespaces are not allowed here.
int as_user(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (!become_user()) _exit(90);
    _exit(body());
  }
  int ws = 0;
  waitpid(pid, &ws, 0);
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

// Whether an ordinary user may make a user namespace on this machine.
bool user_namespaces_allowed() {
  return as_user([] { return unshare(CLONE_NEWUSER) == 0 ? 0 : 77; }) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(UserNamespace, OrdinaryUserIsNotPrivileged) {
  if (geteuid() == 0) EXPECT_TRUE(privileged_for_network_setup()) << "root in the initial namespace is";
  EXPECT_EQ(as_user([] { return privileged_for_network_setup() ? 1 : 0; }), 0);
}

TEST(UserNamespace, EnterMapsOneId) {
  if (!user_namespaces_allowed()) GTEST_SKIP() << "user namespaces not allowed here";
  const int rc = as_user([] {
    if (!enter_new_user_namespace(0, 0).ok()) return 1;
    if (getuid() != 0 || getgid() != 0) return 2;
    if (in_initial_user_namespace()) return 3;
    std::istringstream map(read_file("/proc/self/uid_map"));
    unsigned long inside = 9, outside = 9, count = 9;
    map >> inside >> outside >> count;
    if (inside != 0 || outside != kUser || count != 1) return 4;
    if (read_file("/proc/self/setgroups") != "deny\n") return 5;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

// The nsfs type of a namespace fd (CLONE_NEW*), -1 on error.
int ns_type(int fd) { return ioctl(fd, NS_GET_NSTYPE); }

TEST(UnprivilegedGuestNs, HandsBackNamespacesFdsAndText) {
  if (!user_namespaces_allowed()) GTEST_SKIP() << "user namespaces not allowed here";
  const int rc = as_user([] {
    Result<GuestNamespaces> g = make_guest_namespaces([](HandBack* back) -> Status {
      if (getuid() != 0) return Status(EPERM, "not root inside");
      const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (s < 0) return Status::from_errno("socket");
      back->fds.push_back(s);
      back->text = "hello";
      return Status();
    });
    if (!g) return 10;
    if (g->text != "hello" || g->fds.size() != 1) return 11;
    if (ns_type(g->userns.get()) != CLONE_NEWUSER || ns_type(g->netns.get()) != CLONE_NEWNET) return 12;
    Result<NetnsFd> own = current_netns();
    if (!own || same_netns(own->get(), g->netns.get())) return 13;
    // The socket made inside lives in the guest's network namespace.
    const int sock_ns = ioctl(g->fds[0], SIOCGSKNS);
    if (sock_ns < 0 || !same_netns(sock_ns, g->netns.get())) return 14;
    // This process (no capabilities) may enter both, as CMD does.
    const pid_t pid = fork();
    if (pid == 0) {
      if (!enter_guest_namespaces(g->userns.get(), g->netns.get()).ok()) _exit(1);
      Result<NetnsFd> now = current_netns();
      _exit(getuid() == 0 && now && same_netns(now->get(), g->netns.get()) ? 0 : 2);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) return 15;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST(UnprivilegedGuestNs, CarriesSetupErrorsBack) {
  if (!user_namespaces_allowed()) GTEST_SKIP() << "user namespaces not allowed here";
  const int rc = as_user([] {
    Result<GuestNamespaces> g =
        make_guest_namespaces([](HandBack*) -> Status { return Status(ENOENT, "no such device here"); });
    if (g) return 1;
    if (g.status().err() != ENOENT) return 2;
    if (g.status().what() != "no such device here") return 3;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

using test::proc_status;

TEST(RootlessSandbox, ChildHasNoCapabilitiesAndAnEmptyRoot) {
  if (!user_namespaces_allowed()) GTEST_SKIP() << "user namespaces not allowed here";
  int to_parent[2], to_child[2];
  ASSERT_EQ(pipe(to_parent), 0);
  ASSERT_EQ(pipe(to_child), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    if (!become_user()) _exit(90);
    sandbox::Options o;
    o.own_user_namespace = true;
    o.uid = getuid();
    o.gid = getgid();
    o.seccomp = sandbox::SeccompMode::log;  // so the child may look at its root below
    if (!sandbox::enter(o).ok()) _exit(1);
    const bool empty_root = access("/etc/passwd", F_OK) != 0 && access("/proc/self", F_OK) != 0;
    const char r = empty_root ? 'R' : 'F';
    (void)!write(to_parent[1], &r, 1);
    char c;
    (void)!read(to_child[0], &c, 1);
    _exit(0);
  }
  close(to_parent[1]);
  char r = 0;
  const ssize_t got = read(to_parent[0], &r, 1);
  auto st = proc_status(pid);
  const char go = 'g';
  (void)!write(to_child[1], &go, 1);
  int ws = 0;
  waitpid(pid, &ws, 0);
  ASSERT_EQ(got, 1) << "the child did not enter the sandbox: " << ws;
  EXPECT_EQ(r, 'R') << "the rootless sandbox still sees the host's files";
  // Seen from here (the initial user namespace): the caller's uid, nothing else.
  EXPECT_EQ(st["Uid"], "65534\t65534\t65534\t65534");
  EXPECT_EQ(st["Gid"], "65534\t65534\t65534\t65534");
  for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"})
    EXPECT_EQ(st[set], "0000000000000000") << set;
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) << ws;
}

}  // namespace
}  // namespace ferry
