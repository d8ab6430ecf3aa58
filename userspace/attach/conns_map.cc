// The `conns` map from its map-only object: see conns_map.h.
#include "attach/conns_map.h"

#include <sys/mman.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "attach/datapath.h"
#include "ferry/contract.h"
#include "ferry_conns.skel.h"  // generated (a SYSTEM include: cmake/BpfObject.cmake)

namespace ferry::attach {

Result<std::unique_ptr<ConnsMap>> ConnsMap::create(uint32_t entries) {
  if (entries == 0 || entries > FERRY_MAX_CONNS_LIMIT)
    return Status(EINVAL, "conns map: " + std::to_string(entries) + " entries (1.." +
                              std::to_string(FERRY_MAX_CONNS_LIMIT) + ")");
  std::unique_ptr<ConnsMap> m(new ConnsMap());
  m->skel_ = ferry_conns__open();
  if (m->skel_ == nullptr) return Status::from_errno("open BPF object ferry_conns");
  if (int err = bpf_map__set_max_entries(m->skel_->maps.conns, entries); err != 0)
    return Status(-err, "size the conns map");
  if (int err = ferry_conns__load(m->skel_); err != 0) return Status(-err, "create the conns map");
  m->len_ = mmap_len(entries, sizeof(ferry_conn_view));
  void* mem = ::mmap(nullptr, m->len_, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd(), 0);
  if (mem == MAP_FAILED) return Status::from_errno("mmap conns map");
  m->view_ = static_cast<ferry_conn_view*>(mem);
  m->entries_ = entries;
  return m;
}

ConnsMap::~ConnsMap() {
  if (view_ != nullptr) ::munmap(view_, len_);
  if (skel_ != nullptr) ferry_conns__destroy(skel_);
}

int ConnsMap::fd() const { return skel_ != nullptr ? bpf_map__fd(skel_->maps.conns) : -1; }

Status ConnsMap::pin(const std::string& path) {
  ::unlink(path.c_str());  // a stale pin of a dead instance with our name
  if (int err = bpf_map__pin(skel_->maps.conns, path.c_str()); err != 0) return Status(-err, "pin " + path);
  return Status();
}

}  // namespace ferry::attach
