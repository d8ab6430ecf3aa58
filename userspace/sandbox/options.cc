// Sandbox options: see options.h.
#include "sandbox/options.h"

#include <grp.h>
#include <pwd.h>

#include <charconv>
#include <cstdlib>
#include <string_view>

namespace ferry::sandbox {

namespace {

// "off"/"kill"/"log" to a mode.
bool parse_mode(std::string_view v, SeccompMode* m) {
  if (v == "kill") *m = SeccompMode::kill;
  else if (v == "log") *m = SeccompMode::log;
  else if (v == "off") *m = SeccompMode::off;
  else return false;
  return true;
}

// A decimal id, or -1.
long parse_id(std::string_view v) {
  long n = -1;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return (ec == std::errc() && p == v.data() + v.size() && n >= 0 && n < 0xffffffffL) ? n : -1;
}

}  // namespace

namespace {

// --runas USER[:GROUP]: names are resolved later, by resolve().
bool apply_runas(Options& o, const char* value, std::string* error) {
  const std::string_view v = value;
  if (v.empty() || v.front() == ':' || v.back() == ':') {
    *error = "bad --runas '" + std::string(v) + "' (USER or USER:GROUP)";
    return false;
  }
  o.runas = v;
  return true;
}

bool apply_seccomp(Options& o, const char* value, std::string* error) {
  if (parse_mode(value, &o.seccomp)) return true;
  *error = "bad --seccomp '" + std::string(value) + "' (kill, log or off)";
  return false;
}

constexpr Option<Options> kOptions[] = {
    {{"--runas", 0, "USER[:GROUP]", "the translator's user after set-up (nobody)"}, apply_runas},
    {{"--seccomp", 0, "kill|log|off",
      "what a system call outside the translator's allow-list\n"
      "does: kill it (default), log it, no filter\n"
      "(FERRY_SECCOMP=log does the same as --seccomp log)"},
     apply_seccomp},
    {{"--no-sandbox", 0, nullptr, "translate with root's privileges (debugging only)"}, option::set<&Options::enabled, false>},
};

}  // namespace

std::span<const Option<Options>> option_table() { return kOptions; }

Status resolve(Options* o, bool seccomp_from_option) {
  if (!seccomp_from_option) {
    if (const char* env = std::getenv("FERRY_SECCOMP"); env != nullptr && *env != '\0') {
      if (!parse_mode(env, &o->seccomp)) {
        return Status::failure("bad FERRY_SECCOMP '" + std::string(env) + "' (kill, log or off)");
      }
    }
  }
  const std::string_view spec = o->runas;
  const size_t colon = spec.find(':');
  const std::string user(spec.substr(0, colon));
  if (const passwd* pw = getpwnam(user.c_str())) {
    o->uid = pw->pw_uid;
    o->gid = pw->pw_gid;
  } else if (long id = parse_id(user); id >= 0) {
    o->uid = static_cast<uid_t>(id);
    o->gid = static_cast<gid_t>(id);
  } else {
    return Status::failure("--runas: no user '" + user + "'");
  }
  if (colon != std::string_view::npos) {
    const std::string group(spec.substr(colon + 1));
    if (const struct group* gr = getgrnam(group.c_str())) {
      o->gid = gr->gr_gid;
    } else if (long id = parse_id(group); id >= 0) {
      o->gid = static_cast<gid_t>(id);
    } else {
      return Status::failure("--runas: no group '" + group + "'");
    }
  }
  return {};
}

const char* to_string(SeccompMode m) {
  switch (m) {
    case SeccompMode::kill: return "kill";
    case SeccompMode::log: return "log";
    case SeccompMode::off: return "off";
  }
  return "?";
}

}  // namespace ferry::sandbox
