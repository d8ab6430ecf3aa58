// ConnMirror: the translator's TCP table, mirrored into the pinned `conns`
// view (include/ferry/conn_view.h) so that `ferry conns` and bpftool can read
// a live instance without talking to it.
//
// Theory of operation: the mirror is the TcpTranslator's flow observer. A
// flow entering the table fills its slot (same index as the translator's);
// a flow leaving zeroes it. Sequence numbers, windows and state change on
// every segment, and writing them per segment would put work on the data
// path, so a timer copies the changing fields of the live slots every
// FERRY_CONN_VIEW_REFRESH_MS instead (the view is at most that stale). The
// live slots are kept in a dense list with a position index (O(1) add and
// remove, no allocation after construction). Writes go through the mmap of
// the BPF array: no syscall at all. Each slot write bumps `seq` to odd
// before and to even after (release order), for readers that copy while we write.
//
// The translator takes one observer, and the mirror's constructor takes it
// (replacing any other): whoever needs it too (the fast path's map
// publisher) registers with chain(), and the mirror forwards every call to
// it after updating the view.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attach/conns_map.h"
#include "common/status.h"
#include "ferry/conn_view.h"
#include "loop/event_loop.h"
#include "tcp/tcp_translator.h"

namespace ferry::attach {

class ConnMirror final : public TcpFlowObserver, public TimerClient {
 public:
  // view: `entries` slots (the translator's capacity or more); registers as
  // tcp's observer and as a timer client of loop.
  ConnMirror(EventLoop& loop, TcpTranslator& tcp, ferry_conn_view* view, uint32_t entries);
  ~ConnMirror() override;
  ConnMirror(const ConnMirror&) = delete;
  ConnMirror& operator=(const ConnMirror&) = delete;

  void on_flow_added(uint32_t slot, const ferry_conn_key& key, const TcpConn& c) override;
  void on_flow_removed(uint32_t slot, const ferry_conn_key& key) override;
  uint64_t next_deadline_ns() const override;
  void on_timer(uint64_t now) override;

  // Copies every live slot now.
  void refresh();
  // Forwards every flow event to `next` as well (nullptr: none).
  void chain(TcpFlowObserver* next) { next_ = next; }
  size_t live() const { return live_.size(); }

 private:
  void write_slot(uint32_t slot, const TcpConn& c);

  TcpTranslator& tcp_;
  ferry_conn_view* view_;
  uint32_t entries_;
  std::vector<uint32_t> live_;  // live slots, dense
  std::vector<uint32_t> pos_;   // slot -> index in live_ + 1, 0 = not live
  uint64_t next_refresh_ = 0;
  TcpFlowObserver* next_ = nullptr;
};

// Fills one view slot from a connection (pure; unit-tested).
void fill_view(ferry_conn_view* v, const ferry_conn_key& key, const TcpConn& c);

// The hook for `ferry run` (and anything else with a translator but no
// attachment): creates FERRY_PIN_ROOT/<instance>/conns (a ConnsMap: the
// map-only object ferry_conns.bpf.o), mmaps it and mirrors tcp into it.
// Destroying the result unpins `conns` (and removes the dir if it is then
// empty). Call after the translator exists, before the loop runs:
//   auto view = ferry::attach::start_conn_view(loop, translator.tcp(), instance, config.max_conns);
//   if (!view) warn(view.status().message());  // not fatal
class ConnView {
 public:
  ~ConnView();
  ConnView(const ConnView&) = delete;
  ConnView& operator=(const ConnView&) = delete;
  ConnMirror& mirror() { return *mirror_; }

 private:
  friend Result<std::unique_ptr<ConnView>> start_conn_view(EventLoop&, TcpTranslator&, const std::string&, uint32_t);
  ConnView() = default;
  std::string dir_;
  std::unique_ptr<ConnsMap> map_;
  std::unique_ptr<ConnMirror> mirror_;
};
Result<std::unique_ptr<ConnView>> start_conn_view(EventLoop& loop, TcpTranslator& tcp, const std::string& instance,
                                                  uint32_t max_conns);

}  // namespace ferry::attach
