// A service's own cgroup: see service_cgroup.h.
#include "sandbox/service_cgroup.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <fstream>

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

}  // namespace

bool writable_cgroup2(const std::string& root) {
  struct statfs st {};
  return statfs(root.c_str(), &st) == 0 && static_cast<unsigned long>(st.f_type) == CGROUP2_SUPER_MAGIC &&
         access(root.c_str(), W_OK) == 0;
}

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
  if (Status s = write_file(dir + "/cgroup.procs", std::to_string(pid)); !s) return s;
  return dir;
}

void leave_service_cgroup(const std::string& root, const std::string& dir, const std::string& home, pid_t pid) {
  (void)write_file(root + (home == "/" ? "" : home) + "/cgroup.procs", std::to_string(pid));
  (void)rmdir(dir.c_str());
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
