// Loading a BPF object for a test: when the test skips, when it fails.
//
// A test skips only when this machine cannot run the object at all, and
// says why; any other load failure fails it, so CI never shows a broken
// program (a verifier rejection, a map it cannot create, an object that
// does not open) as "skipped":
//  * skip: the bpf() syscall is missing (ENOSYS); the kernel refuses this
//    process BPF (EPERM) and it has neither CAP_BPF nor CAP_SYS_ADMIN; the
//    kernel lacks a program or map type our objects use (libbpf's probes
//    load a trivial program / create a trivial map of that type and fail).
//    These are decided by probing, after the load failed, not from the
//    load's own error: a rejected program is EACCES/EINVAL/E2BIG whatever
//    the cause, so its errno alone cannot tell a missing feature from a bug.
//  * retry: EAGAIN or EINTR (a signal arrived while the verifier ran: the
//    kernel gives up and says try again), up to kLoadAttempts loads.
//  * fail: everything else, with the error and the tail of the verifier's
//    log, from a second load of the same object bytes with libbpf's output
//    captured (the product's loader keeps only libbpf's last line).
// The tests also need root for their namespaces and taps; that check stays
// in each fixture, before the load.
#pragma once

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

#include "bpf/classify.h"
#include "common/status.h"
#include "ferry_classify.skel.h"  // generated (a SYSTEM include: cmake/BpfObject.cmake)

namespace ferry::bpftest {

// A skeleton's embedded object: NAME__elf_bytes from the generated header.
using ElfBytesFn = const void* (*)(size_t*);

// How one load ended; both empty when it loaded.
struct BpfLoad {
  std::string skip;   // the kernel cannot run the object here: why
  std::string error;  // it failed otherwise: the error, the verifier log's tail
};

constexpr int kLoadAttempts = 5;

// True when the effective capability set holds CAP_BPF or CAP_SYS_ADMIN.
inline bool has_bpf_capability() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  auto has = [&](int cap) { return (data[CAP_TO_INDEX(cap)].effective & CAP_TO_MASK(cap)) != 0; };
  return has(CAP_SYS_ADMIN) || has(39 /* CAP_BPF, Linux 5.8 */);
}

// Why this kernel cannot run our objects for this process ("" when it can):
// probes the bpf() syscall, the permission, and every program and map type
// that bpf/*.bpf.c use.
inline std::string bpf_unsupported() {
  const bpf_insn ret0[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  const int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, nullptr, "GPL", ret0, 2, nullptr);
  if (fd >= 0) {
    close(fd);
  } else if (fd == -ENOSYS) {
    return "this kernel has no bpf() syscall (ENOSYS)";
  } else if (fd == -EPERM && !has_bpf_capability()) {
    return "BPF is not permitted: EPERM without CAP_BPF or CAP_SYS_ADMIN";
  }
  const struct {
    bpf_prog_type type;
    const char* name;
  } progs[] = {{BPF_PROG_TYPE_SCHED_CLS, "sched_cls (tc)"},
               {BPF_PROG_TYPE_XDP, "xdp"},
               {BPF_PROG_TYPE_SK_LOOKUP, "sk_lookup"}};
  for (const auto& p : progs)
    if (libbpf_probe_bpf_prog_type(p.type, nullptr) == 0) return std::string("kernel lacks program type ") + p.name;
  const struct {
    bpf_map_type type;
    const char* name;
  } maps[] = {{BPF_MAP_TYPE_ARRAY, "array"},
              {BPF_MAP_TYPE_PERCPU_ARRAY, "percpu_array"},
              {BPF_MAP_TYPE_HASH, "hash"},
              {BPF_MAP_TYPE_RINGBUF, "ringbuf"},
              {BPF_MAP_TYPE_DEVMAP, "devmap"},
              {BPF_MAP_TYPE_SOCKMAP, "sockmap"}};
  for (const auto& m : maps)
    if (libbpf_probe_bpf_map_type(m.type, nullptr) == 0) return std::string("kernel lacks map type ") + m.name;
  return "";
}

// libbpf's output while a LibbpfLog is alive (one at a time, this thread).
inline std::string* g_libbpf_log = nullptr;

// libbpf print callback: everything but debug lines into g_libbpf_log.
inline int libbpf_log_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (g_libbpf_log == nullptr || level == LIBBPF_DEBUG) return 0;
  va_list copy;
  va_copy(copy, ap);
  const int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string s(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(s.data(), s.size(), fmt, ap);
  s.resize(static_cast<size_t>(n));
  *g_libbpf_log += s;
  return 0;
}

// Loads the object bytes once more with libbpf's output captured; returns
// the last `lines` lines of it (the verifier's log ends a rejection).
inline std::string verifier_log_tail(ElfBytesFn elf, size_t lines = 30) {
  if (elf == nullptr) return "";
  size_t size = 0;
  const void* bytes = elf(&size);
  std::string log;
  g_libbpf_log = &log;
  libbpf_print_fn_t prev = libbpf_set_print(libbpf_log_print);
  bpf_object* obj = bpf_object__open_mem(bytes, size, nullptr);
  int err = libbpf_get_error(obj);
  if (err == 0) {
    err = bpf_object__load(obj);
    bpf_object__close(obj);
  }
  libbpf_set_print(prev);
  g_libbpf_log = nullptr;
  if (err == 0) return "(a second load of the object with its default map sizes succeeded: no log)";
  size_t start = log.size(), found = 0;
  while (start > 0 && found <= lines) {
    start = log.rfind('\n', start - 1);
    if (start == std::string::npos) {
      start = 0;
      break;
    }
    found++;
  }
  return log.substr(start);
}

// Runs load() (which leaves nothing loaded when it fails) until it loads,
// retrying EAGAIN and EINTR; then decides skip or fail as above. elf: the
// object's bytes, for the verifier log.
inline BpfLoad load_bpf(const std::function<Status()>& load, ElfBytesFn elf) {
  Status st;
  for (int i = 0; i < kLoadAttempts; i++) {
    st = load();
    if (st.ok() || (st.err() != EAGAIN && st.err() != EINTR)) break;
  }
  BpfLoad out;
  if (st.ok()) return out;
  out.skip = bpf_unsupported();
  if (!out.skip.empty()) {
    out.skip += " (load: " + st.message() + ")";
    return out;
  }
  out.error = st.message() + "\nlibbpf, loading the object again:\n" + verifier_log_tail(elf);
  return out;
}

// A libbpf skeleton's load as a Status (err: the errno).
inline Status skeleton_status(const char* what, int err) {
  return err == 0 ? Status{} : Status(err < 0 ? -err : err, std::string("load ") + what);
}

// Loads ferry's classifier into a (retried, decided as above).
inline BpfLoad load_classifier(BpfAttachment* a, uint32_t max_conns) {
  return load_bpf([&] { return a->load(max_conns); }, ferry_classify__elf_bytes);
}

}  // namespace ferry::bpftest

// In a fixture's SetUp (or a test): skips for a lack of kernel support,
// fails for any other load failure.
#define FERRY_BPF_LOADED_OR_SKIP(load_result)                      \
  do {                                                             \
    const ::ferry::bpftest::BpfLoad& ferry_load_ = (load_result);  \
    if (!ferry_load_.skip.empty()) GTEST_SKIP() << ferry_load_.skip; \
    ASSERT_TRUE(ferry_load_.error.empty()) << ferry_load_.error;   \
  } while (0)
