// Run dir, pin dir and state file of an attachment: see instance.h.
#include "attach/instance.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ferry/contract.h"

namespace ferry::attach {

// Checks the name the way the kernel's dev_valid_name() does.
bool valid_ifname(std::string_view name) {
  if (name.empty() || name.size() >= 16 || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(),
                      [](char ch) { return ch == '/' || ch == ':' || ch == ' ' || ch == '\t' || ch == '\n'; });
}

std::string run_dir(std::string_view dev) { return std::string(kRunRoot) + "/" + std::string(dev); }


// Writes to a temporary file and renames it, so readers never see half a file.
Status write_state(const std::string& path, const StateMap& state) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Status::from_errno("write " + tmp);
    for (const auto& [k, v] : state) out << k << '=' << v << '\n';
    if (!out.flush()) return Status::from_errno("write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Status::from_errno("rename " + tmp);
  return {};
}

// Reads key=value lines; lines without '=' are ignored.
Result<StateMap> read_state(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::from_errno("read " + path);
  StateMap m;
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    m[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return m;
}

// Tries to take the lock shared; failing with EWOULDBLOCK means the service holds it.
bool service_alive(std::string_view dev) {
  const std::string path = run_dir(dev) + "/lock";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return held;
}

int service_pid(std::string_view dev) {
  std::ifstream in(run_dir(dev) + "/pid");
  int pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return pid;
}

std::vector<std::string> list_attachments() {
  std::vector<std::string> out;
  DIR* d = ::opendir(kRunRoot);
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == ".." || !valid_ifname(name)) continue;
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
    out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status remove_dir_flat(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT ? Status() : Status::from_errno("open " + dir);
  Status st;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string p = dir + "/" + name;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT && st.ok()) st = Status::from_errno("remove " + p);
  }
  ::closedir(d);
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && st.ok()) st = Status::from_errno("remove " + dir);
  return st;
}

}  // namespace ferry::attach
