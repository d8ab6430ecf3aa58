// Status and Result (common/status.h): the one error convention. An errno
// failure renders as "what: strerror", a failure() as its line, success as
// "ok"; a failure never reads as success, whatever errno it was given.
// test-libs: ferry_common
#include "common/status.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <memory>
#include <string>

namespace ferry {
namespace {

TEST(StatusTest, SuccessIsOk) {
  const Status st;
  EXPECT_TRUE(st.ok());
  EXPECT_EQ(st.err(), 0);
  EXPECT_EQ(st.message(), "ok");
}

TEST(StatusTest, ErrnoFailureNamesWhatAndWhy) {
  const Status st(ENOENT, "open /run/netns/x");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.err(), ENOENT);
  EXPECT_EQ(st.message(), "open /run/netns/x: No such file or directory");
}

TEST(StatusTest, LostErrnoIsStillAFailure) {
  const Status st(0, "something");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.err(), EIO);
}

TEST(StatusTest, FailureLineIsGivenAsIs) {
  const Status st = Status::failure("BPF classifier not loaded");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.err(), EINVAL);
  EXPECT_EQ(st.message(), "BPF classifier not loaded");
  const Status busy = Status::failure("load BPF classifier: Device or resource busy (libbpf: x)", EBUSY);
  EXPECT_EQ(busy.err(), EBUSY);
  EXPECT_EQ(busy.message(), "load BPF classifier: Device or resource busy (libbpf: x)");
  const Status zero = Status::failure("no errno", 0);
  EXPECT_FALSE(zero.ok());
}

TEST(ResultTest, ValueOrStatus) {
  Result<int> v(7);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  EXPECT_TRUE(v.status().ok());
  Result<int> e(Status::failure("bad"));
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "bad");
  Result<int> empty{Status()};  // a success given as a failure is EIO, not a value
  EXPECT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().err(), EIO);
  Result<std::unique_ptr<int>> moved(std::make_unique<int>(3));
  std::unique_ptr<int> p = std::move(moved).value();
  EXPECT_EQ(*p, 3);
}

}  // namespace
}  // namespace ferry
