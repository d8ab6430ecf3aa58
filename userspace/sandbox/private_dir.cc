// Private directories: see private_dir.h.
#include "sandbox/private_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace ferry::sandbox {

Status ensure_private_dir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Status::from_errno("mkdir " + path);
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(path + " is not a directory of ours");
  struct stat st {};
  Status result;
  if (fstat(fd, &st) != 0) {
    result = Status::from_errno("stat " + path);
  } else if (st.st_uid != geteuid()) {
    result = Status(EPERM, path + " is owned by uid " + std::to_string(st.st_uid) + ", not by us: refusing to use it");
  } else if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) != 0) {
    result = Status::from_errno("chmod 0700 " + path);
  }
  close(fd);
  return result;
}

}  // namespace ferry::sandbox
