// The attach service's own cgroup: sizes parse; joining writes what cgroup
// v2 expects (controller, memory.max, the pid) where it expects it, shown
// on a plain directory standing in for /sys/fs/cgroup (this machine may not
// have cgroup v2); a plain directory is not taken for a cgroup v2 mount.
// The --mark cgroup, on the same kind of fake tree, in both layouts: inside
// the service's cgroup (unified: its memory.max covers the translator; the
// service and the translator each in a leaf) and, with no service cgroup
// (hybrid), under ferry/NAME of the cgroup2 mount; what removal leaves.
// test-libs: ferry_sandbox
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <string>
#include <vector>
#include <algorithm>

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
  EXPECT_EQ(slurp(*dir + "/service/cgroup.procs"), "4242");  // a leaf: DEV holds no process
  struct stat st {};
  EXPECT_NE(stat((*dir + "/cgroup.procs").c_str(), &st), 0);
  Result<std::string> unlimited = join_service_cgroup(root, "fy4567", std::nullopt, 4243);
  ASSERT_TRUE(unlimited);
  EXPECT_EQ(slurp(*unlimited + "/memory.max"), "max");
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

// A fresh directory standing in for a cgroup2 mount.
std::string fake_root() {
  char tmpl[] = "/tmp/ferry-cgroup-XXXXXX";
  return mkdtemp(tmpl) != nullptr ? tmpl : "";
}

// Directories under root, relative, sorted ("ferry", "ferry/fy1", ...).
std::vector<std::string> dirs_under(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root))
    if (e.is_directory()) out.push_back(std::filesystem::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

// The kernel's control files vanish with their cgroup; the fake tree's
// must go by hand before rmdir can succeed there.
void drop_control_files(const std::string& root) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root))
    if (e.is_regular_file()) files.push_back(e.path());
  for (const auto& f : files) std::filesystem::remove(f);
}

// Unified: the service's cgroup ferry/DEV has memory.max and two leaves,
// service (the supervisor) and translator (the --mark cgroup).
TEST(ServiceCgroup, MarkCgroupIsAChildOfTheServiceCgroup) {
  const std::string root = fake_root();
  ASSERT_FALSE(root.empty());
  Result<std::string> svc = join_service_cgroup(root, "fy01", 64u << 20, 4242);
  ASSERT_TRUE(svc);
  const std::string dir = translator_cgroup_dir(root, *svc, "fy01");
  EXPECT_EQ(dir, root + "/ferry/fy01/translator");
  ASSERT_TRUE(make_translator_cgroup(dir));
  EXPECT_EQ(dirs_under(root), (std::vector<std::string>{"ferry", "ferry/fy01", "ferry/fy01/service",
                                                        "ferry/fy01/translator"}));
  EXPECT_EQ(slurp(root + "/ferry/fy01/memory.max"), std::to_string(64u << 20));  // over both leaves
  EXPECT_EQ(slurp(root + "/ferry/fy01/service/cgroup.procs"), "4242");
  drop_control_files(root);
  // The translator exits: its leaf goes, the service's cgroup stays.
  remove_translator_cgroup(dir, *svc);
  EXPECT_EQ(dirs_under(root), (std::vector<std::string>{"ferry", "ferry/fy01", "ferry/fy01/service"}));
  // The service leaves: all of ferry/fy01 goes, ferry/ (shared) stays.
  leave_service_cgroup(root, *svc, "/", 4242);
  EXPECT_EQ(slurp(root + "/cgroup.procs"), "4242");  // back home
  EXPECT_EQ(dirs_under(root), (std::vector<std::string>{"ferry"}));
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

// Hybrid (no service cgroup): ferry/NAME/translator under the cgroup2
// mount; a leftover of a killed instance is made again; removal takes
// ferry/NAME too.
TEST(ServiceCgroup, MarkCgroupWithoutServiceCgroupIsNamedAfterTheInstance) {
  const std::string root = fake_root();
  ASSERT_FALSE(root.empty());
  const std::string dir = translator_cgroup_dir(root, "", "fy02");
  EXPECT_EQ(dir, root + "/ferry/fy02/translator");
  ASSERT_TRUE(make_translator_cgroup(dir));
  ASSERT_TRUE(make_translator_cgroup(dir));  // a leftover (empty) cgroup: made again
  EXPECT_EQ(dirs_under(root), (std::vector<std::string>{"ferry", "ferry/fy02", "ferry/fy02/translator"}));
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  remove_translator_cgroup(dir, "");
  EXPECT_EQ(dirs_under(root), (std::vector<std::string>{"ferry"}));
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

// What a killed service left, in the service layout and the old one
// (ferry-NAME at the mount's top), goes; a neighbour's stays.
TEST(ServiceCgroup, StaleCgroupsOfOneInstanceAreRemoved) {
  const std::string root = fake_root();
  ASSERT_FALSE(root.empty());
  for (const char* d : {"/ferry", "/ferry/fy03", "/ferry/fy03/service", "/ferry/fy03/translator", "/ferry-fy03",
                        "/ferry/fy04", "/ferry/fy04/translator"})
    ASSERT_EQ(mkdir((root + d).c_str(), 0755), 0) << d;
  remove_service_cgroups(root, "fy03");
  EXPECT_EQ(dirs_under(root), (std::vector<std::string>{"ferry", "ferry/fy04", "ferry/fy04/translator"}));
  remove_service_cgroups(root, "..");  // not a name: nothing
  remove_service_cgroups(root, "a/b");
  EXPECT_EQ(dirs_under(root).size(), 3u);
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

// At start, every dead instance's cgroups under ferry/ go (with its leaves,
// and an old ferry-NAME of the same name); a live instance's, a young entry
// (perhaps being made), an old-layout ferry-NAME alone and other
// directories stay.
TEST(ServiceCgroup, DeadInstancesCgroupsAreRemovedAtStart) {
  const std::string root = fake_root();
  ASSERT_FALSE(root.empty());
  for (const char* d : {"/ferry", "/ferry/fy05", "/ferry/fy05/service", "/ferry/fy05/translator", "/ferry-fy05",
                        "/ferry-fy06", "/ferry/run-77", "/ferry/run-77/translator", "/ferry/live1",
                        "/ferry/live1/service", "/ferry-live2", "/ferry/young", "/other", "/ferryx"})
    ASSERT_EQ(mkdir((root + d).c_str(), 0755), 0) << d;
  const time_t old = time(nullptr) - 3600;
  const timespec times[2] = {{old, 0}, {old, 0}};
  for (const char* d : {"/ferry/fy05", "/ferry-fy05", "/ferry-fy06", "/ferry/run-77", "/ferry/live1", "/ferry-live2",
                        "/other", "/ferryx"})
    ASSERT_EQ(utimensat(AT_FDCWD, (root + d).c_str(), times, 0), 0) << d;
  auto dead = [](const std::string& name) { return name.rfind("live", 0) != 0; };
  EXPECT_EQ(remove_dead_instance_cgroups(root, dead), 2u);  // fy05 (and ferry-fy05), run-77
  EXPECT_EQ(dirs_under(root), (std::vector<std::string>{"ferry", "ferry-fy06", "ferry-live2", "ferry/live1",
                                                        "ferry/live1/service", "ferry/young", "ferryx", "other"}));
  EXPECT_EQ(remove_dead_instance_cgroups(root, dead, 0), 1u);  // no age limit: young goes too
  EXPECT_EQ(remove_dead_instance_cgroups("", dead), 0u);
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

TEST(ServiceCgroup, OldLayoutCgroupsGoOnlyWhenProvedFerrysAndDead) {
  const std::string root = fake_root();
  ASSERT_FALSE(root.empty());
  // ferry-NAME at the top: fy07 dead and ours, fy08 dead but not ours (no
  // mark program), live3 ours but alive, fy09 ours and dead but young,
  // fy10 ours and dead but holding a child (rmdir refuses it, as a cgroup
  // with a process).
  for (const char* d : {"/ferry-fy07", "/ferry-fy08", "/ferry-live3", "/ferry-fy09", "/ferry-fy10", "/ferry-fy10/x"})
    ASSERT_EQ(mkdir((root + d).c_str(), 0755), 0) << d;
  const time_t old = time(nullptr) - 3600;
  const timespec times[2] = {{old, 0}, {old, 0}};
  for (const char* d : {"/ferry-fy07", "/ferry-fy08", "/ferry-live3", "/ferry-fy10"})
    ASSERT_EQ(utimensat(AT_FDCWD, (root + d).c_str(), times, 0), 0) << d;
  auto dead = [](const std::string& name) { return name.rfind("live", 0) != 0; };
  auto ours = [](const std::string& path) { return path.find("fy08") == std::string::npos; };
  EXPECT_EQ(remove_dead_instance_cgroups(root, dead), 0u);  // no proof asked for: the old layout stays
  EXPECT_EQ(remove_dead_instance_cgroups(root, dead, 10, ours), 1u);
  EXPECT_EQ(dirs_under(root), (std::vector<std::string>{"ferry-fy08", "ferry-fy09", "ferry-fy10", "ferry-fy10/x",
                                                        "ferry-live3"}));
  EXPECT_EQ(system(("rm -rf " + root).c_str()), 0);
}

}  // namespace
}  // namespace ferry::sandbox
