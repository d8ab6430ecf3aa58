// Giving up root: see credentials.h.
#include "sandbox/credentials.h"

#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

namespace ferry::sandbox {

namespace {

// Clears the effective, permitted and inheritable sets (capset v3: two words).
int clear_capability_sets() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  return static_cast<int>(syscall(SYS_capset, &hdr, data));
}

}  // namespace

Status drop_privileges(uid_t uid, gid_t gid, bool clear_groups) {
  // 1. the bounding set: every capability the kernel knows (it says EINVAL past the last)
  for (unsigned long cap = 0; cap < 64; cap++) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      return Status::from_errno("PR_CAPBSET_DROP " + std::to_string(cap));
  }
  // 2. groups, gid, uid
  if (clear_groups && setgroups(0, nullptr) != 0) return Status::from_errno("setgroups");
  if (setresgid(gid, gid, gid) != 0) return Status::from_errno("setresgid " + std::to_string(gid));
  if (setresuid(uid, uid, uid) != 0) return Status::from_errno("setresuid " + std::to_string(uid));
  // 3. what setuid leaves: the inheritable set (and the permitted set when uid is 0)
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return Status::from_errno("clear ambient capabilities");
  if (clear_capability_sets() != 0) return Status::from_errno("capset");
  // 4. for good
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Status::from_errno("PR_SET_NO_NEW_PRIVS");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return Status::from_errno("PR_SET_PDEATHSIG");
  return {};
}

bool ping_sockets_allowed(gid_t gid) {
  std::ifstream f("/proc/sys/net/ipv4/ping_group_range");
  long long lo = 1, hi = 0;
  if (!(f >> lo >> hi)) return false;
  return static_cast<long long>(gid) >= lo && static_cast<long long>(gid) <= hi;
}

}  // namespace ferry::sandbox
