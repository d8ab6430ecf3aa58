// ConnsMap: the `conns` view's BPF map (include/ferry/conn_view.h), created
// from its map-only object (bpf/ferry_conns.bpf.c) and memory-mapped.
//
// Theory of operation: create() opens the object, sizes `conns` to the
// translator's flow table (one struct ferry_conn_view per slot), loads it
// (which creates the map with its BTF and nothing else: the object has no
// program) and maps it read-write. pin() pins it where readers look
// (FERRY_PIN_ROOT/<instance>/conns); the pin outlives the object only until
// the owner unpins it. Destroying a ConnsMap unmaps the view and closes the
// map; an existing pin is the owner's to remove. Used by `ferry run`
// (ConnView) and `ferry attach` (Datapath) alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ferry/conn_view.h"
#include "common/status.h"

struct ferry_conns;  // the generated skeleton

namespace ferry::attach {

class ConnsMap {
 public:
  // Creates and maps a `conns` map of `entries` slots (1..FERRY_MAX_CONNS_LIMIT).
  static Result<std::unique_ptr<ConnsMap>> create(uint32_t entries);
  ~ConnsMap();
  ConnsMap(const ConnsMap&) = delete;
  ConnsMap& operator=(const ConnsMap&) = delete;

  // Pins the map at path (a stale pin there is replaced).
  Status pin(const std::string& path);

  ferry_conn_view* view() const { return view_; }
  uint32_t entries() const { return entries_; }
  int fd() const;

 private:
  ConnsMap() = default;
  ::ferry_conns* skel_ = nullptr;
  ferry_conn_view* view_ = nullptr;
  size_t len_ = 0;
  uint32_t entries_ = 0;
};

}  // namespace ferry::attach
