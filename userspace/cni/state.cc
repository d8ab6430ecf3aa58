// StateStore: see state.h for the theory of operation.
#include "cni/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "cni/cni.h"

namespace ferry::cni {

namespace {

// mkdir -p with mode 0700 for what we create.
Status make_dirs(const std::string& dir) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    cur = dir.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return Status::from_errno("mkdir " + cur);
  }
  return Status();
}

// Keys are 16 hex digits; nothing else in the directory is ours.
bool is_key(const std::string& s) {
  if (s.size() != 16) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Reads a whole small file.
std::optional<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || s.size() > (1 << 20)) break;
    s.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return s;
}

}  // namespace

std::string record_to_text(const AttachmentRecord& r) {
  json j = {{"network", r.network}, {"containerID", r.container_id}, {"ifname", r.ifname},
            {"netns", r.netns},     {"hostDevice", r.host_dev},      {"mode", r.mode},
            {"phase", r.phase},     {"ipam", r.ipam},                {"socketMark", r.socket_mark}};
  return j.dump(2) + "\n";
}

std::optional<AttachmentRecord> record_from_text(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  AttachmentRecord r;
  auto s = [&](const char* k, std::string* out) {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return false;
    *out = it->get<std::string>();
    return true;
  };
  if (!s("network", &r.network) || !s("containerID", &r.container_id) || !s("ifname", &r.ifname) ||
      !s("hostDevice", &r.host_dev)) {
    return std::nullopt;
  }
  s("netns", &r.netns);
  s("mode", &r.mode);
  s("phase", &r.phase);
  if (auto it = j.find("ipam"); it != j.end() && it->is_boolean()) r.ipam = it->get<bool>();
  if (auto it = j.find("socketMark"); it != j.end() && it->is_number_unsigned() && it->get<uint64_t>() <= 0xffffffffu)
    r.socket_mark = static_cast<uint32_t>(it->get<uint64_t>());
  if (!valid_ifname(r.host_dev)) return std::nullopt;  // never act on a garbage device name
  return r;
}

StateStore::~StateStore() { unlock(); }

Status StateStore::lock(const std::string& key, int wait_ms) {
  unlock();
  if (Status st = make_dirs(dir_); !st) return st;
  const std::string path = dir_ + "/" + key + ".lock";
  for (int waited = 0;;) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Status::from_errno("open " + path);
    for (;; waited += 10) {
      if (::flock(fd, LOCK_EX | LOCK_NB) == 0) break;
      if (errno != EWOULDBLOCK && errno != EINTR) {
        Status st = Status::from_errno("flock " + path);
        ::close(fd);
        return st;
      }
      if (waited >= wait_ms) {
        ::close(fd);
        return Status(EAGAIN, "attachment " + key + " is locked by another ferry-cni");
      }
      ::usleep(10000);
    }
    // Still the file at the path? (A DEL may have unlinked it meanwhile.)
    struct stat held{}, now{};
    if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
        held.st_dev == now.st_dev) {
      lock_fd_ = fd;
      lock_path_ = path;
      return Status();
    }
    ::close(fd);
  }
}

void StateStore::unlock(bool remove_file) {
  if (lock_fd_ < 0) return;
  if (remove_file) ::unlink(lock_path_.c_str());
  ::close(lock_fd_);  // closing drops the flock
  lock_fd_ = -1;
  lock_path_.clear();
}

Status StateStore::save(const std::string& key, const AttachmentRecord& r) {
  std::string path = dir_ + "/" + key + ".json";
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::from_errno("create " + tmp);
  std::string text = record_to_text(r);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status st = Status::from_errno("write " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  (void)::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = Status::from_errno("rename " + tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  return Status();
}

std::optional<AttachmentRecord> StateStore::load(const std::string& key) const {
  std::optional<std::string> text = read_file(dir_ + "/" + key + ".json");
  if (!text) return std::nullopt;
  return record_from_text(*text);
}

Status StateStore::remove(const std::string& key) {
  std::string path = dir_ + "/" + key + ".json";
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Status::from_errno("remove " + path);
  return Status();
}

std::vector<std::pair<std::string, AttachmentRecord>> StateStore::list() const {
  std::vector<std::pair<std::string, AttachmentRecord>> out;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() != 21 || name.substr(16) != ".json" || !is_key(name.substr(0, 16))) continue;
    std::string key = name.substr(0, 16);
    if (auto r = load(key)) out.emplace_back(key, *r);
  }
  ::closedir(d);
  return out;
}

}  // namespace ferry::cni
