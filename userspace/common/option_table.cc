// Option tables: the parser and the help (see option_table.h).
#include "common/option_table.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>

namespace ferry {

namespace {

// The help's left column is this wide; the text starts one space after it.
constexpr size_t kHelpColumn = 28;

// "  -m, --mtu N" or "      --max-conns N".
std::string left_column(const OptionSpec& s) {
  if (s.display != nullptr) return std::string("      ") + s.display;
  std::string l = "  ";
  if (s.short_name != 0) l += std::string("-") + s.short_name + ", ";
  else l += "    ";
  l += s.long_name;
  if (s.takes_value()) l += std::string(" ") + s.metavar;
  return l;
}

// One option's help: the left column, then its lines at the help column.
void append_option_help(std::string* out, const std::string& left, const char* help) {
  *out += left;
  if (left.size() > kHelpColumn) *out += "\n" + std::string(kHelpColumn, ' ');
  else *out += std::string(kHelpColumn - left.size(), ' ');
  for (std::string_view rest = help;;) {
    const size_t nl = rest.find('\n');
    *out += " ";
    *out += rest.substr(0, nl);
    *out += "\n";
    if (nl == std::string_view::npos) break;
    rest = rest.substr(nl + 1);
    *out += std::string(kHelpColumn, ' ');
  }
}

// printf-style %s substitution of one argument into a fixed format.
std::string format_one(const std::string& format, std::string_view arg) {
  std::string out;
  const size_t at = format.find("%s");
  if (at == std::string::npos) return format;
  out = format.substr(0, at);
  out += arg;
  out += format.substr(at + 2);
  return out;
}

}  // namespace

namespace option {

bool parse_uint(std::string_view text, unsigned long lo, unsigned long hi, unsigned long* out) {
  unsigned long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace option

OptionParser::OptionParser(std::string command)
    : command_(std::move(command)), unknown_format_("unknown option '%s' (try '" + command_ + " --help')") {}

OptionParser& OptionParser::text(const char* paragraph) {
  Section s;
  s.text = paragraph;
  sections_.push_back(s);
  return *this;
}

OptionParser& OptionParser::help_line() {
  Section s;
  s.help_line = true;
  sections_.push_back(s);
  help_placed_ = true;
  return *this;
}

OptionParser& OptionParser::stop_at_operand() {
  stop_at_operand_ = true;
  return *this;
}

OptionParser& OptionParser::unknown_format(const char* format) {
  unknown_format_ = format;
  return *this;
}

// A name given twice is a bug in the tables: stop before anything runs.
void OptionParser::add_entry(const OptionSpec* spec, std::function<bool(const char*, std::string*)> apply) {
  for (const Entry& e : entries_) {
    const bool same_short = spec->short_name != 0 && e.spec->short_name == spec->short_name;
    if (std::string_view(e.spec->long_name) == spec->long_name || same_short) {
      std::fprintf(stderr, "%s: option %s listed twice\n", command_.c_str(), spec->long_name);
      std::abort();
    }
  }
  Section s;
  s.entry = entries_.size();
  sections_.push_back(s);
  entries_.push_back(Entry{spec, std::move(apply), false});
}

// "--name" by long name, "-X" by short name.
OptionParser::Entry* OptionParser::find(std::string_view arg) {
  for (Entry& e : entries_) {
    if (arg == e.spec->long_name) return &e;
    if (e.spec->short_name != 0 && arg.size() == 2 && arg[0] == '-' && arg[1] == e.spec->short_name) return &e;
  }
  return nullptr;
}

OptionParser::Outcome OptionParser::parse(int argc, char** argv) {
  Outcome out;
  for (Entry& e : entries_) e.seen = false;
  auto fail = [&](const std::string& message) {
    out.kind = Outcome::error;
    out.line = command_ + ": " + message;
    out.operands.clear();
    return out;
  };
  for (int i = 1; i < argc; i++) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      out.operands.insert(out.operands.end(), argv + i + 1, argv + argc);
      break;
    }
    if (arg == "-h" || arg == "--help") {
      out.kind = Outcome::help;
      out.operands.clear();
      return out;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      if (stop_at_operand_) {
        out.operands.insert(out.operands.end(), argv + i, argv + argc);
        break;
      }
      out.operands.push_back(argv[i]);
      continue;
    }
    Entry* e = find(arg);
    if (e == nullptr) return fail(format_one(unknown_format_, arg));
    const char* value = nullptr;
    if (e->spec->takes_value()) {
      if (i + 1 >= argc)
        return fail(e->spec->missing != nullptr ? e->spec->missing : "option " + std::string(arg) + " needs a value");
      value = argv[++i];
    }
    std::string error;
    if (!e->apply(value, &error)) {
      // The line names the option: as the handler wrote it, else as given.
      if (error.empty()) return fail("bad " + std::string(arg) + (value != nullptr ? " '" + std::string(value) + "'" : ""));
      if (error.find(e->spec->long_name) == std::string::npos) return fail(std::string(arg) + ": " + error);
      return fail(error);
    }
    e->seen = true;
  }
  return out;
}

std::optional<int> OptionParser::parse_or_exit(int argc, char** argv, std::vector<char*>* operands) {
  Outcome o = parse(argc, argv);
  switch (o.kind) {
    case Outcome::help:
      std::fputs(help().c_str(), stdout);
      return 0;
    case Outcome::error:
      std::fprintf(stderr, "%s\n", o.line.c_str());
      return 2;
    case Outcome::ok:
      break;
  }
  if (operands != nullptr) *operands = std::move(o.operands);
  return std::nullopt;
}

bool OptionParser::seen(std::string_view long_name) const {
  for (const Entry& e : entries_)
    if (long_name == e.spec->long_name) return e.seen;
  return false;
}

std::string OptionParser::help() const {
  static const OptionSpec kHelp{"--help", 'h', nullptr, "this text"};
  std::string out;
  for (const Section& s : sections_) {
    if (s.text != nullptr) {
      out += s.text;
    } else if (s.help_line) {
      append_option_help(&out, left_column(kHelp), kHelp.help);
    } else if (const OptionSpec& spec = *entries_[s.entry].spec; spec.help != nullptr) {
      append_option_help(&out, left_column(spec), spec.help);
    }
  }
  if (!help_placed_) append_option_help(&out, left_column(kHelp), kHelp.help);
  return out;
}

std::vector<const OptionSpec*> OptionParser::options() const {
  std::vector<const OptionSpec*> v;
  for (const Entry& e : entries_) v.push_back(e.spec);
  return v;
}

}  // namespace ferry
