// `ferry run` instance liveness: see instance_lock.h.
#include "common/instance_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace ferry {

std::string run_instance_dir(const std::string& name) { return "/run/ferry-run/" + name; }

int hold_run_instance_lock(const std::string& name) {
  mkdir("/run/ferry-run", 0700);
  const std::string dir = run_instance_dir(name);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return -1;
  int fd = open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

bool run_instance_is_stale(const std::string& name, int pid) {
  int fd = open((run_instance_dir(name) + "/lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    const bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return !held;
  }
  // No lock file: an older ferry's instance, judged as it judged itself.
  return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

}  // namespace ferry
