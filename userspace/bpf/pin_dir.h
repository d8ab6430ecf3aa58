// Where ferry pins its BPF objects, and the one way to make that place.
//
// Theory of operation: every instance (`ferry run`'s run-<pid>, an
// attachment's DEV) pins under FERRY_PIN_ROOT/<instance>/. Whoever can
// write to the pin root can replace a pinned map or read another guest's
// connections, so (issue 12) the root must be a real directory owned by
// root, mode 0700: make_pin_dir() makes sure bpffs is mounted at
// /sys/fs/bpf (mode=0700 when ferry mounts it), makes the root or checks it
// through sandbox::ensure_private_dir (refusing one someone else owns or a
// symlink, narrowing a wider one of ours), then makes the instance's
// directory 0700. Whether an existing instance directory may be joined is
// the caller's decision: it is told whether the directory was new.
// The classifier (`ferry run`), the `conns` view and the attach data path
// all make their directory here.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace ferry {

// FERRY_PIN_ROOT/<instance>
std::string pin_dir(std::string_view instance);

// Makes FERRY_PIN_ROOT/<instance> (see above); true when it made the
// directory, false when it was there already.
Result<bool> make_pin_dir(const std::string& instance);
// Same under another root (tests use a private one); bpffs is not checked.
Result<bool> make_pin_dir_in(const std::string& root, const std::string& instance);

}  // namespace ferry
