// The proof that an old-layout <cgroup2>/ferry-NAME is ferry's
// (carries_mark_program, bpf/mark_cgroup.h) on real cgroups of the test's
// own names: one carrying ferry's socket-mark program is proved and swept
// (remove_dead_instance_cgroups), one without a program or with another
// program is not, whatever its name.
// test-libs: ferry_bpf ferry_sandbox ferry_common
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "bpf/mark_cgroup.h"
#include "sandbox/service_cgroup.h"

namespace ferry {
namespace {

// r0 = 1; exit: a socket-create program that is not ferry's.
int load_other_program() {
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = 1;
  insns[1].code = BPF_JMP | BPF_EXIT;
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_CGROUP_INET_SOCK_CREATE);
  return bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK, "not_ferry", "GPL", insns, 2, &opts);
}

// Attaches prog_fd to the cgroup at dir (BPF_CGROUP_INET_SOCK_CREATE).
bool attach_to(const std::string& dir, int prog_fd) {
  const int cg = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) return false;
  const bool ok = bpf_prog_attach(prog_fd, cg, BPF_CGROUP_INET_SOCK_CREATE, 0) == 0;
  close(cg);
  return ok;
}

std::string g_prefix;  // this run's names: ferry-fyt<pid>...

TEST(MarkCgroup, OnlyACgroupCarryingFerrysMarkProgramIsProvedFerrys) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  const std::string cgroup2 = sandbox::cgroup2_mount();
  if (cgroup2.empty()) GTEST_SKIP() << "no cgroup2 hierarchy";
  g_prefix = "fyt" + std::to_string(getpid());
  const std::string ours = cgroup2 + "/ferry-" + g_prefix + "a", bare = cgroup2 + "/ferry-" + g_prefix + "b",
                    other = cgroup2 + "/ferry-" + g_prefix + "c";
  for (const std::string& d : {ours, bare, other}) ASSERT_EQ(mkdir(d.c_str(), 0755), 0) << d;
  const int mark = load_mark_program(0x42);
  const int foreign = load_other_program();
  ASSERT_GE(mark, 0);
  ASSERT_GE(foreign, 0);
  EXPECT_TRUE(attach_to(ours, mark));
  EXPECT_TRUE(attach_to(other, foreign));
  close(mark);
  close(foreign);  // attached programs stay with their cgroups
  EXPECT_TRUE(carries_mark_program(ours));
  EXPECT_FALSE(carries_mark_program(bare));
  EXPECT_FALSE(carries_mark_program(other));
  EXPECT_FALSE(carries_mark_program(cgroup2 + "/ferry-" + g_prefix + "missing"));
  // The sweep, told that only this run's names are dead, with no age limit.
  auto dead = [](const std::string& name) { return name.rfind(g_prefix, 0) == 0; };
  EXPECT_EQ(sandbox::remove_dead_instance_cgroups(cgroup2, dead, 0, carries_mark_program), 1u);
  struct stat st {};
  EXPECT_NE(stat(ours.c_str(), &st), 0) << "the proved cgroup went";
  EXPECT_EQ(stat(bare.c_str(), &st), 0) << "an unproved one stays";
  EXPECT_EQ(stat(other.c_str(), &st), 0) << "another program's stays";
  for (const std::string& d : {ours, bare, other}) rmdir(d.c_str());
}

}  // namespace
}  // namespace ferry
