// translator_child: the last step of the sandboxed translator child before
// its loop, the same for `ferry run`, `ferry vm` and the `ferry attach`
// service (sandbox/process_split.h has the parent/child protocol).
//
// In order: the node's addresses (the policy's --no-node list) stop being
// read here and come from the parent over the channel from now on (the
// sandbox cannot list them); the --mark cgroup is joined (while the child
// may still write cgroup files); the sandbox is entered; the parent is told
// it is ready. Any failure ends the child with status 1, one line on stderr.
#pragma once

#include "bpf/mark_cgroup.h"
#include "sandbox/options.h"
#include "sandbox/process_split.h"
#include "translator/translator.h"

namespace ferry::cli {

// Enters the sandbox as described above; `who` prefixes error lines
// ("ferry run"). `mark` may be null (no --mark). Returns only on success.
void enter_translator_sandbox(const char* who, Translator& translator, sandbox::ParentChannel& channel,
                              MarkCgroup* mark, const sandbox::Options& options);

}  // namespace ferry::cli
