// The pin directory helper (userspace/bpf/pin_dir.h), under a private root:
// the root is made 0700 or narrowed to it, a root someone else owns or a
// symlink is refused, the instance directory is made 0700 and reported as
// new once, then as existing; a file in its place is refused.
// test-libs: ferry_bpf
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "bpf/pin_dir.h"
#include "ferry/contract.h"

namespace ferry {
namespace {

class PinDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-pins-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override { (void)system(("rm -rf " + base_).c_str()); }
  static mode_t mode(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(lstat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  std::string base_;
};

TEST_F(PinDirTest, MakesRootAndInstancePrivate) {
  const std::string root = base_ + "/ferry";
  Result<bool> made = make_pin_dir_in(root, "run-1");
  ASSERT_TRUE(made.ok()) << made.status().message();
  EXPECT_TRUE(*made);
  EXPECT_EQ(mode(root), 0700u);
  EXPECT_EQ(mode(root + "/run-1"), 0700u);
  made = make_pin_dir_in(root, "run-1");
  ASSERT_TRUE(made.ok());
  EXPECT_FALSE(*made);  // there already: the caller decides whether to join it
}

TEST_F(PinDirTest, NarrowsAWideRootOfOurs) {
  const std::string root = base_ + "/ferry";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(chmod(root.c_str(), 0755), 0);  // whatever the umask
  ASSERT_TRUE(make_pin_dir_in(root, "eth9").ok());
  EXPECT_EQ(mode(root), 0700u);
}

TEST_F(PinDirTest, RefusesARootSomeoneElseOwns) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
  const std::string root = base_ + "/ferry";
  ASSERT_EQ(mkdir(root.c_str(), 0700), 0);
  ASSERT_EQ(chown(root.c_str(), 65534, 65534), 0);
  const Result<bool> made = make_pin_dir_in(root, "eth9");
  EXPECT_FALSE(made.ok());
  struct stat st {};
  EXPECT_NE(stat((root + "/eth9").c_str(), &st), 0) << "nothing made under a root that is not ours";
}

TEST_F(PinDirTest, RefusesASymlinkedRootAndAFileInstance) {
  const std::string elsewhere = base_ + "/elsewhere", root = base_ + "/ferry";
  ASSERT_EQ(mkdir(elsewhere.c_str(), 0700), 0);
  ASSERT_EQ(symlink(elsewhere.c_str(), root.c_str()), 0);
  EXPECT_FALSE(make_pin_dir_in(root, "eth9").ok());
  const std::string real = base_ + "/real";
  ASSERT_TRUE(make_pin_dir_in(real, "a").ok());
  ASSERT_EQ(close(creat((real + "/file").c_str(), 0600)), 0);
  EXPECT_FALSE(make_pin_dir_in(real, "file").ok());
}

TEST_F(PinDirTest, PinDirIsUnderTheRoot) { EXPECT_EQ(pin_dir("eth9"), std::string(FERRY_PIN_ROOT) + "/eth9"); }

}  // namespace
}  // namespace ferry
