// The translator's sandbox: what the operator chose, parsed from the command
// line and the environment.
//
// Theory of operation: every ferry process that translates guest frames
// (`ferry run`, `ferry attach`, so every CNI pod's service) splits in two
// after set-up (process_split.h): a privileged parent that tears down at the
// end, and the translator, which enters the sandbox (sandbox.h) before it
// reads its first guest frame. These options say how: on or off
// (--no-sandbox, for debugging and the benchmark's paired rows), which user
// the translator becomes (--runas USER[:GROUP], default nobody and that
// user's primary group, as passt), and what the seccomp filter does with a
// system call outside its allow-list (kill the process, the default, or only
// log it: --seccomp log or FERRY_SECCOMP=log). Names are resolved here, in
// the privileged parent, while /etc/passwd is still in view.
#pragma once

#include <sys/types.h>

#include <span>
#include <string>

#include "common/option_table.h"
#include "common/status.h"

namespace ferry::sandbox {

enum class SeccompMode { kill, log, off };

struct Options {
  bool enabled = true;
  std::string runas = "nobody";  // USER[:GROUP] as given
  uid_t uid = 65534;             // resolved from runas by resolve()
  gid_t gid = 65534;
  SeccompMode seccomp = SeccompMode::kill;
  // Rootless (`ferry run` as an ordinary user): the translator first enters
  // a user namespace of its own (its uid and gid mapped to themselves), where
  // it may unshare its mount namespace for the empty root; it keeps the
  // caller's user (uid/gid: the caller's) and supplementary groups (an
  // unprivileged user namespace may not drop them), and then gives up every
  // capability as root's translator does.
  bool own_user_namespace = false;
};

// The sandbox's options (--runas, --seccomp, --no-sandbox) as a table for a
// command's OptionParser (common/option_table.h), which also makes their help.
std::span<const Option<Options>> option_table();

// Applies FERRY_SECCOMP (kill, log, off) unless an option (--seccomp)
// already chose, and resolves runas to ids. A failure (one line) for an
// unknown user or group or a bad FERRY_SECCOMP.
Status resolve(Options* o, bool seccomp_from_option);

const char* to_string(SeccompMode m);

}  // namespace ferry::sandbox
