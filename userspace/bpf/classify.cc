// BPF classifier: load, attach, pin, and the pinned-counter readers.
//
// Theory of operation (see classify.h for the life cycle): the only
// subtle parts are the namespace switch and the clsact qdisc.
//  * Interface indexes, netlink and the TC attach calls act in the calling
//    thread's network namespace. NsSwitch setns()es into the guest's
//    namespace for one scope and back; if the way back fails we abort,
//    because the thread would otherwise go on in the guest's namespace.
//  * bpf_tc_hook_destroy() removes the whole clsact qdisc, other owners'
//    filters included. So detach removes only our filter (by the handle and
//    priority the kernel gave it), and the qdisc only when we created it and
//    a netlink dump shows no filter left at ingress or egress.
//  * libbpf's own messages would flood stderr on a failed load (the verifier
//    log); while we call libbpf they go to a buffer whose last line is
//    appended to our error string instead.
#include "bpf/classify.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/counters_map.h"
#include "bpf/pin_dir.h"
#include "common/instance_lock.h"
#include "ferry_classify.skel.h"  // generated (a SYSTEM include: cmake/BpfObject.cmake)

namespace ferry {

namespace {

// Last libbpf warning while a LibbpfCapture is active (per thread).
thread_local std::string* g_libbpf_last = nullptr;
// The print function we replaced: other threads' messages still go there.
libbpf_print_fn_t g_libbpf_prev = nullptr;

// libbpf print callback: keeps the last warning line instead of printing.
int libbpf_capture_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (g_libbpf_last == nullptr) {
    libbpf_print_fn_t prev = __atomic_load_n(&g_libbpf_prev, __ATOMIC_ACQUIRE);
    return prev != nullptr && prev != libbpf_capture_print ? prev(level, fmt, ap) : 0;
  }
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  int n = vsnprintf(line, sizeof(line), fmt, ap);
  if (n <= 0) return 0;
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  if (!s.empty() && s.find("-- BEGIN") == std::string::npos &&
      s.find("-- END") == std::string::npos)
    *g_libbpf_last = s;
  return 0;
}

// Routes libbpf's messages into `last` for one scope.
class LibbpfCapture {
 public:
  explicit LibbpfCapture(std::string* last) : prev_(libbpf_set_print(libbpf_capture_print)) {
    if (prev_ != libbpf_capture_print) __atomic_store_n(&g_libbpf_prev, prev_, __ATOMIC_RELEASE);
    g_libbpf_last = last;
  }
  ~LibbpfCapture() {
    g_libbpf_last = nullptr;
    libbpf_set_print(prev_);
  }
  LibbpfCapture(const LibbpfCapture&) = delete;
  LibbpfCapture& operator=(const LibbpfCapture&) = delete;

 private:
  libbpf_print_fn_t prev_;
};

// "what: strerror(err)" plus libbpf's last word, if any (err: an errno
// value, or libbpf's negative one).
Status errmsg(const std::string& what, int err, const std::string& libbpf_last = {}) {
  if (err < 0) err = -err;
  std::string s = what + ": " + std::strerror(err);
  if (!libbpf_last.empty()) s += " (libbpf: " + libbpf_last + ")";
  return Status::failure(std::move(s), err);
}

// Enters a network namespace for one scope (the calling thread only).
class NsSwitch {
 public:
  // Enters `ns_fd` (no-op for -1); check status() afterwards.
  explicit NsSwitch(int ns_fd) {
    if (ns_fd < 0) return;
    saved_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved_ < 0) {
      status_ = errmsg("open /proc/thread-self/ns/net", errno);
      return;
    }
    if (setns(ns_fd, CLONE_NEWNET) != 0) {
      status_ = errmsg("setns into the guest's network namespace", errno);
      close(saved_);
      saved_ = -1;
    }
  }
  ~NsSwitch() {
    if (saved_ < 0) return;
    if (setns(saved_, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "ferry: cannot return to the original network namespace: %s\n",
                   std::strerror(errno));
      std::abort();
    }
    close(saved_);
  }
  NsSwitch(const NsSwitch&) = delete;
  NsSwitch& operator=(const NsSwitch&) = delete;
  const Status& status() const { return status_; }

 private:
  int saved_ = -1;
  Status status_;
};

// Counts TC filters under one clsact parent of `ifindex` (rtnetlink dump);
// -1 on error.
int count_tc_filters(int ifindex, uint32_t parent) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -1;
  struct {
    nlmsghdr nh;
    tcmsg tc;
  } req{};
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = RTM_GETTFILTER;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.tc.tcm_family = AF_UNSPEC;
  req.tc.tcm_ifindex = ifindex;
  req.tc.tcm_parent = parent;
  if (send(fd, &req, sizeof(req), 0) < 0) {
    close(fd);
    return -1;
  }
  int count = 0;
  alignas(nlmsghdr) char buf[16384];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      count = -1;
      break;
    }
    size_t left = static_cast<size_t>(n);
    for (const char* p = buf; left >= sizeof(nlmsghdr);) {
      nlmsghdr h;
      std::memcpy(&h, p, sizeof(h));
      if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > left) {
        close(fd);
        return -1;
      }
      if (h.nlmsg_type == NLMSG_DONE) {
        close(fd);
        return count;
      }
      if (h.nlmsg_type == NLMSG_ERROR) {
        close(fd);
        return -1;
      }
      if (h.nlmsg_type == RTM_NEWTFILTER) count++;
      size_t step = NLMSG_ALIGN(h.nlmsg_len);
      if (step >= left) break;
      p += step;
      left -= step;
    }
  }
  close(fd);
  return count;
}

// Removes every entry of a pin directory, then the directory.
int remove_pin_dir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT ? 0 : -errno;
  int err = 0;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    std::string path = dir + "/" + e->d_name;
    if (unlink(path.c_str()) != 0 && err == 0) err = -errno;
  }
  closedir(d);
  if (rmdir(dir.c_str()) != 0 && err == 0) err = -errno;
  return err;
}

// The pid of a "run-<pid>" name, or 0.
int run_pid(const std::string& name) {
  if (name.rfind("run-", 0) != 0 || name.size() <= 4 || name.size() > 14) return 0;
  long pid = 0;
  for (size_t i = 4; i < name.size(); i++) {
    if (name[i] < '0' || name[i] > '9') return 0;
    pid = pid * 10 + (name[i] - '0');
  }
  return pid > 0 && pid <= 0x7fffffff ? static_cast<int>(pid) : 0;
}

}  // namespace

// ---- BpfAttachment ------------------------------------------------------------

BpfAttachment::~BpfAttachment() {
  detach();
  unpin();
  if (skel_ != nullptr) ferry_classify__destroy(skel_);
  if (netns_fd_ >= 0) close(netns_fd_);
}

std::string BpfAttachment::run_instance_name(int pid) { return "run-" + std::to_string(pid); }

Status BpfAttachment::load(uint32_t max_conns) {
  if (skel_ != nullptr) return Status::failure("BPF classifier already loaded");
  if (max_conns == 0 || max_conns > FERRY_MAX_CONNS_LIMIT)
    return Status::failure("max_conns out of range (1.." + std::to_string(FERRY_MAX_CONNS_LIMIT) + ")");
  std::string last;
  LibbpfCapture capture(&last);
  ferry_classify* skel = ferry_classify__open();
  if (skel == nullptr) return errmsg("open BPF classifier", errno, last);
  int err = 0;
  for (bpf_map* m = bpf_object__next_map(skel->obj, nullptr); m != nullptr;
       m = bpf_object__next_map(skel->obj, m)) {
    // the fast path's maps: one slot per flow on it, at most as many as
    // there may be connections (the contract's FERRY_FASTPATH_SLOTS_MAX)
    const char* name = bpf_map__name(m);
    if (std::strcmp(name, "conn_hash") == 0 || std::strcmp(name, "conn_state") == 0)
      err = bpf_map__set_max_entries(m, ferry_fastpath_slots(max_conns));
    if (err != 0) break;
  }
  if (err == 0) err = ferry_classify__load(skel);
  if (err != 0) {
    ferry_classify__destroy(skel);
    return errmsg("load BPF classifier", err, last);
  }
  skel_ = skel;
  return {};
}

int BpfAttachment::prog_fd() const {
  return skel_ != nullptr ? bpf_program__fd(skel_->progs.ferry_tc_egress) : -1;
}

int BpfAttachment::map_fd(const char* name) const {
  if (skel_ == nullptr) return -1;
  bpf_map* m = bpf_object__find_map_by_name(skel_->obj, name);
  return m != nullptr ? bpf_map__fd(m) : -1;
}

Status BpfAttachment::attach_tc_egress(int netns_fd, const std::string& ifname) {
  int ifindex = 0;
  {
    NsSwitch ns(netns_fd);
    if (!ns.status().ok()) return ns.status();
    ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex == 0) return errmsg("interface " + ifname, errno);
  }
  return attach_tc_egress(netns_fd, ifindex);
}

Status BpfAttachment::attach_tc_egress(int netns_fd, int ifindex) {
  if (skel_ == nullptr) return Status::failure("BPF classifier not loaded");
  if (attached_) return Status::failure("BPF classifier already attached");
  if (ifindex <= 0) return Status::failure("attach BPF classifier: bad ifindex");
  int dup = -1;
  if (netns_fd >= 0) {
    dup = fcntl(netns_fd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) return errmsg("dup network namespace fd", errno);
  }
  std::string last;
  LibbpfCapture capture(&last);
  NsSwitch ns(netns_fd);
  if (!ns.status().ok()) {
    if (dup >= 0) close(dup);
    return ns.status();
  }
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  int err = bpf_tc_hook_create(&hook);
  bool created = err == 0;
  if (err != 0 && err != -EEXIST) {
    if (dup >= 0) close(dup);
    return errmsg("create clsact qdisc on ifindex " + std::to_string(ifindex), err, last);
  }
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog_fd());
  err = bpf_tc_attach(&hook, &opts);
  if (err != 0) {
    if (created) {
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&hook);
    }
    if (dup >= 0) close(dup);
    return errmsg("attach BPF classifier at egress of ifindex " + std::to_string(ifindex), err,
                  last);
  }
  attached_ = true;
  created_qdisc_ = created;
  netns_fd_ = dup;
  ifindex_ = ifindex;
  tc_handle_ = opts.handle;
  tc_priority_ = opts.priority;
  return {};
}

void BpfAttachment::detach() {
  if (!attached_) return;
  attached_ = false;
  std::string last;
  LibbpfCapture capture(&last);
  NsSwitch ns(netns_fd_);
  if (ns.status().ok()) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_, .attach_point = BPF_TC_EGRESS);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = tc_handle_, .priority = tc_priority_);
    // ENOENT/ENODEV: the device (a tap whose fd closed) is already gone
    bpf_tc_detach(&hook, &opts);
    if (created_qdisc_ &&
        count_tc_filters(ifindex_, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)) == 0 &&
        count_tc_filters(ifindex_, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)) == 0) {
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      bpf_tc_hook_destroy(&hook);
    }
  }
  created_qdisc_ = false;
}

Status BpfAttachment::pin(const std::string& instance) {
  if (skel_ == nullptr) return Status::failure("BPF classifier not loaded");
  if (!instance_.empty()) return Status::failure("BPF maps already pinned as " + instance_);
  if (!valid_instance_name(instance)) return Status::failure("bad instance name '" + instance + "'");
  Result<bool> made = make_pin_dir(instance);
  if (!made) return made.status();
  std::string dir = pin_dir(instance);
  if (!*made) {
    if (instance_is_stale(instance)) {
      remove_pin_dir(dir);
      made = make_pin_dir(instance);
      if (!made) return made.status();
    } else {
      // another part of this instance (e.g. the connection view) may have
      // made the directory first; only a live classifier's pins conflict
      struct stat st{};
      if (stat((dir + "/stats").c_str(), &st) == 0)
        return Status::failure("BPF instance " + instance + " exists (" + dir + ")", EEXIST);
    }
  }
  instance_ = instance;
  std::string last;
  LibbpfCapture capture(&last);
  for (bpf_map* m = bpf_object__next_map(skel_->obj, nullptr); m != nullptr;
       m = bpf_object__next_map(skel_->obj, m)) {
    const char* name = bpf_map__name(m);
    if (bpf_map__is_internal(m)) continue;  // .rodata/.bss
    std::string path = dir + "/" + name;
    int err = bpf_map__pin(m, path.c_str());
    if (err != 0) {
      Status st = errmsg("pin " + path, err, last);
      unpin();
      return st;
    }
  }
  return {};
}

void BpfAttachment::unpin() {
  if (instance_.empty()) return;
  if (skel_ != nullptr) {
    for (bpf_map* m = bpf_object__next_map(skel_->obj, nullptr); m != nullptr;
         m = bpf_object__next_map(skel_->obj, m)) {
      if (bpf_map__is_pinned(m)) bpf_map__unpin(m, nullptr);
    }
  }
  // the directory goes when it is empty; pins of others stay with it
  rmdir(pin_dir(instance_).c_str());
  instance_.clear();
}

// ---- readers ------------------------------------------------------------------

bool valid_instance_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  });
}

Status read_stats(const std::string& instance, ferry_stats* out) {
  *out = ferry_stats{};
  if (!valid_instance_name(instance)) return Status::failure("bad instance name '" + instance + "'");
  Result<ferry_stats> s = read_counters_map<ferry_stats>(pin_dir(instance) + "/stats");
  if (!s) return s.status();
  *out = *s;
  return {};
}

bool instance_is_stale(const std::string& name) {
  int pid = run_pid(name);
  if (pid == 0) return false;
  return run_instance_is_stale(name, pid);  // its lock, not kill(pid, 0): PID namespaces differ
}

std::vector<std::string> list_instances(bool live_only) {
  std::vector<std::string> names;
  DIR* d = opendir(FERRY_PIN_ROOT);
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (!valid_instance_name(name)) continue;
    std::string stats = pin_dir(name) + "/stats";
    struct stat st{};
    if (stat(stats.c_str(), &st) != 0) continue;
    if (live_only && instance_is_stale(name)) continue;
    names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

int cleanup_stale_instances(std::string* err) {
  return cleanup_stale_instances_in(FERRY_PIN_ROOT, err);
}

int cleanup_stale_instances_in(const std::string& root, std::string* err) {
  int removed = 0;
  DIR* d = opendir(root.c_str());
  if (d == nullptr) return 0;
  std::vector<std::string> stale;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (instance_is_stale(name)) stale.push_back(name);
  }
  closedir(d);
  for (const std::string& name : stale) {
    std::string dir = root + "/" + name;
    int rc = remove_pin_dir(dir);
    if (rc == 0) {
      removed++;
    } else if (err != nullptr && err->empty()) {
      *err = errmsg("remove stale " + dir, rc).message();
    }
  }
  return removed;
}

std::vector<StatsField> stats_fields(const ferry_stats& s) {
  return {
#define FERRY_STATS_ENTRY(name) StatsField{#name, s.name},
      FERRY_STATS_FIELDS(FERRY_STATS_ENTRY)
#undef FERRY_STATS_ENTRY
  };
}

}  // namespace ferry
