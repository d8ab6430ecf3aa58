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

// Before the translator binds its forwards: says (with -v) how many ports
// -t/-u all skipped as in use, and raises the descriptor limit to fit every
// forwarded port (the hard limit too when the caller may). When the limit
// still cannot hold them, `all` keeps its lowest ports (one line says so).
void prepare_forwards(Config* config);

}  // namespace ferry::cli
