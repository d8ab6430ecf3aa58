// The BPF tests' load decision (bpf_load.h): an interrupted load is
// retried, a rejected one fails the test (not a skip) on a kernel that
// runs BPF. The loads here are stand-ins returning a chosen error; only
// the probes behind the decision touch the kernel (root).
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "bpf/bpf_load.h"

namespace ferry {
namespace {

using bpftest::load_bpf;

// A load that fails with err its first `failures` calls, then loads.
struct FlakyLoad {
  int err, failures, calls = 0;
  Status operator()() { return ++calls <= failures ? Status(err, "load stand-in") : Status{}; }
};

TEST(BpfLoad, InterruptedLoadsAreRetried) {
  for (int err : {EAGAIN, EINTR}) {
    FlakyLoad load{err, bpftest::kLoadAttempts - 1};
    const bpftest::BpfLoad r = load_bpf(std::ref(load), nullptr);
    EXPECT_EQ(r.skip, "") << err;
    EXPECT_EQ(r.error, "") << err;
    EXPECT_EQ(load.calls, bpftest::kLoadAttempts) << err;
  }
}

TEST(BpfLoad, RejectedLoadFailsWhereTheKernelRunsBpf) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  if (const std::string why = bpftest::bpf_unsupported(); !why.empty()) GTEST_SKIP() << why;
  for (int err : {EACCES, EINVAL, E2BIG, ENOENT, EPERM}) {
    FlakyLoad load{err, 1};
    // the real object loads again: the failure says there is no log
    const bpftest::BpfLoad r = load_bpf(std::ref(load), err == EACCES ? ferry_classify__elf_bytes : nullptr);
    EXPECT_EQ(r.skip, "") << err;
    EXPECT_NE(r.error.find("load stand-in: " + std::string(std::strerror(err))), std::string::npos) << r.error;
    EXPECT_EQ(load.calls, 1) << "not retried: " << err;
  }
  // Still interrupted after every attempt: a failure, not a skip.
  FlakyLoad load{EAGAIN, bpftest::kLoadAttempts};
  const bpftest::BpfLoad r = load_bpf(std::ref(load), nullptr);
  EXPECT_EQ(r.skip, "");
  EXPECT_NE(r.error, "");
  EXPECT_EQ(load.calls, bpftest::kLoadAttempts);
}

}  // namespace
}  // namespace ferry
