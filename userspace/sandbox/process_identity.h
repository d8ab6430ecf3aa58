// Which process a pid file means: pid, start time and executable.
//
// Theory of operation: a pid alone can be recycled: the service that wrote
// /run/ferry/DEV/pid may be long dead and the number now somebody else's.
// So beside the pid file (the pid alone, for scripts) the service writes
// PIDFILE.identity: "PID START EXE", the pid, the process's start time
// (field 22 of /proc/PID/stat, clock ticks since boot: never the same for
// two processes with the same pid) and its executable (/proc/PID/exe).
// Before signalling, `ferry detach` checks that the live process with that
// pid has the same start time and executable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace ferry::sandbox {

struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_time = 0;
  std::string exe;

  // "PID START EXE"
  std::string to_line() const;
  // Parses to_line()'s format; false when malformed.
  static bool parse(const std::string& line, ProcessIdentity* out);
  bool operator==(const ProcessIdentity&) const = default;
};

// The live process pid as /proc sees it.
Result<ProcessIdentity> identify(pid_t pid);

}  // namespace ferry::sandbox
