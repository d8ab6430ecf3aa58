// translator_child: see translator_child.h.
#include "translator_child.h"

#include <unistd.h>

#include <cstdio>
#include <string_view>

#include "sandbox/sandbox.h"

namespace ferry::cli {

void enter_translator_sandbox(const char* who, Translator& translator, sandbox::ParentChannel& channel,
                              MarkCgroup* mark, const sandbox::Options& options) {
  translator.policy().node_addresses().freeze();
  channel.set_on_update([&translator](std::string_view t) { translator.policy().node_addresses().load_text(t); });
  if (mark) {
    if (Status st = mark->join(); !st) {
      std::fprintf(stderr, "%s: --mark: %s\n", who, st.message().c_str());
      _exit(1);
    }
  }
  if (Status st = sandbox::enter(options); !st) {
    std::fprintf(stderr, "%s: sandbox: %s\n", who, st.message().c_str());
    _exit(1);
  }
  if (!channel.send_ready()) _exit(1);
}

}  // namespace ferry::cli
