// Where an attachment keeps its things, and the small text state file.
//
// Theory of operation: an attachment of ferry to device DEV is the service
// process plus three places, all named after DEV:
//   /run/ferry/DEV/          run dir: `lock` (flock held by the live service
//                            for its whole life: "alive" means "locked"),
//                            `pid`, `state` (key=value lines), `log`;
//   /sys/fs/bpf/ferry/DEV/   pins: `link_dev` (the bpf_link that redirects
//                            DEV's guest frames), `stats`, `attach_stats`,
//                            `conns` (maps);
//   DEV itself               the link above; the private tap lives exactly as
//                            long as the service's fd.
// The lock, not the pid, decides liveness: it is released by the kernel when
// the process dies however it dies, and a recycled pid cannot fake it.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bpf/pin_dir.h"
#include "common/status.h"

namespace ferry::attach {

inline constexpr const char* kRunRoot = "/run/ferry";

// True for a plausible interface name (1..15 bytes, no '/', no whitespace, not . or ..).
bool valid_ifname(std::string_view name);

std::string run_dir(std::string_view dev);
// FERRY_PIN_ROOT/<instance> (bpf/pin_dir.h; make_pin_dir makes it)
using ::ferry::pin_dir;

// key=value lines; values may not contain newlines.
using StateMap = std::map<std::string, std::string>;
Status write_state(const std::string& path, const StateMap& state);
Result<StateMap> read_state(const std::string& path);

// Whether a service holds DEV's lock (it is alive). False when no run dir.
bool service_alive(std::string_view dev);
// The pid written by the service, 0 when none.
int service_pid(std::string_view dev);

// Devices with a run dir under /run/ferry, sorted.
std::vector<std::string> list_attachments();

// Removes every file in `dir` (one level) and the dir; missing is fine.
Status remove_dir_flat(const std::string& dir);

}  // namespace ferry::attach
