// /proc/PID/status as a map of field to value ("CapEff" -> "0000000000000000"),
// for tests that check a process's credentials from outside.
#pragma once

#include <sys/types.h>

#include <fstream>
#include <map>
#include <string>

namespace ferry::test {

inline std::map<std::string, std::string> proc_status(pid_t pid) {
  std::map<std::string, std::string> m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    const size_t c = line.find(':');
    if (c == std::string::npos) continue;
    const size_t v = line.find_first_not_of(" \t", c + 1);
    m[line.substr(0, c)] = v == std::string::npos ? "" : line.substr(v);
  }
  return m;
}

}  // namespace ferry::test
