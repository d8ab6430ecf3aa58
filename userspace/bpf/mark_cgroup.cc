// MarkCgroup: see mark_cgroup.h.
#include "bpf/mark_cgroup.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "sandbox/service_cgroup.h"

namespace ferry {

namespace {
constexpr const char* kMarkProgramName = "ferry_mark";  // what carries_mark_program looks for
}  // namespace

// r2 = mark; *(u32 *)(r1 + offsetof(bpf_sock, mark)) = r2; r0 = 1; exit.
int load_mark_program(uint32_t mark) {
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
  return bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK, kMarkProgramName, "GPL", insns, 4, &opts);
}

bool carries_mark_program(const std::string& cgroup_dir) {
  const int cg = open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) return false;
  uint32_t ids[8] = {}, count = 8, flags = 0;
  const int rc = bpf_prog_query(cg, BPF_CGROUP_INET_SOCK_CREATE, 0, &flags, ids, &count);
  close(cg);
  if (rc != 0 || count == 0 || count > 8) return false;
  for (uint32_t i = 0; i < count; i++) {
    const int fd = bpf_prog_get_fd_by_id(ids[i]);
    if (fd < 0) return false;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    const bool ours = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::strcmp(info.name, kMarkProgramName) == 0;
    close(fd);
    if (!ours) return false;
  }
  return true;
}

Result<std::unique_ptr<MarkCgroup>> MarkCgroup::create(const std::string& instance, uint32_t mark,
                                                       const std::string& service_dir) {
  const std::string root = service_dir.empty() ? sandbox::cgroup2_mount() : std::string();
  if (service_dir.empty() && root.empty())
    return Status(ENOENT, "no cgroup2 hierarchy mounted (needed for --mark with the sandbox)");
  std::unique_ptr<MarkCgroup> c(new MarkCgroup());
  c->service_dir_ = service_dir;
  c->path_ = sandbox::translator_cgroup_dir(root, service_dir, instance);
  if (Status st = sandbox::make_translator_cgroup(c->path_); !st) {
    c->path_.clear();
    return st;
  }
  c->cg_fd_ = open(c->path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->cg_fd_ < 0) return Status::from_errno("open " + c->path_);
  c->prog_fd_ = load_mark_program(mark);
  if (c->prog_fd_ < 0) return Status(-c->prog_fd_, "load the socket-mark program");
  if (int rc = bpf_prog_attach(c->prog_fd_, c->cg_fd_, BPF_CGROUP_INET_SOCK_CREATE, 0); rc != 0) {
    return Status(-rc, "attach the socket-mark program to " + c->path_);
  }
  return c;
}

MarkCgroup::~MarkCgroup() {
  if (prog_fd_ >= 0) close(prog_fd_);
  if (cg_fd_ >= 0) close(cg_fd_);
  if (!path_.empty()) sandbox::remove_translator_cgroup(path_, service_dir_);  // empty once the translator exited
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
