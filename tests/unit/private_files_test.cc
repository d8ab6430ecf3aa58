// Files and pins: ensure_private_dir() makes or narrows a directory to 0700
// and refuses a symlink or one somebody else owns; a pid file's identity
// (pid, start time, executable) matches only the process that wrote it.
// test-libs: ferry_sandbox
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/private_dir.h"
#include "sandbox/process_identity.h"

namespace ferry::sandbox {
namespace {

class PrivateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-private-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override { (void)system(("rm -rf " + base_).c_str()); }
  mode_t mode(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  std::string base_;
};

TEST_F(PrivateDirTest, CreatesAndNarrows) {
  const std::string fresh = base_ + "/fresh";
  ASSERT_TRUE(ensure_private_dir(fresh).ok());
  EXPECT_EQ(mode(fresh), 0700u);
  const std::string wide = base_ + "/wide";
  ASSERT_EQ(mkdir(wide.c_str(), 0777), 0);
  ASSERT_EQ(chmod(wide.c_str(), 01777), 0);
  ASSERT_TRUE(ensure_private_dir(wide).ok());
  EXPECT_EQ(mode(wide), 0700u);
}

TEST_F(PrivateDirTest, RefusesSymlinkAndFile) {
  const std::string target = base_ + "/target", link = base_ + "/link", file = base_ + "/file";
  ASSERT_EQ(mkdir(target.c_str(), 0700), 0);
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  EXPECT_FALSE(ensure_private_dir(link).ok());
  ASSERT_EQ(system(("touch " + file).c_str()), 0);
  EXPECT_FALSE(ensure_private_dir(file).ok());
}

TEST_F(PrivateDirTest, RefusesSomeoneElses) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  const std::string theirs = base_ + "/theirs";
  ASSERT_EQ(mkdir(theirs.c_str(), 0700), 0);
  ASSERT_EQ(chown(theirs.c_str(), 65534, 65534), 0);
  const Status s = ensure_private_dir(theirs);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("owned by uid 65534"), std::string::npos) << s.message();
}

TEST(ProcessIdentity, MatchesOnlyTheSameProcess) {
  Result<ProcessIdentity> me = identify(getpid());
  ASSERT_TRUE(me) << me.status().message();
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  EXPECT_EQ(me->exe, std::string(exe, static_cast<size_t>(n)));
  EXPECT_GT(me->start_time, 0u);

  ProcessIdentity parsed;
  ASSERT_TRUE(ProcessIdentity::parse(me->to_line(), &parsed));
  EXPECT_EQ(parsed, *me);

  // A process that reuses nothing of ours: another pid, its own start time.
  const pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  Result<ProcessIdentity> other = identify(child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(other);
  EXPECT_NE(*other, *me);
  ProcessIdentity forged = *me;  // our pid written with another start time: a recycled pid
  forged.start_time += 1;
  EXPECT_NE(forged, *me);

  EXPECT_FALSE(ProcessIdentity::parse("1234", &parsed));  // an older ferry's pid file
  EXPECT_FALSE(ProcessIdentity::parse("x 1 /bin/ferry", &parsed));
  EXPECT_FALSE(ProcessIdentity::parse("12 34 relative/ferry", &parsed));
  EXPECT_FALSE(identify(-1));
}

}  // namespace
}  // namespace ferry::sandbox
