// Giving up root: the translator's user, groups and capabilities.
//
// Theory of operation: the translator is forked by a root process and
// inherits uid 0 with every capability. drop_privileges() leaves it with
// none, in this order (each step needs what the next one takes away):
//   1. the capability bounding set is emptied (PR_CAPBSET_DROP needs
//      CAP_SETPCAP, still held), so no later execve could regain anything;
//   2. supplementary groups are cleared, then gid and uid set (real,
//      effective and saved): leaving uid 0 clears the permitted, effective
//      and ambient sets;
//   3. the inheritable set is cleared too (setuid keeps it) and the ambient
//      set cleared explicitly, so CapInh, CapPrm, CapEff, CapAmb are all 0;
//   4. PR_SET_NO_NEW_PRIVS: no execve can raise privileges again (and
//      seccomp can then be loaded without CAP_SYS_ADMIN).
// The parent-death signal is cleared by the kernel on a credential change,
// so it is set (SIGKILL) after step 2.
#pragma once

#include <sys/types.h>

#include "common/status.h"

namespace ferry::sandbox {

// Drops to uid/gid with no capabilities and no_new_privs (see above).
// clear_groups false skips setgroups() (a user namespace whose setgroups is
// denied: rootless, the caller's groups stay).
Status drop_privileges(uid_t uid, gid_t gid, bool clear_groups = true);

// Whether net.ipv4.ping_group_range lets group gid open ping sockets
// (SOCK_DGRAM/IPPROTO_ICMP). Read before the translator leaves the
// filesystem; false when the sysctl cannot be read.
bool ping_sockets_allowed(gid_t gid);

}  // namespace ferry::sandbox
