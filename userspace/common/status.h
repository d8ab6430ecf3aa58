// Status and Result<T>: how a function that can fail says so, everywhere in
// ferry (one convention: no "empty string is success", no bool plus an
// error string out-parameter, in an interface another folder calls).
//
// Theory of operation: a failure is an errno value plus a sentence saying
// what was being done ("setns into /run/netns/x", "RTM_NEWADDR fd00:f::2/64
// on ifindex 3"). message() joins them as "what: strerror(errno)", so the CLI
// can print one clear line without knowing where it came from. A failure
// whose cause is not an errno (a bad value, a refused state, a line that
// already names its cause, such as libbpf's) is made with Status::failure():
// its message() is the line as given. A Result<T> holds either a value or
// such a Status; it is small and move-only when T is.
// Invariant: an error Status always has err() != 0 (callers test ok(), and a
// failure that lost its errno is reported as EIO rather than as success).
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace ferry {

class Status {
 public:
  // Success.
  Status() = default;
  // Failure with an errno value (0 is replaced by EIO) and a description.
  Status(int err, std::string what) : err_(err != 0 ? err : EIO), what_(std::move(what)) {}

  // Failure from the current errno.
  static Status from_errno(std::string what) { return Status(errno, std::move(what)); }
  // Failure described completely by `line` (message() returns it as is);
  // err() is `err` (EINVAL unless given) for callers that branch on it.
  static Status failure(std::string line, int err = EINVAL) {
    Status st(err, std::move(line));
    st.verbatim_ = true;
    return st;
  }

  bool ok() const { return err_ == 0; }
  explicit operator bool() const { return ok(); }
  int err() const { return err_; }
  const std::string& what() const { return what_; }
  // "what: strerror(err)" (or the line of a failure()), or "ok".
  std::string message() const;

 private:
  int err_ = 0;
  bool verbatim_ = false;  // made by failure(): message() is what_
  std::string what_;
};

template <class T>
class Result {
 public:
  // A value.
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  // A failure; a successful Status here is turned into EIO.
  Result(Status st) : v_(st.ok() ? Status(EIO, "empty result") : std::move(st)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The failure; success when ok().
  Status status() const { return ok() ? Status() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ferry
