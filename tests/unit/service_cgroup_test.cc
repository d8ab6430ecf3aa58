// The attach service's own cgroup: sizes parse; joining writes what cgroup
// v2 expects (controller, memory.max, the pid) where it expects it, shown
// on a plain directory standing in for /sys/fs/cgroup (this machine may not
// have cgroup v2); a plain directory is not taken for a cgroup v2 mount.
// test-libs: ferry_sandbox
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/service_cgroup.h"

namespace ferry::sandbox {
namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

TEST(ServiceCgroup, MemorySizes) {
  std::optional<uint64_t> v;
  ASSERT_TRUE(parse_memory_size("256M", &v));
  EXPECT_EQ(*v, 256u << 20);
  ASSERT_TRUE(parse_memory_size("1G", &v));
  EXPECT_EQ(*v, 1u << 30);
  ASSERT_TRUE(parse_memory_size("4096", &v));
  EXPECT_EQ(*v, 4096u);
  ASSERT_TRUE(parse_memory_size("max", &v));
  EXPECT_FALSE(v);
  for (const char* bad : {"", "0", "12T", "M", "-1", "1.5G", "99999999999999999999"})
    EXPECT_FALSE(parse_memory_size(bad, &v)) << bad;
}

TEST(ServiceCgroup, JoinWritesControllerLimitAndPid) {
  char tmpl[] = "/tmp/ferry-cgroup-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  EXPECT_FALSE(writable_cgroup2(root));  // a plain directory is no cgroup v2 mount
  Result<std::string> dir = join_service_cgroup(root, "fy0123", 256u << 20, 4242);
  ASSERT_TRUE(dir) << dir.status().message();
  EXPECT_EQ(*dir, root + "/ferry/fy0123");
  EXPECT_EQ(slurp(root + "/ferry/cgroup.subtree_control"), "+memory");
  EXPECT_EQ(slurp(*dir + "/memory.max"), std::to_string(256u << 20));
  EXPECT_EQ(slurp(*dir + "/cgroup.procs"), "4242");
  Result<std::string> unlimited = join_service_cgroup(root, "fy4567", std::nullopt, 4243);
  ASSERT_TRUE(unlimited);
  EXPECT_EQ(slurp(*unlimited + "/memory.max"), "max");
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

}  // namespace
}  // namespace ferry::sandbox
