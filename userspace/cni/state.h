// Per-attachment state of ferry-cni: what DEL, CHECK and GC need to find an
// attachment again after ADD's process is long gone.
//
// Theory of operation: one JSON file per attachment, <stateDir>/<key>.json,
// key = attachment_key(network, containerID, ifname). ADD writes the record
// *before* it creates anything (phase "adding"), then again when the pod is
// connected ("ready"); so a plugin killed half-way leaves a record that DEL
// or GC can use to remove what it made. Files are replaced atomically
// (write a temporary, fsync, rename). All plugin invocations that touch
// state hold an exclusive flock on <stateDir>/.lock: concurrent ADD/DEL/GC
// of a node are serialised; a lock not obtained within the wait is CNI
// error 11 (try again later), never a hang.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "netns/status.h"

namespace ferry::cni {

struct AttachmentRecord {
  std::string network;
  std::string container_id;
  std::string ifname;
  std::string netns;
  std::string host_dev;
  std::string mode = "main";     // "main": ferry made the veth; "chained": another plugin did
  std::string phase = "adding";  // "adding" until ADD has finished
  bool ipam = false;             // an IPAM plugin allocated addresses
};

// Record <-> JSON text.
std::string record_to_text(const AttachmentRecord& r);
std::optional<AttachmentRecord> record_from_text(const std::string& text);

class StateStore {
 public:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // Creates the directory (0700) and takes the lock, waiting up to
  // `wait_ms`. EAGAIN when the lock stayed busy.
  Status lock(int wait_ms);
  Status save(const std::string& key, const AttachmentRecord& r);
  // nullopt when there is no record (or it is unreadable garbage, which is
  // then as good as none).
  std::optional<AttachmentRecord> load(const std::string& key) const;
  Status remove(const std::string& key);
  // Every record: key and content.
  std::vector<std::pair<std::string, AttachmentRecord>> list() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int lock_fd_ = -1;
};

}  // namespace ferry::cni
