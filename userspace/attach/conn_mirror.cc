// ConnMirror and the `ferry run` hook: see conn_mirror.h.
#include "attach/conn_mirror.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "attach/instance.h"

namespace ferry::attach {

namespace {

constexpr uint64_t kRefreshNs = uint64_t{FERRY_CONN_VIEW_REFRESH_MS} * 1'000'000;

// The view's state is TcpState's value (include/ferry/conn_view.h mirrors it).
static_assert(static_cast<int>(TcpState::free) == FERRY_CONN_FREE);
static_assert(static_cast<int>(TcpState::connecting) == FERRY_CONN_CONNECTING);
static_assert(static_cast<int>(TcpState::syn_rcvd) == FERRY_CONN_SYN_RCVD);
static_assert(static_cast<int>(TcpState::syn_sent) == FERRY_CONN_SYN_SENT);
static_assert(static_cast<int>(TcpState::established) == FERRY_CONN_ESTABLISHED);

// Marks a slot as being written (odd) or done (even).
void seq_bump(ferry_conn_view* v) {
  std::atomic_ref<uint32_t> s(v->seq);
  s.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace

void fill_view(ferry_conn_view* v, const ferry_conn_key& key, const TcpConn& c) {
  v->state = static_cast<uint8_t>(c.state);
  v->family = key.family;
  v->flags = static_cast<uint8_t>((c.inbound ? FERRY_CONN_F_INBOUND : 0) |
                                  ((c.flags & tcpconn::kGuestFin) ? FERRY_CONN_F_GUEST_FIN : 0) |
                                  ((c.flags & tcpconn::kHostEof) ? FERRY_CONN_F_HOST_EOF : 0) |
                                  ((c.flags & tcpconn::kFinSent) ? FERRY_CONN_F_FIN_SENT : 0));
  v->snd_shift = c.snd_shift;
  std::memcpy(v->guest_addr, key.guest_addr, 16);
  std::memcpy(v->peer_addr, key.peer_addr, 16);
  v->guest_port = key.guest_port;
  v->peer_port = key.peer_port;
  v->snd_una = c.snd_una;
  v->snd_nxt = c.snd_nxt;
  v->rcv_nxt = c.rcv_nxt;
  v->snd_wnd = c.snd_wnd;
  v->rcv_wnd = c.rcv_adv - c.rcv_nxt;
  v->mss = c.mss;
  v->last_activity_ns = c.last_activity;
}

ConnMirror::ConnMirror(EventLoop& loop, TcpTranslator& tcp, ferry_conn_view* view, uint32_t entries)
    : tcp_(tcp), view_(view), entries_(entries), pos_(entries, 0) {
  live_.reserve(entries);
  tcp_.set_observer(this);
  loop.add_timer_client(this);
}

ConnMirror::~ConnMirror() { tcp_.set_observer(nullptr); }

void ConnMirror::write_slot(uint32_t slot, const TcpConn& c) {
  ferry_conn_view* v = &view_[slot];
  seq_bump(v);
  fill_view(v, tcp_.table().key(slot), c);
  seq_bump(v);
}

void ConnMirror::on_flow_added(uint32_t slot, const ferry_conn_key& key, const TcpConn& c) {
  if (slot >= entries_) {
    if (next_ != nullptr) next_->on_flow_added(slot, key, c);
    return;
  }
  ferry_conn_view* v = &view_[slot];
  seq_bump(v);
  fill_view(v, key, c);
  seq_bump(v);
  if (pos_[slot] == 0) {
    live_.push_back(slot);
    pos_[slot] = static_cast<uint32_t>(live_.size());
  }
  if (next_ != nullptr) next_->on_flow_added(slot, key, c);
}

void ConnMirror::on_flow_removed(uint32_t slot, const ferry_conn_key& key) {
  if (next_ != nullptr) next_->on_flow_removed(slot, key);
  if (slot >= entries_) return;
  ferry_conn_view* v = &view_[slot];
  seq_bump(v);
  const uint32_t s = v->seq;
  std::memset(v, 0, sizeof(*v));
  v->seq = s + 1;  // even again, and different from before
  if (const uint32_t p = pos_[slot]; p != 0) {  // swap-remove from the dense list
    const uint32_t last = live_.back();
    live_[p - 1] = last;
    pos_[last] = p;
    live_.pop_back();
    pos_[slot] = 0;
  }
}

uint64_t ConnMirror::next_deadline_ns() const { return live_.empty() ? kNever : next_refresh_; }

void ConnMirror::on_timer(uint64_t now) {
  refresh();
  next_refresh_ = now + kRefreshNs;
}

void ConnMirror::refresh() {
  for (uint32_t slot : live_) {
    if (const TcpConn* c = tcp_.conn(slot)) write_slot(slot, *c);
  }
}

// ---- the `ferry run` hook ---------------------------------------------------------

ConnView::~ConnView() {
  mirror_.reset();
  if (!dir_.empty()) {
    ::unlink((dir_ + "/conns").c_str());
    ::rmdir(dir_.c_str());  // only if nothing else is pinned there
  }
}

Result<std::unique_ptr<ConnView>> start_conn_view(EventLoop& loop, TcpTranslator& tcp, const std::string& instance,
                                                  uint32_t max_conns) {
  std::unique_ptr<ConnView> v(new ConnView());
  Result<std::unique_ptr<ConnsMap>> map = ConnsMap::create(max_conns);
  if (!map) return map.status();
  v->map_ = std::move(*map);
  // the classifier of the same instance may have made the directory first
  if (Result<bool> made = make_pin_dir(instance); !made) return made.status();
  const std::string dir = pin_dir(instance);
  if (Status st = v->map_->pin(dir + "/conns"); !st) return st;
  v->dir_ = dir;
  v->mirror_ = std::make_unique<ConnMirror>(loop, tcp, v->map_->view(), max_conns);
  return v;
}

}  // namespace ferry::attach
