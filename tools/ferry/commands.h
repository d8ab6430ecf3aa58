// The ferry CLI's subcommands. Each takes argv starting at its own name
// (argv[0] == "run", ...) and returns the process exit status:
//   0 success, 1 runtime failure, 2 usage error; `run` returns CMD's status.
#pragma once

namespace ferry::cli {

int cmd_run(int argc, char** argv);
int cmd_vm(int argc, char** argv);
int cmd_stats(int argc, char** argv);
// Attachments to existing devices (userspace/attach/); codes documented in each file.
int cmd_attach(int argc, char** argv);
int cmd_detach(int argc, char** argv);
int cmd_status(int argc, char** argv);
int cmd_conns(int argc, char** argv);

}  // namespace ferry::cli
