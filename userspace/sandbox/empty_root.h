// The translator's filesystem: an empty, read-only root in mount, IPC and
// UTS namespaces of its own.
//
// Theory of operation (passt's isolate_prefork(), the same steps): unshare
// the mount, IPC and UTS namespaces; make every inherited mount private (no
// propagation back to the host); mount a tmpfs that holds no files and can
// hold none (read-only, nr_inodes=2, no blocks, nodev, noexec, nosuid) on
// /tmp; make it the root with pivot_root(".", "."), which stacks the old
// root on top of the new one, and detach the old root. What is left is a
// root directory with nothing in it: no /proc, no /dev, no /etc, no
// /sys/fs/bpf. Everything the translator needs was opened before.
// Needs CAP_SYS_ADMIN: called before drop_privileges().
#pragma once

#include "common/status.h"

namespace ferry::sandbox {

Status enter_empty_root();

}  // namespace ferry::sandbox
