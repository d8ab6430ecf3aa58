// `ferry stats [-j|--json] [INSTANCE]`: the fast path's and the
// translator's counters.
//
// Theory of operation: every ferry instance pins its per-CPU `stats` map
// under /sys/fs/bpf/ferry/<instance>/. This command reads those pins
// (summing the CPUs), so it needs no connection to the running ferry and
// works from any process with access to bpffs. Without INSTANCE it shows
// every live instance (run-<pid> pins of dead processes are skipped); with
// one, only it. Beside them it shows what the userspace translator made of
// the frames it was handed, from the counters file the instance rewrites
// every second (counters_file.h; absent when unreadable). Output is a table
// (one row per counter, one column per instance; translator rows are
// prefixed "translator.") or JSON:
//   {"instances":[{"name":"run-123","counters":{"guest_frames":N,...},
//                  "translator":{"frames":N,...} or null,
//                  "translator_age_s":N or null,
//                  "attach":{"from_guest_bytes":N,"to_guest_frames":N,
//                            "to_guest_bytes":N,"redirect_failed":N} or null}]}
// with every FERRY_STATS_FIELDS name, in that order, and "bpf":true.
// "attach": the redirect programs' counters of a `ferry attach` instance
// (rows attach.* in the table); redirect_failed counts frames toward the
// guest that bpf_redirect refused.
// A `ferry vm` instance (vm-PID, QEMU's stream socket) has no BPF at all:
// it is listed from its counters file alone, its BPF rows are "-" in the
// table and "counters":null,"bpf":false in JSON, and the table says so.
// So is a `ferry run` without pins: a rootless one (its counters file is in
// the caller's own directory, counters_file.h: run by that user, this
// command lists it) or one whose fast path is off.
// Exit status: 0, 1 (unknown instance, unreadable pin), 2 (usage).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "attach/inspect.h"
#include "attach/instance.h"
#include "bpf/classify.h"
#include "bpf/counters_map.h"
#include "commands.h"
#include "common/option_table.h"
#include "counters_file.h"

namespace ferry::cli {

namespace {

constexpr const char* kStatsUsage =
    "usage: ferry stats [-j|--json] [INSTANCE]\n"
    "\n"
    "Prints the BPF fast path's counters of every live ferry instance (or of\n"
    "INSTANCE, e.g. run-1234), read from the maps pinned under " FERRY_PIN_ROOT "/,\n"
    "and the translator's (rows translator.*), which the instance writes every second.\n"
    "A `ferry vm` instance (vm-PID) has no BPF: only its translator rows are shown;\n"
    "so has a rootless `ferry run` (listed to the user who runs it).\n"
    "\n"
    "options:\n";

struct StatsArgs {
  bool json = false;
};

constexpr Option<StatsArgs> kStatsOptions[] = {
    {{"--json", 'j', nullptr, "JSON: {\"instances\":[{\"name\":...,\"bpf\":true,\"counters\":{...}}]}"},
     option::set<&StatsArgs::json, true>},
};

struct Row {
  std::string name;
  ferry_stats stats{};
  bool bpf = true;  // false: a `ferry vm` instance, translator counters only
  std::map<std::string, std::string> translator;  // empty: no counters file
  long long translator_age_s = -1;
  std::map<std::string, uint64_t> attach;  // empty: not an attach instance
};

// The redirect programs' counters of an attached device, if pinned.
void read_attach(Row* r) {
  Result<ferry_attach_stats> a = read_counters_map<ferry_attach_stats>(attach::pin_dir(r->name) + "/attach_stats");
  if (!a) return;
#define FERRY_ATTACH_ROW(name) r->attach[#name] = a->name;
  FERRY_ATTACH_STATS_FIELDS(FERRY_ATTACH_ROW)
#undef FERRY_ATTACH_ROW
}

// Reads the instance's translator counters file, if there is one.
void read_translator(Row* r) {
  Result<attach::StateMap> m = attach::read_state(counters_path(r->name));
  if (!m) return;
  for (const auto& [k, v] : *m) {
    if (k == "written_at") {
      r->translator_age_s = static_cast<long long>(std::time(nullptr)) - std::atoll(v.c_str());
      if (r->translator_age_s < 0) r->translator_age_s = 0;
    } else if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos) {
      r->translator[k] = v;
    }
  }
}

// Prints the rows as JSON on stdout.
void print_json(const std::vector<Row>& rows) {
  std::printf("{\"instances\":[");
  for (size_t i = 0; i < rows.size(); i++) {
    std::printf("%s{\"name\":\"%s\",\"bpf\":%s,\"counters\":", i ? "," : "", rows[i].name.c_str(),
                rows[i].bpf ? "true" : "false");
    bool first = true;
    if (rows[i].bpf) {
      std::printf("{");
      for (const StatsField& f : stats_fields(rows[i].stats)) {
        std::printf("%s\"%s\":%llu", first ? "" : ",", f.name, static_cast<unsigned long long>(f.value));
        first = false;
      }
      std::printf("}");
    } else {
      std::printf("null");
    }
    std::printf(",\"translator\":");
    if (rows[i].translator.empty()) {
      std::printf("null,\"translator_age_s\":null");
    } else {
      std::printf("{");
      first = true;
      for (const auto& [k, v] : rows[i].translator) {
        std::printf("%s\"%s\":%s", first ? "" : ",", k.c_str(), v.c_str());
        first = false;
      }
      std::printf("},\"translator_age_s\":%lld", rows[i].translator_age_s);
    }
    std::printf(",\"attach\":");
    if (rows[i].attach.empty()) {
      std::printf("null}");
      continue;
    }
    first = true;
    for (const auto& [k, v] : rows[i].attach) {
      std::printf("%s\"%s\":%llu", first ? "{" : ",", k.c_str(), static_cast<unsigned long long>(v));
      first = false;
    }
    std::printf("}}");
  }
  std::printf("]}\n");
}

// Prints the rows as a table: counters down, instances across.
void print_table(const std::vector<Row>& rows) {
  if (rows.empty()) {
    std::printf("no ferry instances\n");
    return;
  }
  std::vector<std::vector<StatsField>> cols;
  for (const Row& r : rows) cols.push_back(stats_fields(r.stats));
  std::set<std::string> keys;
  for (const Row& r : rows) {
    for (const auto& kv : r.translator) keys.insert("translator." + kv.first);
    for (const auto& kv : r.attach) keys.insert("attach." + kv.first);
  }
  int w = 20;  // the name column fits the longest counter name
  for (const std::string& k : keys) w = std::max(w, static_cast<int>(k.size()));
  std::printf("%-*s", w, "counter");
  for (const Row& r : rows) std::printf(" %20s", r.name.c_str());
  std::printf("\n");
  for (size_t k = 0; k < cols[0].size(); k++) {
    std::printf("%-*s", w, cols[0][k].name);
    for (size_t r = 0; r < rows.size(); r++) {
      if (rows[r].bpf)
        std::printf(" %20llu", static_cast<unsigned long long>(cols[r][k].value));
      else
        std::printf(" %20s", "-");
    }
    std::printf("\n");
  }
  for (const std::string& k : keys) {
    std::printf("%-*s", w, k.c_str());
    for (const Row& r : rows) {
      if (k.rfind("attach.", 0) == 0) {
        auto it = r.attach.find(k.substr(sizeof("attach.") - 1));
        std::printf(" %20s", it == r.attach.end() ? "-" : std::to_string(it->second).c_str());
        continue;
      }
      auto it = r.translator.find(k.substr(sizeof("translator.") - 1));
      std::printf(" %20s", it == r.translator.end() ? "-" : it->second.c_str());
    }
    std::printf("\n");
  }
  for (const Row& r : rows) {
    if (r.bpf) continue;
    if (is_vm_instance(r.name))
      std::printf("%s: no BPF in this mode (ferry vm, QEMU stream socket): translator counters only\n", r.name.c_str());
    else
      std::printf("%s: no BPF (a rootless ferry run, or no fast path): translator counters only\n", r.name.c_str());
  }
}

}  // namespace

// Entry point of `ferry stats`; argv[0] is "stats".
int cmd_stats(int argc, char** argv) {
  StatsArgs args;
  OptionParser parser("ferry stats");
  parser.text(kStatsUsage).add(kStatsOptions, &args).unknown_format("unknown option '%s' (see ferry stats --help)");
  std::vector<char*> operands;
  if (std::optional<int> exit = parser.parse_or_exit(argc, argv, &operands)) return *exit;
  if (operands.size() > 1) {
    std::fprintf(stderr, "ferry stats: one INSTANCE at most (see ferry stats --help)\n");
    return 2;
  }
  const bool json = args.json;
  const std::string instance = operands.empty() ? std::string() : operands[0];

  std::vector<std::string> names;
  if (!instance.empty()) {
    if (!valid_instance_name(instance)) {
      std::fprintf(stderr, "ferry stats: bad instance name '%s'\n", instance.c_str());
      return 1;
    }
    names.push_back(instance);
  } else {
    names = list_instances(true);
    // run-PID and vm-PID directories (a rootless run, or one without the
    // fast path, has no pins: its counters file is all there is)
    for (std::string& n : list_run_dir_instances())
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
  }

  std::vector<Row> rows;
  for (const std::string& n : names) {
    Row r;
    r.name = n;
    if (is_vm_instance(n)) {  // no pins: its counters file is all there is
      r.bpf = false;
      read_translator(&r);
      if (r.translator.empty()) {
        if (!instance.empty()) {
          std::fprintf(stderr, "ferry stats: no instance '%s' (no counters file)\n", n.c_str());
          return 1;
        }
        continue;
      }
      rows.push_back(r);
      continue;
    }
    if (Status st = read_stats(n, &r.stats); !st.ok()) {
      if (is_run_instance(n)) {  // no pins (rootless, or no fast path): the counters file alone
        r.bpf = false;
        read_translator(&r);
        if (!r.translator.empty()) {
          rows.push_back(r);
          continue;
        }
      }
      if (!instance.empty()) {
        std::fprintf(stderr, "ferry stats: no instance '%s' (%s)\n", n.c_str(), st.message().c_str());
        return 1;
      }
      continue;  // went away while we listed: not an error
    }
    read_translator(&r);
    read_attach(&r);
    rows.push_back(r);
  }
  if (json)
    print_json(rows);
  else
    print_table(rows);
  return 0;
}

}  // namespace ferry::cli
