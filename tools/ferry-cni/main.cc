// ferry-cni: ferry as a CNI plugin (spec 1.1.0; 0.4.0 and 1.0.0 accepted).
//
// Theory of operation: a container runtime executes this binary once per
// operation with CNI_COMMAND and the other CNI_* variables in the
// environment and the network configuration on stdin; the answer goes to
// stdout, diagnostics to stderr, and the exit status is 0 or 1. All logic
// lives in userspace/cni (run_plugin); this file only gathers the inputs
// and guarantees that whatever happens the runtime gets a CNI error object,
// never a crash or an empty answer. Exit 1 with code 5 when stdin cannot be
// read.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "cni/cni.h"
#include "cni/plugin.h"

extern char** environ;

namespace {

// The whole of stdin (the configuration is small; 16 MiB is a hard cap).
bool read_stdin(std::string* out) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (16u << 20)) return false;
  }
}

// Our own executable's path, for finding `ferry` beside it.
std::string self_path() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// Prints an error object and returns the exit status.
int fail(unsigned code, const std::string& msg) {
  ferry::cni::CniError e{code, msg, ""};
  std::printf("%s\n", e.to_json(ferry::cni::kSpecVersion).dump(4, ' ', false,
                                                               nlohmann::json::error_handler_t::replace).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::puts("ferry-cni: a CNI plugin (spec 1.1.0). A container runtime runs it with CNI_COMMAND=ADD|DEL|CHECK|\n"
              "STATUS|GC|VERSION in the environment and the network configuration on stdin. See README.md,\n"
              "section \"Kubernetes (CNI)\".");
    return 0;
  }
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; e++) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  try {
    std::string input;
    auto cmd = env.find("CNI_COMMAND");
    // VERSION may come with nothing on stdin (or a terminal): don't block on it.
    const bool need_stdin = cmd == env.end() || cmd->second != "VERSION" || !::isatty(0);
    if (need_stdin && !read_stdin(&input)) return fail(ferry::cni::kErrIo, "cannot read the network configuration from stdin");
    ferry::cni::PluginRun r = ferry::cni::run_plugin(env, input, self_path());
    std::fputs(r.out.c_str(), stdout);
    std::fflush(stdout);
    return r.exit_code;
  } catch (const std::exception& ex) {
    return fail(999, std::string("internal error: ") + ex.what());
  } catch (...) {
    return fail(999, "internal error");
  }
}
