// Running another program (an IPAM plugin, the ferry CLI) and collecting
// its exit status and output.
//
// Theory of operation: stdin, stdout and stderr of the child are memfds, not
// pipes. The child's input is written before it starts, so there is no
// deadlock on large inputs; its output is read after it exits, so a
// daemon the child leaves behind (`ferry attach` starts one) may keep the
// descriptors open without making us wait for an EOF that never comes. The
// child is waited for with a deadline; past it the child (and only it, by
// PID) gets SIGKILL and the run counts as timed out. Output is capped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferry::cni {

struct ExecResult {
  int exit_code = -1;      // exit status, or 128+signal
  bool timed_out = false;
  std::string out, err;
};

// Runs `path` with argv[0] = path and `args`, in the caller's environment
// plus `extra_env` ("NAME=value" entries that override). Fails only when the
// program could not be started at all.
Result<ExecResult> run_program(const std::string& path, const std::vector<std::string>& args,
                               std::string_view input, int timeout_ms,
                               const std::vector<std::string>& extra_env = {});

// The first executable `name` in `dirs`; empty when there is none.
std::string find_in_dirs(std::string_view name, const std::vector<std::string>& dirs);

// True when `path` is a regular file we may execute.
bool is_executable(const std::string& path);

}  // namespace ferry::cni
