// ferry: the operator CLI. Dispatches to one subcommand per verb, in the
// conventions of `ip` and `bpftool`: `ferry VERB [OPTIONS]`, `--help`
// everywhere, one-line errors on stderr, exit 0 / 1 (failure) / 2 (usage).
#include <cstdio>
#include <cstring>
#include <string_view>

#include "commands.h"

namespace {

constexpr const char* kUsage =
    "usage: ferry COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  run [OPTIONS] [-- CMD [ARGS]]   run CMD (a shell by default) in a fresh network\n"
    "                                  namespace whose network ferry translates\n"
    "  vm --socket PATH [OPTIONS]      serve a QEMU guest over QEMU's stream socket\n"
    "                                  (-netdev stream; passt's protocol), no BPF\n"
    "  stats [-j] [INSTANCE]           counters of the running ferry instances\n"
    "  attach DEV [OPTIONS]            translate for the guest behind an existing veth/tap\n"
    "                                  (background service)\n"
    "  detach DEV                      stop that service and remove all it added\n"
    "  status [DEV] [-j]               the attachments: hook, programs, pid, counters\n"
    "  conns [INSTANCE] [-j]           the live TCP table of an instance (from its pins)\n"
    "  version                         print the version\n"
    "\n"
    "`ferry COMMAND --help` describes each command.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "version" || cmd == "--version" || cmd == "-V") {
    std::printf("ferry %s\n", FERRY_VERSION);
    return 0;
  }
  if (cmd == "run") return ferry::cli::cmd_run(argc - 1, argv + 1);
  if (cmd == "vm") return ferry::cli::cmd_vm(argc - 1, argv + 1);
  if (cmd == "stats") return ferry::cli::cmd_stats(argc - 1, argv + 1);
  if (cmd == "attach") return ferry::cli::cmd_attach(argc - 1, argv + 1);
  if (cmd == "detach") return ferry::cli::cmd_detach(argc - 1, argv + 1);
  if (cmd == "status") return ferry::cli::cmd_status(argc - 1, argv + 1);
  if (cmd == "conns") return ferry::cli::cmd_conns(argc - 1, argv + 1);
  std::fprintf(stderr, "ferry: unknown command '%s' (try 'ferry --help')\n", argv[1]);
  return 2;
}
