// ConnViewFile: the `conns` view (include/ferry/conn_view.h) in a plain
// file, for an instance that has no bpffs to pin a map in (a rootless
// `ferry run`).
//
// Theory of operation: the file is made (O_EXCL, 0600, never through a
// symlink) in the instance's private directory, sized to `entries` slots
// of struct ferry_conn_view and mapped shared, read-write, by the parent
// before it forks the translator. The translator inherits the mapping
// (the sandbox's empty root does not undo it) and its ConnMirror writes the
// slots exactly as into the pinned BPF array: same layout, same seq
// protocol. `ferry conns` maps the file read-only
// (attach::read_conns_file) and never talks to the process, so it works
// while the process is hung, as with the pin. The parent unmaps and
// unlinks the file when the object goes. No syscall per frame: the mirror
// writes memory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "ferry/conn_view.h"

namespace ferry::attach {

class ConnViewFile {
 public:
  // Makes and maps path with `entries` zeroed slots.
  static Result<std::unique_ptr<ConnViewFile>> create(const std::string& path, uint32_t entries);
  ~ConnViewFile();
  ConnViewFile(const ConnViewFile&) = delete;
  ConnViewFile& operator=(const ConnViewFile&) = delete;

  ferry_conn_view* view() const { return view_; }
  uint32_t entries() const { return entries_; }

 private:
  ConnViewFile() = default;
  std::string path_;
  ferry_conn_view* view_ = nullptr;
  uint32_t entries_ = 0;
};

}  // namespace ferry::attach
