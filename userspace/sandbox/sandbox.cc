// Entering the sandbox: see sandbox.h.
#include "sandbox/sandbox.h"

#include <signal.h>
#include <sys/prctl.h>

#include "netns/user_namespace.h"
#include "sandbox/credentials.h"
#include "sandbox/empty_root.h"
#include "sandbox/seccomp_filter.h"

namespace ferry::sandbox {

Status enter(const Options& o) {
  if (!o.enabled) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return Status::from_errno("PR_SET_PDEATHSIG");
    return {};
  }
  if (o.own_user_namespace) {
    if (Status s = enter_new_user_namespace(o.uid, o.gid); !s) return s;
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Status::from_errno("PR_SET_DUMPABLE");
  if (Status s = enter_empty_root(); !s) return s;
  if (Status s = drop_privileges(o.uid, o.gid, !o.own_user_namespace); !s) return s;
  return install_seccomp_filter(o.seccomp);
}

}  // namespace ferry::sandbox
