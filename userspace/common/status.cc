// Status::message(): the one-line rendering used by the CLI and the tests.
#include "common/status.h"

#include <cstring>

namespace ferry {

// "what: strerror(err)" for a failure, the line as given for a failure(),
// "ok" for success.
std::string Status::message() const {
  if (ok()) return "ok";
  if (verbatim_) return what_;
  std::string m = what_;
  m += ": ";
  m += std::strerror(err_);
  return m;
}

}  // namespace ferry
