// Process identity: see process_identity.h.
#include "sandbox/process_identity.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

namespace ferry::sandbox {

std::string ProcessIdentity::to_line() const {
  return std::to_string(pid) + " " + std::to_string(start_time) + " " + exe;
}

bool ProcessIdentity::parse(const std::string& line, ProcessIdentity* out) {
  std::istringstream in(line);
  long long pid = 0;
  unsigned long long start = 0;
  if (!(in >> pid >> start) || pid <= 0 || start == 0) return false;
  std::string exe;
  std::getline(in >> std::ws, exe);
  if (exe.empty() || exe[0] != '/') return false;
  out->pid = static_cast<pid_t>(pid);
  out->start_time = start;
  out->exe = exe;
  return true;
}

Result<ProcessIdentity> identify(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream in(proc + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return Status::from_errno("read " + proc + "/stat");
  // comm (field 2) may hold spaces and parentheses: fields resume after the last ')'
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return Status(EINVAL, proc + "/stat: malformed");
  std::istringstream fields(stat.substr(close + 1));
  std::string f;
  for (int i = 3; i < 22 && (fields >> f); i++) {
  }
  unsigned long long start = 0;
  if (!(fields >> start)) return Status(EINVAL, proc + "/stat: no start time");
  char buf[4096];
  const ssize_t n = readlink((proc + "/exe").c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return Status::from_errno("readlink " + proc + "/exe");
  ProcessIdentity id;
  id.pid = pid;
  id.start_time = start;
  id.exe.assign(buf, static_cast<size_t>(n));
  // A binary replaced on disk (a rebuild) is still the same process.
  constexpr std::string_view kDeleted = " (deleted)";
  if (id.exe.size() > kDeleted.size() && id.exe.ends_with(kDeleted)) id.exe.resize(id.exe.size() - kDeleted.size());
  return id;
}

}  // namespace ferry::sandbox
