// See stale_sweep.h.
#include "stale_sweep.h"

#include <dirent.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "attach/datapath.h"
#include "attach/instance.h"
#include "bpf/classify.h"
#include "bpf/mark_cgroup.h"
#include "common/instance_lock.h"
#include "counters_file.h"
#include "netns/user_namespace.h"
#include "sandbox/service_cgroup.h"

namespace ferry::cli {

namespace {

// The names of the entries of dir that pass want (none when dir is missing).
std::vector<std::string> entries(const std::string& dir, bool (*want)(const std::string&)) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != ".." && want(name)) out.push_back(name);
    }
    closedir(d);
  }
  return out;
}

bool is_run_or_vm(const std::string& name) { return is_run_instance(name) || is_vm_instance(name); }

// run-PID / vm-PID: the directory and the --mark cgroup (its pins go with
// cleanup_stale_instances, which finds them without a directory too).
void sweep_run_instance(const std::string& name, bool root) {
  const SweepGuard guard;
  if (!instance_is_dead(name)) return;
  (void)attach::remove_dir_flat(run_counters_dir(name));
  if (root) sandbox::remove_service_cgroups(sandbox::cgroup2_mount(), name);
}

// An attached DEV whose service is dead and whose DEV link acts on nothing:
// what `ferry detach DEV` removes.
void sweep_attachment(const std::string& dev) {
  const SweepGuard guard;
  if (!instance_lock_free(attach::run_dir(dev)) || attach::dev_link_active(dev)) return;
  (void)attach::remove_pins(dev);
  sandbox::remove_service_cgroups(sandbox::cgroup2_mount(), dev);
  (void)attach::remove_dir_flat(attach::run_dir(dev));
}

}  // namespace

bool instance_is_dead(const std::string& name) {
  if (is_run_or_vm(name)) {
    const long pid = std::strtol(name.c_str() + name.find('-') + 1, nullptr, 10);
    return pid > 0 && run_instance_is_stale(name, static_cast<int>(pid));
  }
  return attach::valid_ifname(name) && !attach::service_alive(name);
}

void sweep_dead_instances() {
  const bool root = privileged_for_network_setup();
  for (const std::string& name : entries(run_base_dir(), is_run_or_vm)) sweep_run_instance(name, root);
  if (!root) return;
  (void)cleanup_stale_instances();
  for (const std::string& dev : entries(attach::kRunRoot, [](const std::string& n) { return attach::valid_ifname(n); }))
    sweep_attachment(dev);
  const std::string cgroup2 = sandbox::cgroup2_mount();
  (void)sandbox::remove_dead_instance_cgroups(cgroup2, instance_is_dead, 10, carries_mark_program);
}

}  // namespace ferry::cli
