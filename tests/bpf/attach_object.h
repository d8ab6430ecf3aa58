// A loaded ferry_attach object (bpf/ferry_attach.bpf.c) for tests that run
// its programs through BPF_PROG_TEST_RUN: one fixture instead of a copy of
// the skeleton's set-up per test file.
//
// Both redirect targets are ifindex 1 (lo: it exists in every namespace, so
// bpf_redirect() succeeds in a test run), the flow maps are small (64
// flows), and the XDP devmap starts empty (a test that wants
// XDP_REDIRECT calls fill_devmap()). Needs root; skips otherwise, and when
// the kernel cannot run BPF (bpf_load.h), fails on any other load error.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "attach/inspect.h"
#include "bpf/bpf_load.h"
#include "bpf/bpf_test_util.h"
#include "ferry_attach.skel.h"  // generated (a SYSTEM include: cmake/BpfObject.cmake)

namespace ferry::bpftest {

class AttachObjectTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kFlows = 64;

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF)";
    FERRY_BPF_LOADED_OR_SKIP(load_bpf([this] { return open_and_load(); }, ferry_attach__elf_bytes));
  }
  void TearDown() override {
    if (skel_ != nullptr) ferry_attach__destroy(skel_);
  }

  // Opens and loads the object as described above; nothing is left on failure.
  Status open_and_load() {
    skel_ = ferry_attach__open();
    if (skel_ == nullptr) return Status::from_errno("open ferry_attach");
    skel_->rodata->tap_ifindex = 1;
    skel_->rodata->dev_ifindex = 1;
    int err = bpf_map__set_max_entries(skel_->maps.conn_hash, kFlows);
    if (err == 0) err = bpf_map__set_max_entries(skel_->maps.conn_state, kFlows);
    if (err == 0) err = ferry_attach__load(skel_);
    if (err != 0) {
      ferry_attach__destroy(skel_);
      skel_ = nullptr;
    }
    return skeleton_status("ferry_attach", err);
  }

  // Puts lo into the XDP program's devmap, so ferry_attach_dev_xdp redirects.
  void fill_devmap() {
    const uint32_t key = 0, lo = 1;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd(skel_->maps.tx_port), &key, &lo, BPF_ANY), 0);
  }
  // Runs program p once on frame; returns its verdict.
  static int run(bpf_program* p, const Frame& frame) {
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(), .data_size_in = static_cast<uint32_t>(frame.size()));
    EXPECT_EQ(bpf_prog_test_run_opts(bpf_program__fd(p), &o), 0);
    return static_cast<int>(o.retval);
  }
  ferry_stats stats() const { return sum_stats(bpf_map__fd(skel_->maps.stats)); }
  // The direction counters (struct ferry_attach_stats), summed.
  ferry_attach_stats attach_counts() const { return sum_attach_stats(bpf_map__fd(skel_->maps.attach_stats)); }

  ::ferry_attach* skel_ = nullptr;
};

}  // namespace ferry::bpftest
