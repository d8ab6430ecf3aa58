// Command-line options as tables: each option is written once (its long and
// short name, whether it takes a value, its help text, and the handler that
// stores it into its target), and both the parser and `--help` are made from
// the tables, in the style of xdp-tools' option wrappers.
//
// Theory of operation: a command builds one OptionParser from text sections
// (usage, description, headings) and option tables, each table bound to the
// object its handlers fill (the translator's Config, the sandbox's Options,
// the command's own fields). parse() walks argv once, left to right:
//   --            everything after it is an operand;
//   -h, --help    the generated help (the caller prints it and exits 0);
//   -X, --name    looked up in every table (names are unique across them);
//                 a value is the next argument, whatever it looks like;
//   anything else an operand; with stop_at_operand (ferry run's CMD) it and
//                 everything after it are operands.
// An unknown option, a missing value or a value a handler refuses ends the
// walk with one line (command, colon, message) for stderr and exit status 2.
// The line always names the option: a handler's message that does not
// contain the option's long name gets the option, as given, in front
// ("ferry run: -t: port spec 'auto' is not supported yet").
// Handlers see only their own value: cross-option checks belong to the
// command, after parse(). seen() tells which options were given (e.g. an
// explicit -m versus the default MTU).
// Invariants: a name is listed once across a parser's tables (add() aborts
// otherwise: a table bug, not a user error); the help lists every option.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/status.h"

namespace ferry {

// Everything about one option but its handler.
struct OptionSpec {
  const char* long_name;  // "--mtu"
  char short_name;        // 'm' for -m; 0 when there is none
  const char* metavar;    // the value's name in the help ("N"); nullptr: a flag without value
  // Help text; '\n' separates lines, each indented to the help column.
  // nullptr: the option is described by the line of the option before it
  // (whose `display` names both, e.g. "--node / --no-node").
  const char* help;
  const char* display = nullptr;  // the help's left column, when not "-m, --mtu N"
  const char* missing = nullptr;  // the error when the value is missing (default: "option X needs a value")

  bool takes_value() const { return metavar != nullptr; }
};

// One option of a table bound to a T: its spec and what it does.
template <class T>
struct Option {
  OptionSpec spec;
  // Stores value (nullptr for a flag) into target. False with *error (one
  // line, without the command's name) when the value is bad.
  bool (*apply)(T& target, const char* value, std::string* error);
};

// Handlers for the common cases, named after the field they fill.
namespace option {

template <auto Member>
struct member_of;
template <class C, class F, F C::*M>
struct member_of<M> {
  using owner = C;
  using field = F;
};

// A flag that stores Value (true unless given) into Member.
template <auto Member, auto Value = true>
bool set(typename member_of<Member>::owner& t, const char*, std::string*) {
  t.*Member = Value;
  return true;
}

// A value stored as it is into a std::string Member.
template <auto Member>
bool text(typename member_of<Member>::owner& t, const char* v, std::string*) {
  t.*Member = v;
  return true;
}

// A handler's outcome from a parser that returns a Status: true, or false
// with the failure's line in *error.
inline bool from_status(const Status& st, std::string* error) {
  if (!st.ok()) *error = st.message();
  return st.ok();
}

// Parses an unsigned decimal in [lo, hi] spanning all of text.
bool parse_uint(std::string_view text, unsigned long lo, unsigned long hi, unsigned long* out);

}  // namespace option

class OptionParser {
 public:
  // command: how error lines begin ("ferry run").
  explicit OptionParser(std::string command);

  // A paragraph of the help, printed as it is (end it with '\n').
  OptionParser& text(const char* paragraph);
  // A table of options bound to *target, listed in the help in table order.
  template <class T>
  OptionParser& add(std::span<const Option<T>> table, T* target) {
    for (const Option<T>& o : table) {
      auto apply = o.apply;
      add_entry(&o.spec, [apply, target](const char* v, std::string* e) { return apply(*target, v, e); });
    }
    return *this;
  }
  template <class T, size_t N>
  OptionParser& add(const Option<T> (&table)[N], T* target) {
    return add(std::span<const Option<T>>(table, N), target);
  }
  // The help's "-h, --help" line goes here (else after everything).
  OptionParser& help_line();
  // The first operand and everything after it are operands (ferry run's CMD).
  OptionParser& stop_at_operand();
  // The error line for an unknown option; %s is the option as given
  // (default: "unknown option '%s' (try '<command> --help')").
  OptionParser& unknown_format(const char* format);

  struct Outcome {
    enum Kind { ok, help, error } kind = ok;
    std::string line;             // error: the whole line (without newline)
    std::vector<char*> operands;  // ok: the non-option arguments, in order
  };
  // Parses argv[1..argc) (argv[0] is the command's name).
  Outcome parse(int argc, char** argv);
  // parse(), printing the help (stdout) or the error line (stderr): returns
  // the exit status (0 after the help, 2 after an error) or nullopt to go on.
  std::optional<int> parse_or_exit(int argc, char** argv, std::vector<char*>* operands);

  // True when the option with this long name was given in the last parse().
  bool seen(std::string_view long_name) const;
  // The generated help text.
  std::string help() const;
  // Every option, in help order (for tests).
  std::vector<const OptionSpec*> options() const;

 private:
  struct Entry {
    const OptionSpec* spec = nullptr;
    std::function<bool(const char*, std::string*)> apply;
    bool seen = false;
  };
  struct Section {
    const char* text = nullptr;  // a paragraph, or
    size_t entry = 0;            // an option (index into entries_)
    bool help_line = false;      // or the -h/--help line
  };
  void add_entry(const OptionSpec* spec, std::function<bool(const char*, std::string*)> apply);
  Entry* find(std::string_view arg);

  std::string command_;
  std::string unknown_format_;
  bool stop_at_operand_ = false;
  bool help_placed_ = false;
  std::vector<Entry> entries_;
  std::vector<Section> sections_;
};

}  // namespace ferry
