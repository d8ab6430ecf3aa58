// Entering the sandbox: the translator's last privileged moment.
//
// Theory of operation: called once in the translator process, after every
// fd it will ever need is open (tap, maps and their mmaps, the ring buffer,
// listening sockets, raw ICMP sockets, netlink, the parent's channel) and
// before it reads its first guest frame. In order:
//   0. rootless only (Options::own_user_namespace): a user namespace of its
//      own, its ids mapped to themselves, so that 2 needs no privilege
//      outside (the map is written before 1: /proc/self/uid_map of a
//      non-dumpable process is root's);
//   1. PR_SET_DUMPABLE 0: no core dumps, no ptrace by the same uid, and
//      /proc/PID owned by root;
//   2. the empty root in namespaces of its own (empty_root.h);
//   3. the unprivileged user, no capabilities, no_new_privs (credentials.h);
//   4. the seccomp allow-list (seccomp_filter.h), last: everything above
//      makes calls the filter forbids.
// With Options::enabled false only the parent-death signal is set.
// A failure is returned with what failed; the caller must then exit (the
// process is half-dropped).
#pragma once

#include "common/status.h"
#include "sandbox/options.h"

namespace ferry::sandbox {

Status enter(const Options& o);

}  // namespace ferry::sandbox
