// TimeWaitTable: see time_wait.h.
#include "tcp/time_wait.h"

#include "tcp/flow_table.h"

namespace ferry {

TimeWaitTable::TimeWaitTable(SipKey key) : key_(key), entries_(new Entry[kSlots]()) {}

// The one entry key may occupy.
TimeWaitTable::Entry& TimeWaitTable::slot_of(const ferry_conn_key& key) {
  return entries_[siphash24(key_, &key, sizeof(key)) & (kSlots - 1)];
}

void TimeWaitTable::add(const ferry_conn_key& key, uint32_t snd_nxt, uint32_t rcv_nxt, uint16_t window,
                        uint64_t now) {
  Entry& e = slot_of(key);
  e.key = key;
  e.snd_nxt = snd_nxt;
  e.rcv_nxt = rcv_nxt;
  e.window = window;
  e.expires = now + kLingerNs;
}

TimeWaitTable::Entry* TimeWaitTable::find(const ferry_conn_key& key, uint64_t now) {
  Entry& e = slot_of(key);
  if (e.expires == 0 || e.expires <= now || !FlowTable::same(e.key, key)) return nullptr;
  return &e;
}

void TimeWaitTable::erase(const ferry_conn_key& key) {
  Entry& e = slot_of(key);
  if (e.expires != 0 && FlowTable::same(e.key, key)) e = Entry{};
}

uint32_t TimeWaitTable::live(uint64_t now) const {
  uint32_t n = 0;
  for (uint32_t i = 0; i < kSlots; i++) n += entries_[i].expires > now;
  return n;
}

}  // namespace ferry
