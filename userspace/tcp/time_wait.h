// TimeWaitTable: the guest connections ferry closed first (its FIN went to
// the guest before the guest's FIN came), remembered for a while after the
// slot is freed, so that the guest's retransmitted FIN (our ACK of it was
// lost) is ACKed again instead of reset: RFC 9293 3.10.7.4's TIME-WAIT.
//
// Theory of operation: a direct-mapped table of kSlots entries, indexed by
// a keyed SipHash of the flow key (a guest cannot aim tuples at one entry).
// An entry holds what an ACK needs (our next sequence number after the FIN,
// the guest's after its FIN, the window) and when it expires (2 MSL, as
// Linux's 60 s). A new entry overwrites whatever shares its index: TIME-WAIT
// is best effort, memory is fixed (kSlots entries, allocated once), and
// nothing is done per frame but one hash and one compare, only for segments
// of no live flow. An entry ends when it expires, when an exact RST or a new
// SYN arrives for its tuple, or when the tuple gets a slot again (erase()).
#pragma once

#include <cstdint>
#include <memory>

#include "ferry/contract.h"
#include "tcp/siphash.h"

namespace ferry {

class TimeWaitTable {
 public:
  static constexpr uint32_t kSlots = 4096;
  static constexpr uint64_t kLingerNs = 60'000'000'000;  // 2 MSL (Linux: TCP_TIMEWAIT_LEN)

  struct Entry {
    ferry_conn_key key;
    uint32_t snd_nxt;   // ours: after our FIN
    uint32_t rcv_nxt;   // the guest's: after its FIN
    uint16_t window;    // raw window field for our ACKs
    uint64_t expires;   // 0 = empty
  };

  explicit TimeWaitTable(SipKey key = random_sip_key());

  // Remembers a closed connection until now + kLingerNs.
  void add(const ferry_conn_key& key, uint32_t snd_nxt, uint32_t rcv_nxt, uint16_t window, uint64_t now);
  // The live entry of key, or nullptr.
  Entry* find(const ferry_conn_key& key, uint64_t now);
  // Forgets key (no-op when absent).
  void erase(const ferry_conn_key& key);
  // Entries not yet expired (for tests and counters).
  uint32_t live(uint64_t now) const;

 private:
  Entry& slot_of(const ferry_conn_key& key);

  SipKey key_;
  std::unique_ptr<Entry[]> entries_;
};

}  // namespace ferry
