// `ferry run` liveness across PID namespaces (common/instance_lock.h): an
// instance whose PID does not exist here (it lives in another PID
// namespace) but that holds its lock is alive; once the lock is released it
// is stale. Root (it writes /run/ferry-run/run-N).
// test-libs: ferry_common
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "common/instance_lock.h"

namespace ferry {
namespace {

TEST(InstanceLock, LiveLockHolderIsNotStaleWhateverItsPid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (/run/ferry-run)";
  // Above the kernel's largest pid_max: kill(pid, 0) is ESRCH here, as for
  // an instance seen from another PID namespace.
  const int pid = 4194304 + (getpid() % 1000) + 1;
  const std::string name = "run-" + std::to_string(pid);
  int ready[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the "instance": holds the lock until told to go
    char c = hold_run_instance_lock(name) >= 0 ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    (void)!read(done[0], &c, 1);
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  EXPECT_FALSE(run_instance_is_stale(name, pid));
  EXPECT_LT(hold_run_instance_lock(name), 0);  // a second holder is refused
  (void)!write(done[1], "x", 1);
  int st = 0;
  waitpid(child, &st, 0);
  EXPECT_TRUE(run_instance_is_stale(name, pid));  // its lock went with it
  const std::string dir = run_instance_dir(name);
  EXPECT_EQ(std::system(("rm -rf " + dir).c_str()), 0);
  // No lock file: kill(pid, 0) decides, as before (ESRCH: stale).
  EXPECT_TRUE(run_instance_is_stale(name, pid));
  EXPECT_FALSE(run_instance_is_stale("run-1", 1));
}

}  // namespace
}  // namespace ferry
