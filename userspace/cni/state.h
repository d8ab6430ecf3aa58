// Per-attachment state of ferry-cni: what DEL, CHECK and GC need to find an
// attachment again after ADD's process is long gone.
//
// Theory of operation: one JSON file per attachment, <stateDir>/<key>.json,
// key = attachment_key(network, containerID, ifname). ADD writes the record
// *before* it creates anything (phase "adding"), then again when the pod is
// connected ("ready"); so a plugin killed half-way leaves a record that DEL
// or GC can use to remove what it made. Files are replaced atomically
// (write a temporary, fsync, rename). An invocation holds an exclusive
// flock on <stateDir>/<key>.lock for the attachment it works on (GC: for
// each one it removes, in turn): ADD/DEL/CHECK of one attachment are
// serialised, those of different attachments never wait for each other (a
// slow IPAM of one pod stalls no other pod). A lock not obtained within
// the wait is CNI error 11 (try again later), never a hang. DEL removes
// the lock file while holding it; a locker that then finds its file
// unlinked (the inode at the path is not the one it locked) starts over.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

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
  uint32_t socket_mark = 0;      // SO_MARK of the attachment's host sockets (0: none)
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

  // Creates the directory (0700) and takes the attachment's lock, waiting
  // up to `wait_ms`. EAGAIN when the lock stayed busy. One lock at a time:
  // a second lock() releases the first.
  Status lock(const std::string& key, int wait_ms);
  // Releases the lock; with remove_file, unlinks its file first (DEL).
  void unlock(bool remove_file = false);
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
  std::string lock_path_;
};

}  // namespace ferry::cni
