// User namespaces for rootless ferry: id maps, entering a new one, and
// whether this process may make network devices where it stands.
//
// Theory of operation: an ordinary user may create a user namespace
// (unshare(CLONE_NEWUSER)) and, inside it, holds every capability over
// namespaces that user namespace owns: a network namespace unshared there
// may get a tap, addresses and routes. The new namespace starts with no id
// mapped; the process maps exactly one uid and one gid itself (no newuidmap
// helper): "INSIDE OUTSIDE 1" into /proc/self/uid_map, "deny" into
// /proc/self/setgroups (the kernel requires it before an unprivileged
// gid_map: the process may then never drop its supplementary groups), then
// "INSIDE OUTSIDE 1" into /proc/self/gid_map. OUTSIDE is the process's own
// uid/gid in the parent namespace (the only one it may map); INSIDE is 0
// for the guest (pasta's and rootlesskit's choice: root in there, the
// caller outside) and the same id for the translator's sandbox (it gives up
// every capability right after).
//
// Capabilities in a user namespace count only there: the caller keeps none
// in its own (the initial) namespace, where its host sockets live.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ferry {

// One line of a uid_map/gid_map: "INSIDE OUTSIDE 1\n".
std::string single_id_map(uint32_t inside, uint32_t outside);

// Whether a /proc/PID/uid_map text is the initial namespace's (all 2^32-1
// ids mapped to themselves: "0 0 4294967295").
bool is_initial_id_map(std::string_view uid_map);

// Whether this process is in the initial user namespace.
bool in_initial_user_namespace();

// Whether this process can make a network namespace and a tap and keep its
// own sockets where they are, as root does: in the initial user namespace
// with CAP_SYS_ADMIN and CAP_NET_ADMIN effective. False means rootless.
bool privileged_for_network_setup();

// Maps this process's (new, still unmapped) user namespace: the process's
// own uid/gid outside become inside_uid/inside_gid; setgroups is denied.
// outer_uid/outer_gid: the ids before unshare (getuid()/getgid() there).
Status map_own_ids(uid_t inside_uid, gid_t inside_gid, uid_t outer_uid, gid_t outer_gid);

// unshare(CLONE_NEWUSER) and map_own_ids(): the calling process (single
// threaded) ends in a new user namespace as inside_uid/inside_gid with all
// capabilities there and none outside.
Status enter_new_user_namespace(uid_t inside_uid, gid_t inside_gid);

}  // namespace ferry
