// Directories only root may use: ferry's run dirs and its BPF pin root.
//
// Theory of operation: ferry keeps pids, locks, state, counters and logs
// under /run/ferry, /run/ferry-run and pins its maps and links under
// /sys/fs/bpf/ferry. Whoever can write there can make a later ferry signal
// the wrong process, read another guest's connections or replace a pinned
// map. ensure_private_dir() makes such a directory 0700, owned by us (root),
// and refuses one that is not a real directory (a symlink, a file) or that
// someone else owns; one of ours that is wider (made by an older ferry) is
// narrowed to 0700. The check uses the directory it opened (O_NOFOLLOW, then
// fstat/fchmod on that fd), so a rename in between cannot fool it.
#pragma once

#include <string>

#include "common/status.h"

namespace ferry::sandbox {

Status ensure_private_dir(const std::string& path);

}  // namespace ferry::sandbox
