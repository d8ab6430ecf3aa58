// Options shared by the subcommands that start a translator (`run`, later
// `attach`): addresses, gateway, MTU, forwards, fast path. Each option is one
// --flag VALUE pair or a lone --flag; errors are one line for the caller to
// print before exiting with status 2.
#pragma once

#include <string>

#include "common/config.h"
#include "services/resolv_conf.h"

namespace ferry::cli {

// If argv[*i] is a translator option, consumes it (and its value), applies it
// to *config and returns true. Returns false for an option it does not know.
// On a bad value, sets *error (and returns true).
bool parse_translator_option(int argc, char** argv, int* i, Config* config, std::string* error);

// Checks cross-option consistency after all options were read.
bool validate_config(const Config& config, std::string* error);

// Fills what the guest services take from the host: the resolvers to forward
// to, the search list (unless --search), routes' default gateway.
void finish_services_config(Config* config, const services::ResolvConf& host);

// Before the translator binds its forwards: says (with -v) how many ports
// -t/-u all skipped as in use, and raises the descriptor limit to fit every
// forwarded port (the hard limit too when the caller may). When the limit
// still cannot hold them, `all` keeps its lowest ports (one line says so).
void prepare_forwards(Config* config);

// The help text for the options above, indented for a usage message.
const char* translator_options_help();

}  // namespace ferry::cli
