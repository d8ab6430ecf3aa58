// MarkCgroup: see mark_cgroup.h.
#include "bpf/mark_cgroup.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <fstream>
#include <sstream>

namespace ferry {

namespace {

// Where the cgroup2 hierarchy is mounted ("" when nowhere).
std::string cgroup2_mount() {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    // ... mount-point ... - fstype source options
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, devno, root, mnt;
    if (fields >> id >> parent >> devno >> root >> mnt) return mnt;
  }
  return "";
}

// r2 = mark; *(u32 *)(r1 + offsetof(bpf_sock, mark)) = r2; r0 = 1; exit.
int load_program(uint32_t mark) {
  bpf_insn insns[4] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_2;
  insns[0].imm = static_cast<int32_t>(mark);
  insns[1].code = BPF_STX | BPF_MEM | BPF_W;
  insns[1].dst_reg = BPF_REG_1;
  insns[1].src_reg = BPF_REG_2;
  insns[1].off = static_cast<int16_t>(offsetof(bpf_sock, mark));
  insns[2].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[2].dst_reg = BPF_REG_0;
  insns[2].imm = 1;  // allow the socket
  insns[3].code = BPF_JMP | BPF_EXIT;
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_CGROUP_INET_SOCK_CREATE);
  return bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK, "ferry_mark", "GPL", insns, 4, &opts);
}

}  // namespace

Result<std::unique_ptr<MarkCgroup>> MarkCgroup::create(const std::string& instance, uint32_t mark) {
  const std::string root = cgroup2_mount();
  if (root.empty()) return Status(ENOENT, "no cgroup2 hierarchy mounted (needed for --mark with the sandbox)");
  std::unique_ptr<MarkCgroup> c(new MarkCgroup());
  c->path_ = root + "/ferry-" + instance;
  if (mkdir(c->path_.c_str(), 0700) != 0) {
    if (errno != EEXIST || rmdir(c->path_.c_str()) != 0 || mkdir(c->path_.c_str(), 0700) != 0) {
      Status st = Status::from_errno("cgroup " + c->path_);
      c->path_.clear();
      return st;
    }
  }
  c->cg_fd_ = open(c->path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->cg_fd_ < 0) return Status::from_errno("open " + c->path_);
  c->prog_fd_ = load_program(mark);
  if (c->prog_fd_ < 0) return Status(-c->prog_fd_, "load the socket-mark program");
  if (int rc = bpf_prog_attach(c->prog_fd_, c->cg_fd_, BPF_CGROUP_INET_SOCK_CREATE, 0); rc != 0) {
    return Status(-rc, "attach the socket-mark program to " + c->path_);
  }
  return c;
}

MarkCgroup::~MarkCgroup() {
  if (prog_fd_ >= 0) close(prog_fd_);
  if (cg_fd_ >= 0) close(cg_fd_);
  if (!path_.empty()) (void)rmdir(path_.c_str());  // empty once the translator exited
}

Status MarkCgroup::join() const {
  const std::string procs = path_ + "/cgroup.procs";
  int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + procs);
  const bool ok = write(fd, "0\n", 2) == 2;
  const int err = errno;
  close(fd);
  return ok ? Status() : Status(err, "join " + path_);
}

}  // namespace ferry
