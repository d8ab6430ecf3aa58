// The CLI's option tables: the parser and --help come from one table per
// option group, so the help lists every option, every bad value is one line
// that names its option, and the commands keep their usage errors (exit 2)
// and help (exit 0). Commands are called in-process: each returns before it
// touches the system when its command line is bad or asks for help.
// test-libs: ferry_cli
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "commands.h"
#include "common/option_table.h"
#include "options.h"
#include "sandbox/options.h"

namespace ferry::cli {
namespace {

// argv from strings; argv[0] is the command's name.
struct Argv {
  explicit Argv(std::initializer_list<std::string> args) : store(args) {
    for (std::string& s : store) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(store.size()); }
  char** argv() { return ptrs.data(); }
  std::vector<std::string> store;
  std::vector<char*> ptrs;
};

// What a command wrote and returned.
struct Ran {
  int rc;
  std::string out, err;
};
Ran run_cmd(int (*cmd)(int, char**), std::initializer_list<std::string> args) {
  Argv a(args);
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  const int rc = cmd(a.argc(), a.argv());
  std::string out = testing::internal::GetCapturedStdout();
  return {rc, out, testing::internal::GetCapturedStderr()};
}

// A parser with every option a translator takes (what run, attach, vm add).
struct TranslatorParser {
  Config config = Config::defaults();
  sandbox::Options sandbox;
  OptionParser parser{"ferry test"};
  TranslatorParser() {
    add_translator_options(parser, &config);
    parser.add(sandbox::option_table(), &sandbox);
  }
  OptionParser::Outcome parse(std::initializer_list<std::string> args) {
    Argv a(args);
    return parser.parse(a.argc(), a.argv());
  }
};

TEST(OptionTable, FlagsValuesOperandsAndSeen) {
  struct Args {
    bool on = true;
    std::string name;
  } args;
  static constexpr Option<Args> kTable[] = {
      {{"--off", 'o', nullptr, "turn it off"}, option::set<&Args::on, false>},
      {{"--name", 'n', "NAME", "a name"}, option::text<&Args::name>},
  };
  OptionParser p("ferry t");
  p.add(kTable, &args);
  Argv a({"t", "x", "-o", "--name", "-dash-value", "y", "--", "--off"});
  OptionParser::Outcome r = p.parse(a.argc(), a.argv());
  ASSERT_EQ(r.kind, OptionParser::Outcome::ok) << r.line;
  EXPECT_FALSE(args.on);
  EXPECT_EQ(args.name, "-dash-value");  // a value is the next argument, whatever it looks like
  ASSERT_EQ(r.operands.size(), 3u);
  EXPECT_STREQ(r.operands[0], "x");
  EXPECT_STREQ(r.operands[1], "y");
  EXPECT_STREQ(r.operands[2], "--off");  // after --: an operand
  EXPECT_TRUE(p.seen("--off"));
  EXPECT_TRUE(p.seen("--name"));

  Argv b({"t", "y"});
  EXPECT_EQ(p.parse(b.argc(), b.argv()).kind, OptionParser::Outcome::ok);
  EXPECT_FALSE(p.seen("--off"));  // seen() is the last parse's

  p.stop_at_operand();
  Argv c({"t", "cmd", "--off"});
  args.on = true;
  r = p.parse(c.argc(), c.argv());
  ASSERT_EQ(r.operands.size(), 2u);
  EXPECT_STREQ(r.operands[1], "--off");
  EXPECT_TRUE(args.on);
}

TEST(OptionTable, ErrorsAreOneLineNamingTheOption) {
  struct Args {
    unsigned long n = 0;
  } args;
  static constexpr Option<Args> kTable[] = {
      {{"--count", 'c', "N", "a count"},
       [](Args& a, const char* v, std::string* e) {
         if (option::parse_uint(v, 1, 9, &a.n)) return true;
         *e = "bad count '" + std::string(v) + "' (1-9)";
         return false;
       }},
      {{"--size", 0, "N", "a size", nullptr, "--size wants a number"},
       [](Args&, const char*, std::string*) { return false; }},
  };
  OptionParser p("ferry t");
  p.add(kTable, &args);
  auto line = [&](std::initializer_list<std::string> args) {
    Argv a(args);
    OptionParser::Outcome r = p.parse(a.argc(), a.argv());
    EXPECT_EQ(r.kind, OptionParser::Outcome::error);
    EXPECT_EQ(r.line.find('\n'), std::string::npos);
    return r.line;
  };
  EXPECT_EQ(line({"t", "--bogus"}), "ferry t: unknown option '--bogus' (try 'ferry t --help')");
  EXPECT_EQ(line({"t", "-c", "10"}), "ferry t: -c: bad count '10' (1-9)");
  EXPECT_EQ(line({"t", "--count"}), "ferry t: option --count needs a value");
  EXPECT_EQ(line({"t", "--size"}), "ferry t: --size wants a number");
  EXPECT_EQ(line({"t", "--size", "3"}), "ferry t: bad --size '3'");
  p.unknown_format("no such option %s");
  EXPECT_EQ(line({"t", "-x"}), "ferry t: no such option -x");
}

TEST(OptionTable, HelpIsGeneratedInColumns) {
  struct Args {
    bool a = false, b = true;
  } args;
  static constexpr Option<Args> kTable[] = {
      {{"--all", 'a', nullptr, "first line\nsecond line"}, option::set<&Args::a, true>},
      {{"--both", 0, nullptr, "on or off", "--both / --no-both"}, option::set<&Args::b, true>},
      {{"--no-both", 0, nullptr, nullptr}, option::set<&Args::b, false>},
      {{"--a-very-long-option-name", 0, "VALUE", "wraps"}, nullptr},
  };
  OptionParser p("ferry t");
  p.text("usage: t\n").add(kTable, &args).help_line();
  EXPECT_EQ(p.help(),
            "usage: t\n"
            "  -a, --all                  first line\n"
            "                             second line\n"
            "      --both / --no-both     on or off\n"
            "      --a-very-long-option-name VALUE\n"
            "                             wraps\n"
            "  -h, --help                 this text\n");
  Argv h({"t", "--all", "-h", "--bogus"});
  EXPECT_EQ(p.parse(h.argc(), h.argv()).kind, OptionParser::Outcome::help);
}

TEST(OptionTable, TranslatorHelpListsEveryOption) {
  TranslatorParser t;
  const std::string help = t.parser.help();
  ASSERT_GT(t.parser.options().size(), 30u);
  for (const OptionSpec* s : t.parser.options()) {
    EXPECT_NE(help.find(s->long_name), std::string::npos) << s->long_name;
    if (s->short_name != 0)
      EXPECT_NE(help.find(std::string("-") + s->short_name + ", " + s->long_name), std::string::npos) << s->long_name;
  }
}

TEST(OptionTable, TranslatorBadValuesNameTheOption) {
  for (const OptionSpec* s : TranslatorParser().parser.options()) {
    if (!s->takes_value()) continue;
    for (const std::string given : {std::string(s->long_name), s->short_name ? std::string("-") + s->short_name : ""}) {
      if (given.empty()) continue;
      TranslatorParser t;
      // A value each option refuses (a DNS name may hold ':', a user name '.',
      // a file name anything but nothing).
      const std::string name = s->long_name;
      const std::string bad = name == "--runas"                          ? "user:"
                              : name == "--search" || name == "--domain" ? "a..b"
                              : name == "--pcap"                         ? ""
                                                                         : ":";
      OptionParser::Outcome r = t.parse({"test", given, bad});
      ASSERT_EQ(r.kind, OptionParser::Outcome::error) << given << " accepted '" << bad << "'";
      EXPECT_EQ(r.line.find('\n'), std::string::npos);
      EXPECT_TRUE(r.line.find(given) != std::string::npos || r.line.find(s->long_name) != std::string::npos)
          << r.line;
      r = TranslatorParser().parse({"test", given});
      EXPECT_EQ(r.line, "ferry test: option " + given + " needs a value");
    }
  }
}

TEST(OptionTable, TranslatorValuesReachTheConfig) {
  TranslatorParser t;
  OptionParser::Outcome r =
      t.parse({"test", "-a", "10.1.2.3/16", "-m", "9000", "--no-map-gw", "--mark", "0x10", "--max-conns", "64", "-6",
               "--no-dhcp", "--search", "a.example,b.example", "--route", "10.9.0.0/16", "--seccomp", "log",
               "--no-sandbox", "-v"});
  ASSERT_EQ(r.kind, OptionParser::Outcome::ok) << r.line;
  EXPECT_EQ(t.config.guest4.str(), "10.1.2.3/16");
  EXPECT_EQ(t.config.mtu, 9000u);
  EXPECT_FALSE(t.config.map_gateway);
  EXPECT_EQ(t.config.socket_mark, 0x10u);
  EXPECT_EQ(t.config.max_conns, 64u);
  EXPECT_FALSE(t.config.ipv4);
  EXPECT_TRUE(t.config.ipv6);
  EXPECT_FALSE(t.config.services.dhcp4);
  EXPECT_TRUE(t.config.services.ra);
  EXPECT_EQ(t.config.services.search.size(), 2u);
  EXPECT_EQ(t.config.services.routes.size(), 1u);
  EXPECT_EQ(t.sandbox.seccomp, sandbox::SeccompMode::log);
  EXPECT_FALSE(t.sandbox.enabled);
  EXPECT_TRUE(t.config.verbose);
  EXPECT_TRUE(t.parser.seen("--mtu"));
  EXPECT_FALSE(t.parser.seen("--gateway"));
}

// Every command: --help on stdout with exit 0 and its options; a bad command
// line one line on stderr with exit 2 and nothing on stdout.
TEST(Commands, HelpListsTheirOptions) {
  struct Case {
    int (*cmd)(int, char**);
    const char* name;
    std::vector<const char*> options;
  };
  const Case cases[] = {
      {cmd_run, "run", {"--netns", "--pid", "-q, --quiet", "-m, --mtu", "--no-dhcp", "--runas", "-h, --help"}},
      {cmd_attach, "attach", {"--hook", "--memory-max", "--guest-mac", "--force", "--foreground", "-t, --tcp-ports", "--seccomp"}},
      {cmd_vm, "vm", {"-s, --socket", "--fd", "-q, --quiet", "--max-udp-flows", "--no-sandbox"}},
      {cmd_stats, "stats", {"-j, --json", "-h, --help"}},
      {cmd_status, "status", {"-j, --json"}},
      {cmd_conns, "conns", {"-j, --json"}},
      {cmd_detach, "detach", {"--timeout SECS", "-q, --quiet"}},
  };
  for (const Case& c : cases) {
    Ran r = run_cmd(c.cmd, {c.name, "--help"});
    EXPECT_EQ(r.rc, 0) << c.name;
    EXPECT_TRUE(r.err.empty()) << c.name;
    EXPECT_EQ(r.out.rfind(std::string("usage: ferry ") + c.name, 0), 0u) << c.name;
    for (const char* o : c.options) EXPECT_NE(r.out.find(o), std::string::npos) << c.name << " " << o;
  }
}

TEST(Commands, UsageErrorsAreOneLineExitTwo) {
  struct Case {
    int (*cmd)(int, char**);
    std::initializer_list<std::string> args;
    const char* line;
  };
  const Case cases[] = {
      {cmd_run, {"run", "--bogus", "--", "true"}, "ferry run: unknown option '--bogus' (try 'ferry run --help')"},
      {cmd_run, {"run", "--pid", ""}, "ferry run: option --pid needs a file name"},
      {cmd_run, {"run", "--pid"}, "ferry run: option --pid needs a file name"},
      {cmd_run, {"run", "--netns"}, "ferry run: option --netns needs a value"},
      {cmd_run, {"run", "--mark", "-1"}, "ferry run: bad --mark '-1' (0-4294967295, or 0x hex)"},
      {cmd_run, {"run", "-m", "100"}, "ferry run: -m: bad MTU '100' (1280-65520)"},
      {cmd_run, {"run", "-4", "-6"}, "ferry run: -4 and -6 together leave no address family"},
      {cmd_attach, {"attach"}, "ferry attach: which device? (usage: ferry attach DEV [OPTIONS])"},
      {cmd_attach, {"attach", "a0", "a1"}, "ferry attach: one device only ('a0' and 'a1')"},
      {cmd_attach, {"attach", "--hook", "foo", "a0"}, "ferry attach: bad --hook 'foo' (tc or xdp)"},
      {cmd_attach, {"attach", "--guest-mac", "ff:ff:ff:ff:ff:ff", "a0"},
       "ferry attach: bad --guest-mac 'ff:ff:ff:ff:ff:ff' (want a unicast MAC, e.g. 02:00:00:00:00:01)"},
      {cmd_attach, {"attach", "--memory-max"}, "ferry attach: bad --memory-max (bytes, or with K, M, G; or max)"},
      {cmd_attach, {"attach", "--memory-max", "3Q", "a0"}, "ferry attach: bad --memory-max (bytes, or with K, M, G; or max)"},
      {cmd_attach, {"attach", "-Z"}, "ferry attach: unknown option '-Z' (try 'ferry attach --help')"},
      {cmd_vm, {"vm", "extra"}, "ferry vm: unknown option or argument 'extra' (try 'ferry vm --help')"},
      {cmd_vm, {"vm", "--bogus"}, "ferry vm: unknown option or argument '--bogus' (try 'ferry vm --help')"},
      {cmd_vm, {"vm", "--fd", "-3"}, "ferry vm: --fd -3 is not an open file descriptor"},
      {cmd_vm, {"vm"}, "ferry vm: give exactly one of --socket PATH and --fd N"},
      {cmd_stats, {"stats", "--bogus"}, "ferry stats: unknown option '--bogus' (see ferry stats --help)"},
      {cmd_stats, {"stats", "a", "b"}, "ferry stats: one INSTANCE at most (see ferry stats --help)"},
      {cmd_status, {"status", "-x"}, "ferry status: unknown option '-x' (try 'ferry status --help')"},
      {cmd_status, {"status", "a", "b"}, "ferry status: one device only"},
      {cmd_conns, {"conns", "a", "b"}, "ferry conns: one instance only"},
      {cmd_detach, {"detach"}, "ferry detach: which device? (usage: ferry detach DEV)"},
      {cmd_detach, {"detach", "--timeout", "3601", "a0"}, "ferry detach: bad --timeout (0-3600 seconds)"},
      {cmd_detach, {"detach", "--timeout"}, "ferry detach: bad --timeout (0-3600 seconds)"},
  };
  for (const Case& c : cases) {
    Ran r = run_cmd(c.cmd, c.args);
    EXPECT_EQ(r.rc, 2) << c.line;
    EXPECT_EQ(r.err, std::string(c.line) + "\n");
    EXPECT_TRUE(r.out.empty()) << c.line;
  }
}

}  // namespace
}  // namespace ferry::cli
