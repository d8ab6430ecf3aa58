// The empty root: see empty_root.h.
#include "sandbox/empty_root.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ferry::sandbox {

Status enter_empty_root() {
  if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0) return Status::from_errno("unshare mount/IPC/UTS");
  if (mount("", "/", "", MS_REC | MS_PRIVATE, nullptr) != 0) return Status::from_errno("make mounts private");
  if (mount("", "/tmp", "tmpfs", MS_NODEV | MS_NOEXEC | MS_NOSUID | MS_RDONLY, "nr_inodes=2,nr_blocks=0") != 0)
    return Status::from_errno("mount an empty tmpfs on /tmp");
  if (chdir("/tmp") != 0) return Status::from_errno("chdir to the empty root");
  if (syscall(SYS_pivot_root, ".", ".") != 0) return Status::from_errno("pivot_root");
  if (umount2(".", MNT_DETACH | UMOUNT_NOFOLLOW) != 0) return Status::from_errno("detach the old root");
  if (chdir("/") != 0) return Status::from_errno("chdir /");
  return {};
}

}  // namespace ferry::sandbox
