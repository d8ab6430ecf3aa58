// A service's own cgroup: see service_cgroup.h.
#include "sandbox/service_cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

namespace ferry::sandbox {

namespace {

// Writes text to an existing cgroup file (or, under a test's plain
// directory, creates it).
Status write_file(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno("open " + path);
  const ssize_t n = write(fd, text.data(), text.size());
  const int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) return Status(err, "write " + path);
  return {};
}

// mkdir that accepts an existing directory.
Status make_dir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return Status::from_errno("mkdir " + path);
  return {};
}

bool is_cgroup2(const std::string& path) {
  struct statfs st {};
  return statfs(path.c_str(), &st) == 0 && static_cast<unsigned long>(st.f_type) == CGROUP2_SUPER_MAGIC;
}

}  // namespace

bool writable_cgroup2(const std::string& root) { return is_cgroup2(root) && access(root.c_str(), W_OK) == 0; }

Result<std::string> join_service_cgroup(const std::string& root, const std::string& name,
                                        std::optional<uint64_t> memory_max, pid_t pid) {
  const std::string parent = root + "/ferry";
  if (mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) return Status::from_errno("mkdir " + parent);
  const bool memory = write_file(parent + "/cgroup.subtree_control", "+memory").ok();
  const std::string dir = parent + "/" + name;
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return Status::from_errno("mkdir " + dir);
  if (memory_max && !memory) return Status(ENOTSUP, parent + ": no memory controller for memory.max");
  if (memory) {
    const std::string v = memory_max ? std::to_string(*memory_max) : "max";
    if (Status s = write_file(dir + "/memory.max", v); !s) return s;
  }
  const std::string leaf = dir + "/" + kServiceLeaf;
  if (Status s = make_dir(leaf, 0755); !s) return s;
  if (Status s = write_file(leaf + "/cgroup.procs", std::to_string(pid)); !s) return s;
  return dir;
}

void leave_service_cgroup(const std::string& root, const std::string& dir, const std::string& home, pid_t pid) {
  (void)write_file(root + (home == "/" ? "" : home) + "/cgroup.procs", std::to_string(pid));
  (void)rmdir((dir + "/" + kTranslatorLeaf).c_str());
  (void)rmdir((dir + "/" + kServiceLeaf).c_str());
  (void)rmdir(dir.c_str());
}

std::string translator_cgroup_dir(const std::string& cgroup2, const std::string& service_dir,
                                  const std::string& name) {
  const std::string parent = service_dir.empty() ? cgroup2 + "/ferry/" + name : service_dir;
  return parent + "/" + kTranslatorLeaf;
}

// The parents first (a service's cgroup exists already; ferry/ and
// ferry/NAME are made here on a hybrid machine), then the leaf, 0700.
Status make_translator_cgroup(const std::string& dir) {
  const std::string name_dir = dir.substr(0, dir.rfind('/'));
  const std::string ferry_dir = name_dir.substr(0, name_dir.rfind('/'));
  if (Status s = make_dir(ferry_dir, 0755); !s) return s;
  if (Status s = make_dir(name_dir, 0755); !s) return s;
  if (mkdir(dir.c_str(), 0700) == 0) return {};
  if (errno != EEXIST || rmdir(dir.c_str()) != 0 || mkdir(dir.c_str(), 0700) != 0)
    return Status::from_errno("cgroup " + dir);
  return {};
}

void remove_translator_cgroup(const std::string& dir, const std::string& service_dir) {
  (void)rmdir(dir.c_str());  // empty once the translator exited
  if (service_dir.empty()) (void)rmdir(dir.substr(0, dir.rfind('/')).c_str());
}

void remove_service_cgroups(const std::string& cgroup2, const std::string& name) {
  if (cgroup2.empty() || name.empty() || name.find('/') != std::string::npos || name[0] == '.') return;
  const std::string dir = cgroup2 + "/ferry/" + name;
  (void)rmdir((dir + "/" + kTranslatorLeaf).c_str());
  (void)rmdir((dir + "/" + kServiceLeaf).c_str());
  (void)rmdir(dir.c_str());
  (void)rmdir((cgroup2 + "/ferry-" + name).c_str());  // before the service-cgroup layout
}

// Each directory under cgroup2/ferry/ old enough, then the dead ones' removal.
size_t remove_dead_instance_cgroups(const std::string& cgroup2, bool (*is_dead)(const std::string& name),
                                    long min_age_s, bool (*old_layout_is_ours)(const std::string& path)) {
  if (cgroup2.empty()) return 0;
  const time_t now = time(nullptr);
  // The names of the directories under `dir` old enough, whose names start with `prefix` (stripped).
  auto old_enough = [&](const std::string& dir, const std::string& prefix) {
    std::vector<std::string> names;
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
        if (name[prefix.size()] == '.') continue;
        struct stat st {};
        if (stat((dir + "/" + name).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        if (now - st.st_mtime < min_age_s) continue;  // perhaps being made right now
        names.push_back(name.substr(prefix.size()));
      }
      closedir(d);
    }
    return names;
  };
  const std::string top = cgroup2 + "/ferry";
  size_t removed = 0;
  for (const std::string& name : old_enough(top, "")) {
    if (!is_dead(name)) continue;
    remove_service_cgroups(cgroup2, name);
    struct stat st {};
    if (stat((top + "/" + name).c_str(), &st) != 0) removed++;
  }
  if (old_layout_is_ours == nullptr) return removed;
  for (const std::string& name : old_enough(cgroup2, "ferry-")) {
    const std::string path = cgroup2 + "/ferry-" + name;
    if (!is_dead(name) || !old_layout_is_ours(path)) continue;
    if (rmdir(path.c_str()) == 0) removed++;
  }
  return removed;
}

// /sys/fs/cgroup when it is the unified hierarchy, else the first cgroup2
// mount in mountinfo (a hybrid machine's /sys/fs/cgroup/unified).
std::string cgroup2_mount() {
  if (is_cgroup2(kCgroupRoot)) return kCgroupRoot;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    // ... mount-point ... - fstype source options
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, devno, root, mnt;
    if (fields >> id >> parent >> devno >> root >> mnt) return mnt;
  }
  return "";
}

std::string current_cgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "";
}

bool parse_memory_size(const std::string& text, std::optional<uint64_t>* out) {
  if (text == "max") {
    out->reset();
    return true;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p == text.data()) return false;
  const std::string_view unit(p, static_cast<size_t>(text.data() + text.size() - p));
  unsigned shift = 0;
  if (unit == "K" || unit == "k") shift = 10;
  else if (unit == "M" || unit == "m") shift = 20;
  else if (unit == "G" || unit == "g") shift = 30;
  else if (!unit.empty()) return false;
  if (v == 0 || v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

}  // namespace ferry::sandbox
