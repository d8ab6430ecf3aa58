// BPF classifier: loading, attaching to a tap's TC egress, pinning, and
// reading the pinned counters from any process.
//
// Theory of operation: a BpfAttachment owns one loaded copy of
// bpf/ferry_classify.bpf.c (libbpf skeleton). Its life has three optional
// steps, each undone by the destructor in reverse order:
//   load()              open + load the skeleton (maps sized from max_conns);
//   attach_tc_egress()  clsact egress filter on an ifindex inside a network
//                       namespace (the calling thread setns()es in and back);
//                       the clsact qdisc is created if missing and removed on
//                       detach only if we created it and no filter is left;
//   pin()               every map pinned under /sys/fs/bpf/ferry/<instance>/
//                       (made by make_pin_dir, bpf/pin_dir.h: root-owned 0700;
//                       a directory without a `stats` pin may be shared).
// Errors come back as a Status (common/status.h; message() is one line);
// nothing aborts, so `ferry run` can warn and run without BPF.
// The one exception is failing to setns() back to the original namespace,
// which would leave the thread in the guest's namespace: that aborts.
//
// The free functions read what a live (or dead) instance left pinned; they
// need no BpfAttachment, so `ferry stats` can run in another process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "ferry/contract.h"

struct ferry_classify;  // the generated skeleton

namespace ferry {

class BpfAttachment {
 public:
  BpfAttachment() = default;
  ~BpfAttachment();
  BpfAttachment(const BpfAttachment&) = delete;
  BpfAttachment& operator=(const BpfAttachment&) = delete;

  // Opens and loads the classifier; max_conns sizes the connection maps.
  Status load(uint32_t max_conns = FERRY_MAX_CONNS_DEFAULT);
  // Attaches the TC program at clsact egress of `ifindex`, which lives in
  // the namespace `netns_fd` (-1: the calling thread's current one).
  Status attach_tc_egress(int netns_fd, int ifindex);
  // Same, by interface name (resolved inside the namespace).
  Status attach_tc_egress(int netns_fd, const std::string& ifname);
  // Pins every map under FERRY_PIN_ROOT/<instance>/.
  Status pin(const std::string& instance);

  // Removes our filter (and the clsact qdisc if we created it and it is now
  // empty). Safe to call twice, or when the device is already gone.
  void detach();
  // Unpins our maps and removes the instance directory if that left it
  // empty (other components of the instance may pin there too).
  void unpin();

  // The default instance name of `ferry run`: "run-<pid>".
  static std::string run_instance_name(int pid);

  bool loaded() const { return skel_ != nullptr; }
  bool attached() const { return attached_; }
  const std::string& instance() const { return instance_; }
  // File descriptors (-1 before load()).
  int prog_fd() const;
  int map_fd(const char* name) const;
  // The skeleton, for the fast-path map views (userspace/bpf/fastpath_maps.h).
  ferry_classify* skeleton() const { return skel_; }

 private:
  ferry_classify* skel_ = nullptr;
  bool attached_ = false;
  bool created_qdisc_ = false;
  int netns_fd_ = -1;  // our dup, for detach
  int ifindex_ = 0;
  uint32_t tc_handle_ = 0, tc_priority_ = 0;
  std::string instance_;
};

// A valid instance name: 1..64 of [A-Za-z0-9._-], not "." or "..".
bool valid_instance_name(const std::string& name);

// Sums the pinned per-CPU `stats` map of `instance` into *out.
Status read_stats(const std::string& instance, ferry_stats* out);

// Instance names with a pinned `stats` map, sorted. With live_only, run-<pid>
// instances whose process is gone are left out.
std::vector<std::string> list_instances(bool live_only = true);

// True for a run-<pid> instance whose process no longer exists.
bool instance_is_stale(const std::string& name);

// Removes FERRY_PIN_ROOT/run-<pid> directories of dead processes (a ferry
// that was SIGKILLed). Returns how many were removed; *err gets the first
// failure, if any.
int cleanup_stale_instances(std::string* err = nullptr);
// Same, under another root directory (tests use a private one).
int cleanup_stale_instances_in(const std::string& root, std::string* err = nullptr);

// Counter names and values in FERRY_STATS_FIELDS order.
struct StatsField {
  const char* name;
  uint64_t value;
};
std::vector<StatsField> stats_fields(const ferry_stats& s);

}  // namespace ferry
