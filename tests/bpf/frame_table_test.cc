// Every hook that sees the guest's frames, on one table of frames, through
// BPF_PROG_TEST_RUN (as katran's test fixtures: description, frame, expected
// verdict, expected counters).
//
// Theory of operation: each row builds its frame with FrameBuilder (a valid
// codec-built frame, then named edits: a VLAN tag, a cut, a bad IHL, an
// extension header...) and says what every hook must do with it: its
// class and pure-ACK counters, and its fate (Pass, or Absorb for a pure ACK
// of the published test flow). The same table runs on the three hooks:
//   ferry_tc_egress       `ferry run`'s tap (bpf/ferry_classify.bpf.c)
//   ferry_attach_dev_tc   `ferry attach`'s DEV, tcx (bpf/ferry_attach.bpf.c)
//   ferry_attach_dev_xdp  the same, XDP (verifies every checksum: no
//                         CHECKSUM_PARTIAL there, none in a test run either)
// so they cannot drift apart. For each row and hook the check is the verdict
// (Pass: TC_ACT_OK / TC_ACT_REDIRECT / XDP_REDIRECT; Absorb: TC_ACT_STOLEN /
// TC_ACT_SHOT / XDP_DROP) and the exact change of every counter: the row's, plus
// guest_frames 1 and passed_to_userspace or acks_absorbed 1; the attach
// hooks also count a passed frame's bytes and no failed redirect.
// The kernel's TC test run refuses a frame whose IPv4/IPv6 header is cut
// short (it pulls the IP header first): such rows run on XDP only here, and
// live through a tap in classify_test.cc.
// Needs root; skips without it or without kernel BPF support (bpf_load.h).
// test-libs: ferry_bpf ferry_attach ferry_codec ferry_common
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpf/attach_object.h"
#include "bpf/classify.h"
#include "codec/frame.h"
#include "common/conn_key.h"
#include "support/guest_frames.h"

namespace ferry {
namespace {

using bpftest::Frame;

constexpr uint16_t kGuestPort = 40000, kPeerPort = 80;
constexpr uint32_t kSeqNo = 1000, kAckNo = 2000;  // every TCP row's numbers
const MacAddr kGuestMac{{0x02, 0, 0, 0, 0, 2}};

// Builds one guest frame: a valid frame from the codec, then edits in order.
class FrameBuilder {
 public:
  static FrameBuilder tcp(bool v6, uint8_t flags) { return FrameBuilder(Kind::kTcp, v6).flags(flags); }
  static FrameBuilder tcp4(uint8_t flags = tcpflag::kAck) { return tcp(false, flags); }
  static FrameBuilder tcp6(uint8_t flags = tcpflag::kAck) { return tcp(true, flags); }
  static FrameBuilder udp4() { return FrameBuilder(Kind::kUdp, false); }
  static FrameBuilder udp6() { return FrameBuilder(Kind::kUdp, true); }
  static FrameBuilder icmp4() { return FrameBuilder(Kind::kIcmp, false); }
  static FrameBuilder icmp6() { return FrameBuilder(Kind::kIcmp, true); }
  static FrameBuilder arp() { return FrameBuilder(Kind::kArp, false); }

  // ---- the codec's frame ----
  FrameBuilder& flags(uint8_t f) { flags_ = f; return *this; }
  FrameBuilder& payload(size_t n) { payload_ = n; return *this; }
  FrameBuilder& timestamps() { ts_ = true; return *this; }  // a 32-byte TCP header: NOP NOP TS

  // ---- edits, applied in the order given ----
  // Inserts an 802.1Q/802.1ad tag after the MAC addresses (before any other tag).
  FrameBuilder& vlan(uint16_t tpid, uint16_t vid) {
    return edit([=](Frame& f, Off& o) {
      insert(f, 12, {hi(tpid), lo(tpid), hi(vid), lo(vid)});
      o.l3 += 4;
      o.l4 += 4;
    });
  }
  // The EtherType in front of L3 (after the tags).
  FrameBuilder& ether_type(uint16_t t) { return edit([=](Frame& f, Off& o) { put16(f, o.l3 - 2, t); }); }
  // Keeps the first n bytes of the frame / of L3 on.
  FrameBuilder& cut(size_t n) { return edit([=](Frame& f, Off&) { f.resize(n); }); }
  FrameBuilder& cut_l3(size_t n) { return edit([=](Frame& f, Off& o) { f.resize(o.l3 + n); }); }
  // Ethernet padding up to n bytes.
  FrameBuilder& pad_to(size_t n) { return edit([=](Frame& f, Off&) { f.resize(n, 0); }); }
  // Byte / 16-bit word at an offset from the L3 or the L4 header.
  FrameBuilder& l3_byte(size_t at, uint8_t v) { return edit([=](Frame& f, Off& o) { f[o.l3 + at] = v; }); }
  FrameBuilder& l3_16(size_t at, uint16_t v) { return edit([=](Frame& f, Off& o) { put16(f, o.l3 + at, v); }); }
  FrameBuilder& l4_byte(size_t at, uint8_t v) { return edit([=](Frame& f, Off& o) { f[o.l4 + at] = v; }); }
  FrameBuilder& l4_16(size_t at, uint16_t v) { return edit([=](Frame& f, Off& o) { put16(f, o.l4 + at, v); }); }
  // IPv4 header length (IHL, 32-bit words) and version nibble.
  FrameBuilder& ihl(uint8_t words) { return edit([=](Frame& f, Off& o) { f[o.l3] = static_cast<uint8_t>((f[o.l3] & 0xf0) | words); }); }
  FrameBuilder& ip_version(uint8_t v) { return edit([=](Frame& f, Off& o) { f[o.l3] = static_cast<uint8_t>((v << 4) | (f[o.l3] & 0x0f)); }); }
  // The IP length field (IPv4 total length, IPv6 payload length): set / moved by d.
  FrameBuilder& ip_len(uint16_t v) { return edit([=](Frame& f, Off& o) { put16(f, o.l3 + (o.v6 ? 4 : 2), v); }); }
  FrameBuilder& ip_len_add(int d) {
    return edit([=](Frame& f, Off& o) {
      const size_t at = o.l3 + (o.v6 ? 4 : 2);
      put16(f, at, static_cast<uint16_t>(get16(f, at) + d));
    });
  }
  // The IP protocol (IPv4) or first next header (IPv6).
  FrameBuilder& ip_proto(uint8_t p) { return edit([=](Frame& f, Off& o) { f[o.l3 + (o.v6 ? 6 : 9)] = p; }); }
  // IPv4 flags + fragment offset word.
  FrameBuilder& ipv4_frag(uint16_t v) { return l3_16(6, v); }
  // IPv4 options (a multiple of 4 bytes) after the fixed header.
  FrameBuilder& ipv4_options(std::vector<uint8_t> opts) {
    return edit([=](Frame& f, Off& o) {
      insert(f, o.l3 + 20, opts);
      f[o.l3] = static_cast<uint8_t>(0x40 | (5 + opts.size() / 4));
      put16(f, o.l3 + 2, static_cast<uint16_t>(get16(f, o.l3 + 2) + opts.size()));
      o.l4 += opts.size();
    });
  }
  // An IPv6 extension header of 8 * (len8 + 1) bytes (the fragment header:
  // 8) put first; the old next header moves into it.
  FrameBuilder& ipv6_ext(uint8_t type, uint8_t len8 = 0) {
    return edit([=](Frame& f, Off& o) {
      const uint8_t units = type == 44 ? 0 : len8;
      std::vector<uint8_t> eh(8u * (units + 1u), 0);
      eh[0] = f[o.l3 + 6];
      eh[1] = units;
      insert(f, o.l3 + 40, eh);
      f[o.l3 + 6] = type;
      put16(f, o.l3 + 4, static_cast<uint16_t>(get16(f, o.l3 + 4) + eh.size()));
      o.l4 += eh.size();
    });
  }
  // TCP data offset (32-bit words).
  FrameBuilder& tcp_doff(uint8_t words) { return l4_byte(12, static_cast<uint8_t>(words << 4)); }

  Frame build() const {
    const L2L3 ip = testing::guest_to_gateway(v6_, kGuestMac);
    Frame f(kMaxFrameLen);
    switch (kind_) {
      case Kind::kTcp:
        f = testing::tcp_frame({.ip = ip, .sport = kGuestPort, .dport = kPeerPort, .seq = kSeqNo, .ack = kAckNo,
                                .flags = flags_, .window = 512, .payload = payload_,
                                .opts = ts_ ? testing::timestamps(7, 9) : TcpOptions{}});
        break;
      case Kind::kUdp: {
        const std::vector<uint8_t> body(payload_ != 0 ? payload_ : 4, 0x62);
        UdpDatagram d;
        d.ip = ip;
        d.sport = 5353;
        d.dport = 53;
        d.payload = body;
        f.resize(build_udp_frame(f, d));
        break;
      }
      case Kind::kIcmp: {
        const uint8_t body[8] = {0, 1, 0, 1, 'p', 'i', 'n', 'g'};
        f.resize(build_icmp_frame(f, ip, v6_ ? 128 : 8, 0, body));
        break;
      }
      case Kind::kArp:
        f.resize(build_arp_reply(f, MacAddr{{2, 0, 0, 0, 0, 1}}, *InetAddr::parse("198.18.0.2"), kGuestMac,
                                 *InetAddr::parse("198.18.0.1")));
        break;
    }
    Off o{kEthHeaderLen, kEthHeaderLen + (v6_ ? 40u : 20u), v6_};
    for (const auto& e : edits_) e(f, o);
    return f;
  }

 private:
  enum class Kind { kTcp, kUdp, kIcmp, kArp };
  struct Off {
    size_t l3, l4;  // header offsets, moved by the edits that insert bytes
    bool v6;
  };
  using Edit = std::function<void(Frame&, Off&)>;

  FrameBuilder(Kind k, bool v6) : kind_(k), v6_(v6) {}
  FrameBuilder& edit(Edit e) {
    edits_.push_back(std::move(e));
    return *this;
  }
  static uint8_t hi(uint16_t v) { return static_cast<uint8_t>(v >> 8); }
  static uint8_t lo(uint16_t v) { return static_cast<uint8_t>(v); }
  static void insert(Frame& f, size_t at, const std::vector<uint8_t>& bytes) {
    f.insert(f.begin() + static_cast<long>(at), bytes.begin(), bytes.end());
  }
  static void put16(Frame& f, size_t at, uint16_t v) {
    f[at] = hi(v);
    f[at + 1] = lo(v);
  }
  static uint16_t get16(const Frame& f, size_t at) { return static_cast<uint16_t>(f[at] << 8 | f[at + 1]); }

  Kind kind_;
  bool v6_;
  uint8_t flags_ = 0;
  size_t payload_ = 0;
  bool ts_ = false;
  std::vector<Edit> edits_;
};

enum class Verdict { kPass, kAbsorb };

struct Row {
  const char* what;
  FrameBuilder frame;
  Verdict verdict;
  ferry_stats counters;        // class and pure-ACK counters (guest_frames and the fate are added)
  bool flow = false;           // the test flow is published (eligible) while the row runs
  bool tc_refuses = false;     // the TC test run rejects the frame (IP header cut short)
};

using FB = FrameBuilder;
using tcpflag::kAck;
using tcpflag::kCwr;
using tcpflag::kEce;
using tcpflag::kFin;
using tcpflag::kPsh;
using tcpflag::kRst;
using tcpflag::kSyn;
using tcpflag::kUrg;
constexpr Verdict kPass = Verdict::kPass, kAbsorb = Verdict::kAbsorb;
constexpr size_t kTsOpt = 20;  // the options of a timestamps() header: NOP NOP 8 10 TSval TSecr

const std::vector<Row>& table() {
  static const std::vector<Row> rows = {
      // ---- Ethernet, ARP, VLAN ----
      {"ARP reply", FB::arp(), kPass, {.arp = 1}},
      {"ARP body cut short", FB::arp().cut(14 + 20), kPass, {.malformed = 1}},
      {"LLDP EtherType", FB::udp4().ether_type(0x88cc), kPass, {.other = 1}},
      {"802.1Q tag cut in half", FB::udp4().ether_type(0x8100).cut(16), kPass, {.malformed = 1}},
      {"802.1Q-tagged IPv4 UDP", FB::udp4().vlan(0x8100, 5), kPass, {.ipv4_udp = 1}},
      {"802.1ad-tagged IPv6 pure ACK", FB::tcp6().vlan(0x88a8, 7), kPass, {.ipv6_tcp = 1, .guest_pure_acks = 1}},
      {"802.1Q-tagged ARP", FB::arp().vlan(0x8100, 9), kPass, {.arp = 1}},
      {"two tags (QinQ): one is parsed, the inner tag is an unknown EtherType",
       FB::udp4().vlan(0x8100, 5).vlan(0x88a8, 6), kPass, {.other = 1}},
      {"802.1Q-tagged IPv4 header cut short", FB::tcp4().vlan(0x8100, 5).cut_l3(10), kPass, {.malformed = 1}},
      // ---- IPv4 classes, pure ACKs ----
      {"IPv4 TCP SYN", FB::tcp4(kSyn), kPass, {.ipv4_tcp = 1}},
      {"IPv4 UDP", FB::udp4(), kPass, {.ipv4_udp = 1}},
      {"IPv4 ICMP echo", FB::icmp4(), kPass, {.ipv4_icmp = 1}},
      {"IPv4 GRE (protocol 47)", FB::udp4().ip_proto(47), kPass, {.ipv4_other = 1}},
      {"IPv4 pure ACK", FB::tcp4(), kPass, {.ipv4_tcp = 1, .guest_pure_acks = 1}},
      {"IPv4 pure ACK with timestamps", FB::tcp4().timestamps(), kPass, {.ipv4_tcp = 1, .guest_pure_acks = 1}},
      {"ACK|PSH without data is a pure ACK", FB::tcp4(kAck | kPsh), kPass, {.ipv4_tcp = 1, .guest_pure_acks = 1}},
      {"ACK|ECE|CWR is a pure ACK", FB::tcp4(kAck | kEce | kCwr), kPass, {.ipv4_tcp = 1, .guest_pure_acks = 1}},
      {"ACK with 1 byte of data", FB::tcp4().payload(1), kPass, {.ipv4_tcp = 1}},
      {"ACK with 1000 bytes and timestamps", FB::tcp4().payload(1000).timestamps(), kPass, {.ipv4_tcp = 1}},
      {"SYN|ACK", FB::tcp4(kAck | kSyn), kPass, {.ipv4_tcp = 1}},
      {"FIN|ACK", FB::tcp4(kAck | kFin), kPass, {.ipv4_tcp = 1}},
      {"RST|ACK", FB::tcp4(kAck | kRst), kPass, {.ipv4_tcp = 1}},
      {"URG|ACK", FB::tcp4(kAck | kUrg), kPass, {.ipv4_tcp = 1}},
      {"TCP without the ACK flag", FB::tcp4(0), kPass, {.ipv4_tcp = 1}},
      {"Ethernet padding is not payload", FB::tcp4().pad_to(64), kPass, {.ipv4_tcp = 1, .guest_pure_acks = 1}},
      {"IPv4 options (NOP NOP NOP EOL)", FB::tcp4().ipv4_options({1, 1, 1, 0}), kPass,
       {.ipv4_tcp = 1, .guest_pure_acks = 1}},
      {"IPv4 first fragment (MF)", FB::udp4().ipv4_frag(0x2000), kPass, {.ipv4_other = 1}},
      {"IPv4 later fragment (offset 128)", FB::udp4().ipv4_frag(0x0010), kPass, {.ipv4_other = 1}},
      // ---- IPv4 malformed ----
      {"IPv4 IHL 4", FB::tcp4().ihl(4), kPass, {.malformed = 1}},
      {"IPv4 IHL 15, past the total length", FB::tcp4().ihl(15), kPass, {.malformed = 1}},
      {"version 6 under EtherType IPv4", FB::tcp4().ip_version(6), kPass, {.malformed = 1}},
      {"IPv4 total length one past the frame", FB::tcp4().ip_len_add(1), kPass, {.malformed = 1}},
      {"IPv4 total length 65535", FB::tcp4().ip_len(0xffff), kPass, {.malformed = 1}},
      {"IPv4 total length 19, below the header", FB::tcp4().ip_len(19), kPass, {.malformed = 1}},
      {"IPv4 header cut short (10 of 20 bytes)", FB::tcp4().cut_l3(10), kPass, {.malformed = 1}, false, true},
      {"EtherType IPv4 and nothing after it", FB::tcp4().cut_l3(0), kPass, {.malformed = 1}, false, true},
      // ---- TCP and UDP malformed, TCP options ----
      {"IPv4 says 10 bytes of TCP", FB::tcp4().timestamps().ip_len(20 + 10), kPass, {.malformed = 1}},
      {"TCP data offset 4", FB::tcp4().timestamps().tcp_doff(4), kPass, {.malformed = 1}},
      {"TCP data offset 15, past the segment", FB::tcp4().timestamps().tcp_doff(15), kPass, {.malformed = 1}},
      {"TCP option length 0", FB::tcp4().timestamps().l4_byte(kTsOpt + 3, 0), kPass, {.malformed = 1}},
      {"TCP option one past the header", FB::tcp4().timestamps().l4_byte(kTsOpt + 3, 11), kPass, {.malformed = 1}},
      {"TCP MSS option of length 3",
       FB::tcp4().timestamps().l4_byte(kTsOpt, 2).l4_byte(kTsOpt + 1, 3), kPass, {.malformed = 1}},
      {"unknown TCP option kind 30, well-formed",
       FB::tcp4().timestamps().l4_byte(kTsOpt, 30).l4_byte(kTsOpt + 1, 2), kPass,
       {.ipv4_tcp = 1, .guest_pure_acks = 1}},
      {"EOL first: the rest of the options is ignored",
       FB::tcp4().timestamps().l4_byte(kTsOpt, 0).l4_byte(kTsOpt + 3, 0), kPass,
       {.ipv4_tcp = 1, .guest_pure_acks = 1}},
      {"IPv4 says 4 bytes of UDP", FB::udp4().ip_len(20 + 4), kPass, {.malformed = 1}},
      // ---- IPv6 ----
      {"IPv6 pure ACK", FB::tcp6(), kPass, {.ipv6_tcp = 1, .guest_pure_acks = 1}},
      {"IPv6 ACK with 100 bytes", FB::tcp6().payload(100), kPass, {.ipv6_tcp = 1}},
      {"IPv6 UDP", FB::udp6(), kPass, {.ipv6_udp = 1}},
      {"ICMPv6 echo", FB::icmp6(), kPass, {.ipv6_icmp = 1}},
      {"IPv6 no next header (59)", FB::udp6().ip_proto(59), kPass, {.ipv6_other = 1}},
      {"IPv6 hop-by-hop, routing, destination options, then a TCP ACK",
       FB::tcp6().timestamps().ipv6_ext(60, 1).ipv6_ext(43, 0).ipv6_ext(0, 2), kPass,
       {.ipv6_tcp = 1, .guest_pure_acks = 1}},
      {"IPv6 extension headers put TCP 182 bytes deep",
       FB::tcp6().ipv6_ext(60, 7).ipv6_ext(0, 7), kPass, {.ipv6_tcp = 1, .guest_pure_acks = 1}},
      {"IPv6 fragment header", FB::udp6().ipv6_ext(44), kPass, {.ipv6_other = 1}},
      {"IPv6 extension header claiming 168 bytes, past the packet",
       FB::tcp6().ipv6_ext(60, 0).l3_byte(40 + 1, 20), kPass, {.malformed = 1}},
      {"seven IPv6 extension headers, more than are walked",
       FB::tcp6().ipv6_ext(60).ipv6_ext(60).ipv6_ext(60).ipv6_ext(60).ipv6_ext(60).ipv6_ext(60).ipv6_ext(60),
       kPass, {.ipv6_other = 1}},
      {"IPv6 extension headers past the deepest L4 offset (512)",
       FB::tcp6().ipv6_ext(60, 31).ipv6_ext(60, 31).ipv6_ext(60, 31), kPass, {.ipv6_other = 1}},
      {"IPv6 payload length one past the frame", FB::udp6().ip_len_add(1), kPass, {.malformed = 1}},
      {"version 4 under EtherType IPv6", FB::udp6().ip_version(4), kPass, {.malformed = 1}},
      {"UDP length 7, below its header", FB::udp6().l4_16(4, 7), kPass, {.malformed = 1}},
      {"IPv6 says 12 bytes of TCP", FB::tcp6().ip_len(12), kPass, {.malformed = 1}},
      {"IPv6 header cut short (30 of 40 bytes)", FB::tcp6().cut_l3(30), kPass, {.malformed = 1}, false, true},
      // ---- the fast path's decision, the same in every hook ----
      {"pure ACK of the published flow", FB::tcp4(), kAbsorb, {.ipv4_tcp = 1, .guest_pure_acks = 1}, true},
      {"pure ACK of the published flow with a tag (userspace drops tagged frames)",
       FB::tcp4().vlan(0x8100, 5), kPass, {.ipv4_tcp = 1, .guest_pure_acks = 1}, true},
      {"pure ACK of the published flow, TCP checksum wrong",
       FB::tcp4().l4_16(16, 0x1234), kPass, {.ipv4_tcp = 1, .guest_pure_acks = 1}, true},
      {"ACK with data of the published flow", FB::tcp4().payload(10), kPass, {.ipv4_tcp = 1}, true},
  };
  return rows;
}

// One hook the table runs on: its program and what it answers.
struct Hook {
  int prog_fd;
  int stats_fd, conn_hash_fd, conn_state_fd;
  int pass, absorb;          // verdicts
  bool absorbs;              // has the fast path
  bool tc;                   // a TC program (the TC test run refuses some rows)
  bpf_map* attach_stats;     // the attach object's byte counters, or null
};

class FrameTable : public bpftest::AttachObjectTest {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    classify_ = std::make_unique<BpfAttachment>();
    classify_load_ = bpftest::load_classifier(classify_.get(), kFlows);
  }
  static void TearDownTestSuite() { classify_.reset(); }
  void SetUp() override {
    bpftest::AttachObjectTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    FERRY_BPF_LOADED_OR_SKIP(classify_load_);
  }

  // Makes the test flow (guest -> gateway, ports 40000 -> 80) eligible: it
  // has sent up to 5000, the guest acknowledged 1000, expects kSeqNo next.
  static void publish(const Hook& h) {
    const L2L3 ip = testing::guest_to_gateway(false, kGuestMac);
    const ferry_conn_key key = make_conn_key(ip.src, kGuestPort, ip.dst, kPeerPort);
    const uint32_t slot = 1;
    ferry_conn_slot s{};
    s.gen = 1;
    s.flags = FERRY_SLOT_ELIGIBLE;
    s.snd_nxt = 5000;
    s.rcv_nxt = kSeqNo;
    s.ack_from_guest = 1000;
    ASSERT_EQ(bpf_map_update_elem(h.conn_state_fd, &slot, &s, BPF_ANY), 0);
    ASSERT_EQ(bpf_map_update_elem(h.conn_hash_fd, &key, &slot, BPF_ANY), 0);
  }
  static void retire(const Hook& h) {
    const L2L3 ip = testing::guest_to_gateway(false, kGuestMac);
    const ferry_conn_key key = make_conn_key(ip.src, kGuestPort, ip.dst, kPeerPort);
    bpf_map_delete_elem(h.conn_hash_fd, &key);
  }
  // The attach hooks' guest-side counters, summed (zero for the classifier).
  static ferry_attach_stats attach_sum(const Hook& h) {
    if (h.attach_stats == nullptr) return ferry_attach_stats{};
    return bpftest::sum_attach_stats(bpf_map__fd(h.attach_stats));
  }

  // Runs every row on hook h; returns how many ran.
  static size_t run_table(const Hook& h) {
    size_t ran = 0;
    for (const Row& row : table()) {
      SCOPED_TRACE(row.what);
      if (h.tc && row.tc_refuses) continue;
      const Frame f = row.frame.build();
      if (row.flow) publish(h);
      const ferry_stats before = bpftest::sum_stats(h.stats_fd);
      const ferry_attach_stats a0 = attach_sum(h);
      LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f.data(), .data_size_in = static_cast<uint32_t>(f.size()));
      const int err = bpf_prog_test_run_opts(h.prog_fd, &o);
      if (row.flow) retire(h);
      EXPECT_EQ(err, 0) << "test run refused the frame (" << f.size() << " bytes)";
      if (err != 0) continue;
      ran++;
      const bool absorbed = row.verdict == Verdict::kAbsorb && h.absorbs;
      EXPECT_EQ(static_cast<int>(o.retval), absorbed ? h.absorb : h.pass);
      ferry_stats want = row.counters;
      want.guest_frames = 1;
      (absorbed ? want.acks_absorbed : want.passed_to_userspace) = 1;
      EXPECT_EQ(bpftest::stats_mismatch(bpftest::stats_delta(bpftest::sum_stats(h.stats_fd), before), want), "");
      const ferry_attach_stats a1 = attach_sum(h);
      EXPECT_EQ(a1.from_guest_bytes - a0.from_guest_bytes, absorbed || h.attach_stats == nullptr ? 0u : f.size());
      EXPECT_EQ(a1.redirect_failed - a0.redirect_failed, 0u);
    }
    return ran;
  }
  static size_t rows_for(bool tc) {
    size_t n = 0;
    for (const Row& r : table()) n += !(tc && r.tc_refuses);
    return n;
  }

  Hook attach_hook(bpf_program* p, bool tc) const {
    return {bpf_program__fd(p),
            bpf_map__fd(skel_->maps.stats),
            bpf_map__fd(skel_->maps.conn_hash),
            bpf_map__fd(skel_->maps.conn_state),
            tc ? 7 /* TC_ACT_REDIRECT */ : 4 /* XDP_REDIRECT */,
            tc ? 2 /* TC_ACT_SHOT */ : 1 /* XDP_DROP */,
            true,
            tc,
            skel_->maps.attach_stats};
  }

  static std::unique_ptr<BpfAttachment> classify_;
  static bpftest::BpfLoad classify_load_;
};

std::unique_ptr<BpfAttachment> FrameTable::classify_;
bpftest::BpfLoad FrameTable::classify_load_;

TEST_F(FrameTable, ClassifierOnTheTapsEgress) {
  const Hook h{classify_->prog_fd(),
               classify_->map_fd("stats"),
               classify_->map_fd("conn_hash"),
               classify_->map_fd("conn_state"),
               0 /* TC_ACT_OK */,
               4 /* TC_ACT_STOLEN */,
               true,
               true,
               nullptr};
  EXPECT_EQ(run_table(h), rows_for(true));
}

TEST_F(FrameTable, AttachDevTcx) { EXPECT_EQ(run_table(attach_hook(skel_->progs.ferry_attach_dev_tc, true)), rows_for(true)); }

TEST_F(FrameTable, AttachDevXdp) {
  fill_devmap();
  EXPECT_EQ(run_table(attach_hook(skel_->progs.ferry_attach_dev_xdp, false)), rows_for(false));
}

}  // namespace
}  // namespace ferry
