// The pin directories: see pin_dir.h.
#include "bpf/pin_dir.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>

#include "ferry/contract.h"
#include "sandbox/private_dir.h"

namespace ferry {

namespace {

constexpr unsigned long kBpfFsMagic = 0xcafe4a11;

// Makes sure /sys/fs/bpf is a bpffs (mounting one, root's alone, if not).
Status ensure_bpffs() {
  struct statfs st{};
  if (statfs("/sys/fs/bpf", &st) == 0 && static_cast<unsigned long>(st.f_type) == kBpfFsMagic) return Status();
  ::mkdir("/sys/fs/bpf", 0700);
  if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0) return Status::from_errno("mount bpffs on /sys/fs/bpf");
  return Status();
}

}  // namespace

std::string pin_dir(std::string_view instance) { return std::string(FERRY_PIN_ROOT) + "/" + std::string(instance); }

Result<bool> make_pin_dir(const std::string& instance) {
  if (Status st = ensure_bpffs(); !st) return st;
  return make_pin_dir_in(FERRY_PIN_ROOT, instance);
}

Result<bool> make_pin_dir_in(const std::string& root, const std::string& instance) {
  if (Status st = sandbox::ensure_private_dir(root); !st) return st;
  const std::string dir = root + "/" + instance;
  if (::mkdir(dir.c_str(), 0700) == 0) return true;
  if (errno != EEXIST) return Status::from_errno("mkdir " + dir);
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Status(ENOTDIR, dir + " is not a directory");
  return false;
}

}  // namespace ferry
