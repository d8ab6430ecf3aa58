// Options shared by the subcommands that start a translator (`run`,
// `attach`, `vm`): addresses, gateway, MTU, forwards, policy, fast path,
// guest services. They are two option tables (common/option_table.h) bound
// to the Config; a command adds them to its parser, which makes the parser
// and the help from them. Errors are one line; the command exits 2.
#pragma once

#include <string>

#include "common/config.h"
#include "common/option_table.h"
#include "services/resolv_conf.h"

namespace ferry::cli {

// Adds the translator's options and, under their heading, the guest
// services' to p, bound to *config.
void add_translator_options(OptionParser& p, Config* config);

// `ferry attach` and `ferry vm`: -T/-U need a guest namespace of ferry's
// own (`ferry run`'s); a one-line failure when either was given.
Status refuse_ns_forwards(const Config& config);

// Checks cross-option consistency after all options were read; a failure
// is one line.
Status validate_config(const Config& config);

// -t/-u auto needs the guest's namespace (ferry run): a one-line failure
// for the commands that have none to scan (attach, vm).
Status refuse_auto_forwards(const Config& config);

// Fills what the guest services take from the host: the resolvers to forward
// to, the search list (unless --search), routes' default gateway.
void finish_services_config(Config* config, const services::ResolvConf& host);

// The descriptors the forward options (-t, -u, -T, -U) take: what their
// explicit rules fix, what their `all` asks for. steer_tcp_ns: -T all goes
// through one listener per family (nsfwd/ns_steering.h: root's ferry run).
struct ForwardFds {
  size_t fixed = 0, all = 0;
};
ForwardFds forward_fds(const Config& config, bool steer_tcp_ns);

// Trims what `all` asks for to `budget` descriptors: an even share per
// option that has `all`, each keeping its lowest ports, one line on stderr
// per option trimmed ("<who>: -t all: the descriptor limit (L) allows N of
// M ports<beside>; forwarding the lowest").
void trim_all_forwards(Config* config, bool steer_tcp_ns, size_t budget, size_t limit, const char* who,
                       const std::string& beside);

// Before the translator binds its forwards: says (with -v) how many ports
// -t/-u all skipped as in use, and raises the descriptor limit to fit every
// forwarded port (the hard limit too when the caller may). When the limit
// still cannot hold them, `all` keeps its lowest ports (one line says so).
void prepare_forwards(Config* config, bool steer_tcp_ns = false);

}  // namespace ferry::cli
