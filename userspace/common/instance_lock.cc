// ferry instance liveness: see instance_lock.h.
#include "common/instance_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace ferry {

namespace {
constexpr const char* kRunRunRoot = "/run/ferry-run";
}  // namespace

std::string run_instance_dir(const std::string& name) { return std::string(kRunRunRoot) + "/" + name; }

SweepGuard::SweepGuard() {
  mkdir(kRunRunRoot, 0700);
  fd_ = open((std::string(kRunRunRoot) + "/sweep.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd_ < 0) return;
  while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
  }
}

SweepGuard::~SweepGuard() {
  if (fd_ >= 0) close(fd_);  // the lock goes with the last fd
}

int hold_instance_lock(const std::string& dir) {
  const SweepGuard guard;
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

int hold_run_instance_lock(const std::string& name) {
  mkdir(kRunRunRoot, 0700);
  return hold_instance_lock(run_instance_dir(name));
}

bool instance_lock_free(const std::string& dir) {
  int fd = open((dir + "/lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  const bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);
  return !held;
}

bool run_instance_is_stale(const std::string& name, int pid) {
  const std::string dir = run_instance_dir(name);
  struct stat st {};
  if (stat((dir + "/lock").c_str(), &st) == 0) return instance_lock_free(dir);
  // No lock file: an older ferry's instance, judged as it judged itself.
  return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

}  // namespace ferry
