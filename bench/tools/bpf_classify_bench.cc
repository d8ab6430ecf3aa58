// bpf_classify_bench: nanoseconds per frame of ferry's classifier, one figure
// per frame class, measured in the kernel with BPF_PROG_TEST_RUN.
//
// Theory of operation
// -------------------
// Loads the built classifier object (build*/bpf/ferry_classify.bpf.o) with
// libbpf, exactly as it is (maps created fresh, every pin path cleared first
// so that nothing is pinned and no other instance's pins are touched), and
// picks the program in the requested ELF section ("tc" by default). For each
// frame class it builds one representative frame by hand, then runs
// bpf_prog_test_run_opts(repeat = N) --reps times; the kernel reports the
// mean duration of one run in ns, and we print the median of the reps.
//
// Validation: if the object has the per-CPU `stats` map of the contract
// (include/ferry/contract.h), the counters are read before and after each
// class and the field that grew by the number of runs is printed as
// counted_as=..., so a frame that the classifier files under the wrong class
// shows up in the output instead of silently timing the wrong path.
//
// Output, one line per class: `bpf class=NAME ns=X retval=R counted_as=F`;
// on a load failure one `bpf error=...` line and exit status 1.
#include <bpf/bpf.h>
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/contract.h"

namespace ferry::bench {

namespace {

using Frame = std::vector<uint8_t>;

struct Case {
  const char* name;
  Frame frame;
  bool absorb = false;  // publish the frame's flow as an eligible fast-path slot first
};

// Appends big-endian 16-bit v.
void put16(Frame& f, uint16_t v) {
  f.push_back(static_cast<uint8_t>(v >> 8));
  f.push_back(static_cast<uint8_t>(v & 0xff));
}

// Appends big-endian 32-bit v.
void put32(Frame& f, uint32_t v) {
  put16(f, static_cast<uint16_t>(v >> 16));
  put16(f, static_cast<uint16_t>(v & 0xffff));
}

// Ethernet header: guest MAC -> gateway MAC, given EtherType.
Frame ether(uint16_t ethertype) {
  Frame f = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
  put16(f, ethertype);
  return f;
}

// Standard internet checksum over [b, e) (so the frames are also valid on the wire).
uint16_t csum(const uint8_t* b, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (n % 2 != 0) s += static_cast<uint32_t>(b[n - 1] << 8);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// IPv4 header 198.18.0.2 -> 198.18.0.1 carrying l4 (protocol proto).
Frame ipv4(uint8_t proto, const Frame& l4, uint16_t frag = 0) {
  Frame f = ether(0x0800);
  const size_t h = f.size();
  f.push_back(0x45);
  f.push_back(0);
  put16(f, static_cast<uint16_t>(20 + l4.size()));
  put16(f, 0x1234);
  put16(f, frag);
  f.push_back(64);
  f.push_back(proto);
  put16(f, 0);
  put32(f, 0xc6120002);
  put32(f, 0xc6120001);
  const uint16_t c = csum(f.data() + h, 20);
  f[h + 10] = static_cast<uint8_t>(c >> 8);
  f[h + 11] = static_cast<uint8_t>(c & 0xff);
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

// IPv6 header fd00:f::2 -> fd00:f::1 carrying l4 (next header nh).
Frame ipv6(uint8_t nh, const Frame& l4) {
  Frame f = ether(0x86dd);
  put32(f, 0x60000000);
  put16(f, static_cast<uint16_t>(l4.size()));
  f.push_back(nh);
  f.push_back(64);
  for (uint8_t last : {uint8_t{2}, uint8_t{1}}) {
    const uint8_t a[16] = {0xfd, 0x00, 0x00, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
    f.insert(f.end(), a, a + 16);
  }
  f.insert(f.end(), l4.begin(), l4.end());
  return f;
}

// TCP header 40000 -> 5201 with flags, optional options and payload bytes.
Frame tcp(uint8_t flags, const Frame& options, size_t payload) {
  Frame f;
  put16(f, 40000);
  put16(f, 5201);
  put32(f, 1000);
  put32(f, (flags & 0x10) != 0 ? 2000u : 0u);
  f.push_back(static_cast<uint8_t>(((20 + options.size()) / 4) << 4));
  f.push_back(flags);
  put16(f, 65535);
  put16(f, 0);
  put16(f, 0);
  f.insert(f.end(), options.begin(), options.end());
  f.insert(f.end(), payload, 'x');
  return f;
}

// Fills in the TCP checksum of an IPv4 or IPv6 frame built above (TCP right
// after the IP header), so the fast path's verification accepts it.
Frame with_tcp_csum(Frame f) {
  const bool v4 = f[12] == 0x08;
  const size_t l3 = 14, l4 = v4 ? l3 + 20 : l3 + 40, len = f.size() - l4;
  Frame pseudo;
  if (v4) {
    pseudo.insert(pseudo.end(), f.begin() + l3 + 12, f.begin() + l3 + 20);
  } else {
    pseudo.insert(pseudo.end(), f.begin() + l3 + 8, f.begin() + l3 + 40);
  }
  put32(pseudo, static_cast<uint32_t>(len));
  put32(pseudo, 6);
  f[l4 + 16] = 0;
  f[l4 + 17] = 0;
  pseudo.insert(pseudo.end(), f.begin() + static_cast<long>(l4), f.end());
  const uint16_t c = csum(pseudo.data(), pseudo.size());
  f[l4 + 16] = static_cast<uint8_t>(c >> 8);
  f[l4 + 17] = static_cast<uint8_t>(c & 0xff);
  return f;
}

// UDP header 40000 -> 5353 with payload bytes.
Frame udp(size_t payload) {
  Frame f;
  put16(f, 40000);
  put16(f, 5353);
  put16(f, static_cast<uint16_t>(8 + payload));
  put16(f, 0);
  f.insert(f.end(), payload, 'u');
  return f;
}

// ICMP (or ICMPv6) echo request of type t with 56 bytes.
Frame icmp_echo(uint8_t t) {
  Frame f = {t, 0, 0, 0, 0x12, 0x34, 0, 1};
  f.insert(f.end(), 56, 'p');
  return f;
}

// One representative frame per class, plus the TCP shapes the fast path cares about.
std::vector<Case> make_cases() {
  const Frame syn_opts = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
  const Frame ts_opts = {1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 1};
  std::vector<Case> c;
  Frame arp = ether(0x0806);
  const uint8_t arp_body[28] = {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 198, 18, 0, 2,
                                0, 0, 0, 0, 0, 0, 198, 18, 0, 1};
  arp.insert(arp.end(), arp_body, arp_body + 28);
  c.push_back({"arp", arp});
  c.push_back({"ipv4_tcp_syn", ipv4(6, tcp(0x02, syn_opts, 0))});
  c.push_back({"ipv4_tcp_pure_ack", ipv4(6, tcp(0x10, ts_opts, 0))});
  c.push_back({"ipv4_tcp_data_1448", ipv4(6, tcp(0x18, ts_opts, 1448))});
  c.push_back({"ipv4_tcp_fin", ipv4(6, tcp(0x11, ts_opts, 0))});
  c.push_back({"ipv4_udp", ipv4(17, udp(64))});
  c.push_back({"ipv4_icmp", ipv4(1, icmp_echo(8))});
  c.push_back({"ipv4_other_gre", ipv4(47, Frame(32, 0))});
  c.push_back({"ipv4_fragment", ipv4(17, udp(64), 0x2000)});
  c.push_back({"ipv6_tcp_syn", ipv6(6, tcp(0x02, syn_opts, 0))});
  c.push_back({"ipv6_tcp_pure_ack", ipv6(6, tcp(0x10, ts_opts, 0))});
  c.push_back({"ipv6_tcp_data_1428", ipv6(6, tcp(0x18, ts_opts, 1428))});
  c.push_back({"ipv6_udp", ipv6(17, udp(64))});
  c.push_back({"ipv6_icmp", ipv6(58, icmp_echo(128))});
  c.push_back({"ipv6_other_sctp", ipv6(132, Frame(32, 0))});
  Frame lldp = ether(0x88cc);
  lldp.insert(lldp.end(), 46, 0);
  c.push_back({"other_lldp", lldp});
  Frame bad_ihl = ipv4(6, tcp(0x10, {}, 0));
  bad_ihl[14] = 0x44;  // IHL 4 < 5
  c.push_back({"malformed_ipv4_ihl", bad_ihl});
  Frame short_tcp = ipv4(6, tcp(0x10, {}, 0));
  short_tcp.resize(14 + 20 + 10);  // TCP header cut in half
  short_tcp[16] = 0;
  short_tcp[17] = 30;  // IP total length says so too
  c.push_back({"malformed_tcp_truncated", short_tcp});
  // The fast path's own case: a pure ACK of a published, eligible flow
  // (sequence = rcv_nxt, ACK = snd_nxt: nothing outstanding, no wake-up),
  // with a valid TCP checksum, which a test run must verify (it cannot mark
  // a frame CHECKSUM_PARTIAL, the tap guest's usual shape, which skips the
  // sum: these are the upper bound of that path).
  c.push_back({"ipv4_tcp_pure_ack_absorbed_ts", with_tcp_csum(ipv4(6, tcp(0x10, ts_opts, 0))), true});
  c.push_back({"ipv4_tcp_pure_ack_absorbed_no_opts", with_tcp_csum(ipv4(6, tcp(0x10, {}, 0))), true});
  c.push_back({"ipv6_tcp_pure_ack_absorbed_ts", with_tcp_csum(ipv6(6, tcp(0x10, ts_opts, 0))), true});
  return c;
}

// Publishes the bench frames' flow (IPv4 or IPv6) in slot 0 as userspace
// would (include/ferry/contract.h): key -> 0 in conn_hash, an eligible slot
// with timestamps expecting sequence 1000 and ACKs up to 2000. False when
// the object has no fast-path maps.
bool publish_flow(bpf_object* obj, bool v6) {
  bpf_map* hash = bpf_object__find_map_by_name(obj, "conn_hash");
  bpf_map* state = bpf_object__find_map_by_name(obj, "conn_state");
  if (hash == nullptr || state == nullptr) return false;
  ferry_conn_key k{};
  if (v6) {
    const uint8_t g[16] = {0xfd, 0x00, 0x00, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    std::memcpy(k.guest_addr, g, 16);
    std::memcpy(k.peer_addr, g, 16);
    k.peer_addr[15] = 1;
    k.family = 10;
  } else {
    const uint8_t g[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 2};
    std::memcpy(k.guest_addr, g, 16);
    std::memcpy(k.peer_addr, g, 16);
    k.peer_addr[15] = 1;
    k.family = 2;
  }
  k.guest_port = htons(40000);
  k.peer_port = htons(5201);
  k.protocol = 6;
  uint32_t slot = 0;
  ferry_conn_slot st{};
  st.gen = 1;
  st.flags = FERRY_SLOT_ELIGIBLE | FERRY_SLOT_TIMESTAMPS;
  st.snd_nxt = 2000;
  st.rcv_nxt = 1000;
  st.ack_from_guest = 2000;
  st.guest_window = 65535;
  return bpf_map_update_elem(bpf_map__fd(state), &slot, &st, BPF_ANY) == 0 &&
         bpf_map_update_elem(bpf_map__fd(hash), &k, &slot, BPF_ANY) == 0;
}

const char* const kStatNames[] = {
#define FERRY_STATS_NAME(n) #n,
    FERRY_STATS_FIELDS(FERRY_STATS_NAME)
#undef FERRY_STATS_NAME
};
constexpr size_t kStatCount = sizeof(kStatNames) / sizeof(kStatNames[0]);

// Sums the per-CPU `stats` map into totals[]; false if there is none.
bool read_stats(int map_fd, int ncpu, std::vector<uint64_t>* totals) {
  if (map_fd < 0) return false;
  const size_t stride = (sizeof(ferry_stats) + 7) / 8 * 8;
  std::vector<uint8_t> buf(stride * static_cast<size_t>(ncpu));
  uint32_t key = 0;
  if (bpf_map_lookup_elem(map_fd, &key, buf.data()) != 0) return false;
  totals->assign(kStatCount, 0);
  for (int cpu = 0; cpu < ncpu; cpu++) {
    const uint8_t* p = buf.data() + stride * static_cast<size_t>(cpu);
    for (size_t i = 0; i < kStatCount; i++) {
      uint64_t v = 0;
      std::memcpy(&v, p + i * sizeof(uint64_t), sizeof(v));
      (*totals)[i] += v;
    }
  }
  return true;
}

// libbpf's warnings (a failed load prints the whole verifier log): kept
// here, and only their tail printed, so a failure stays readable.
std::string g_libbpf_log;

// Collects libbpf warnings and errors into g_libbpf_log.
int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG || level == LIBBPF_INFO) return 0;
  char line[4096];
  const int n = std::vsnprintf(line, sizeof(line), fmt, ap);
  if (g_libbpf_log.size() < (64u << 20)) g_libbpf_log += line;
  return n;
}

// Prints the last `lines` lines of libbpf's log on stderr.
void print_log_tail(size_t lines) {
  size_t pos = g_libbpf_log.size();
  for (size_t seen = 0; pos > 0 && seen <= lines;) {
    pos = g_libbpf_log.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    seen++;
  }
  std::fputs(g_libbpf_log.c_str() + pos, stderr);
}

// ns per run of an empty SCHED_CLS program (r0 = 0; exit) on frame: the
// fixed cost of BPF_PROG_TEST_RUN itself, to read the figures against.
double baseline_ns(const Frame& frame, uint32_t repeat, int reps) {
  const bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
      {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
  };
  const int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "bench_empty", "GPL", insns, 2, nullptr);
  if (fd < 0) return -1;
  std::vector<double> ns;
  for (int r = 0; r < reps; r++) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<uint32_t>(frame.size()),
                .repeat = static_cast<int>(repeat));
    if (bpf_prog_test_run_opts(fd, &opts) == 0) ns.push_back(static_cast<double>(opts.duration));
  }
  close(fd);
  if (ns.empty()) return -1;
  std::sort(ns.begin(), ns.end());
  return ns[ns.size() / 2];
}

}  // namespace

}  // namespace ferry::bench

int main(int argc, char** argv) {
  using namespace ferry::bench;
  std::string object, section = "tc";
  uint32_t repeat = 1'000'000;
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    if (a == "--object") object = argv[i + 1];
    else if (a == "--section") section = argv[i + 1];
    else if (a == "--repeat") repeat = static_cast<uint32_t>(std::strtoul(argv[i + 1], nullptr, 10));
    else if (a == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
  }
  if (object.empty()) {
    std::fprintf(stderr, "usage: bpf_classify_bench --object FILE.bpf.o [--section tc] [--repeat N] [--reps R]\n");
    return 2;
  }
  libbpf_set_print(libbpf_print);
  bpf_object* obj = bpf_object__open_file(object.c_str(), nullptr);
  if (obj == nullptr) {
    print_log_tail(8);
    std::printf("bpf error=open_failed object=%s\n", object.c_str());
    return 1;
  }
  bpf_map* m;
  bpf_object__for_each_map(m, obj) bpf_map__set_pin_path(m, nullptr);  // never pin, never reuse pins
  bpf_program* prog = nullptr;
  bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    bpf_program__set_autoload(p, false);
    if (prog == nullptr && section == bpf_program__section_name(p)) prog = p;
  }
  if (prog == nullptr) {
    std::printf("bpf error=no_program_in_section section=%s\n", section.c_str());
    return 1;
  }
  bpf_program__set_autoload(prog, true);
  if (const int err = bpf_object__load(obj); err != 0) {
    print_log_tail(8);
    std::printf("bpf error=load_failed errno=%d (%s)\n", -err, std::strerror(-err));
    return 1;
  }
  const int prog_fd = bpf_program__fd(prog);
  bpf_map* stats = bpf_object__find_map_by_name(obj, "stats");
  const int stats_fd = stats != nullptr ? bpf_map__fd(stats) : -1;
  const int ncpu = libbpf_num_possible_cpus();
  std::printf("bpf program=%s section=%s repeat=%u reps=%d\n", bpf_program__name(prog), section.c_str(), repeat, reps);

  int failures = 0;
  const std::vector<Case> cases = make_cases();
  std::printf("bpf class=baseline_empty_program bytes=%zu ns=%.1f retval=0 counted_as=none\n", cases[2].frame.size(),
              baseline_ns(cases[2].frame, repeat, reps));
  for (const Case& c : cases) {
    if (c.absorb && !publish_flow(obj, c.frame[12] == 0x86)) {
      std::printf("bpf class=%s error=no_fastpath_maps\n", c.name);
      continue;
    }
    std::vector<double> ns;
    uint32_t retval = 0;
    std::vector<uint64_t> before, after;
    const bool have_before = read_stats(stats_fd, ncpu, &before);
    std::vector<uint8_t> out(c.frame.size() + 256);
    for (int r = 0; r < reps; r++) {
      LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.frame.data(),
                  .data_out = out.data(), .data_size_in = static_cast<uint32_t>(c.frame.size()),
                  .data_size_out = static_cast<uint32_t>(out.size()), .repeat = static_cast<int>(repeat));
      if (const int err = bpf_prog_test_run_opts(prog_fd, &opts); err != 0) {
        std::printf("bpf class=%s error=test_run_failed errno=%d\n", c.name, -err);
        failures++;
        break;
      }
      ns.push_back(static_cast<double>(opts.duration));
      retval = opts.retval;
    }
    if (ns.empty()) continue;
    std::sort(ns.begin(), ns.end());
    std::string counted = "unknown";
    if (have_before && read_stats(stats_fd, ncpu, &after)) {
      const uint64_t runs = static_cast<uint64_t>(repeat) * static_cast<uint64_t>(ns.size());
      counted.clear();
      for (size_t i = 0; i < kStatCount; i++) {
        const std::string_view name = kStatNames[i];
        if (name == "guest_frames" || name == "passed_to_userspace") continue;  // every frame
        if (after[i] - before[i] == runs) counted += (counted.empty() ? "" : ",") + std::string(name);
      }
      if (counted.empty()) counted = "none";
    }
    std::printf("bpf class=%s bytes=%zu ns=%.1f retval=%u counted_as=%s\n", c.name, c.frame.size(),
                ns[ns.size() / 2], retval, counted.c_str());
  }
  bpf_object__close(obj);
  return failures == 0 ? 0 : 1;
}
