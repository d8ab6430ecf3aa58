// Pinned-map readers: see inspect.h.
#include "attach/inspect.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <vector>

#include "attach/datapath.h"

namespace ferry::attach {

namespace {

// The live slots of a view of n slots; a slot is copied while its seq is
// even and unchanged (a torn one is retried, then skipped).
std::vector<ConnEntry> live_slots(const ferry_conn_view* view, uint32_t n) {
  std::vector<ConnEntry> out;
  for (uint32_t i = 0; i < n; i++) {
    for (int attempt = 0; attempt < 4; attempt++) {
      const uint32_t s1 = __atomic_load_n(&view[i].seq, __ATOMIC_ACQUIRE);
      if (s1 & 1) continue;
      ConnEntry e;
      e.slot = i;
      std::memcpy(&e.v, &view[i], sizeof(e.v));
      std::atomic_thread_fence(std::memory_order_acquire);
      if (__atomic_load_n(&view[i].seq, __ATOMIC_RELAXED) != s1) continue;
      if (e.v.state != FERRY_CONN_FREE) out.push_back(e);
      break;
    }
  }
  return out;
}

}  // namespace

// A regular file of whole slots (conn_view_file.h), mmap'd read-only.
Result<std::vector<ConnEntry>> read_conns_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
      st.st_size % static_cast<off_t>(sizeof(ferry_conn_view)) != 0) {
    ::close(fd);
    return Status(EPROTO, path + ": not a connection view file");
  }
  const size_t mlen = static_cast<size_t>(st.st_size);
  void* mem = ::mmap(nullptr, mlen, PROT_READ, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (mem == MAP_FAILED) return Status(err, "mmap " + path);
  std::vector<ConnEntry> out =
      live_slots(static_cast<const ferry_conn_view*>(mem), static_cast<uint32_t>(mlen / sizeof(ferry_conn_view)));
  ::munmap(mem, mlen);
  return out;
}

Result<std::vector<ConnEntry>> read_conns(const std::string& path) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return Status::from_errno("open " + path);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    Status st = Status::from_errno("inspect " + path);
    ::close(fd);
    return st;
  }
  if (info.value_size != sizeof(ferry_conn_view)) {
    ::close(fd);
    return Status(EPROTO, path + ": value size " + std::to_string(info.value_size) + ", want " +
                              std::to_string(sizeof(ferry_conn_view)));
  }
  const size_t mlen = mmap_len(info.max_entries, sizeof(ferry_conn_view));
  void* mem = ::mmap(nullptr, mlen, PROT_READ, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (mem == MAP_FAILED) return Status(err, "mmap " + path);
  std::vector<ConnEntry> out = live_slots(static_cast<const ferry_conn_view*>(mem), info.max_entries);
  ::munmap(mem, mlen);
  return out;
}

const char* conn_state_name(uint8_t state) {
  switch (state) {
    case FERRY_CONN_CONNECTING: return "connecting";
    case FERRY_CONN_SYN_RCVD: return "syn_rcvd";
    case FERRY_CONN_SYN_SENT: return "syn_sent";
    case FERRY_CONN_ESTABLISHED: return "established";
    default: return "unknown";
  }
}

std::string conn_addr(const uint8_t addr[16], uint8_t family) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) inet_ntop(AF_INET, addr + 12, buf, sizeof(buf));
  else inet_ntop(AF_INET6, addr, buf, sizeof(buf));
  return buf;
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\u%04x", u);
      out += b;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace ferry::attach
