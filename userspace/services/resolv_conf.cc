// resolv.conf parsing and the guest's copy (see resolv_conf.h).
#include "services/resolv_conf.h"

#include <fstream>
#include <sstream>

namespace ferry::services {

namespace {
constexpr size_t kMaxNameservers = 3;  // glibc's MAXNS
}  // namespace

ResolvConf parse_resolv_conf(std::string_view text) {
  ResolvConf rc;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    if (!(words >> key) || key[0] == '#' || key[0] == ';') continue;
    if (key == "nameserver") {
      std::string addr;
      if (!(words >> addr) || rc.nameservers.size() >= kMaxNameservers) continue;
      if (auto a = InetAddr::parse(addr)) rc.nameservers.push_back(*a);  // "fe80::1%eth0" does not parse
    } else if (key == "search" || key == "domain") {
      rc.search.clear();
      for (std::string d; words >> d;) {
        if (d[0] == '#' || d[0] == ';') break;
        if (key == "domain" && !rc.search.empty()) break;
        rc.search.push_back(d);
      }
    } else if (key == "options") {
      std::string rest;
      std::getline(words, rest);
      const size_t start = rest.find_first_not_of(" \t");
      if (start != std::string::npos) rc.options.push_back(rest.substr(start));
    }
  }
  if (rc.nameservers.empty()) {
    rc.nameservers.push_back(*InetAddr::parse("127.0.0.1"));
    rc.defaulted = true;
  }
  return rc;
}

ResolvConf read_resolv_conf(const char* path) {
  std::ifstream f(path);
  std::stringstream text;
  if (f) text << f.rdbuf();
  return parse_resolv_conf(text.str());
}

bool only_loopback(const ResolvConf& rc) {
  for (const InetAddr& a : rc.nameservers)
    if (!a.is_loopback()) return false;
  return true;
}

std::string render_guest_resolv_conf(const std::vector<InetAddr>& servers, const std::vector<std::string>& search,
                                     const ResolvConf& host) {
  std::string out = "# written by ferry for this guest (the host's resolvers are loopback addresses)\n";
  for (const InetAddr& a : servers) out += "nameserver " + a.str() + "\n";
  if (!search.empty()) {
    out += "search";
    for (const std::string& d : search) out += " " + d;
    out += "\n";
  }
  for (const std::string& o : host.options) out += "options " + o + "\n";
  return out;
}

}  // namespace ferry::services
