// ConnViewFile: see conn_view_file.h.
#include "attach/conn_view_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace ferry::attach {

Result<std::unique_ptr<ConnViewFile>> ConnViewFile::create(const std::string& path, uint32_t entries) {
  if (entries == 0) return Status(EINVAL, path + ": no slots");
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Status::from_errno("create " + path);
  const size_t len = static_cast<size_t>(entries) * sizeof(ferry_conn_view);
  if (ftruncate(fd, static_cast<off_t>(len)) != 0) {
    Status st = Status::from_errno("size " + path);
    ::close(fd);
    ::unlink(path.c_str());
    return st;
  }
  void* mem = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (mem == MAP_FAILED) {
    ::unlink(path.c_str());
    return Status(err, "mmap " + path);
  }
  std::unique_ptr<ConnViewFile> f(new ConnViewFile());
  f->path_ = path;
  f->view_ = static_cast<ferry_conn_view*>(mem);
  f->entries_ = entries;
  return f;
}

ConnViewFile::~ConnViewFile() {
  if (view_ != nullptr) ::munmap(view_, static_cast<size_t>(entries_) * sizeof(ferry_conn_view));
  ::unlink(path_.c_str());
}

}  // namespace ferry::attach
